/* kwebhook.c - stored MutatingWebhookConfigurations and the JSON Patch (RFC 6902) that
 * certgen --patch-webhook sends. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "kube.h"
#include "topowire/error.h"

struct kwebhooks {
    pthread_mutex_t mu;
    cJSON *items; /* array of configurations */
};

/* ---- RFC 6901 pointers and RFC 6902 JSON Patch ---- */

/* Copies the next reference token of *path into tok (unescaped) and advances. */
static int next_token(const char **path, char *tok, size_t cap)
{
    const char *p = *path;
    if (*p != '/')
        return -1;
    p++;
    size_t n = 0;
    while (*p && *p != '/') {
        char c = *p++;
        if (c == '~') {
            if (*p == '0')
                c = '~';
            else if (*p == '1')
                c = '/';
            else
                return -1;
            p++;
        }
        if (n + 1 >= cap)
            return -1;
        tok[n++] = c;
    }
    tok[n] = '\0';
    *path = p;
    return 0;
}

/* Parses an array index token; -1 when it is not one. "-" is handled by callers. */
static long array_index(const char *tok)
{
    if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0') || strlen(tok) > 9)
        return -1;
    long v = 0;
    for (const char *p = tok; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static cJSON *child(cJSON *parent, const char *tok)
{
    if (cJSON_IsObject(parent))
        return cJSON_GetObjectItemCaseSensitive(parent, tok);
    if (cJSON_IsArray(parent)) {
        long i = array_index(tok);
        return i < 0 ? NULL : cJSON_GetArrayItem(parent, (int)i);
    }
    return NULL;
}

/* Finds the parent of the location path names; the last token goes into last. */
static cJSON *resolve_parent(cJSON *doc, const char *path, char *last, size_t cap)
{
    cJSON *cur = doc;
    const char *p = path;
    if (*p == '\0')
        return NULL;
    for (;;) {
        if (next_token(&p, last, cap) != 0)
            return NULL;
        if (*p == '\0')
            return cur;
        cur = child(cur, last);
        if (cur == NULL)
            return NULL;
    }
}

static cJSON *resolve(cJSON *doc, const char *path)
{
    char last[1024];
    if (path[0] == '\0')
        return doc;
    cJSON *parent = resolve_parent(doc, path, last, sizeof(last));
    return parent ? child(parent, last) : NULL;
}

/* The add operation; takes value, even on failure. */
static int op_add(cJSON *doc, const char *path, cJSON *value, char *err)
{
    char last[1024];
    cJSON *parent = resolve_parent(doc, path, last, sizeof(last));
    if (parent == NULL) {
        cJSON_Delete(value);
        return tw_seterr(err, TW_EPARSE,
                         "add operation does not apply: doc is missing path: \"%s\"", path);
    }
    if (cJSON_IsObject(parent)) {
        if (cJSON_GetObjectItemCaseSensitive(parent, last))
            cJSON_ReplaceItemInObjectCaseSensitive(parent, last, value);
        else
            cJSON_AddItemToObject(parent, last, value);
        return TW_OK;
    }
    if (cJSON_IsArray(parent)) {
        int size = cJSON_GetArraySize(parent);
        long i = strcmp(last, "-") == 0 ? size : array_index(last);
        if (i < 0 || i > size) {
            cJSON_Delete(value);
            return tw_seterr(err, TW_EPARSE,
                             "add operation does not apply: index out of range: \"%s\"", path);
        }
        if (i == size)
            cJSON_AddItemToArray(parent, value);
        else
            cJSON_InsertItemInArray(parent, (int)i, value);
        return TW_OK;
    }
    cJSON_Delete(value);
    return tw_seterr(err, TW_EPARSE, "add operation does not apply: \"%s\" is not in a container",
                     path);
}

/* Detaches the value at path (caller owns it), or NULL when there is none. */
static cJSON *op_detach(cJSON *doc, const char *path)
{
    char last[1024];
    cJSON *parent = resolve_parent(doc, path, last, sizeof(last));
    cJSON *it = parent ? child(parent, last) : NULL;
    return it ? cJSON_DetachItemViaPointer(parent, it) : NULL;
}

/* Applies the operations of ops (borrowed) to doc in place; stops at the first that fails. */
static int kpatch_json(cJSON *doc, const cJSON *ops, char *err)
{
    if (!cJSON_IsArray(ops))
        return tw_seterr(err, TW_EPARSE, "a JSON patch must be an array of operations");
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
        if (!cJSON_IsString(o) || !cJSON_IsString(path))
            return tw_seterr(err, TW_EPARSE, "a patch operation needs op and path");
        const char *name = o->valuestring, *p = path->valuestring;
        int rc = TW_OK;
        if (p[0] == '\0' && strcmp(name, "test") != 0)
            return tw_seterr(err, TW_EPARSE, "operations on the whole document are not supported");
        if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) {
            if (value == NULL)
                return tw_seterr(err, TW_EPARSE, "%s operation needs a value", name);
            if (strcmp(name, "replace") == 0 && resolve(doc, p) == NULL)
                return tw_seterr(err, TW_EPARSE,
                                 "replace operation does not apply: doc is missing key: %s", p);
            rc = op_add(doc, p, cJSON_Duplicate(value, 1), err);
        } else if (strcmp(name, "remove") == 0) {
            cJSON *gone = op_detach(doc, p);
            if (gone == NULL)
                return tw_seterr(err, TW_EPARSE,
                                 "remove operation does not apply: doc is missing path: \"%s\"", p);
            cJSON_Delete(gone);
        } else if (strcmp(name, "test") == 0) {
            const cJSON *have = resolve(doc, p);
            if (value == NULL || have == NULL || !cJSON_Compare(have, value, 1))
                return tw_seterr(err, TW_EPARSE, "testing value %s failed: test failed", p);
        } else {
            return tw_seterr(err, TW_EPARSE, "unexpected kind of patch operation: %s", name);
        }
        if (rc != TW_OK)
            return rc;
    }
    return TW_OK;
}

/* ---- the store ---- */

kwebhooks *kwebhooks_new(void)
{
    kwebhooks *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->items = cJSON_CreateArray();
    if (w->items == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

void kwebhooks_free(kwebhooks *w)
{
    if (w == NULL)
        return;
    cJSON_Delete(w->items);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static const char *obj_name(const cJSON *obj)
{
    const cJSON *n =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
    return cJSON_IsString(n) && n->valuestring[0] ? n->valuestring : NULL;
}

static cJSON *find_config(kwebhooks *w, const char *name)
{
    cJSON *e;
    cJSON_ArrayForEach(e, w->items)
    {
        const char *n = obj_name(e);
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(value));
    else
        cJSON_AddStringToObject(obj, key, value);
}

/* The API server decodes caBundle as base64 bytes; so do we. */
static int valid_base64(const char *s)
{
    size_t n = strlen(s), pad = 0;
    if (n % 4)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            if (i < n - 2)
                return 0;
            pad++;
        } else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return 0;
        }
    }
    return 1;
}

static int check_config(const cJSON *obj, char *err)
{
    const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(obj, "webhooks");
    const cJSON *h;
    int i = 0;
    cJSON_ArrayForEach(h, hooks)
    {
        const cJSON *ca = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(h, "clientConfig"), "caBundle");
        if (ca && !cJSON_IsNull(ca) && !(cJSON_IsString(ca) && valid_base64(ca->valuestring)))
            return tw_seterr(err, TW_EBADVALUE,
                             "webhooks[%d].clientConfig.caBundle: illegal base64 data", i);
        i++;
    }
    return TW_OK;
}

/* Stamps the fields the server owns. */
static void stamp(cJSON *obj, long long rv, int generation)
{
    char s[32];
    set_string(obj, "kind", "MutatingWebhookConfiguration");
    set_string(obj, "apiVersion", "admissionregistration.k8s.io/v1");
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    snprintf(s, sizeof(s), "%lld", rv);
    set_string(md, "resourceVersion", s);
    if (!cJSON_GetObjectItemCaseSensitive(md, "uid"))
        cJSON_AddStringToObject(md, "uid", "9b4f7a2e-3c1d-4e8f-a6b5-0d2c7e1f3a94");
    if (!cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp"))
        cJSON_AddStringToObject(md, "creationTimestamp", "2026-11-20T08:20:11Z");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "generation");
    cJSON_AddNumberToObject(md, "generation", generation);
}

int kwebhooks_put(kwebhooks *w, cJSON *obj, long long rv, char *err)
{
    const char *name = obj_name(obj);
    if (!cJSON_IsObject(obj) || name == NULL) {
        cJSON_Delete(obj);
        return tw_seterr(err, TW_EINVAL, "the configuration has no metadata.name");
    }
    int rc = check_config(obj, err);
    if (rc != TW_OK) {
        cJSON_Delete(obj);
        return rc;
    }
    stamp(obj, rv, 1);
    pthread_mutex_lock(&w->mu);
    cJSON *old = find_config(w, name);
    if (old)
        cJSON_ReplaceItemViaPointer(w->items, old, obj);
    else
        cJSON_AddItemToArray(w->items, obj);
    pthread_mutex_unlock(&w->mu);
    return TW_OK;
}

cJSON *kwebhooks_get(kwebhooks *w, const char *name)
{
    pthread_mutex_lock(&w->mu);
    cJSON *c = find_config(w, name);
    cJSON *copy = c ? cJSON_Duplicate(c, 1) : NULL;
    pthread_mutex_unlock(&w->mu);
    return copy;
}

/* The media type without parameters, compared case-insensitively. */
static int media_is(const char *ctype, const char *want)
{
    size_t n = strlen(want);
    return ctype && strncasecmp(ctype, want, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

int kwebhooks_patch(kwebhooks *w, const char *name, const char *ctype, const char *body,
                    long long rv, cJSON **out, char *err)
{
    if (!media_is(ctype, "application/json-patch+json"))
        return tw_seterr(err, TW_EINVAL,
                         "the body of the request was in an unknown format - the stand-in "
                         "accepts application/json-patch+json");
    cJSON *patch = cJSON_Parse(body);
    if (patch == NULL)
        return tw_seterr(err, TW_EPARSE, "the patch is not valid JSON");
    int rc = TW_OK;
    cJSON *result = NULL;
    pthread_mutex_lock(&w->mu);
    cJSON *cur = find_config(w, name);
    if (cur == NULL) {
        rc = tw_seterr(err, TW_ENOTFOUND, "not found");
        goto out;
    }
    cJSON *doc = cJSON_Duplicate(cur, 1);
    rc = kpatch_json(doc, patch, err);
    const char *newname = obj_name(doc);
    if (rc == TW_OK && (newname == NULL || strcmp(newname, name) != 0))
        rc = tw_seterr(err, TW_EPARSE, "metadata.name: Invalid value: the name cannot change");
    if (rc == TW_OK)
        rc = check_config(doc, err);
    if (rc != TW_OK) {
        cJSON_Delete(doc);
        goto out;
    }
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cur, "metadata"), "generation");
    int g = cJSON_IsNumber(gen) ? gen->valueint : 1;
    int changed = !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(cur, "webhooks"),
                                 cJSON_GetObjectItemCaseSensitive(doc, "webhooks"), 1);
    stamp(doc, rv, changed ? g + 1 : g);
    result = cJSON_Duplicate(doc, 1);
    cJSON_ReplaceItemViaPointer(w->items, cur, doc);
out:
    pthread_mutex_unlock(&w->mu);
    cJSON_Delete(patch);
    if (rc == TW_OK)
        *out = result;
    return rc;
}
