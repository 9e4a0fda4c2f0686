/* binding.c - node topology onto Bindings and onto pods created with spec.nodeName. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/jsonpatch.h"
#include "topowire/label.h"
#include "topowire/list.h"
#include "topowire/log.h"
#include "topowire/nodecache.h"
#include "topowire/topology.h"

#include "webhook.h"

#define MAX_COPY_KEYS 16

/*
 * Keys the init container reads in order (lib/topology.c): a node with only
 * the legacy failure-domain.beta.kubernetes.io label gets its value under the
 * topology.kubernetes.io key, as topowire-init would resolve it.
 */
static const char *const *const fallbacks[] = {tw_default_zone_keys, tw_default_region_keys};
#define NFALLBACKS (sizeof(fallbacks) / sizeof(fallbacks[0]))

struct hook_topology {
    tw_nodecache *cache;
    char *keys_text; /* the --copy-labels list, split in place */
    const char *keys[MAX_COPY_KEYS + 1];
    /* what the cache keeps: keys, then the legacy keys they fall back to */
    const char *cache_keys[MAX_COPY_KEYS + 2 * NFALLBACKS + 1];
    bool as_annotations;
    bool as_labels;
};

/* The keys whose values stand in for key when the node lacks it (NULL-terminated), or NULL. */
static const char *const *fallbacks_of(const char *key)
{
    for (size_t i = 0; i < NFALLBACKS; i++)
        if (strcmp(key, fallbacks[i][0]) == 0)
            return fallbacks[i] + 1;
    return NULL;
}

static bool has_key(const char *const *keys, const char *key)
{
    for (; *keys; keys++)
        if (strcmp(*keys, key) == 0)
            return true;
    return false;
}

/* keys, then every fallback of theirs not among them, into out (NULL-terminated). */
static void with_fallbacks(const char *const *keys, const char **out, size_t cap)
{
    size_t n = 0;
    for (const char *const *k = keys; *k && n + 1 < cap; k++)
        out[n++] = *k;
    out[n] = NULL;
    for (const char *const *k = keys; *k; k++) {
        const char *const *fb = fallbacks_of(*k);
        for (; fb && *fb && n + 1 < cap; fb++)
            if (!has_key(out, *fb)) {
                out[n++] = *fb;
                out[n] = NULL;
            }
    }
}

int hook_topology_parse_keys(const char *list, char *buf, size_t buf_len,
                             const char *keys[MAX_COPY_KEYS + 1], char *err)
{
    if (snprintf(buf, buf_len, "%s", list) >= (int)buf_len)
        return tw_seterr(err, TW_EINVAL, "--copy-labels is too long");
    tw_list_item items[MAX_COPY_KEYS];
    size_t n = 0;
    char why[TW_ERRLEN];
    if (tw_list_split(buf, items, MAX_COPY_KEYS, &n, why) != TW_OK)
        return tw_seterr(err, TW_EINVAL, "--copy-labels: %s", why);
    for (size_t i = 0; i < n; i++) {
        /* The items point into buf, which is ours to cut. */
        char *k = buf + (items[i].p - buf);
        k[items[i].len] = '\0';
        if (!tw_label_key_valid(k))
            return tw_seterr(err, TW_EINVAL, "--copy-labels: \"%.80s\" is not a label key", k);
        keys[i] = k;
    }
    keys[n] = NULL;
    return TW_OK;
}

int hook_topology_parse_copy_as(const char *list, bool *annotations, bool *labels, char *err)
{
    *annotations = *labels = false;
    tw_list_item items[2];
    size_t n = 0;
    char why[TW_ERRLEN];
    if (tw_list_split(list, items, 2, &n, why) != TW_OK)
        return tw_seterr(err, TW_EINVAL, "--copy-as: %s (give annotations, labels or both)", why);
    for (size_t i = 0; i < n; i++) {
        const tw_list_item *it = &items[i];
        if (it->len == 11 && memcmp(it->p, "annotations", 11) == 0)
            *annotations = true;
        else if (it->len == 6 && memcmp(it->p, "labels", 6) == 0)
            *labels = true;
        else
            return tw_seterr(err, TW_EINVAL, "--copy-as: \"%.*s\" is not annotations or labels",
                             (int)(it->len > 32 ? 32 : it->len), it->p);
    }
    return TW_OK;
}

static void cache_log(void *ud, int level, const char *msg, const char *detail)
{
    (void)ud;
    tw_log_kv(level >= 2 ? TW_LOG_WARN : TW_LOG_INFO, msg, "detail", detail, NULL);
}

int hook_topology_start(const hook_config *cfg, hook_topology **out, char *err)
{
    hook_topology *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return TW_ENOMEM;
    int rc = TW_ENOMEM;
    size_t len = strlen(cfg->copy_labels) + 1;
    if ((t->keys_text = malloc(len)) == NULL)
        goto fail;
    if ((rc = hook_topology_parse_keys(cfg->copy_labels, t->keys_text, len, t->keys, err)) !=
            TW_OK ||
        (rc = hook_topology_parse_copy_as(cfg->copy_as, &t->as_annotations, &t->as_labels, err)) !=
            TW_OK)
        goto fail;
    if (cfg->kube == NULL) {
        rc = tw_seterr(err, TW_EINVAL, "binding mode needs a Kubernetes configuration");
        goto fail;
    }
    with_fallbacks(t->keys, t->cache_keys, sizeof(t->cache_keys) / sizeof(t->cache_keys[0]));
    tw_nodecache_options o = {
        .kube = cfg->kube,
        .user_agent = "topowire-webhook/" TW_VERSION,
        .keys = t->cache_keys,
        .max_age_ms =
            cfg->cache_max_age_ms > 0 ? cfg->cache_max_age_ms : HOOK_DEFAULT_CACHE_MAX_AGE_MS,
        .log = cache_log,
    };
    rc = TW_ENOMEM;
    if ((t->cache = tw_nodecache_new(&o)) == NULL)
        goto fail;
    if ((rc = tw_nodecache_start(t->cache)) != TW_OK) {
        tw_seterr(err, rc, "cannot start the node cache");
        goto fail;
    }
    *out = t;
    return TW_OK;
fail:
    hook_topology_free(t);
    return rc;
}

int hook_topology_ready(hook_topology *t)
{
    return t == NULL || tw_nodecache_ready(t->cache);
}

void hook_topology_free(hook_topology *t)
{
    if (t == NULL)
        return;
    tw_nodecache_free(t->cache);
    free(t->keys_text);
    free(t);
}

/* Keeps the pairs of all whose key obj's map does not have yet. */
static int missing_from(const cJSON *map, const tw_kvlist *all, tw_kvlist *out)
{
    for (size_t i = 0; i < all->n; i++) {
        if (cJSON_IsObject(map) && cJSON_GetObjectItemCaseSensitive(map, all->items[i].key) != NULL)
            continue;
        if (tw_kvlist_set(out, all->items[i].key, all->items[i].value) != TW_OK)
            return TW_ENOMEM;
    }
    return TW_OK;
}

static cJSON *map_of(const tw_kvlist *l)
{
    cJSON *m = cJSON_CreateObject();
    for (size_t i = 0; m && i < l->n; i++)
        if (cJSON_AddStringToObject(m, l->items[i].key, l->items[i].value) == NULL) {
            cJSON_Delete(m);
            return NULL;
        }
    return m;
}

/* The copied keys' values from what the cache holds, legacy keys standing in for missing ones. */
static int resolve(const hook_topology *t, const tw_kvlist *cached, tw_kvlist *out)
{
    for (const char *const *k = t->keys; *k; k++) {
        const char *v = tw_kvlist_get(cached, *k);
        for (const char *const *fb = fallbacks_of(*k); v == NULL && fb && *fb; fb++)
            v = tw_kvlist_get(cached, *fb);
        if (v != NULL && tw_kvlist_set(out, *k, v) != TW_OK)
            return TW_ENOMEM;
    }
    return TW_OK;
}

int hook_topology_patch(hook_topology *t, const char *node, const cJSON *obj, uint64_t deadline,
                        tw_jsonpatch *p, cJSON *apply_to, char *err)
{
    tw_kvlist cached = {0}, vals = {0}, ann = {0}, lab = {0};
    int rc = tw_nodecache_get(t->cache, node, deadline, &cached, err);
    if (rc != TW_OK)
        goto out;
    if ((rc = resolve(t, &cached, &vals)) != TW_OK)
        goto out;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *cur_ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    const cJSON *cur_lab = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    rc = TW_ENOMEM;
    if ((t->as_annotations && missing_from(cur_ann, &vals, &ann) != TW_OK) ||
        (t->as_labels && missing_from(cur_lab, &vals, &lab) != TW_OK))
        goto out;
    if (!cJSON_IsObject(meta) && (ann.n > 0 || lab.n > 0)) {
        /* No metadata at all: one operation creates it with both maps. */
        cJSON *m = cJSON_CreateObject();
        if (m == NULL)
            goto out;
        if ((ann.n && !cJSON_AddItemToObject(m, "annotations", map_of(&ann))) ||
            (lab.n && !cJSON_AddItemToObject(m, "labels", map_of(&lab)))) {
            cJSON_Delete(m);
            goto out;
        }
        if ((rc = tw_jsonpatch_add(p, "/metadata", m)) != TW_OK)
            goto out;
    } else {
        if (ann.n &&
            (rc = tw_jsonpatch_add_strings(p, "/metadata/annotations", cur_ann, &ann)) != TW_OK)
            goto out;
        if (lab.n && (rc = tw_jsonpatch_add_strings(p, "/metadata/labels", cur_lab, &lab)) != TW_OK)
            goto out;
    }
    if (apply_to != NULL) {
        /* The same change on a copy, so that later operations see the result. */
        cJSON *m = cJSON_GetObjectItemCaseSensitive(apply_to, "metadata");
        if (!cJSON_IsObject(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(apply_to, "metadata");
            m = cJSON_AddObjectToObject(apply_to, "metadata");
        }
        const tw_kvlist *lists[2] = {&ann, &lab};
        const char *names[2] = {"annotations", "labels"};
        for (int k = 0; m && k < 2; k++) {
            if (lists[k]->n == 0)
                continue;
            cJSON *map = cJSON_GetObjectItemCaseSensitive(m, names[k]);
            if (!cJSON_IsObject(map)) {
                cJSON_DeleteItemFromObjectCaseSensitive(m, names[k]);
                map = cJSON_AddObjectToObject(m, names[k]);
            }
            for (size_t i = 0; map && i < lists[k]->n; i++)
                cJSON_AddStringToObject(map, lists[k]->items[i].key, lists[k]->items[i].value);
        }
    }
    rc = TW_OK;
out:
    tw_kvlist_free(&cached);
    tw_kvlist_free(&vals);
    tw_kvlist_free(&ann);
    tw_kvlist_free(&lab);
    return rc;
}

void hook_topology_metrics(hook_topology *t, tw_buf *b)
{
    if (t == NULL)
        return;
    tw_nodecache_stats st;
    tw_nodecache_stats_get(t->cache, &st);
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"topowire_node_cache_ready", "gauge",
         "1 while the node cache is listed and fresh (heard from the API server within its "
         "bound)."},
        {"topowire_node_cache_nodes", "gauge", "Nodes in the cache."},
        {"topowire_node_cache_bytes", "gauge", "Memory held by the cache's entries (approximate)."},
        {"topowire_node_cache_lists_total", "counter", "Node LIST requests (pages)."},
        {"topowire_node_cache_relists_total", "counter", "LISTs made again after 410 Gone."},
        {"topowire_node_cache_watches_total", "counter", "Node WATCH requests."},
        {"topowire_node_cache_events_total", "counter", "Watch events applied."},
        {"topowire_node_cache_errors_total", "counter",
         "Failed LIST or WATCH requests, and watches that ended at once with nothing."},
        {"topowire_node_cache_gets_total", "counter",
         "Direct GETs for nodes not in the cache (or in a stale one)."},
        {"topowire_node_cache_lookups_skipped_total", "counter",
         "Such lookups answered at once without waiting for a GET (a remembered failure, or "
         "others already waiting)."},
    };
    unsigned long long v[] = {
        (unsigned long long)st.ready,   (unsigned long long)st.nodes,
        (unsigned long long)st.bytes,   (unsigned long long)st.lists,
        (unsigned long long)st.relists, (unsigned long long)st.watches,
        (unsigned long long)st.events,  (unsigned long long)st.errors,
        (unsigned long long)st.gets,    (unsigned long long)st.skipped,
    };
    _Static_assert(sizeof(m) / sizeof(m[0]) == sizeof(v) / sizeof(v[0]), "one value per metric");
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        tw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help, m[i].name,
                      m[i].type, m[i].name, v[i]);
    tw_buf_printf(b,
                  "# HELP topowire_node_cache_age_seconds Seconds since the node cache last heard "
                  "from the API server (a LIST, an event, a bookmark).\n"
                  "# TYPE topowire_node_cache_age_seconds gauge\n"
                  "topowire_node_cache_age_seconds %llu.%03llu\n"
                  "# HELP topowire_node_cache_backoff_seconds The wait ceiling before the next "
                  "LIST or WATCH after a failure.\n"
                  "# TYPE topowire_node_cache_backoff_seconds gauge\n"
                  "topowire_node_cache_backoff_seconds %ld.%03ld\n",
                  (unsigned long long)(st.age_ms / 1000), (unsigned long long)(st.age_ms % 1000),
                  st.backoff_ms / 1000, st.backoff_ms % 1000);
}
