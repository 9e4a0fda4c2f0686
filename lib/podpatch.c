/* podpatch.c - decide whether a pod gets topowire-init and build the JSON Patch that adds it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/jsonpatch.h"
#include "topowire/label.h"
#include "topowire/podpatch.h"
#include "topowire/version.h"

#include "podpatch_util.h"

#define DEFAULT_IMAGE "ghcr.io/topowire/topowire:" TW_VERSION
#define NAME_MAX_LEN  253

void tw_podpatch_config_defaults(tw_podpatch_config *cfg)
{
    cfg->init_image = DEFAULT_IMAGE;
    cfg->image_pull_policy = "IfNotPresent";
    cfg->rack = "zone";
    cfg->out_dir = "/etc/topowire";
    cfg->podinfo_dir = "/etc/podinfo";
    cfg->size_limit = "1Mi";
    cfg->cpu_request = "10m";
    cfg->cpu_limit = "100m";
    cfg->memory_request = "16Mi";
    cfg->memory_limit = "32Mi";
    cfg->version = TW_VERSION;
}

bool tw_podpatch_rack_valid(const char *s)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "zone") == 0 || strcmp(s, "zone-id") == 0 || strcmp(s, "region") == 0)
        return true;
    return strncmp(s, "label:", 6) == 0 && tw_label_key_valid(s + 6);
}

/*
 * Parses a quantity into its value (for comparing a request with its limit).
 * Returns false when s is not a quantity topowire accepts.
 */
static bool quantity_parse(const char *s, long double *value)
{
    static const struct {
        const char *suffix;
        long double mult;
    } suffixes[] = {
        {"Ki", 1024.0L},
        {"Mi", 1048576.0L},
        {"Gi", 1073741824.0L},
        {"Ti", 1099511627776.0L},
        {"Pi", 1125899906842624.0L},
        {"Ei", 1152921504606846976.0L},
        {"m", 1e-3L},
        {"k", 1e3L},
        {"M", 1e6L},
        {"G", 1e9L},
        {"T", 1e12L},
        {"P", 1e15L},
        {"E", 1e18L},
        {"", 1.0L},
    };
    if (s == NULL || *s == '\0' || strlen(s) > 63)
        return false;
    const char *p = s;
    if (*p == '+')
        p++;
    const char *num = p;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    char numtext[64];
    size_t nl = (size_t)(p - num);
    memcpy(numtext, num, nl);
    numtext[nl] = '\0';
    long double v = strtold(numtext, NULL);
    if ((*p == 'e' || *p == 'E') && p[1] != '\0' && p[1] != 'i') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-')
            q++;
        if (!isdigit((unsigned char)*q))
            return false;
        char *end = NULL;
        long e = strtol(p + 1, &end, 10);
        if (*end != '\0' || e > 18 || e < -18)
            return false;
        for (; e > 0; e--)
            v *= 10.0L;
        for (; e < 0; e++)
            v /= 10.0L;
        *value = v;
        return true;
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(p, suffixes[i].suffix) == 0) {
            *value = v * suffixes[i].mult;
            return true;
        }
    }
    return false;
}

bool tw_podpatch_quantity_valid(const char *s)
{
    long double v;
    return quantity_parse(s, &v);
}

static int check_pair(const char *what, const char *req, const char *lim, char *err)
{
    long double r, l;
    if (req == NULL || !quantity_parse(req, &r))
        return tw_seterr(err, TW_EINVAL, "the %s request is not a Kubernetes quantity", what);
    if (lim == NULL || *lim == '\0')
        return TW_OK;
    if (!quantity_parse(lim, &l))
        return tw_seterr(err, TW_EINVAL, "the %s limit is not a Kubernetes quantity", what);
    if (r > l)
        return tw_seterr(err, TW_EINVAL, "the %s request %s is above its limit %s", what, req, lim);
    return TW_OK;
}

static bool abs_path_valid(const char *p)
{
    return p != NULL && p[0] == '/' && strlen(p) < 1024 && strstr(p, "..") == NULL &&
           strchr(p, ':') == NULL;
}

int tw_podpatch_config_check(const tw_podpatch_config *cfg, char *err)
{
    int rc;
    if (cfg == NULL)
        return tw_seterr(err, TW_EINVAL, "no configuration");
    if (cfg->init_image == NULL || cfg->init_image[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the init image is empty");
    for (const char *c = cfg->init_image; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return tw_seterr(err, TW_EINVAL, "the init image contains a space or control byte");
    if (cfg->image_pull_policy != NULL && cfg->image_pull_policy[0] != '\0' &&
        strcmp(cfg->image_pull_policy, "Always") != 0 &&
        strcmp(cfg->image_pull_policy, "IfNotPresent") != 0 &&
        strcmp(cfg->image_pull_policy, "Never") != 0)
        return tw_seterr(err, TW_EINVAL,
                         "the image pull policy must be Always, IfNotPresent or Never");
    if (!tw_podpatch_rack_valid(cfg->rack))
        return tw_seterr(err, TW_EINVAL, "the rack must be zone, zone-id, region or label:KEY");
    if (!abs_path_valid(cfg->out_dir))
        return tw_seterr(err, TW_EINVAL, "the output directory must be an absolute path");
    if (!abs_path_valid(cfg->podinfo_dir))
        return tw_seterr(err, TW_EINVAL, "the podinfo directory must be an absolute path");
    if (tw__podpatch_same_path(cfg->out_dir, cfg->podinfo_dir))
        return tw_seterr(err, TW_EINVAL, "the output and podinfo directories must differ");
    if (!tw_podpatch_quantity_valid(cfg->size_limit))
        return tw_seterr(err, TW_EINVAL, "the volume size limit is not a Kubernetes quantity");
    if ((rc = check_pair("cpu", cfg->cpu_request, cfg->cpu_limit, err)) != TW_OK ||
        (rc = check_pair("memory", cfg->memory_request, cfg->memory_limit, err)) != TW_OK)
        return rc;
    if (cfg->version == NULL || cfg->version[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the version annotation value is empty");
    return TW_OK;
}

/* Indexed by tw_podpatch_outcome; the metrics' outcome labels. */
static const char *const outcome_names[] = {
    [TW_PODPATCH_INJECTED] = "injected",         [TW_PODPATCH_ALREADY] = "already_injected",
    [TW_PODPATCH_NOT_SELECTED] = "not_selected", [TW_PODPATCH_OPTED_OUT] = "opted_out",
    [TW_PODPATCH_CONFLICT] = "conflict",         [TW_PODPATCH_INVALID] = "invalid",
};
_Static_assert(sizeof(outcome_names) / sizeof(outcome_names[0]) == TW_PODPATCH_OUTCOMES,
               "every pod patch outcome has a name");

const char *tw_podpatch_outcome_name(tw_podpatch_outcome o)
{
    if ((unsigned)o >= TW_PODPATCH_OUTCOMES)
        return "unknown";
    return outcome_names[o];
}

void tw_podpatch_result_free(tw_podpatch_result *r)
{
    if (r == NULL)
        return;
    tw_jsonpatch_free(&r->patch);
    for (size_t i = 0; i < r->n_warnings; i++)
        free(r->warnings[i]);
    r->n_warnings = 0;
}

/* One app container's name and its index in spec.containers, for sorting. */
typedef struct named_index {
    const char *name;
    size_t index;
} named_index;

static int named_index_cmp(const void *a, const void *b)
{
    const named_index *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Chooses the app containers that get the mount from the
 * topowire.io/containers annotation (NULL when absent) into chosen[] (one
 * flag per container). Unknown names and an empty choice are warnings; an
 * empty choice falls back to every container. The names are sorted once and
 * each item of the list is looked up by binary search, so a pod naming
 * thousands of containers costs O((n + items) log n), not n x items.
 */
static int choose_containers(const cJSON *containers, const char *ann, bool *chosen, size_t n,
                             tw_podpatch_result *r)
{
    char q[TW_TEXT_SHOWN_SIZE];
    int rc = TW_OK;
    size_t picked = 0;
    named_index *sorted = NULL;
    if (ann != NULL) {
        sorted = malloc((n ? n : 1) * sizeof(*sorted));
        if (sorted == NULL)
            return TW_ENOMEM;
        size_t k = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, containers)
        {
            if (k == n)
                break;
            sorted[k].name = tw__podpatch_member_string(c, "name");
            sorted[k].index = k;
            k++;
        }
        qsort(sorted, k, sizeof(*sorted), named_index_cmp);
        const char *p = ann;
        while (*p != '\0' && rc == TW_OK) {
            const char *end = strchr(p, ',');
            if (end == NULL)
                end = p + strlen(p);
            const char *a = p, *b = end;
            while (a < b && isspace((unsigned char)*a))
                a++;
            while (b > a && isspace((unsigned char)b[-1]))
                b--;
            p = *end ? end + 1 : end;
            if (a == b)
                continue;
            char name[NAME_MAX_LEN + 1];
            size_t len = (size_t)(b - a);
            bool found = false;
            if (len <= NAME_MAX_LEN) {
                memcpy(name, a, len);
                name[len] = '\0';
                /* The first entry with this name (index 0 sorts first), then its duplicates. */
                named_index key = {name, 0};
                size_t lo = 0, hi = k;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (named_index_cmp(&sorted[mid], &key) < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                for (; lo < k && strcmp(sorted[lo].name, name) == 0; lo++) {
                    if (!chosen[sorted[lo].index])
                        picked++;
                    chosen[sorted[lo].index] = true;
                    found = true;
                }
            } else {
                memcpy(name, a, NAME_MAX_LEN);
                name[NAME_MAX_LEN] = '\0';
            }
            if (!found)
                rc = tw__podpatch_warn(r, "%s names no container \"%s\" of this pod; it is ignored",
                                       TW_POD_ANN_CONTAINERS, tw__podpatch_quoted(name, q));
        }
        if (rc == TW_OK && picked == 0)
            rc = tw__podpatch_warn(
                r, "%s selects no container of this pod; mounting %s in every container",
                TW_POD_ANN_CONTAINERS, TW_POD_VOLUME);
    }
    free(sorted);
    if (picked == 0)
        for (size_t i = 0; i < n; i++)
            chosen[i] = true;
    return rc;
}

/* Small constructors that keep the builders below readable; NULL on out-of-memory. */
static cJSON *obj_str(cJSON *o, const char *k, const char *v)
{
    return (o && cJSON_AddStringToObject(o, k, v)) ? o : NULL;
}

static cJSON *volumes_json(const tw_podpatch_config *cfg)
{
    cJSON *vols = cJSON_CreateArray();
    cJSON *v1 = cJSON_CreateObject();
    cJSON *v2 = cJSON_CreateObject();
    bool ok = vols && v1 && v2;
    if (ok) {
        cJSON_AddItemToArray(vols, v1);
        cJSON_AddItemToArray(vols, v2);
    } else {
        cJSON_Delete(v1);
        cJSON_Delete(v2);
    }
    cJSON *ed = ok ? cJSON_AddObjectToObject(v1, "emptyDir") : NULL;
    ok = ok && obj_str(v1, "name", TW_POD_VOLUME) && ed && obj_str(ed, "medium", "Memory") &&
         obj_str(ed, "sizeLimit", cfg->size_limit);
    cJSON *dw = ok && obj_str(v2, "name", TW_POD_PODINFO_VOLUME)
                    ? cJSON_AddObjectToObject(v2, "downwardAPI")
                    : NULL;
    cJSON *items = dw ? cJSON_AddArrayToObject(dw, "items") : NULL;
    ok = ok && items;
    static const char *const files[2][2] = {{"annotations", "metadata.annotations"},
                                            {"labels", "metadata.labels"}};
    for (int i = 0; ok && i < 2; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON *ref = item ? cJSON_AddObjectToObject(item, "fieldRef") : NULL;
        ok = obj_str(item, "path", files[i][0]) && ref && obj_str(ref, "apiVersion", "v1") &&
             obj_str(ref, "fieldPath", files[i][1]);
        if (item && !cJSON_AddItemToArray(items, item)) {
            cJSON_Delete(item);
            ok = false;
        }
    }
    if (!ok) {
        cJSON_Delete(vols);
        return NULL;
    }
    return vols;
}

static bool add_arg(cJSON *args, const char *flag, const char *value)
{
    char s[1200];
    snprintf(s, sizeof(s), "%s=%s", flag, value);
    cJSON *a = cJSON_CreateString(s);
    if (a == NULL || !cJSON_AddItemToArray(args, a)) {
        cJSON_Delete(a);
        return false;
    }
    return true;
}

static cJSON *init_container_json(const tw_podpatch_config *cfg, const char *rack)
{
    cJSON *c = cJSON_CreateObject();
    bool ok = obj_str(obj_str(c, "name", TW_POD_INIT_CONTAINER), "image", cfg->init_image) != NULL;
    if (ok && cfg->image_pull_policy && cfg->image_pull_policy[0])
        ok = obj_str(c, "imagePullPolicy", cfg->image_pull_policy) != NULL;
    cJSON *args = ok ? cJSON_AddArrayToObject(c, "args") : NULL;
    ok = args && add_arg(args, "--rack", rack) && add_arg(args, "--out-dir", cfg->out_dir) &&
         add_arg(args, "--podinfo-dir", cfg->podinfo_dir);

    cJSON *env = ok ? cJSON_AddArrayToObject(c, "env") : NULL;
    cJSON *e = env ? cJSON_CreateObject() : NULL;
    if (e && !cJSON_AddItemToArray(env, e)) {
        cJSON_Delete(e);
        e = NULL;
    }
    cJSON *vf = obj_str(e, "name", "NODE_NAME") ? cJSON_AddObjectToObject(e, "valueFrom") : NULL;
    cJSON *fr = vf ? cJSON_AddObjectToObject(vf, "fieldRef") : NULL;
    ok = obj_str(obj_str(fr, "apiVersion", "v1"), "fieldPath", "spec.nodeName") != NULL;

    cJSON *res = ok ? cJSON_AddObjectToObject(c, "resources") : NULL;
    cJSON *lim = NULL;
    if (res &&
        ((cfg->cpu_limit && cfg->cpu_limit[0]) || (cfg->memory_limit && cfg->memory_limit[0]))) {
        lim = cJSON_AddObjectToObject(res, "limits");
        ok = lim != NULL;
        if (ok && cfg->cpu_limit && cfg->cpu_limit[0])
            ok = obj_str(lim, "cpu", cfg->cpu_limit) != NULL;
        if (ok && cfg->memory_limit && cfg->memory_limit[0])
            ok = obj_str(lim, "memory", cfg->memory_limit) != NULL;
    }
    cJSON *req = ok && res ? cJSON_AddObjectToObject(res, "requests") : NULL;
    ok = obj_str(obj_str(req, "cpu", cfg->cpu_request), "memory", cfg->memory_request) != NULL;

    cJSON *sc = ok ? cJSON_AddObjectToObject(c, "securityContext") : NULL;
    ok = sc && cJSON_AddTrueToObject(sc, "runAsNonRoot") &&
         cJSON_AddNumberToObject(sc, "runAsUser", TW_POD_RUN_AS) &&
         cJSON_AddNumberToObject(sc, "runAsGroup", TW_POD_RUN_AS) &&
         cJSON_AddFalseToObject(sc, "allowPrivilegeEscalation") &&
         cJSON_AddTrueToObject(sc, "readOnlyRootFilesystem");
    cJSON *caps = ok ? cJSON_AddObjectToObject(sc, "capabilities") : NULL;
    cJSON *drop = caps ? cJSON_AddArrayToObject(caps, "drop") : NULL;
    cJSON *all = drop ? cJSON_CreateString("ALL") : NULL;
    if (all && !cJSON_AddItemToArray(drop, all)) {
        cJSON_Delete(all);
        all = NULL;
    }
    cJSON *sp = all ? cJSON_AddObjectToObject(sc, "seccompProfile") : NULL;
    ok = obj_str(sp, "type", "RuntimeDefault") != NULL;

    cJSON *mounts = ok ? cJSON_AddArrayToObject(c, "volumeMounts") : NULL;
    cJSON *m1 = mounts ? tw__podpatch_mount_json(TW_POD_VOLUME, cfg->out_dir, false) : NULL;
    cJSON *m2 = m1 ? tw__podpatch_mount_json(TW_POD_PODINFO_VOLUME, cfg->podinfo_dir, true) : NULL;
    if (m1)
        cJSON_AddItemToArray(mounts, m1);
    if (m2)
        cJSON_AddItemToArray(mounts, m2);
    ok = m2 && obj_str(c, "terminationMessagePolicy", "FallbackToLogsOnError");
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* The parts of the pod decide() reads. */
typedef struct pod_view {
    const cJSON *meta, *labels, *anns, *spec;
    const cJSON *containers, *inits, *ephemeral, *volumes;
} pod_view;

/* The topowire.io/inject label asks for the init container, and it is not there yet. */
static int check_selected(const pod_view *v, tw_podpatch_result *r, bool *done)
{
    char q[TW_TEXT_SHOWN_SIZE];
    const char *inject = tw__podpatch_member_string(v->labels, TW_POD_LABEL_INJECT);
    if (inject == NULL) {
        tw__podpatch_settle(r, TW_PODPATCH_NOT_SELECTED, done);
        return TW_OK;
    }
    if (strcmp(inject, "false") == 0) {
        tw__podpatch_settle(r, TW_PODPATCH_OPTED_OUT, done);
        return TW_OK;
    }
    if (strcmp(inject, "true") != 0) {
        tw__podpatch_settle(r, TW_PODPATCH_NOT_SELECTED, done);
        return tw__podpatch_warn(r,
                                 "topowire: label %s is \"%s\"; only \"true\" or \"downward\" "
                                 "injects",
                                 TW_POD_LABEL_INJECT, tw__podpatch_quoted(inject, q));
    }
    if (v->anns && cJSON_GetObjectItemCaseSensitive(v->anns, TW_POD_ANN_INJECTED) != NULL)
        tw__podpatch_settle(r, TW_PODPATCH_ALREADY, done);
    return TW_OK;
}

/* Reads the spec's arrays into v: named objects, at least one container, on Linux. */
static int check_shape(pod_view *v, tw_podpatch_result *r, bool *done)
{
    char q[TW_TEXT_SHOWN_SIZE];
    bool bad = false;
    v->containers = tw__podpatch_member(v->spec, "containers", cJSON_Array, &bad);
    v->inits = tw__podpatch_member(v->spec, "initContainers", cJSON_Array, &bad);
    v->ephemeral = tw__podpatch_member(v->spec, "ephemeralContainers", cJSON_Array, &bad);
    v->volumes = tw__podpatch_member(v->spec, "volumes", cJSON_Array, &bad);
    const cJSON *os = tw__podpatch_member(v->spec, "os", cJSON_Object, &bad);
    const char *os_name = tw__podpatch_member_string(os, "name");
    if (v->spec == NULL || bad || cJSON_GetArraySize(v->containers) == 0 ||
        !tw__podpatch_named_objects(v->containers) || !tw__podpatch_named_objects(v->inits) ||
        !tw__podpatch_named_objects(v->ephemeral) || !tw__podpatch_named_objects(v->volumes)) {
        tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
        return tw__podpatch_warn(r, "topowire: the pod's containers or volumes have an "
                                    "unexpected shape; not injecting");
    }
    if (os_name != NULL && strcmp(os_name, "linux") != 0) {
        tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
        return tw__podpatch_warn(r,
                                 "topowire: %s runs on Linux only and this pod's spec.os.name is "
                                 "\"%s\"; not injecting",
                                 TW_POD_INIT_CONTAINER, tw__podpatch_quoted(os_name, q));
    }
    return TW_OK;
}

/* The names of our volumes and init container are free. */
static int check_names(const pod_view *v, tw_podpatch_result *r, bool *done)
{
    static const char *const our_volumes[] = {TW_POD_VOLUME, TW_POD_PODINFO_VOLUME};
    for (size_t i = 0; i < sizeof(our_volumes) / sizeof(our_volumes[0]); i++) {
        if (tw__podpatch_has_name(v->volumes, our_volumes[i])) {
            tw__podpatch_settle(r, TW_PODPATCH_CONFLICT, done);
            return tw__podpatch_warn(
                r, "topowire: the pod already has a volume named \"%s\"; not injecting",
                our_volumes[i]);
        }
    }
    if (tw__podpatch_has_name(v->containers, TW_POD_INIT_CONTAINER) ||
        tw__podpatch_has_name(v->inits, TW_POD_INIT_CONTAINER) ||
        tw__podpatch_has_name(v->ephemeral, TW_POD_INIT_CONTAINER)) {
        tw__podpatch_settle(r, TW_PODPATCH_CONFLICT, done);
        return tw__podpatch_warn(
            r, "topowire: the pod already has a container named \"%s\"; not injecting",
            TW_POD_INIT_CONTAINER);
    }
    return TW_OK;
}

/* No chosen container mounts anything at out_dir, and each has volumeMounts as an array. */
static int check_mounts(const cJSON *containers, const bool *chosen, const char *out_dir,
                        tw_podpatch_result *r, bool *done)
{
    char q[TW_TEXT_SHOWN_SIZE];
    bool bad = false;
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, containers)
    {
        const char *name = tw__podpatch_member_string(c, "name");
        const cJSON *mounts = tw__podpatch_member(c, "volumeMounts", cJSON_Array, &bad);
        if (bad) {
            tw__podpatch_settle(r, TW_PODPATCH_INVALID, done);
            return tw__podpatch_warn(r,
                                     "topowire: container \"%s\" has volumeMounts of an "
                                     "unexpected type; not injecting",
                                     tw__podpatch_quoted(name, q));
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, mounts)
        {
            const char *path = tw__podpatch_member_string(m, "mountPath");
            if (chosen[i] && path != NULL && tw__podpatch_same_path(path, out_dir)) {
                tw__podpatch_settle(r, TW_PODPATCH_CONFLICT, done);
                return tw__podpatch_warn(r,
                                         "topowire: container \"%s\" already mounts something "
                                         "at %s; not injecting",
                                         tw__podpatch_quoted(name, q), out_dir);
            }
        }
        i++;
    }
    return TW_OK;
}

/*
 * The checks that decide the outcome, in order; the first that settles it
 * ends them. Fills *rack and chosen[] (n_containers flags) on the way to
 * INJECTED. Returns 0 or TW_ENOMEM.
 */
static int decide(const cJSON *pod, const tw_podpatch_config *cfg, tw_podpatch_result *r,
                  const char **rack, bool *chosen, size_t *n_containers)
{
    pod_view v = {0};
    bool done = false;
    int rc = tw__podpatch_read_meta(pod, &v.meta, &v.labels, &v.anns, &v.spec, r, &done);
    if (rc == TW_OK && !done)
        rc = check_selected(&v, r, &done);
    if (rc == TW_OK && !done)
        rc = check_shape(&v, r, &done);
    if (rc == TW_OK && !done)
        rc = check_names(&v, r, &done);
    if (rc == TW_OK && !done)
        rc = tw__podpatch_rack(v.anns, cfg->rack, r, rack);
    if (rc == TW_OK && !done) {
        *n_containers = (size_t)cJSON_GetArraySize(v.containers);
        const cJSON *ca =
            v.anns ? cJSON_GetObjectItemCaseSensitive(v.anns, TW_POD_ANN_CONTAINERS) : NULL;
        /* Present but not a string: an empty selection (every container, with a warning). */
        const char *selected = ca == NULL ? NULL : cJSON_IsString(ca) ? ca->valuestring : "";
        rc = choose_containers(v.containers, selected, chosen, *n_containers, r);
    }
    if (rc == TW_OK && !done)
        rc = check_mounts(v.containers, chosen, cfg->out_dir, r, &done);
    if (rc == TW_OK && !done)
        r->outcome = TW_PODPATCH_INJECTED;
    return rc;
}

/*
 * The parts of the patch that depend on the configuration only, rendered
 * once as JSON text; a build then only joins texts.
 */
struct tw_podpatch {
    tw_podpatch_config cfg;
    char *init;             /* the init container with cfg.rack */
    char *volume[2];        /* the emptyDir and the Downward-API volume */
    char *mount;            /* the app containers' read-only mount */
    tw__podpatch_mark mark; /* the topowire.io/injected annotation */
};

void tw_podpatch_free(tw_podpatch *pp)
{
    if (pp == NULL)
        return;
    free(pp->init);
    free(pp->volume[0]);
    free(pp->volume[1]);
    free(pp->mount);
    tw__podpatch_mark_free(&pp->mark);
    free(pp);
}

int tw_podpatch_prepare(const tw_podpatch_config *cfg, tw_podpatch **out, char *err)
{
    int rc = tw_podpatch_config_check(cfg, err);
    if (rc != TW_OK)
        return rc;
    tw_podpatch *pp = calloc(1, sizeof(*pp));
    if (pp == NULL)
        return TW_ENOMEM;
    pp->cfg = *cfg;
    cJSON *vols = volumes_json(cfg);
    pp->init = tw__podpatch_render(init_container_json(cfg, cfg->rack));
    pp->volume[0] = vols ? tw__podpatch_render(cJSON_DetachItemFromArray(vols, 0)) : NULL;
    pp->volume[1] = vols ? tw__podpatch_render(cJSON_DetachItemFromArray(vols, 0)) : NULL;
    cJSON_Delete(vols);
    pp->mount = tw__podpatch_render(tw__podpatch_mount_json(TW_POD_VOLUME, cfg->out_dir, true));
    rc = tw__podpatch_mark_init(&pp->mark, cfg->version);
    if (rc != TW_OK || !pp->init || !pp->volume[0] || !pp->volume[1] || !pp->mount) {
        tw_podpatch_free(pp);
        return tw_seterr(err, TW_ENOMEM, "out of memory preparing the pod patch");
    }
    *out = pp;
    return TW_OK;
}

/* The read-only mount for every chosen app container. */
static int mount_ops(const tw_podpatch *pp, const cJSON *spec, const bool *chosen, tw_jsonpatch *p)
{
    char path[96];
    const char *const items[] = {pp->mount};
    int rc = TW_OK;
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
    {
        /* Past the cap the rest is not worth walking. */
        if (rc != TW_OK)
            break;
        if (chosen[i]) {
            snprintf(path, sizeof(path), "/spec/containers/%zu/volumeMounts", i);
            rc = tw_jsonpatch_add_items(
                p, path, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"), items, 1);
        }
        i++;
    }
    return rc;
}

/*
 * Builds r's patch from pp's texts; TW_ETOOBIG when it would pass
 * TW_PODPATCH_PATCH_MAX, or TW_ENOMEM. The patch is left empty on failure.
 */
static int build_patch(const tw_podpatch *pp, const cJSON *pod, const char *rack,
                       const bool *chosen, tw_podpatch_result *r)
{
    tw_jsonpatch *p = &r->patch;
    char *init_other = NULL;
    const char *init = pp->init;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    if (rack != NULL && strcmp(rack, pp->cfg.rack) != 0) {
        init = init_other = tw__podpatch_render(init_container_json(&pp->cfg, rack));
        if (init == NULL)
            return TW_ENOMEM;
    }
    tw_jsonpatch_init_max(p, TW_PODPATCH_PATCH_MAX);
    int rc = tw__podpatch_mark_add(&pp->mark, p, pod);
    if (rc == TW_OK)
        rc = tw_jsonpatch_add_items(p, "/spec/volumes",
                                    cJSON_GetObjectItemCaseSensitive(spec, "volumes"),
                                    (const char *const *)pp->volume, 2);
    if (rc == TW_OK) {
        /* topowire-init runs first, before any init container of the pod's own. */
        bool has = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"));
        const char *value[] = {has ? "" : "[", init, has ? "" : "]"};
        rc = tw_jsonpatch_add_json(p, has ? "/spec/initContainers/0" : "/spec/initContainers",
                                   value, 3);
    }
    if (rc == TW_OK)
        rc = mount_ops(pp, spec, chosen, p);
    free(init_other);
    if (rc != TW_OK) {
        tw_jsonpatch_free(p);
        return rc == TW_ETOOBIG ? TW_ETOOBIG : TW_ENOMEM;
    }
    return TW_OK;
}

int tw_podpatch_build_prepared(const tw_podpatch *pp, const cJSON *pod, tw_podpatch_result *out,
                               char *err)
{
    tw_podpatch_result r = {0};
    bool *chosen = NULL;
    const char *rack = NULL;
    size_t n = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    if (pod == NULL || pp == NULL)
        return tw_seterr(err, TW_EINVAL, "no pod or no configuration");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *containers =
        cJSON_IsObject(spec) ? cJSON_GetObjectItemCaseSensitive(spec, "containers") : NULL;
    int nc = cJSON_IsArray(containers) ? cJSON_GetArraySize(containers) : 0;
    chosen = calloc((size_t)nc + 1, sizeof(*chosen));
    if (chosen == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    rc = decide(pod, &pp->cfg, &r, &rack, chosen, &n);
    if (rc == TW_OK && r.outcome == TW_PODPATCH_INJECTED) {
        rc = build_patch(pp, pod, rack, chosen, &r);
        if (rc == TW_ETOOBIG) {
            /* Too big to send, and too big for the API server to store: leave the pod alone. */
            r.outcome = TW_PODPATCH_INVALID;
            rc = tw__podpatch_warn(&r,
                                   "topowire: the patch for this pod's %zu containers would "
                                   "pass %d bytes; not injecting",
                                   n, TW_PODPATCH_PATCH_MAX);
        }
    }
out:
    free(chosen);
    if (rc != TW_OK) {
        tw_podpatch_result_free(&r);
        if (rc == TW_ENOMEM)
            tw_seterr(err, rc, "out of memory building the pod patch");
        return rc;
    }
    *out = r;
    return TW_OK;
}

int tw_podpatch_build(const cJSON *pod, const tw_podpatch_config *cfg, tw_podpatch_result *out,
                      char *err)
{
    tw_podpatch *pp = NULL;
    memset(out, 0, sizeof(*out));
    if (pod == NULL || cfg == NULL)
        return tw_seterr(err, TW_EINVAL, "no pod or no configuration");
    int rc = tw_podpatch_prepare(cfg, &pp, err);
    if (rc == TW_OK)
        rc = tw_podpatch_build_prepared(pp, pod, out, err);
    tw_podpatch_free(pp);
    return rc;
}
