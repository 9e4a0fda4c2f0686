/* podinfo.c - parse the kubelet's Downward-API `labels` and `annotations` files. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/files.h"
#include "topowire/podinfo.h"

#include "podinfo_int.h"

/* The largest file accepted; Kubernetes caps all annotations together at 256 KiB. */
#define PODINFO_MAX (1024 * 1024)

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads n hex digits at p into *v; false when one is missing or not hex. */
static bool read_hex(const char *p, size_t avail, size_t n, uint32_t *v)
{
    if (avail < n)
        return false;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_digit((unsigned char)p[i]);
        if (d < 0)
            return false;
        x = x << 4 | (uint32_t)d;
    }
    *v = x;
    return true;
}

/* Appends cp, a valid Unicode scalar value, as UTF-8. */
static int put_utf8(tw_buf *b, uint32_t cp)
{
    TW_ASSERT(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF));
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return tw_buf_append(b, u, n);
}

/* The one-letter escapes of a Go double-quoted string and the bytes they stand for. */
static const char simple_from[] = "abfnrtv\\\"";
static const char simple_to[] = "\a\b\f\n\r\t\v\\\"";
_Static_assert(sizeof(simple_from) == sizeof(simple_to), "one byte for each one-letter escape");

/*
 * Decodes \uHHHH or \UHHHHHHHH (e is 'u' or 'U'; its hex digits start at
 * arg, avail bytes left) into val as UTF-8. *used is set to the digits read.
 */
static int unescape_unicode(unsigned char e, const char *arg, size_t avail, size_t lineno,
                            tw_buf *val, size_t *used, char *err)
{
    TW_ASSERT(e == 'u' || e == 'U');
    size_t digits = e == 'u' ? 4 : 8;
    uint32_t v = 0;
    if (!read_hex(arg, avail, digits, &v))
        return tw_seterr(err, TW_EPARSE, "line %zu: \\%c needs %zu hex digits", lineno, e, digits);
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return tw_seterr(err, TW_EPARSE,
                         "line %zu: \\%c escape U+%04X is not a Unicode scalar value", lineno, e,
                         (unsigned)v);
    if (v == 0)
        return tw_seterr(err, TW_EPARSE, "line %zu: the value holds a NUL", lineno);
    *used = digits;
    return put_utf8(val, v);
}

/*
 * Decodes an escape that stands for one byte: a one-letter escape, \xHH
 * (which need not be UTF-8 on its own) or octal \NNN (exactly three digits, at
 * most \377). e is the letter after the backslash, arg what follows it (avail
 * bytes). Sets *byte and *used (the bytes of arg read); a decoded NUL and any
 * other escape are errors.
 */
static int unescape_byte(unsigned char e, const char *arg, size_t avail, size_t lineno,
                         unsigned char *byte, size_t *used, char *err)
{
    const char *simple = e != '\0' ? strchr(simple_from, e) : NULL;
    uint32_t v = 0;
    size_t n = 0;
    if (simple != NULL) {
        TW_ASSERT((size_t)(simple - simple_from) < sizeof(simple_to) - 1);
        v = (unsigned char)simple_to[simple - simple_from];
    } else if (e == 'x') {
        if (!read_hex(arg, avail, 2, &v))
            return tw_seterr(err, TW_EPARSE, "line %zu: \\x needs two hex digits", lineno);
        n = 2;
    } else if (e >= '0' && e <= '7') {
        if (avail < 2 || arg[0] < '0' || arg[0] > '7' || arg[1] < '0' || arg[1] > '7')
            return tw_seterr(err, TW_EPARSE, "line %zu: an octal escape needs three digits",
                             lineno);
        v = (uint32_t)(e - '0') << 6 | (uint32_t)(arg[0] - '0') << 3 | (uint32_t)(arg[1] - '0');
        if (v > 0xFF)
            return tw_seterr(err, TW_EPARSE, "line %zu: octal escape \\%c%c%c is over \\377",
                             lineno, e, arg[0], arg[1]);
        n = 2;
    } else if (e >= 0x21 && e <= 0x7E) {
        return tw_seterr(err, TW_EPARSE, "line %zu: unknown escape \\%c", lineno, e);
    } else {
        return tw_seterr(err, TW_EPARSE, "line %zu: unknown escape before byte 0x%02X", lineno, e);
    }
    if (v == 0)
        return tw_seterr(err, TW_EPARSE, "line %zu: the value holds a NUL", lineno);
    *byte = (unsigned char)v;
    *used = n;
    return TW_OK;
}

/* Decodes the escape at p[*i] (a backslash) of the n-byte p into val and moves *i past it. */
static int unescape(const char *p, size_t n, size_t *i, size_t lineno, tw_buf *val, char *err)
{
    TW_ASSERT(*i < n && p[*i] == '\\');
    if (*i + 1 >= n)
        return tw_seterr(err, TW_EPARSE, "line %zu ends inside an escape", lineno);
    unsigned char e = (unsigned char)p[*i + 1];
    const char *arg = p + *i + 2;
    size_t avail = n - *i - 2;
    size_t used = 0;
    int rc;
    if (e == 'u' || e == 'U') {
        rc = unescape_unicode(e, arg, avail, lineno, val, &used, err);
    } else {
        unsigned char byte = 0;
        rc = unescape_byte(e, arg, avail, lineno, &byte, &used, err);
        if (rc == TW_OK)
            rc = tw_buf_append(val, &byte, 1);
    }
    *i += 2 + used;
    return rc;
}

/*
 * Decodes the Go double-quoted string p[0..n), which starts with '"' and must
 * end with the closing quote at p[n-1], into val (reset first). This follows
 * strconv.Unquote, except that a decoded NUL is refused: a value is kept as a
 * C string.
 */
static int unquote(const char *p, size_t n, size_t lineno, tw_buf *val, char *err)
{
    TW_ASSERT(n > 0 && p[0] == '"');
    tw_buf_reset(val);
    size_t i = 1;
    for (;;) {
        if (i >= n)
            return tw_seterr(err, TW_EPARSE,
                             "line %zu: the quoted value has no closing quote "
                             "(a raw newline inside the quotes?)",
                             lineno);
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            if (i + 1 == n)
                return TW_OK;
            if (i + 2 == n && p[i + 1] == '\r')
                return tw_seterr(err, TW_EPARSE,
                                 "line %zu ends in a carriage return; the kubelet writes '\\n' "
                                 "line ends only",
                                 lineno);
            return tw_seterr(err, TW_EPARSE, "line %zu has text after the closing quote", lineno);
        }
        if (c == '\0')
            return tw_seterr(err, TW_EPARSE, "line %zu holds a NUL byte", lineno);
        int rc;
        if (c == '\\') {
            rc = unescape(p, n, &i, lineno, val, err);
        } else {
            /* Raw bytes, UTF-8 included, pass through unchanged. */
            rc = tw_buf_append(val, &c, 1);
            i++;
        }
        if (rc != TW_OK)
            return rc;
    }
}

/* Appends copies of key and value to l; repeated keys are caught later by check_unique. */
static int list_push(tw_kvlist *l, const char *key, size_t klen, const char *value, size_t vlen)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        tw_kv *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return TW_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    char *k = strndup(key, klen);
    char *v = strndup(value, vlen);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return TW_ENOMEM;
    }
    l->items[l->n].key = k;
    l->items[l->n].value = v;
    l->n++;
    return TW_OK;
}

static int parse_line(const char *line, size_t n, size_t lineno, tw_kvlist *l, tw_buf *val,
                      char *err)
{
    if (n == 0)
        return tw_seterr(err, TW_EPARSE, "line %zu is empty", lineno);
    const char *eq = memchr(line, '=', n);
    if (eq == NULL)
        return tw_seterr(err, TW_EPARSE, "line %zu has no '='", lineno);
    size_t klen = (size_t)(eq - line);
    if (klen == 0)
        return tw_seterr(err, TW_EPARSE, "line %zu has an empty key", lineno);
    if (memchr(line, '\0', klen) != NULL)
        return tw_seterr(err, TW_EPARSE, "line %zu holds a NUL byte", lineno);
    const char *q = eq + 1;
    size_t qn = n - klen - 1;
    if (qn == 0 || q[0] != '"')
        return tw_seterr(err, TW_EPARSE, "line %zu: the value does not start with '\"'", lineno);
    int rc = unquote(q, qn, lineno, val, err);
    if (rc != TW_OK)
        return rc;
    return list_push(l, line, klen, tw_buf_cstr(val), val->len);
}

static int cmp_key(const void *a, const void *b)
{
    const tw_kv *x = *(const tw_kv *const *)a;
    const tw_kv *y = *(const tw_kv *const *)b;
    return strcmp(x->key, y->key);
}

/* Fails when a key appears twice; sorting pointers keeps this O(n log n). */
static int check_unique(const tw_kvlist *l, char *err)
{
    if (l->n < 2)
        return TW_OK;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pair pointers. */
    const tw_kv **v = malloc(l->n * sizeof(*v));
    if (v == NULL)
        return TW_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        v[i] = &l->items[i];
    qsort(v, l->n, sizeof(*v), cmp_key); /* NOLINT(bugprone-sizeof-expression) */
    int rc = TW_OK;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(v[i - 1]->key, v[i]->key) == 0) {
            /* Items are in line order, so the larger index is the later line. */
            size_t a = (size_t)(v[i - 1] - l->items);
            size_t b = (size_t)(v[i] - l->items);
            rc = tw_seterr(err, TW_EPARSE, "line %zu repeats the key of line %zu",
                           (a > b ? a : b) + 1, (a > b ? b : a) + 1);
            break;
        }
    }
    free(v);
    return rc;
}

int tw__podinfo_parse(const char *text, size_t len, tw_kvlist *out, char *err)
{
    tw_kvlist tmp = {0};
    tw_kvlist merged = {0};
    tw_buf val;
    tw_buf_init(&val, PODINFO_MAX);
    int rc = TW_OK;

    if (len > PODINFO_MAX) {
        rc = tw_seterr(err, TW_ETOOBIG, "the text is %zu bytes, over the 1 MiB cap", len);
        goto out;
    }
    size_t pos = 0;
    size_t lineno = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        lineno++;
        rc = parse_line(line, n, lineno, &tmp, &val, err);
        if (rc == TW_ENOMEM)
            tw_seterr(err, rc, "out of memory at line %zu", lineno);
        if (rc != TW_OK)
            goto out;
        pos += n + (nl != NULL);
    }
    rc = check_unique(&tmp, err);
    if (rc == TW_ENOMEM)
        tw_seterr(err, rc, "out of memory checking for repeated keys");
    if (rc != TW_OK)
        goto out;

    if (out->n == 0) {
        free(out->items);
        *out = tmp;
        tmp = (tw_kvlist){0};
        goto out;
    }
    /* Merging into a non-empty list: build the result aside so a failure leaves *out alone. */
    for (size_t i = 0; i < out->n && rc == TW_OK; i++)
        rc = tw_kvlist_set(&merged, out->items[i].key, out->items[i].value);
    for (size_t i = 0; i < tmp.n && rc == TW_OK; i++)
        rc = tw_kvlist_set(&merged, tmp.items[i].key, tmp.items[i].value);
    if (rc != TW_OK) {
        tw_seterr(err, rc, "out of memory merging the pairs");
        goto out;
    }
    tw_kvlist_free(out);
    *out = merged;
    merged = (tw_kvlist){0};
out:
    tw_kvlist_free(&merged);
    tw_kvlist_free(&tmp);
    tw_buf_free(&val);
    return rc;
}

int tw_podinfo_read(const char *path, tw_kvlist *out, char *err)
{
    char *text = NULL;
    size_t len = 0;
    char perr[TW_ERRLEN] = "";
    int rc = tw_file_read(path, PODINFO_MAX, &text, &len, err);
    if (rc != TW_OK)
        return rc;
    rc = tw__podinfo_parse(text, len, out, perr);
    if (rc != TW_OK)
        tw_seterr(err, rc, "%s: %s", path, perr);
    free(text);
    return rc;
}
