/* nodecache.c - node topology labels kept in memory by LIST + WATCH. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/kube.h"
#include "topowire/label.h"
#include "topowire/nodecache.h"

#define ACCEPT_META                                                                                \
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_WATCH    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define LIST_PAGE       500
#define LIST_TIMEOUT_MS 60000
#define MAX_EVENT_LINE  (4u << 20)
#define BACKOFF_MIN_MS  250
#define BACKOFF_MAX_MS  30000
#define MAX_KEYS        16

typedef struct entry {
    char *name;
    char *vals[MAX_KEYS]; /* values of the kept keys, NULL when absent */
    struct entry *next;
} entry;

typedef struct table {
    entry **slots;
    size_t nslots;
    size_t n;
    size_t bytes;
} table;

struct tw_nodecache {
    tw_nodecache_options o;
    size_t nkeys;
    pthread_rwlock_t lock; /* guards t */
    table t;
    pthread_mutex_t mu; /* guards the fields below and the wake-up */
    pthread_cond_t cv;
    int stopping;
    int started;
    pthread_t thread;
    tw_nodecache_stats st;
    uint64_t rng; /* backoff jitter; the cache thread's own */
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void entry_free(entry *e)
{
    if (e == NULL)
        return;
    free(e->name);
    for (size_t i = 0; i < MAX_KEYS; i++)
        free(e->vals[i]);
    free(e);
}

static size_t entry_bytes(const entry *e)
{
    size_t n = sizeof(*e) + strlen(e->name) + 1;
    for (size_t i = 0; i < MAX_KEYS; i++)
        if (e->vals[i])
            n += strlen(e->vals[i]) + 1;
    return n;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nslots; i++) {
        entry *e = t->slots[i];
        while (e) {
            entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static int table_grow(table *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 256;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of entry pointers. */
    entry **slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return TW_ENOMEM;
    for (size_t i = 0; i < t->nslots; i++) {
        entry *e = t->slots[i];
        while (e) {
            entry *next = e->next;
            size_t h = (size_t)(hash_name(e->name) & (nslots - 1));
            e->next = slots[h];
            slots[h] = e;
            e = next;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return TW_OK;
}

static entry **table_find(table *t, const char *name)
{
    if (t->nslots == 0)
        return NULL;
    entry **pp = &t->slots[hash_name(name) & (t->nslots - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return pp;
    return NULL;
}

/* Inserts or replaces e (taking ownership, even on failure). */
static int table_put(table *t, entry *e)
{
    if (e == NULL)
        return TW_EINVAL;
    entry **pp = table_find(t, e->name);
    if (pp) {
        entry *old = *pp;
        e->next = old->next;
        *pp = e;
        t->bytes -= entry_bytes(old);
        t->bytes += entry_bytes(e);
        entry_free(old);
        return TW_OK;
    }
    if ((t->n + 1) * 4 > t->nslots * 3 && table_grow(t) != TW_OK) {
        entry_free(e);
        return TW_ENOMEM;
    }
    size_t h = (size_t)(hash_name(e->name) & (t->nslots - 1));
    e->next = t->slots[h];
    t->slots[h] = e;
    t->n++;
    t->bytes += entry_bytes(e);
    return TW_OK;
}

static void table_del(table *t, const char *name)
{
    entry **pp = table_find(t, name);
    if (pp == NULL)
        return;
    entry *e = *pp;
    *pp = e->next;
    t->n--;
    t->bytes -= entry_bytes(e);
    entry_free(e);
}

static const char *str_field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * Builds an entry from an object's metadata (a Node or PartialObjectMetadata).
 * Only the kept keys with valid label values are copied. Returns 0 and *out,
 * TW_EPARSE or TW_ENOMEM.
 */
static int entry_from_object(tw_nodecache *c, const cJSON *obj, entry **out, char *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(meta))
        return tw_seterr(err, TW_EPARSE, "object has no metadata");
    const char *name = str_field(meta, "name");
    if (name == NULL || *name == '\0' || strlen(name) > 253)
        return tw_seterr(err, TW_EPARSE, "object has no valid metadata.name");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (labels != NULL && !cJSON_IsObject(labels) && !cJSON_IsNull(labels))
        return tw_seterr(err, TW_EPARSE, "node %s: metadata.labels is not an object", name);
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return TW_ENOMEM;
    }
    for (size_t i = 0; i < c->nkeys; i++) {
        const char *v = cJSON_IsObject(labels) ? str_field(labels, c->o.keys[i]) : NULL;
        if (v == NULL || !tw_label_value_valid(v))
            continue;
        if ((e->vals[i] = strdup(v)) == NULL) {
            entry_free(e);
            return TW_ENOMEM;
        }
    }
    *out = e;
    return TW_OK;
}

static void copy_rv(const cJSON *meta, char rv[64])
{
    const char *s = cJSON_IsObject(meta) ? str_field(meta, "resourceVersion") : NULL;
    if (s && strlen(s) < 64)
        snprintf(rv, 64, "%s", s);
}

/* Parses one page of a list into t (adding to it). */
static int parse_list(tw_nodecache *c, const char *json, size_t len, table *t, char rv[64],
                      char cont[1024], char *err)
{
    int rc = TW_OK;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        rc = tw_seterr(err, TW_EPARSE, "the node list is not a JSON object");
        goto out;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsArray(items) && !cJSON_IsNull(items)) {
        rc = tw_seterr(err, TW_EPARSE, "the node list has no items array");
        goto out;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    copy_rv(meta, rv);
    if (cont) {
        const char *s = cJSON_IsObject(meta) ? str_field(meta, "continue") : NULL;
        snprintf(cont, 1024, "%s", s && strlen(s) < 1024 ? s : "");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        entry *e = NULL;
        rc = entry_from_object(c, it, &e, err);
        if (rc != TW_OK)
            goto out;
        rc = table_put(t, e);
        if (rc != TW_OK)
            goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

static void swap_table(tw_nodecache *c, table *t)
{
    pthread_rwlock_wrlock(&c->lock);
    table old = c->t;
    c->t = *t;
    pthread_rwlock_unlock(&c->lock);
    table_free(&old);
    memset(t, 0, sizeof(*t));
}

int tw_nodecache_apply_list(tw_nodecache *c, const char *json, size_t len, char rv[64], char *err)
{
    table t = {0};
    char got[64] = "";
    int rc = parse_list(c, json, len, &t, got, NULL, err);
    if (rc != TW_OK) {
        table_free(&t);
        return rc;
    }
    swap_table(c, &t);
    snprintf(rv, 64, "%s", got);
    return TW_OK;
}

int tw_nodecache_apply_event(tw_nodecache *c, const char *line, size_t len, char rv[64], char *err)
{
    int rc = TW_OK;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    if (!cJSON_IsObject(ev)) {
        rc = tw_seterr(err, TW_EPARSE, "watch event is not a JSON object");
        goto out;
    }
    const char *type = str_field(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (type == NULL || !cJSON_IsObject(obj)) {
        rc = tw_seterr(err, TW_EPARSE, "watch event has no type or object");
        goto out;
    }
    if (strcmp(type, "ERROR") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        const char *msg = str_field(obj, "message");
        if (cJSON_IsNumber(code) && code->valuedouble == 410)
            rc = tw_seterr(err, TW_EGONE, "watch expired: %s", msg ? msg : "410 Gone");
        else
            rc = tw_seterr(err, TW_EHTTP, "watch error: %s", msg ? msg : "unknown");
        goto out;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (strcmp(type, "BOOKMARK") == 0) {
        copy_rv(meta, rv);
        goto out;
    }
    if (strcmp(type, "DELETED") == 0) {
        const char *name = cJSON_IsObject(meta) ? str_field(meta, "name") : NULL;
        if (name == NULL) {
            rc = tw_seterr(err, TW_EPARSE, "DELETED event without metadata.name");
            goto out;
        }
        pthread_rwlock_wrlock(&c->lock);
        table_del(&c->t, name);
        pthread_rwlock_unlock(&c->lock);
    } else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        entry *e = NULL;
        rc = entry_from_object(c, obj, &e, err);
        if (rc != TW_OK)
            goto out;
        pthread_rwlock_wrlock(&c->lock);
        rc = table_put(&c->t, e);
        pthread_rwlock_unlock(&c->lock);
        if (rc != TW_OK)
            goto out;
    } else {
        rc = tw_seterr(err, TW_EPARSE, "unknown watch event type");
        goto out;
    }
    copy_rv(meta, rv);
    pthread_mutex_lock(&c->mu);
    c->st.events++;
    pthread_mutex_unlock(&c->mu);
out:
    cJSON_Delete(ev);
    return rc;
}

tw_nodecache *tw_nodecache_new(const tw_nodecache_options *o)
{
    tw_nodecache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->o = *o;
    if (c->o.watch_timeout_s <= 0)
        c->o.watch_timeout_s = 300;
    while (o->keys && o->keys[c->nkeys] && c->nkeys < MAX_KEYS)
        c->nkeys++;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    return c;
}

static void say(tw_nodecache *c, int level, const char *msg, const char *detail)
{
    if (c->o.log)
        c->o.log(c->o.log_ud, level, msg, detail);
}

static int stopping(tw_nodecache *c)
{
    pthread_mutex_lock(&c->mu);
    int s = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* Sleeps ms unless the cache is stopped first. */
static void pause_ms(tw_nodecache *c, long ms)
{
    struct timespec ts = tw_monotonic_in(ms);
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&c->mu);
}

static void count(tw_nodecache *c, uint64_t *field)
{
    pthread_mutex_lock(&c->mu);
    (*field)++;
    pthread_mutex_unlock(&c->mu);
}

/* LISTs every node page by page into a new table and swaps it in. */
static int do_list(tw_nodecache *c, tw_kube_client *kc, char rv[64], char *err)
{
    table t = {0};
    char cont[1024] = "";
    int rc = TW_OK;
    do {
        char path[1400];
        snprintf(path, sizeof(path), "/api/v1/nodes?limit=%d%s%s", LIST_PAGE,
                 cont[0] ? "&continue=" : "", cont);
        tw_http_response resp;
        tw_http_response_init(&resp);
        count(c, &c->st.lists);
        rc = tw_kube_do(kc, "GET", path, ACCEPT_META, NULL, NULL, 0,
                        tw_deadline_in(LIST_TIMEOUT_MS), &resp, err);
        if (rc == TW_OK)
            rc = parse_list(c, resp.body.data, resp.body.len, &t, rv, cont, err);
        tw_http_response_free(&resp);
    } while (rc == TW_OK && cont[0] != '\0' && !stopping(c));
    if (rc == TW_OK) {
        swap_table(c, &t);
        pthread_mutex_lock(&c->mu);
        c->st.ready = 1;
        pthread_mutex_unlock(&c->mu);
    }
    table_free(&t);
    return rc;
}

typedef struct watch_ctx {
    tw_nodecache *c;
    char rv[64];
    int gone;
} watch_ctx;

static int on_watch_line(void *ud, const char *line, size_t len)
{
    watch_ctx *w = ud;
    char err[TW_ERRLEN] = "";
    int rc = tw_nodecache_apply_event(w->c, line, len, w->rv, err);
    if (rc == TW_EGONE) {
        w->gone = 1;
        return 1;
    }
    if (rc != TW_OK)
        say(w->c, 2, "ignored a watch event", err);
    return stopping(w->c);
}

/* A wait between backoff/2 and backoff, from a small xorshift generator (no rand()). */
static long jittered(tw_nodecache *c, long backoff)
{
    uint64_t x = c->rng ? c->rng : (tw_now_ms() | 1) * 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return backoff / 2 + (long)(x % (uint64_t)(backoff / 2 + 1));
}

static int should_abort(void *ud)
{
    return stopping(ud);
}

static void *cache_thread(void *arg)
{
    tw_nodecache *c = arg;
    tw_kube_client *kc = tw_kube_client_new(c->o.kube, c->o.user_agent);
    char rv[64] = "";
    int need_list = 1;
    long backoff = BACKOFF_MIN_MS;
    while (kc && !stopping(c)) {
        char err[TW_ERRLEN] = "";
        if (need_list) {
            int rc = do_list(c, kc, rv, err);
            if (rc != TW_OK) {
                count(c, &c->st.errors);
                say(c, 2, "node LIST failed", err);
                pause_ms(c, jittered(c, backoff));
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            need_list = 0;
            say(c, 1, "node cache synced", rv);
        }
        char path[512];
        snprintf(path, sizeof(path),
                 "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=%s"
                 "&timeoutSeconds=%ld",
                 rv, c->o.watch_timeout_s);
        watch_ctx w = {.c = c};
        snprintf(w.rv, sizeof(w.rv), "%s", rv);
        count(c, &c->st.watches);
        uint64_t started = tw_now_ms();
        int rc = tw_kube_stream_lines(kc, path, ACCEPT_WATCH,
                                      tw_deadline_in((c->o.watch_timeout_s + 30) * 1000),
                                      MAX_EVENT_LINE, on_watch_line, &w, should_abort, c, err);
        snprintf(rv, sizeof(rv), "%s", w.rv);
        if (stopping(c))
            break;
        if (w.gone || rc == TW_EGONE) {
            count(c, &c->st.relists);
            say(c, 1, "watch expired; listing again", rv);
            need_list = 1;
            continue;
        }
        if (rc != TW_OK) {
            count(c, &c->st.errors);
            say(c, 2, "node WATCH failed", err);
        }
        /* A watch that ran a good while was healthy: resume at once. */
        if (rc == TW_OK || tw_now_ms() - started > 30000) {
            backoff = BACKOFF_MIN_MS;
            continue;
        }
        pause_ms(c, jittered(c, backoff));
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    tw_kube_client_free(kc);
    return NULL;
}

int tw_nodecache_start(tw_nodecache *c)
{
    if (c->o.kube == NULL || c->nkeys == 0)
        return TW_EINVAL;
    if (pthread_create(&c->thread, NULL, cache_thread, c) != 0)
        return TW_ENOMEM;
    c->started = 1;
    return TW_OK;
}

int tw_nodecache_ready(tw_nodecache *c)
{
    pthread_mutex_lock(&c->mu);
    int r = c->st.ready;
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int copy_entry(tw_nodecache *c, const entry *e, tw_kvlist *out)
{
    tw_kvlist l = {0};
    for (size_t i = 0; i < c->nkeys; i++) {
        if (e->vals[i] && tw_kvlist_set(&l, c->o.keys[i], e->vals[i]) != TW_OK) {
            tw_kvlist_free(&l);
            return TW_ENOMEM;
        }
    }
    *out = l;
    return TW_OK;
}

int tw_nodecache_get(tw_nodecache *c, const char *node, uint64_t deadline, tw_kvlist *out,
                     char *err)
{
    int rc = TW_ENOTFOUND;
    pthread_rwlock_rdlock(&c->lock);
    entry **pp = table_find(&c->t, node);
    if (pp)
        rc = copy_entry(c, *pp, out);
    pthread_rwlock_unlock(&c->lock);
    if (pp)
        return rc;
    if (c->o.kube == NULL)
        return tw_seterr(err, TW_ENOTFOUND, "node %s is not in the cache", node);

    /* Not cached (just created, or the watch lags): ask once, within the deadline. */
    count(c, &c->st.gets);
    tw_kube_client *kc = tw_kube_client_new(c->o.kube, c->o.user_agent);
    if (kc == NULL)
        return TW_ENOMEM;
    tw_kvlist labels = {0};
    rc = tw_kube_get_node_labels(kc, node, deadline, &labels, err);
    tw_kube_client_free(kc);
    if (rc != TW_OK)
        return rc;
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(node)) == NULL) {
        free(e);
        tw_kvlist_free(&labels);
        return TW_ENOMEM;
    }
    for (size_t i = 0; i < c->nkeys; i++) {
        const char *v = tw_kvlist_get(&labels, c->o.keys[i]);
        if (v && tw_label_value_valid(v))
            e->vals[i] = strdup(v);
    }
    tw_kvlist_free(&labels);
    rc = copy_entry(c, e, out);
    pthread_rwlock_wrlock(&c->lock);
    if (table_find(&c->t, node) == NULL)
        table_put(&c->t, e); /* takes ownership */
    else
        entry_free(e);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

void tw_nodecache_stats_get(tw_nodecache *c, tw_nodecache_stats *s)
{
    pthread_mutex_lock(&c->mu);
    *s = c->st;
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_rdlock(&c->lock);
    s->nodes = c->t.n;
    s->bytes = c->t.bytes + c->t.nslots * sizeof(entry *);
    pthread_rwlock_unlock(&c->lock);
}

void tw_nodecache_free(tw_nodecache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->thread, NULL);
    table_free(&c->t);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
