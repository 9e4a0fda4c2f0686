/* downward.c - build the JSON Patch that gives a pod its topology as Downward-API files and env. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/downward.h"
#include "topowire/error.h"
#include "topowire/buf.h"

/* How much of a user-supplied value a warning quotes. */
#define QUOTE_MAX 64
/* A patch is a few KiB; this only bounds a pod with thousands of containers. */
#define PATCH_MAX (16 * 1024 * 1024)

const char *const tw_downward_files[TW_DOWNWARD_VALUES] = {"client.rack", "zone", "zone-id",
                                                           "region"};
const char *const tw_downward_env[TW_DOWNWARD_VALUES] = {"CLIENT_RACK", "TOPOLOGY_ZONE",
                                                         "TOPOLOGY_ZONE_ID", "TOPOLOGY_REGION"};

bool tw_downward_selected(const cJSON *pod)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    const char *v =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, TW_POD_LABEL_INJECT));
    return v != NULL && strcmp(v, TW_POD_INJECT_DOWNWARD) == 0;
}

const char *tw_downward_rack_key(const char *rack)
{
    if (!tw_podpatch_rack_valid(rack))
        return NULL;
    if (strcmp(rack, "zone") == 0)
        return TW_DOWNWARD_KEY_ZONE;
    if (strcmp(rack, "zone-id") == 0)
        return TW_DOWNWARD_KEY_ZONE_ID;
    if (strcmp(rack, "region") == 0)
        return TW_DOWNWARD_KEY_REGION;
    return rack + strlen("label:");
}

static bool copied_has(const char *const *copied, const char *key)
{
    for (size_t i = 0; copied[i] != NULL; i++)
        if (strcmp(copied[i], key) == 0)
            return true;
    return false;
}

int tw_downward_config_check(const tw_downward_config *cfg, char *err)
{
    if (cfg == NULL)
        return tw_seterr(err, TW_EINVAL, "no configuration");
    const char *key = tw_downward_rack_key(cfg->rack);
    if (key == NULL)
        return tw_seterr(err, TW_EINVAL, "the rack must be zone, zone-id, region or label:KEY");
    if (cfg->out_dir == NULL || cfg->out_dir[0] != '/' || strstr(cfg->out_dir, "..") != NULL)
        return tw_seterr(err, TW_EINVAL, "the output directory must be an absolute path");
    if (cfg->version == NULL || cfg->version[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the version annotation value is empty");
    /* label:KEY names its key outright; the built-in kinds are warned about per pod instead. */
    if (cfg->copied != NULL && strncmp(cfg->rack, "label:", 6) == 0 &&
        !copied_has(cfg->copied, key))
        return tw_seterr(err, TW_EINVAL,
                         "the rack's label %s is not among the labels binding mode copies, so "
                         "the pods' client.rack would always be empty",
                         key);
    return TW_OK;
}

/* Adds a warning sentence; returns TW_ENOMEM only when the copy fails. */
__attribute__((format(printf, 2, 3))) static int warn(tw_podpatch_result *r, const char *fmt, ...)
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

/* Quotes a value from the pod for a warning: cut, non-printable bytes and quotes as '?'. */
static const char *quoted(const char *v, char out[QUOTE_MAX + 4])
{
    size_t n = 0;
    if (v == NULL)
        v = "";
    for (; n < QUOTE_MAX && v[n] != '\0'; n++)
        out[n] = (char)(((unsigned char)v[n] < 0x20 || v[n] == 0x7f || v[n] == '"') ? '?' : v[n]);
    if (v[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Member name of o when it has type want (or is absent/null: NULL); sets *bad otherwise. */
static const cJSON *member(const cJSON *o, const char *name, int want, bool *bad)
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

/* True when every element of a (NULL: none) is an object with a string "name". */
static bool named_objects(const cJSON *a)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsObject(e) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "name")))
            return false;
    }
    return true;
}

static bool has_name(const cJSON *a, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* Compares two paths ignoring trailing slashes. */
static bool same_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

/* The checks that decide the outcome; sets *rack on the way to INJECTED. */
static int decide(const cJSON *pod, const tw_downward_config *cfg, tw_podpatch_result *r,
                  const char **rack)
{
    char q[QUOTE_MAX + 4];
    bool bad = false;
    const cJSON *meta = member(pod, "metadata", cJSON_Object, &bad);
    const cJSON *anns = member(meta, "annotations", cJSON_Object, &bad);
    const cJSON *spec = member(pod, "spec", cJSON_Object, &bad);
    (void)member(meta, "labels", cJSON_Object, &bad);
    if (!cJSON_IsObject(pod) || bad) {
        r->outcome = TW_PODPATCH_INVALID;
        return warn(r,
                    "topowire: the pod's metadata or spec has an unexpected type; not injecting");
    }
    if (!tw_downward_selected(pod)) {
        r->outcome = TW_PODPATCH_NOT_SELECTED;
        return TW_OK;
    }
    if (anns && cJSON_GetObjectItemCaseSensitive(anns, TW_POD_ANN_INJECTED) != NULL) {
        r->outcome = TW_PODPATCH_ALREADY;
        return TW_OK;
    }
    const cJSON *containers = member(spec, "containers", cJSON_Array, &bad);
    const cJSON *volumes = member(spec, "volumes", cJSON_Array, &bad);
    if (bad || cJSON_GetArraySize(containers) == 0 || !named_objects(containers) ||
        !named_objects(volumes)) {
        r->outcome = TW_PODPATCH_INVALID;
        return warn(r, "topowire: the pod's containers or volumes have an unexpected shape; "
                       "not injecting");
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, containers)
    {
        const cJSON *mounts = member(c, "volumeMounts", cJSON_Array, &bad);
        const cJSON *env = member(c, "env", cJSON_Array, &bad);
        if (bad || !named_objects(env)) {
            r->outcome = TW_PODPATCH_INVALID;
            return warn(r,
                        "topowire: container \"%s\" has volumeMounts or env of an unexpected "
                        "shape; not injecting",
                        quoted(cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")), q));
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, mounts)
        {
            const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "mountPath"));
            if (p != NULL && same_path(p, cfg->out_dir)) {
                r->outcome = TW_PODPATCH_CONFLICT;
                return warn(r,
                            "topowire: container \"%s\" already mounts something at %s; "
                            "not injecting",
                            quoted(cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")), q),
                            cfg->out_dir);
            }
        }
    }
    if (has_name(volumes, TW_POD_VOLUME)) {
        r->outcome = TW_PODPATCH_CONFLICT;
        return warn(r, "topowire: the pod already has a volume named \"%s\"; not injecting",
                    TW_POD_VOLUME);
    }

    int rc = TW_OK;
    *rack = cfg->rack;
    const cJSON *ra = anns ? cJSON_GetObjectItemCaseSensitive(anns, TW_POD_ANN_RACK) : NULL;
    if (ra != NULL) {
        if (cJSON_IsString(ra) && tw_podpatch_rack_valid(ra->valuestring))
            *rack = ra->valuestring;
        else
            rc = warn(r,
                      "topowire: annotation %s is \"%s\", not zone, zone-id, region or label:KEY; "
                      "using \"%s\"",
                      TW_POD_ANN_RACK, quoted(cJSON_GetStringValue(ra), q), cfg->rack);
    }
    if (rc == TW_OK && cfg->copied == NULL)
        rc = warn(r,
                  "topowire: binding mode does not serve this pod's namespace (label it "
                  "topowire.io/binding=enabled), so the files in %s and the TOPOLOGY_* and "
                  "CLIENT_RACK variables will stay empty",
                  cfg->out_dir);
    else if (rc == TW_OK && !copied_has(cfg->copied, tw_downward_rack_key(*rack)))
        rc = warn(r,
                  "topowire: the webhook does not copy the node label %s, so %s/client.rack and "
                  "CLIENT_RACK will stay empty",
                  quoted(tw_downward_rack_key(*rack), q), cfg->out_dir);
    if (rc != TW_OK)
        return rc;
    r->outcome = TW_PODPATCH_INJECTED;
    return TW_OK;
}

/* {"apiVersion":"v1","fieldPath":"metadata.annotations['KEY']"}, or NULL when out of memory. */
static cJSON *field_ref(const tw_downward_config *cfg, const char *key)
{
    char path[400];
    snprintf(path, sizeof(path), "metadata.%s['%s']", cfg->from_labels ? "labels" : "annotations",
             key);
    cJSON *ref = cJSON_CreateObject();
    if (ref == NULL || !cJSON_AddStringToObject(ref, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(ref, "fieldPath", path)) {
        cJSON_Delete(ref);
        return NULL;
    }
    return ref;
}

/* Adds a fieldRef for key to o; false (nothing leaked) when out of memory. */
static bool add_ref(cJSON *o, const tw_downward_config *cfg, const char *key)
{
    cJSON *ref = field_ref(cfg, key);
    if (o == NULL || ref == NULL || !cJSON_AddItemToObject(o, "fieldRef", ref)) {
        cJSON_Delete(ref);
        return false;
    }
    return true;
}

/* Adds item to array, deleting it when that fails (or when it is NULL). */
static bool push(cJSON *array, cJSON *item)
{
    if (item == NULL || array == NULL || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* The downwardAPI volume with one file per value. */
static cJSON *volume_json(const tw_downward_config *cfg, const char *const keys[])
{
    cJSON *v = cJSON_CreateObject();
    cJSON *dw = v && cJSON_AddStringToObject(v, "name", TW_POD_VOLUME)
                    ? cJSON_AddObjectToObject(v, "downwardAPI")
                    : NULL;
    cJSON *items = dw ? cJSON_AddArrayToObject(dw, "items") : NULL;
    bool ok = items != NULL;
    for (int i = 0; ok && i < TW_DOWNWARD_VALUES; i++) {
        cJSON *item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddStringToObject(item, "path", tw_downward_files[i]) ||
            !add_ref(item, cfg, keys[i])) {
            cJSON_Delete(item);
            item = NULL;
        }
        ok = push(items, item);
    }
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static cJSON *mount_json(const tw_downward_config *cfg)
{
    cJSON *m = cJSON_CreateObject();
    if (m == NULL || !cJSON_AddStringToObject(m, "name", TW_POD_VOLUME) ||
        !cJSON_AddStringToObject(m, "mountPath", cfg->out_dir) ||
        !cJSON_AddTrueToObject(m, "readOnly")) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static cJSON *env_json(const tw_downward_config *cfg, const char *name, const char *key)
{
    cJSON *e = cJSON_CreateObject();
    cJSON *vf = e && cJSON_AddStringToObject(e, "name", name)
                    ? cJSON_AddObjectToObject(e, "valueFrom")
                    : NULL;
    if (vf == NULL || !add_ref(vf, cfg, key)) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* Renders item (taken, even on failure) as compact JSON in malloc'd storage; NULL on failure. */
static char *render(cJSON *item)
{
    char *text = NULL;
    char *s = item ? cJSON_PrintUnformatted(item) : NULL;
    if (s != NULL)
        text = strdup(s);
    cJSON_free(s);
    cJSON_Delete(item);
    return text;
}

/*
 * The parts of the patch that depend on the configuration only, rendered
 * once as JSON text for cfg.rack; a build then only joins texts.
 */
struct tw_downward {
    tw_downward_config cfg;
    char *volume;                  /* the downwardAPI volume */
    char *mount;                   /* the read-only mount */
    char *env[TW_DOWNWARD_VALUES]; /* one env entry per variable */
    char *version;                 /* cfg.version as a JSON string */
};

void tw_downward_free(tw_downward *d)
{
    if (d == NULL)
        return;
    free(d->volume);
    free(d->mount);
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        free(d->env[k]);
    free(d->version);
    free(d);
}

/* Renders the volume and the variables for rack into d's texts. Returns 0 or TW_ENOMEM. */
static int render_rack(const tw_downward_config *cfg, const char *rack, char **volume,
                       char *env[TW_DOWNWARD_VALUES])
{
    const char *keys[TW_DOWNWARD_VALUES] = {tw_downward_rack_key(rack), TW_DOWNWARD_KEY_ZONE,
                                            TW_DOWNWARD_KEY_ZONE_ID, TW_DOWNWARD_KEY_REGION};
    *volume = render(volume_json(cfg, keys));
    int rc = *volume ? TW_OK : TW_ENOMEM;
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        if ((env[k] = render(env_json(cfg, tw_downward_env[k], keys[k]))) == NULL)
            rc = TW_ENOMEM;
    return rc;
}

int tw_downward_prepare(const tw_downward_config *cfg, tw_downward **out, char *err)
{
    int rc = tw_downward_config_check(cfg, err);
    if (rc != TW_OK)
        return rc;
    tw_downward *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory preparing the downward patch");
    d->cfg = *cfg;
    rc = render_rack(cfg, cfg->rack, &d->volume, d->env);
    d->mount = render(mount_json(cfg));
    d->version = render(cJSON_CreateString(cfg->version));
    if (rc != TW_OK || d->mount == NULL || d->version == NULL) {
        tw_downward_free(d);
        return tw_seterr(err, TW_ENOMEM, "out of memory preparing the downward patch");
    }
    *out = d;
    return TW_OK;
}

/* Opens one add operation up to its value; path holds only characters that need no escaping. */
static int op_open(tw_buf *b, size_t *n, const char *path)
{
    int rc = tw_buf_puts(b, *n ? ",{\"op\":\"add\",\"path\":\"" : "{\"op\":\"add\",\"path\":\"");
    if (rc == TW_OK)
        rc = tw_buf_puts(b, path);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, "\",\"value\":");
    (*n)++;
    return rc;
}

/* Appends one add operation whose value is pre, value and post joined. */
static int op(tw_buf *b, size_t *n, const char *path, const char *pre, const char *value,
              const char *post)
{
    int rc = op_open(b, n, path);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, pre);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, value);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, post);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, "}");
    return rc;
}

/* The env operations of container i; names it already sets are skipped with a warning. */
static int env_ops(tw_buf *b, size_t *n, const cJSON *c, size_t i, char *const env[],
                   tw_podpatch_result *r)
{
    char path[96], q[QUOTE_MAX + 4], skipped[160] = "";
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c, "env");
    bool has = cJSON_IsArray(list);
    bool any = false;
    int rc = TW_OK;
    snprintf(path, sizeof(path), "/spec/containers/%zu/env%s", i, has ? "/-" : "");
    for (int k = 0; rc == TW_OK && k < TW_DOWNWARD_VALUES; k++) {
        if (has_name(list, tw_downward_env[k])) {
            size_t l = strlen(skipped);
            snprintf(skipped + l, sizeof(skipped) - l, "%s%s", l ? ", " : "", tw_downward_env[k]);
        } else if (has) {
            rc = op(b, n, path, "", env[k], "");
        } else {
            /* No env yet: one operation creates the list with every entry. */
            if (!any && (rc = op_open(b, n, path)) == TW_OK)
                rc = tw_buf_puts(b, "[");
            else if (any)
                rc = tw_buf_puts(b, ",");
            if (rc == TW_OK)
                rc = tw_buf_puts(b, env[k]);
            any = true;
        }
    }
    if (rc == TW_OK && any)
        rc = tw_buf_puts(b, "]}");
    if (rc == TW_OK && skipped[0] != '\0')
        rc = warn(r,
                  "topowire: container \"%s\" already sets %s; left as it is, not taken from "
                  "the node's topology",
                  quoted(cJSON_GetStringValue(cJSON_GetObjectItem(c, "name")), q), skipped);
    return rc;
}

static int build_patch(const tw_downward *d, const cJSON *pod, const char *rack,
                       tw_podpatch_result *r)
{
    char *other_volume = NULL, *other_env[TW_DOWNWARD_VALUES] = {NULL};
    const char *volume = d->volume;
    char *const *env = d->env;
    char path[96];
    size_t n = 0;
    tw_buf b;
    tw_buf_init(&b, PATCH_MAX);
    int rc = TW_OK;
    if (strcmp(rack, d->cfg.rack) != 0) {
        rc = render_rack(&d->cfg, rack, &other_volume, other_env);
        volume = other_volume;
        env = other_env;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    if (rc == TW_OK)
        rc = tw_buf_puts(&b, "[");
    /* TW_POD_ANN_INJECTED escaped as a JSON Pointer token: '/' is "~1". */
    if (rc == TW_OK && cJSON_IsObject(anns))
        rc = op(&b, &n, "/metadata/annotations/topowire.io~1injected", "", d->version, "");
    else if (rc == TW_OK && cJSON_IsObject(meta))
        rc = op(&b, &n, "/metadata/annotations", "{\"" TW_POD_ANN_INJECTED "\":", d->version, "}");
    else if (rc == TW_OK)
        rc = op(&b, &n, "/metadata", "{\"annotations\":{\"" TW_POD_ANN_INJECTED "\":", d->version,
                "}}");
    if (rc == TW_OK) {
        bool has = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(spec, "volumes"));
        rc = op(&b, &n, has ? "/spec/volumes/-" : "/spec/volumes", has ? "" : "[", volume,
                has ? "" : "]");
    }
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
    {
        if (rc != TW_OK)
            break;
        bool has = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"));
        snprintf(path, sizeof(path), "/spec/containers/%zu/volumeMounts%s", i, has ? "/-" : "");
        rc = op(&b, &n, path, has ? "" : "[", d->mount, has ? "" : "]");
        if (rc == TW_OK)
            rc = env_ops(&b, &n, c, i, env, r);
        i++;
    }
    if (rc == TW_OK)
        rc = tw_buf_puts(&b, "]");
    free(other_volume);
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        free(other_env[k]);
    if (rc != TW_OK) {
        tw_buf_free(&b);
        return TW_ENOMEM;
    }
    r->n_ops = n;
    r->patch_len = b.len;
    r->patch = tw_buf_detach(&b);
    return r->patch ? TW_OK : TW_ENOMEM;
}

int tw_downward_build_prepared(const tw_downward *d, const cJSON *pod, tw_podpatch_result *out,
                               char *err)
{
    tw_podpatch_result r = {0};
    memset(out, 0, sizeof(*out));
    if (pod == NULL || d == NULL)
        return tw_seterr(err, TW_EINVAL, "no pod or no configuration");
    const char *rack = d->cfg.rack;
    int rc = decide(pod, &d->cfg, &r, &rack);
    if (rc == TW_OK && r.outcome == TW_PODPATCH_INJECTED)
        rc = build_patch(d, pod, rack, &r);
    if (rc != TW_OK) {
        tw_podpatch_result_free(&r);
        return tw_seterr(err, rc, "out of memory building the downward patch");
    }
    *out = r;
    return TW_OK;
}

int tw_downward_build(const cJSON *pod, const tw_downward_config *cfg, tw_podpatch_result *out,
                      char *err)
{
    tw_downward *d = NULL;
    memset(out, 0, sizeof(*out));
    if (pod == NULL || cfg == NULL)
        return tw_seterr(err, TW_EINVAL, "no pod or no configuration");
    int rc = tw_downward_prepare(cfg, &d, err);
    if (rc == TW_OK)
        rc = tw_downward_build_prepared(d, pod, out, err);
    tw_downward_free(d);
    return rc;
}
