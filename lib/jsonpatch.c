/* jsonpatch.c - JSON Patch (RFC 6902) documents kept as text, and JSON Pointer escaping. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/jsonpatch.h"

#define POINTER_MAX (64 * 1024)

int tw_jsonpatch_init(tw_jsonpatch *p)
{
    tw_jsonpatch_init_max(p, TW_JSONPATCH_MAX);
    return TW_OK;
}

void tw_jsonpatch_init_max(tw_jsonpatch *p, size_t max)
{
    tw_buf_init(&p->text, max);
    p->n = 0;
}

void tw_jsonpatch_free(tw_jsonpatch *p)
{
    if (p == NULL)
        return;
    tw_buf_free(&p->text);
    p->n = 0;
}

size_t tw_jsonpatch_count(const tw_jsonpatch *p)
{
    return p->n;
}

const char *tw_jsonpatch_text(const tw_jsonpatch *p)
{
    return p->text.len > 0 ? p->text.data : "[]";
}

size_t tw_jsonpatch_len(const tw_jsonpatch *p)
{
    return p->text.len > 0 ? p->text.len : 2;
}

/*
 * Where an addition starts: undo() returns the patch to this point, so a
 * call that fails half-way leaves the document as it was, closed and valid.
 */
typedef struct mark {
    size_t len;
    size_t n;
} mark;

static mark mark_of(const tw_jsonpatch *p)
{
    return (mark){p->text.len, p->n};
}

static void undo(tw_jsonpatch *p, mark m)
{
    if (m.len == 0) {
        tw_buf_truncate(&p->text, 0);
    } else {
        /* The "]" overwritten by the first new operation; its byte is still allocated. */
        tw_buf_truncate(&p->text, m.len - 1);
        (void)tw_buf_append(&p->text, "]", 1);
    }
    p->n = m.n;
}

/* True when s needs no escaping inside a JSON string. */
static bool json_plain(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* Appends a string literal without measuring it. */
#define PUT_LITERAL(b, lit) tw_buf_append((b), (lit), sizeof(lit) - 1)

typedef enum op_kind { OP_ADD = 0, OP_TEST = 1 } op_kind;

/*
 * Writes the start of one operation, up to its value: the separator (over
 * the closing "]"), op, and path + suffix as a JSON string (cJSON escapes a
 * path that needs it). Counts the operation; undo() clears up a failure.
 * These few appends run once per operation of every review: each literal
 * is written whole.
 */
static int op_open(tw_jsonpatch *p, op_kind op, const char *path, const char *suffix)
{
    tw_buf *b = &p->text;
    int rc;
    bool first = b->len == 0;
    if (!first)
        tw_buf_truncate(b, b->len - 1);
    if (op == OP_ADD)
        rc = first ? PUT_LITERAL(b, "[{\"op\":\"add\",\"path\":\"")
                   : PUT_LITERAL(b, ",{\"op\":\"add\",\"path\":\"");
    else
        rc = first ? PUT_LITERAL(b, "[{\"op\":\"test\",\"path\":\"")
                   : PUT_LITERAL(b, ",{\"op\":\"test\",\"path\":\"");
    if (rc == TW_OK && json_plain(path)) {
        rc = tw_buf_puts(b, path);
    } else if (rc == TW_OK) {
        cJSON *item = cJSON_CreateStringReference(path);
        char *text = item ? cJSON_PrintUnformatted(item) : NULL;
        /* The rendered string without its quotes, which are written around it here. */
        rc = text ? tw_buf_append(b, text + 1, strlen(text) - 2) : TW_ENOMEM;
        cJSON_free(text);
        cJSON_Delete(item);
    }
    if (rc == TW_OK && suffix != NULL)
        rc = tw_buf_puts(b, suffix);
    if (rc == TW_OK)
        rc = PUT_LITERAL(b, "\",\"value\":");
    p->n++;
    return rc;
}

/* Ends the operation op_open started, and the document. */
static int op_close(tw_jsonpatch *p)
{
    return PUT_LITERAL(&p->text, "}]");
}

/* One operation whose value is the n texts joined. */
static int op_texts(tw_jsonpatch *p, op_kind op, const char *path, const char *suffix,
                    const char *const value[], size_t n)
{
    int rc = op_open(p, op, path, suffix);
    for (size_t i = 0; rc == TW_OK && i < n; i++)
        rc = tw_buf_puts(&p->text, value[i]);
    if (rc == TW_OK)
        rc = op_close(p);
    return rc;
}

/* One operation with a cJSON value, rendered here; takes value. */
static int op_value(tw_jsonpatch *p, op_kind op, const char *path, cJSON *value)
{
    if (value == NULL)
        return TW_EINVAL;
    char *text = cJSON_PrintUnformatted(value);
    cJSON_Delete(value);
    if (text == NULL)
        return TW_ENOMEM;
    mark m = mark_of(p);
    const char *parts[] = {text};
    int rc = op_texts(p, op, path, NULL, parts, 1);
    cJSON_free(text);
    if (rc != TW_OK)
        undo(p, m);
    return rc;
}

int tw_jsonpatch_add(tw_jsonpatch *p, const char *path, cJSON *value)
{
    return op_value(p, OP_ADD, path, value);
}

int tw_jsonpatch_test(tw_jsonpatch *p, const char *path, cJSON *value)
{
    return op_value(p, OP_TEST, path, value);
}

int tw_jsonpatch_add_json(tw_jsonpatch *p, const char *path, const char *const value[], size_t n)
{
    mark m = mark_of(p);
    int rc = op_texts(p, OP_ADD, path, NULL, value, n);
    if (rc != TW_OK)
        undo(p, m);
    return rc;
}

int tw_jsonpatch_add_items(tw_jsonpatch *p, const char *array_path, const cJSON *current,
                           const char *const items[], size_t n)
{
    int rc = TW_OK;
    mark m = mark_of(p);
    if (n == 0)
        return TW_OK;
    if (cJSON_IsArray(current)) {
        for (size_t i = 0; rc == TW_OK && i < n; i++)
            rc = op_texts(p, OP_ADD, array_path, "/-", &items[i], 1);
    } else {
        /* One operation creates the array with every item. */
        rc = op_open(p, OP_ADD, array_path, NULL);
        for (size_t i = 0; rc == TW_OK && i < n; i++) {
            rc = i == 0 ? PUT_LITERAL(&p->text, "[") : PUT_LITERAL(&p->text, ",");
            if (rc == TW_OK)
                rc = tw_buf_puts(&p->text, items[i]);
        }
        if (rc == TW_OK)
            rc = PUT_LITERAL(&p->text, "]");
        if (rc == TW_OK)
            rc = op_close(p);
    }
    if (rc != TW_OK)
        undo(p, m);
    return rc;
}

int tw_json_pointer_append(tw_buf *out, const char *key)
{
    int rc = TW_OK;
    const char *run = key;
    for (const char *c = key; *c != '\0' && rc == TW_OK; c++) {
        if (*c != '~' && *c != '/')
            continue;
        rc = tw_buf_append(out, run, (size_t)(c - run));
        if (rc == TW_OK)
            rc = tw_buf_puts(out, *c == '~' ? "~0" : "~1");
        run = c + 1;
    }
    if (rc == TW_OK)
        rc = tw_buf_puts(out, run);
    return rc;
}

int tw_jsonpatch_add_strings(tw_jsonpatch *p, const char *map_path, const cJSON *current,
                             const tw_kvlist *kv)
{
    if (kv->n == 0)
        return TW_OK;
    if (!cJSON_IsObject(current)) {
        cJSON *map = cJSON_CreateObject();
        if (map == NULL)
            return TW_ENOMEM;
        for (size_t i = 0; i < kv->n; i++) {
            if (cJSON_AddStringToObject(map, kv->items[i].key, kv->items[i].value) == NULL) {
                cJSON_Delete(map);
                return TW_ENOMEM;
            }
        }
        return tw_jsonpatch_add(p, map_path, map);
    }
    int rc = TW_OK;
    mark m = mark_of(p);
    tw_buf path;
    tw_buf_init(&path, POINTER_MAX);
    for (size_t i = 0; i < kv->n && rc == TW_OK; i++) {
        tw_buf_reset(&path);
        rc = tw_buf_puts(&path, map_path);
        if (rc == TW_OK)
            rc = tw_buf_puts(&path, "/");
        if (rc == TW_OK)
            rc = tw_json_pointer_append(&path, kv->items[i].key);
        if (rc != TW_OK)
            break;
        cJSON *v = cJSON_CreateString(kv->items[i].value);
        rc = v ? tw_jsonpatch_add(p, tw_buf_cstr(&path), v) : TW_ENOMEM;
    }
    tw_buf_free(&path);
    if (rc != TW_OK)
        undo(p, m);
    return rc;
}

int tw_jsonpatch_prepend(tw_jsonpatch *p, const tw_jsonpatch *front)
{
    if (front->n == 0)
        return TW_OK;
    tw_buf joined;
    tw_buf_init(&joined, p->text.max + front->text.len);
    /* front without its "]", then p's operations without their "[". */
    int rc = tw_buf_append(&joined, front->text.data, front->text.len - 1);
    if (rc == TW_OK && p->n > 0) {
        rc = tw_buf_puts(&joined, ",");
        if (rc == TW_OK)
            rc = tw_buf_append(&joined, p->text.data + 1, p->text.len - 1);
    } else if (rc == TW_OK) {
        rc = tw_buf_puts(&joined, "]");
    }
    if (rc != TW_OK) {
        tw_buf_free(&joined);
        return TW_ENOMEM;
    }
    tw_buf_free(&p->text);
    p->text = joined;
    p->n += front->n;
    return TW_OK;
}

int tw_jsonpatch_render(const tw_jsonpatch *p, char **out, size_t *out_len)
{
    size_t len = tw_jsonpatch_len(p);
    char *s = cJSON_malloc(len + 1);
    if (s == NULL)
        return TW_ENOMEM;
    memcpy(s, tw_jsonpatch_text(p), len + 1);
    *out = s;
    *out_len = len;
    return TW_OK;
}

int tw_jsonpatch_finish(tw_jsonpatch *p, char **out, size_t *out_len)
{
    size_t len = tw_jsonpatch_len(p);
    char *s = p->text.len > 0 ? tw_buf_detach(&p->text) : strdup("[]");
    if (s == NULL)
        return TW_ENOMEM;
    p->n = 0;
    *out = s;
    *out_len = len;
    return TW_OK;
}
