/* podpatch_util.c - the pod-reading and patch-writing helpers both pod patch builders use. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/text.h"

#include "podpatch_util.h"

int tw__podpatch_warn(tw_podpatch_result *r, const char *fmt, ...)
{
    if (r->n_warnings >= TW_PODPATCH_MAX_WARNINGS)
        return TW_OK;
    char s[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof(s), fmt, ap);
    va_end(ap);
    char *copy = strdup(s);
    if (copy == NULL)
        return TW_ENOMEM;
    r->warnings[r->n_warnings++] = copy;
    return TW_OK;
}

const char *tw__podpatch_quoted(const char *v, char out[TW_TEXT_SHOWN_SIZE])
{
    if (v == NULL)
        v = "";
    tw_text_show(out, TW_TEXT_SHOWN_SIZE, v, strlen(v));
    /* The value goes between double quotes in a warning. */
    for (char *p = out; (p = strchr(p, '"')) != NULL; p++)
        *p = TW_TEXT_REPLACEMENT;
    return out;
}

const cJSON *tw__podpatch_member(const cJSON *o, const char *name, int want, bool *bad)
{
    const cJSON *m = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    if (m == NULL || cJSON_IsNull(m))
        return NULL;
    if ((m->type & 0xff) != want) {
        *bad = true;
        return NULL;
    }
    return m;
}

const char *tw__podpatch_member_string(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    return cJSON_GetStringValue(v);
}

bool tw__podpatch_has_name(const cJSON *a, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const char *n = tw__podpatch_member_string(e, "name");
        if (n != NULL && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

bool tw__podpatch_named_objects(const cJSON *a)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const char *n = tw__podpatch_member_string(e, "name");
        if (n == NULL || n[0] == '\0')
            return false;
    }
    return true;
}

bool tw__podpatch_same_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

cJSON *tw__podpatch_mount_json(const char *name, const char *path, bool ro)
{
    cJSON *m = cJSON_CreateObject();
    if (m == NULL || !cJSON_AddStringToObject(m, "name", name) ||
        !cJSON_AddStringToObject(m, "mountPath", path) ||
        (ro && !cJSON_AddTrueToObject(m, "readOnly"))) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

char *tw__podpatch_render(cJSON *item)
{
    char *text = NULL;
    char *s = item ? cJSON_PrintUnformatted(item) : NULL;
    if (s != NULL)
        text = strdup(s);
    cJSON_free(s);
    cJSON_Delete(item);
    return text;
}

void tw__podpatch_settle(tw_podpatch_result *r, tw_podpatch_outcome o, bool *done)
{
    r->outcome = o;
    *done = true;
}

int tw__podpatch_read_meta(const cJSON *pod, const cJSON **meta, const cJSON **labels,
                           const cJSON **anns, const cJSON **spec, tw_podpatch_result *r,
                           bool *done)
{
    bool bad = false;
    *meta = tw__podpatch_member(pod, "metadata", cJSON_Object, &bad);
    *labels = tw__podpatch_member(*meta, "labels", cJSON_Object, &bad);
    *anns = tw__podpatch_member(*meta, "annotations", cJSON_Object, &bad);
    *spec = tw__podpatch_member(pod, "spec", cJSON_Object, &bad);
    if (cJSON_IsObject(pod) && !bad)
        return TW_OK;
    tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
    return tw__podpatch_warn(
        r, "topowire: the pod's metadata or spec has an unexpected type; not injecting");
}

int tw__podpatch_rack(const cJSON *anns, const char *dflt, tw_podpatch_result *r, const char **rack)
{
    char q[TW_TEXT_SHOWN_SIZE];
    const cJSON *ra = anns ? cJSON_GetObjectItemCaseSensitive(anns, TW_POD_ANN_RACK) : NULL;
    *rack = dflt;
    if (ra == NULL)
        return TW_OK;
    if (cJSON_IsString(ra) && tw_podpatch_rack_valid(ra->valuestring)) {
        *rack = ra->valuestring;
        return TW_OK;
    }
    return tw__podpatch_warn(
        r,
        "topowire: annotation %s is \"%s\", not zone, zone-id, region or label:KEY; using \"%s\"",
        TW_POD_ANN_RACK, tw__podpatch_quoted(cJSON_GetStringValue(ra), q), dflt);
}

int tw__podpatch_mark_init(tw__podpatch_mark *m, const char *version)
{
    tw_buf path;
    tw_buf_init(&path, 256);
    m->version = tw__podpatch_render(cJSON_CreateString(version));
    int rc = tw_buf_puts(&path, "/metadata/annotations/");
    if (rc == TW_OK)
        rc = tw_json_pointer_append(&path, TW_POD_ANN_INJECTED);
    m->path = rc == TW_OK ? tw_buf_detach(&path) : NULL;
    tw_buf_free(&path);
    if (m->version == NULL || m->path == NULL) {
        tw__podpatch_mark_free(m);
        return TW_ENOMEM;
    }
    return TW_OK;
}

void tw__podpatch_mark_free(tw__podpatch_mark *m)
{
    if (m == NULL)
        return;
    free(m->version);
    free(m->path);
    m->version = NULL;
    m->path = NULL;
}

int tw__podpatch_mark_add(const tw__podpatch_mark *m, tw_jsonpatch *p, const cJSON *pod)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *anns =
        cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "annotations") : NULL;
    /* The key holds nothing JSON escapes, so it goes into the object texts as it is. */
    if (cJSON_IsObject(anns)) {
        const char *v[] = {m->version};
        return tw_jsonpatch_add_json(p, m->path, v, 1);
    }
    if (cJSON_IsObject(meta)) {
        const char *v[] = {"{\"" TW_POD_ANN_INJECTED "\":", m->version, "}"};
        return tw_jsonpatch_add_json(p, "/metadata/annotations", v, 3);
    }
    const char *v[] = {"{\"annotations\":{\"" TW_POD_ANN_INJECTED "\":", m->version, "}}"};
    return tw_jsonpatch_add_json(p, "/metadata", v, 3);
}
