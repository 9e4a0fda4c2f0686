/* kselect.c - label and field selectors for node LIST and WATCH, as far as the stand-in needs. */
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "topowire/error.h"

static char *dup_trim(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return strndup(s, n);
}

/* Splits one term into key, operator and value. */
static int parse_term(const char *t, size_t n, ksel_req *r)
{
    memset(r, 0, sizeof(*r));
    const char *ne = memmem(t, n, "!=", 2);
    const char *eq = memchr(t, '=', n);
    size_t klen, vstart;
    if (ne) {
        r->op = KSEL_NE;
        klen = (size_t)(ne - t);
        vstart = klen + 2;
    } else if (eq) {
        r->op = KSEL_EQ;
        klen = (size_t)(eq - t);
        vstart = klen + (eq + 1 < t + n && eq[1] == '=' ? 2 : 1);
    } else {
        size_t skip = 0;
        while (skip < n && (t[skip] == ' ' || t[skip] == '\t'))
            skip++;
        r->op = skip < n && t[skip] == '!' ? KSEL_NOT_EXISTS : KSEL_EXISTS;
        if (r->op == KSEL_NOT_EXISTS)
            skip++;
        r->key = dup_trim(t + skip, n - skip);
        if (r->key == NULL || r->key[0] == '\0' || strchr(r->key, '!')) {
            free(r->key);
            r->key = NULL;
            return -1;
        }
        return 0;
    }
    r->key = dup_trim(t, klen);
    r->value = dup_trim(t + vstart, n - vstart);
    if (r->key == NULL || r->value == NULL || r->key[0] == '\0' || strchr(r->value, '=')) {
        free(r->key);
        free(r->value);
        memset(r, 0, sizeof(*r));
        return -1;
    }
    return 0;
}

int ksel_parse(ksel *s, const char *labels, const char *fields, char *err)
{
    memset(s, 0, sizeof(*s));
    if (labels && strpbrk(labels, "()")) {
        return tw_seterr(err, TW_EINVAL,
                         "set-based label selectors are not supported by the stand-in: %s", labels);
    }
    for (const char *p = labels; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        ksel_req r;
        if (n > 0) {
            if (parse_term(p, n, &r) != 0) {
                ksel_free(s);
                return tw_seterr(err, TW_EINVAL, "unable to parse requirement: %.*s", (int)n, p);
            }
            ksel_req *grown = realloc(s->reqs, (s->n + 1) * sizeof(*grown));
            if (grown == NULL) {
                free(r.key);
                free(r.value);
                ksel_free(s);
                return tw_seterr(err, TW_ENOMEM, "out of memory");
            }
            s->reqs = grown;
            s->reqs[s->n++] = r;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    for (const char *p = fields; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        ksel_req r;
        if (n > 0) {
            if (parse_term(p, n, &r) != 0 || (r.op != KSEL_EQ && r.op != KSEL_NE)) {
                free(r.key);
                free(r.value);
                ksel_free(s);
                return tw_seterr(err, TW_EINVAL, "invalid selector: '%.*s'", (int)n, p);
            }
            if (strcmp(r.key, "metadata.name") != 0) {
                tw_seterr(err, TW_EINVAL, "field label not supported: %s", r.key);
                free(r.key);
                free(r.value);
                ksel_free(s);
                return TW_EINVAL;
            }
            free(s->name);
            free(r.key);
            s->name = r.value;
            s->name_ne = r.op == KSEL_NE;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return TW_OK;
}

int ksel_match(const ksel *s, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (s->name) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
        int same = cJSON_IsString(name) && strcmp(name->valuestring, s->name) == 0;
        if (same == s->name_ne)
            return 0;
    }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    for (size_t i = 0; i < s->n; i++) {
        const ksel_req *r = &s->reqs[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, r->key);
        const char *val = cJSON_IsString(v) ? v->valuestring : NULL;
        switch (r->op) {
        case KSEL_EQ:
            if (val == NULL || strcmp(val, r->value) != 0)
                return 0;
            break;
        case KSEL_NE:
            if (val && strcmp(val, r->value) == 0)
                return 0;
            break;
        case KSEL_EXISTS:
            if (val == NULL)
                return 0;
            break;
        default:
            if (val)
                return 0;
            break;
        }
    }
    return 1;
}

void ksel_free(ksel *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->reqs[i].key);
        free(s->reqs[i].value);
    }
    free(s->reqs);
    free(s->name);
    memset(s, 0, sizeof(*s));
}
