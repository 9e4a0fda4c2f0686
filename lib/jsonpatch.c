/* jsonpatch.c - JSON Patch (RFC 6902) add operations and JSON Pointer escaping. */
#include <string.h>

#include "topowire/error.h"
#include "topowire/jsonpatch.h"

#define POINTER_MAX (64 * 1024)

int tw_jsonpatch_init(tw_jsonpatch *p)
{
    p->ops = cJSON_CreateArray();
    return p->ops ? TW_OK : TW_ENOMEM;
}

void tw_jsonpatch_free(tw_jsonpatch *p)
{
    if (p == NULL)
        return;
    cJSON_Delete(p->ops);
    p->ops = NULL;
}

size_t tw_jsonpatch_count(const tw_jsonpatch *p)
{
    return p->ops ? (size_t)cJSON_GetArraySize(p->ops) : 0;
}

int tw_jsonpatch_add(tw_jsonpatch *p, const char *path, cJSON *value)
{
    if (value == NULL)
        return TW_EINVAL;
    cJSON *op = cJSON_CreateObject();
    if (op == NULL || cJSON_AddStringToObject(op, "op", "add") == NULL ||
        cJSON_AddStringToObject(op, "path", path) == NULL) {
        cJSON_Delete(op);
        cJSON_Delete(value);
        return TW_ENOMEM;
    }
    /* Adding takes ownership of value from here on; op owns it. */
    if (!cJSON_AddItemToObject(op, "value", value)) {
        cJSON_Delete(op);
        cJSON_Delete(value);
        return TW_ENOMEM;
    }
    if (!cJSON_AddItemToArray(p->ops, op)) {
        cJSON_Delete(op);
        return TW_ENOMEM;
    }
    return TW_OK;
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
    return rc;
}

int tw_jsonpatch_render(const tw_jsonpatch *p, char **out, size_t *out_len)
{
    char *s = cJSON_PrintUnformatted(p->ops);
    if (s == NULL)
        return TW_ENOMEM;
    *out = s;
    *out_len = strlen(s);
    return TW_OK;
}
