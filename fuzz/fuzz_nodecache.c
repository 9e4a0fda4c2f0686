/* fuzz_nodecache.c - libFuzzer target: the node cache fed a LIST and a stream of watch events. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/kv.h"
#include "topowire/label.h"
#include "topowire/nodecache.h"

#include "../lib/nodecache_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.k8s.aws/zone-id",
    "failure-domain.beta.kubernetes.io/zone",
    NULL,
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]) - 1)

/* Every node name the input mentions where the cache could take one from (a superset). */
typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_add(names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            abort();
        s->v = v;
        s->cap = cap;
    }
    if ((s->v[s->n] = strdup(name)) == NULL)
        abort();
    s->n++;
}

static void names_free(names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static const char *name_of(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    return cJSON_IsString(name) ? name->valuestring : NULL;
}

static size_t node_count(tw_nodecache *c)
{
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    if (st.nodes > 0 && st.bytes == 0)
        __builtin_trap();
    return st.nodes;
}

static uint64_t event_count(tw_nodecache *c)
{
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    return st.events;
}

/*
 * Looks node up: returns 1 when cached, 0 when not. Whatever comes back holds
 * only kept keys with valid label values. When obj is given (the node was just
 * added), the values are exactly its valid string labels.
 */
static int lookup(tw_nodecache *c, const char *node, const cJSON *obj)
{
    tw_kvlist l = {0};
    char err[TW_ERRLEN];
    int rc = tw_nodecache_get(c, node, 0, &l, err);
    if (rc == TW_ENOTFOUND) {
        if (memchr(err, '\0', TW_ERRLEN) == NULL)
            __builtin_trap();
        return 0;
    }
    if (rc != TW_OK)
        __builtin_trap();
    if (l.n > NKEYS)
        __builtin_trap();
    for (size_t i = 0; i < l.n; i++) {
        int kept = 0;
        for (size_t k = 0; k < NKEYS; k++)
            kept |= strcmp(l.items[i].key, keys[k]) == 0;
        if (!kept || !tw_label_value_valid(l.items[i].value))
            __builtin_trap();
    }
    if (obj != NULL) {
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
        for (size_t k = 0; k < NKEYS; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, keys[k]);
            const char *want =
                cJSON_IsString(v) && tw_label_value_valid(v->valuestring) ? v->valuestring : NULL;
            const char *got = tw_kvlist_get(&l, keys[k]);
            if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
                __builtin_trap();
        }
    }
    tw_kvlist_free(&l);
    return 1;
}

/* rv is always a C string within its buffer, changed or not. */
static void check_rv(const char rv[TW_NODECACHE_RV_MAX + 1])
{
    if (memchr(rv, '\0', TW_NODECACHE_RV_MAX + 1) == NULL)
        __builtin_trap();
}

static void apply_list(tw_nodecache *c, const char *line, size_t len, names *seen)
{
    cJSON *doc = cJSON_ParseWithLength(line, len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!cJSON_IsArray(items))
        items = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *n = name_of(it);
        if (n != NULL)
            names_add(seen, n);
    }
    size_t before = node_count(c);
    char rv[TW_NODECACHE_RV_MAX + 1] = "untouched";
    char err[TW_ERRLEN];
    int rc = tw__nodecache_apply_list(c, line, len, rv, err);
    check_rv(rv);
    if (rc == TW_OK) {
        /* The list replaced the cache: exactly its distinct names are cached. */
        names mine = {0};
        cJSON_ArrayForEach(it, items)
        {
            const char *n = name_of(it);
            if (n == NULL || lookup(c, n, NULL) != 1)
                __builtin_trap();
            names_add(&mine, n);
        }
        if (node_count(c) != mine.n)
            __builtin_trap();
        names_free(&mine);
    } else {
        if ((rc != TW_EPARSE && rc != TW_ETOOBIG && rc != TW_ENOMEM) ||
            strcmp(rv, "untouched") != 0 || node_count(c) != before ||
            memchr(err, '\0', TW_ERRLEN) == NULL)
            __builtin_trap();
    }
    cJSON_Delete(doc);
}

static void apply_event(tw_nodecache *c, const char *line, size_t len, names *seen)
{
    cJSON *ev = cJSON_ParseWithLength(line, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    const char *name = name_of(obj);
    if (name != NULL)
        names_add(seen, name);
    int had = name != NULL ? lookup(c, name, NULL) : 0;
    size_t before = node_count(c);
    uint64_t events = event_count(c);
    char rv[TW_NODECACHE_RV_MAX + 1] = "untouched";
    char err[TW_ERRLEN];
    int rc = tw__nodecache_apply_event(c, line, len, rv, err);
    check_rv(rv);
    if (memchr(err, '\0', TW_ERRLEN) == NULL && rc != TW_OK)
        __builtin_trap();
    if (rc == TW_OK && (strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0)) {
        if (name == NULL || lookup(c, name, obj) != 1 || node_count(c) != before + !had ||
            event_count(c) != events + 1)
            __builtin_trap();
    } else if (rc == TW_OK && strcmp(t, "DELETED") == 0) {
        if (name == NULL || lookup(c, name, NULL) != 0 || node_count(c) != before - had ||
            event_count(c) != events + 1)
            __builtin_trap();
    } else if (rc == TW_OK) {
        if (strcmp(t, "BOOKMARK") != 0 || node_count(c) != before || event_count(c) != events)
            __builtin_trap();
    } else {
        /* A refused event changes nothing; only an ERROR event says 410 Gone. */
        if (node_count(c) != before || event_count(c) != events || strcmp(rv, "untouched") != 0 ||
            (rc == TW_EGONE && strcmp(t, "ERROR") != 0))
            __builtin_trap();
    }
    cJSON_Delete(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_nodecache_options o = {.keys = keys}; /* no API server: lookups never leave the cache */
    tw_nodecache *c = tw_nodecache_new(&o);
    if (c == NULL)
        return 0;
    names seen = {0};
    const char *p = (const char *)data, *end = p + size;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (first)
            apply_list(c, p, len, &seen);
        else
            apply_event(c, p, len, &seen);
        first = 0;
        p += len + (nl != NULL);
    }
    /* Every cached node is one the input named, and each is found. */
    size_t found = 0;
    for (size_t i = 0; i < seen.n; i++)
        found += (size_t)lookup(c, seen.v[i], NULL);
    if (found != node_count(c))
        __builtin_trap();
    names_free(&seen);
    tw_nodecache_free(c);
    return 0;
}
