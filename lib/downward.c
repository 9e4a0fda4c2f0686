/* downward.c - build the JSON Patch that gives a pod its topology as Downward-API files and env. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/downward.h"
#include "topowire/error.h"
#include "topowire/jsonpatch.h"

#include "podpatch_util.h"

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

/*
 * The parts of the patch that depend on the configuration only, rendered
 * once as JSON text for cfg.rack; a build then only joins texts.
 */
struct tw_downward {
    tw_downward_config cfg;
    char *volume;                  /* the downwardAPI volume */
    char *mount;                   /* the read-only mount */
    char *env[TW_DOWNWARD_VALUES]; /* one env entry per variable */
    tw__podpatch_mark mark;        /* the topowire.io/injected annotation */
};

void tw_downward_free(tw_downward *d)
{
    if (d == NULL)
        return;
    free(d->volume);
    free(d->mount);
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        free(d->env[k]);
    tw__podpatch_mark_free(&d->mark);
    free(d);
}

/* Renders the volume and the variables for rack into d's texts. Returns 0 or TW_ENOMEM. */
static int render_rack(const tw_downward_config *cfg, const char *rack, char **volume,
                       char *env[TW_DOWNWARD_VALUES])
{
    const char *keys[TW_DOWNWARD_VALUES] = {tw_downward_rack_key(rack), TW_DOWNWARD_KEY_ZONE,
                                            TW_DOWNWARD_KEY_ZONE_ID, TW_DOWNWARD_KEY_REGION};
    *volume = tw__podpatch_render(volume_json(cfg, keys));
    int rc = *volume ? TW_OK : TW_ENOMEM;
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        if ((env[k] = tw__podpatch_render(env_json(cfg, tw_downward_env[k], keys[k]))) == NULL)
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
    d->mount = tw__podpatch_render(tw__podpatch_mount_json(TW_POD_VOLUME, cfg->out_dir, true));
    if (rc == TW_OK)
        rc = tw__podpatch_mark_init(&d->mark, cfg->version);
    if (rc != TW_OK || d->mount == NULL) {
        tw_downward_free(d);
        return tw_seterr(err, TW_ENOMEM, "out of memory preparing the downward patch");
    }
    *out = d;
    return TW_OK;
}

/*
 * Each container's volumeMounts and env have the expected shape, and none
 * mounts anything at out_dir yet.
 */
static int check_containers(const cJSON *containers, const char *out_dir, tw_podpatch_result *r,
                            bool *done)
{
    char q[TW_TEXT_SHOWN_SIZE];
    bool bad = false;
    const cJSON *c;
    cJSON_ArrayForEach(c, containers)
    {
        const char *name = tw__podpatch_member_string(c, "name");
        const cJSON *mounts = tw__podpatch_member(c, "volumeMounts", cJSON_Array, &bad);
        const cJSON *env = tw__podpatch_member(c, "env", cJSON_Array, &bad);
        if (bad || !tw__podpatch_named_objects(env)) {
            tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
            return tw__podpatch_warn(r,
                                     "topowire: container \"%s\" has volumeMounts or env of an "
                                     "unexpected shape; not injecting",
                                     tw__podpatch_quoted(name, q));
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, mounts)
        {
            const char *p = tw__podpatch_member_string(m, "mountPath");
            if (p != NULL && tw__podpatch_same_path(p, out_dir)) {
                tw__podpatch_settle(r, TW_PODPATCH_CONFLICT, done);
                return tw__podpatch_warn(r,
                                         "topowire: container \"%s\" already mounts something "
                                         "at %s; not injecting",
                                         tw__podpatch_quoted(name, q), out_dir);
            }
        }
    }
    return TW_OK;
}

/* The spec's containers and volumes are named objects, and the volume name is free. */
static int check_spec(const cJSON *spec, const char *out_dir, tw_podpatch_result *r, bool *done)
{
    bool bad = false;
    const cJSON *containers = tw__podpatch_member(spec, "containers", cJSON_Array, &bad);
    const cJSON *volumes = tw__podpatch_member(spec, "volumes", cJSON_Array, &bad);
    if (bad || cJSON_GetArraySize(containers) == 0 || !tw__podpatch_named_objects(containers) ||
        !tw__podpatch_named_objects(volumes)) {
        tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
        return tw__podpatch_warn(r, "topowire: the pod's containers or volumes have an "
                                    "unexpected shape; not injecting");
    }
    int rc = check_containers(containers, out_dir, r, done);
    if (rc == TW_OK && !*done && tw__podpatch_has_name(volumes, TW_POD_VOLUME)) {
        tw__podpatch_settle(r, TW_PODPATCH_CONFLICT, done);
        rc = tw__podpatch_warn(r,
                               "topowire: the pod already has a volume named \"%s\"; not "
                               "injecting",
                               TW_POD_VOLUME);
    }
    return rc;
}

/* Warns when the node labels the files read from will not be on the pod. */
static int check_copied(const tw_downward_config *cfg, const char *rack, tw_podpatch_result *r)
{
    char q[TW_TEXT_SHOWN_SIZE];
    if (cfg->copied == NULL)
        return tw__podpatch_warn(r,
                                 "topowire: binding mode does not serve this pod's namespace "
                                 "(label it topowire.io/binding=enabled), so the files in %s "
                                 "and the TOPOLOGY_* and CLIENT_RACK variables will stay empty",
                                 cfg->out_dir);
    if (!copied_has(cfg->copied, tw_downward_rack_key(rack)))
        return tw__podpatch_warn(r,
                                 "topowire: the webhook does not copy the node label %s, so "
                                 "%s/client.rack and CLIENT_RACK will stay empty",
                                 tw__podpatch_quoted(tw_downward_rack_key(rack), q), cfg->out_dir);
    return TW_OK;
}

/*
 * The checks that decide the outcome, in order; the first that settles it
 * ends them. Sets *rack on the way to INJECTED. Returns 0 or TW_ENOMEM.
 */
static int decide(const cJSON *pod, const tw_downward_config *cfg, tw_podpatch_result *r,
                  const char **rack)
{
    const cJSON *meta, *labels, *anns, *spec;
    bool done = false;
    int rc = tw__podpatch_read_meta(pod, &meta, &labels, &anns, &spec, r, &done);
    if (rc == TW_OK && !done && !tw_downward_selected(pod))
        tw__podpatch_settle(r, TW_PODPATCH_NOT_SELECTED, &done);
    if (rc == TW_OK && !done && anns &&
        cJSON_GetObjectItemCaseSensitive(anns, TW_POD_ANN_INJECTED) != NULL)
        tw__podpatch_settle(r, TW_PODPATCH_ALREADY, &done);
    if (rc == TW_OK && !done)
        rc = check_spec(spec, cfg->out_dir, r, &done);
    if (rc == TW_OK && !done)
        rc = tw__podpatch_rack(anns, cfg->rack, r, rack);
    if (rc == TW_OK && !done)
        rc = check_copied(cfg, *rack, r);
    if (rc == TW_OK && !done)
        r->outcome = TW_PODPATCH_INJECTED;
    return rc;
}

/* The mount and the env entries of container i; names it already sets are skipped with a warning.
 */
static int container_ops(tw_jsonpatch *p, const char *mount, const cJSON *c, size_t i,
                         char *const env[], tw_podpatch_result *r)
{
    char path[96], q[TW_TEXT_SHOWN_SIZE], skipped[160] = "";
    const char *items[TW_DOWNWARD_VALUES];
    size_t n = 0;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(c, "env");
    snprintf(path, sizeof(path), "/spec/containers/%zu/volumeMounts", i);
    int rc = tw_jsonpatch_add_items(p, path, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"),
                                    &mount, 1);
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++) {
        if (tw__podpatch_has_name(list, tw_downward_env[k])) {
            size_t l = strlen(skipped);
            snprintf(skipped + l, sizeof(skipped) - l, "%s%s", l ? ", " : "", tw_downward_env[k]);
        } else {
            items[n++] = env[k];
        }
    }
    snprintf(path, sizeof(path), "/spec/containers/%zu/env", i);
    if (rc == TW_OK)
        rc = tw_jsonpatch_add_items(p, path, list, items, n);
    if (rc == TW_OK && skipped[0] != '\0')
        rc = tw__podpatch_warn(r,
                               "topowire: container \"%s\" already sets %s; left as it is, not "
                               "taken from the node's topology",
                               tw__podpatch_quoted(tw__podpatch_member_string(c, "name"), q),
                               skipped);
    return rc;
}

/* Builds r's patch from d's texts (or texts for rack, when the pod chose another). */
static int build_patch(const tw_downward *d, const cJSON *pod, const char *rack,
                       tw_podpatch_result *r)
{
    tw_jsonpatch *p = &r->patch;
    char *other_volume = NULL, *other_env[TW_DOWNWARD_VALUES] = {NULL};
    const char *volume = d->volume;
    char *const *env = d->env;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    int rc = TW_OK;
    if (strcmp(rack, d->cfg.rack) != 0) {
        rc = render_rack(&d->cfg, rack, &other_volume, other_env);
        volume = other_volume;
        env = other_env;
    }
    tw_jsonpatch_init(p);
    if (rc == TW_OK)
        rc = tw__podpatch_mark_add(&d->mark, p, pod);
    if (rc == TW_OK)
        rc = tw_jsonpatch_add_items(p, "/spec/volumes",
                                    cJSON_GetObjectItemCaseSensitive(spec, "volumes"), &volume, 1);
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
    {
        if (rc != TW_OK)
            break;
        rc = container_ops(p, d->mount, c, i++, env, r);
    }
    free(other_volume);
    for (int k = 0; k < TW_DOWNWARD_VALUES; k++)
        free(other_env[k]);
    if (rc != TW_OK) {
        tw_jsonpatch_free(p);
        return TW_ENOMEM;
    }
    return TW_OK;
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
