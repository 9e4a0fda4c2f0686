/* nodecache.c - node topology labels kept in memory by LIST + WATCH. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/jitter.h"
#include "topowire/json.h"
#include "topowire/kube.h"
#include "topowire/label.h"
#include "topowire/nodecache.h"

#include "nodecache_int.h"

#define ACCEPT_META                                                                                \
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#define ACCEPT_WATCH    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define LIST_PAGE       500
#define LIST_TIMEOUT_MS 60000
#define MAX_EVENT_LINE  (4u << 20)
#define MAX_KEYS        32
/* A watch that ends sooner than this having delivered nothing is a failure (client-go's rule). */
#define SHORT_WATCH_MS 1000
/* A direct GET gets at least this long, and this long when the caller set no deadline. */
#define FETCH_MIN_MS     1000L
#define FETCH_DEFAULT_MS 5000L
/*
 * Beyond the callers allowed to wait for a lookup's answer, others may wait
 * this long after it was asked for, unless the API server is in trouble (a
 * lookup running longer than this, or one that failed lately): a healthy one
 * answers in milliseconds, so a burst of bindings to a new node all get it.
 */
/* Lookups queued or running at most; more are answered at once. */
#define FETCH_QUEUE_MAX 64
#define MAX_FETCHERS    8
/* Failed lookups remembered at most (the oldest make room). */
#define NEGATIVE_MAX 256

typedef struct entry {
    char *name;
    char *vals[MAX_KEYS]; /* values of the kept keys, NULL when absent */
    uint64_t got_ms;      /* when a direct GET brought it; 0 when the LIST or watch did */
    struct entry *next;
} entry;

typedef struct table {
    entry **slots;
    size_t nslots;
    size_t n;
    size_t bytes;
} table;

/* One node's direct lookup: queued, then run by a fetcher; waiters share it. */
typedef struct fetch {
    struct fetch *next;
    char name[TW_DNS_SUBDOMAIN_MAX + 1];
    uint64_t deadline;
    uint64_t created_ms, started_ms;
    int running, done;
    int rc;
    char err[TW_ERRLEN];
    tw_kvlist labels; /* the kept labels, when rc is 0 */
    unsigned refs;    /* the queue's, and each waiter's */
} fetch;

/* A failed lookup, answered again without asking until `until`. */
typedef struct negative {
    char name[TW_DNS_SUBDOMAIN_MAX + 1];
    int rc;
    char err[TW_ERRLEN];
    uint64_t until;
} negative;

struct tw_nodecache {
    tw_nodecache_options o;
    size_t nkeys;
    pthread_rwlock_t lock; /* guards t */
    table t;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* the cache thread's sleep; fetchers' work; lookups' answers */
    int stopping;
    int started;
    pthread_t thread;
    tw_nodecache_stats st;
    uint64_t created_ms;
    uint64_t heard_ms; /* last time the API server was heard from; 0 = never */
    fetch *fetches;    /* queued and running lookups */
    size_t nfetches;
    unsigned waiting;       /* lookups waiting for an answer until their deadline now */
    uint64_t trouble_until; /* a lookup failed lately: no quick waits until then */
    pthread_t fetchers[MAX_FETCHERS];
    unsigned nfetchers;
    negative *neg; /* NEGATIVE_MAX slots */
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
    /* Slots are a power of two, so the mask is an index in range. */
    TW_ASSERT(t->nslots > 0 && (t->nslots & (t->nslots - 1)) == 0);
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
    TW_ASSERT(t->n > 0);
    t->n--;
    t->bytes -= entry_bytes(e);
    entry_free(e);
}

static const char *str_field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Makes an entry for name with the kept, valid values of labels (looked up by get). */
static int entry_build(tw_nodecache *c, const char *name, const void *src,
                       const char *(*get)(const void *src, const char *key), entry **out)
{
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return TW_ENOMEM;
    }
    TW_ASSERT(c->nkeys <= MAX_KEYS); /* vals[] has a slot per kept key */
    for (size_t i = 0; i < c->nkeys; i++) {
        const char *v = get(src, c->o.keys[i]);
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

static const char *json_label(const void *labels, const char *key)
{
    return cJSON_IsObject((const cJSON *)labels) ? str_field(labels, key) : NULL;
}

static const char *kv_label(const void *labels, const char *key)
{
    return tw_kvlist_get(labels, key);
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
    if (name == NULL || *name == '\0' || strlen(name) > TW_DNS_SUBDOMAIN_MAX)
        return tw_seterr(err, TW_EPARSE, "object has no valid metadata.name");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (labels != NULL && !cJSON_IsObject(labels) && !cJSON_IsNull(labels))
        return tw_seterr(err, TW_EPARSE, "node %s: metadata.labels is not an object", name);
    return entry_build(c, name, labels, json_label, out);
}

/*
 * Reads metadata.resourceVersion of meta (when it has one) into rv. Returns 0,
 * or TW_ETOOBIG, leaving rv alone, when it is over TW_NODECACHE_RV_MAX bytes.
 */
static int read_rv(const cJSON *meta, const char **rv, char *err)
{
    const char *s = cJSON_IsObject(meta) ? str_field(meta, "resourceVersion") : NULL;
    size_t n = s ? strlen(s) : 0;
    if (n > TW_NODECACHE_RV_MAX)
        return tw_seterr(err, TW_ETOOBIG, "a resourceVersion of %zu bytes (at most %d accepted)", n,
                         TW_NODECACHE_RV_MAX);
    *rv = s;
    return TW_OK;
}

static void set_rv(char rv[TW_NODECACHE_RV_MAX + 1], const char *s)
{
    if (s != NULL)
        snprintf(rv, TW_NODECACHE_RV_MAX + 1, "%s", s);
}

/*
 * Parses one page of a list into t (adding to it); rv and *cont (a new
 * string, or NULL on the last page; cont may be NULL) receive the page's
 * resourceVersion and continue token.
 */
static int parse_list(tw_nodecache *c, const char *json, size_t len, table *t,
                      char rv[TW_NODECACHE_RV_MAX + 1], char **cont, char *err)
{
    int rc = TW_OK;
    const char *got_rv = NULL;
    cJSON *root = NULL;
    /* tw_json_parse: an escaped NUL must not cut a label value short. */
    if (tw_json_parse(json, len, &root, NULL) == TW_ENOMEM) {
        rc = TW_ENOMEM;
        goto out;
    }
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
    if ((rc = read_rv(meta, &got_rv, err)) != TW_OK)
        goto out;
    const char *s = cJSON_IsObject(meta) ? str_field(meta, "continue") : NULL;
    if (s && strlen(s) > TW_NODECACHE_CONTINUE_MAX) {
        rc = tw_seterr(err, TW_ETOOBIG, "the node list's continue token is %zu bytes (at most %d)",
                       strlen(s), TW_NODECACHE_CONTINUE_MAX);
        goto out;
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
    if (cont != NULL) {
        *cont = NULL;
        if (s && *s && (*cont = strdup(s)) == NULL) {
            rc = TW_ENOMEM;
            goto out;
        }
    }
    set_rv(rv, got_rv);
out:
    cJSON_Delete(root);
    return rc;
}

/* Records that the API server was heard from at `when` (never moving back). */
static void heard_at(tw_nodecache *c, uint64_t when, int listed)
{
    pthread_mutex_lock(&c->mu);
    if (when > c->heard_ms)
        c->heard_ms = when;
    if (listed)
        c->st.listed = 1;
    pthread_mutex_unlock(&c->mu);
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

int tw__nodecache_apply_list(tw_nodecache *c, const char *json, size_t len,
                             char rv[TW_NODECACHE_RV_MAX + 1], char *err)
{
    table t = {0};
    char got[TW_NODECACHE_RV_MAX + 1] = "";
    int rc = parse_list(c, json, len, &t, got, NULL, err);
    if (rc != TW_OK) {
        table_free(&t);
        return rc;
    }
    swap_table(c, &t);
    heard_at(c, tw_now_ms(), 1);
    snprintf(rv, TW_NODECACHE_RV_MAX + 1, "%s", got);
    return TW_OK;
}

int tw__nodecache_apply_event(tw_nodecache *c, const char *line, size_t len,
                              char rv[TW_NODECACHE_RV_MAX + 1], char *err)
{
    int rc = TW_OK;
    const char *got_rv = NULL;
    cJSON *ev = NULL;
    if (tw_json_parse(line, len, &ev, NULL) == TW_ENOMEM) {
        rc = TW_ENOMEM;
        goto out;
    }
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
    if ((rc = read_rv(meta, &got_rv, err)) != TW_OK)
        goto out;
    if (strcmp(type, "BOOKMARK") == 0) {
        set_rv(rv, got_rv);
        heard_at(c, tw_now_ms(), 0);
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
    set_rv(rv, got_rv);
    heard_at(c, tw_now_ms(), 0);
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
    if ((c->neg = calloc(NEGATIVE_MAX, sizeof(*c->neg))) == NULL) {
        free(c);
        return NULL;
    }
    c->o = *o;
    if (c->o.max_age_ms <= 0)
        c->o.max_age_ms = TW_NODECACHE_MAX_AGE_MS;
    if (c->o.watch_timeout_s <= 0) {
        /* Servers end a watch on time and send a bookmark just before: both are news. */
        long s = c->o.max_age_ms / 2000;
        c->o.watch_timeout_s = s < 10 ? 10 : s > 300 ? 300 : s;
    }
    if (c->o.negative_ms <= 0)
        c->o.negative_ms = TW_NODECACHE_NEGATIVE_MS;
    if (c->o.fetchers == 0)
        c->o.fetchers = TW_NODECACHE_FETCHERS;
    if (c->o.fetchers > MAX_FETCHERS)
        c->o.fetchers = MAX_FETCHERS;
    if (c->o.waiters == 0)
        c->o.waiters = TW_NODECACHE_WAITERS;
    if (c->o.quick_wait_ms <= 0)
        c->o.quick_wait_ms = TW_NODECACHE_QUICK_WAIT_MS;
    while (o->keys && o->keys[c->nkeys] && c->nkeys < MAX_KEYS)
        c->nkeys++;
    c->created_ms = tw_now_ms();
    c->st.backoff_ms = TW_NODECACHE_BACKOFF_MIN_MS;
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

static int should_abort(void *ud)
{
    return stopping(ud);
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

/* Fresh: listed, and heard from the API server within max_age. Caller holds mu. */
static int fresh_locked(const tw_nodecache *c, uint64_t now)
{
    return c->st.listed && c->heard_ms != 0 && now - c->heard_ms <= (uint64_t)c->o.max_age_ms;
}

/* LISTs every node page by page into a new table and swaps it in. */
static int do_list(tw_nodecache *c, tw_kube_client *kc, char rv[TW_NODECACHE_RV_MAX + 1], char *err)
{
    table t = {0};
    char *cont = NULL;
    char got[TW_NODECACHE_RV_MAX + 1] = "";
    uint64_t started = tw_now_ms();
    int rc = TW_OK;
    do {
        tw_buf path;
        tw_buf_init(&path, 4 * TW_NODECACHE_CONTINUE_MAX);
        rc = tw_buf_printf(&path, "/api/v1/nodes?limit=%d%s", LIST_PAGE, cont ? "&continue=" : "");
        if (rc == TW_OK && cont != NULL)
            rc = tw_http_append_escaped(&path, cont);
        free(cont);
        cont = NULL;
        tw_http_response resp;
        tw_http_response_init(&resp);
        if (rc == TW_OK) {
            count(c, &c->st.lists);
            tw_kube_request rq = {.method = "GET",
                                  .path = tw_buf_cstr(&path),
                                  .accept = ACCEPT_META,
                                  .deadline = tw_deadline_in(LIST_TIMEOUT_MS)};
            rc = tw_kube_do(kc, &rq, &resp, err);
        }
        if (rc == TW_OK)
            rc = parse_list(c, resp.body.data, resp.body.len, &t, got, &cont, err);
        tw_http_response_free(&resp);
        tw_buf_free(&path);
    } while (rc == TW_OK && cont != NULL && !stopping(c));
    if (rc == TW_OK && cont != NULL)
        rc = tw_seterr(err, TW_ECANCELED, "stopped while listing");
    free(cont);
    if (rc == TW_OK) {
        swap_table(c, &t);
        /* The list shows the nodes as they were when it began. */
        heard_at(c, started, 1);
        snprintf(rv, TW_NODECACHE_RV_MAX + 1, "%s", got);
    }
    table_free(&t);
    return rc;
}

typedef struct watch_ctx {
    tw_nodecache *c;
    char rv[TW_NODECACHE_RV_MAX + 1];
    unsigned long delivered; /* events and bookmarks applied */
    int gone;                /* a 410 ERROR event came */
    int failed;              /* another ERROR event, or a resourceVersion over the bound */
    char err[TW_ERRLEN];
} watch_ctx;

static int on_watch_line(void *ud, const char *line, size_t len)
{
    watch_ctx *w = ud;
    char err[TW_ERRLEN] = "";
    int rc = tw__nodecache_apply_event(w->c, line, len, w->rv, err);
    if (rc == TW_OK) {
        w->delivered++;
    } else if (rc == TW_EGONE) {
        w->gone = 1;
        return 1;
    } else if (rc == TW_EHTTP || rc == TW_ETOOBIG) {
        /* The server gave up on this watch, or sent what cannot be resumed from. */
        w->failed = 1;
        snprintf(w->err, sizeof(w->err), "%s", err);
        return 1;
    } else {
        say(w->c, 2, "ignored a watch event", err);
    }
    return stopping(w->c);
}

/*
 * client-go's backoff manager: each failure waits [d, 2d) with d doubling from
 * BACKOFF_MIN up to BACKOFF_MAX; d starts over when the last failure was
 * longer than BACKOFF_RESET ago, or after a productive watch.
 */
typedef struct backoff {
    long d;
    uint64_t last_ms;
} backoff;

static long backoff_next(tw_nodecache *c, backoff *b)
{
    uint64_t now = tw_now_ms();
    if (b->d == 0 || (b->last_ms != 0 && now - b->last_ms > TW_NODECACHE_BACKOFF_RESET_MS))
        b->d = TW_NODECACHE_BACKOFF_MIN_MS;
    b->last_ms = now;
    long wait = b->d + tw_jitter(b->d - 1);
    if (wait > TW_NODECACHE_BACKOFF_MAX_MS)
        wait = TW_NODECACHE_BACKOFF_MAX_MS;
    b->d = b->d * 2 > TW_NODECACHE_BACKOFF_MAX_MS ? TW_NODECACHE_BACKOFF_MAX_MS : b->d * 2;
    pthread_mutex_lock(&c->mu);
    c->st.backoff_ms = b->d;
    pthread_mutex_unlock(&c->mu);
    return wait;
}

static void backoff_reset(tw_nodecache *c, backoff *b)
{
    b->d = TW_NODECACHE_BACKOFF_MIN_MS;
    pthread_mutex_lock(&c->mu);
    c->st.backoff_ms = b->d;
    pthread_mutex_unlock(&c->mu);
}

/* The cache thread's state between its LISTs and WATCHes. */
typedef struct syncer {
    tw_nodecache *c;
    tw_kube_client *kc;
    char rv[TW_NODECACHE_RV_MAX + 1]; /* where the next watch starts */
    int need_list;
    backoff b;
    tw_buf path; /* the WATCH request's path */
} syncer;

/* LISTs the nodes. Returns 1 when listed; 0 when it failed (after the backoff) or stopped. */
static int sync_list(syncer *s)
{
    tw_nodecache *c = s->c;
    char err[TW_ERRLEN] = "";
    int rc = do_list(c, s->kc, s->rv, err);
    if (stopping(c))
        return 0;
    if (rc != TW_OK) {
        count(c, &c->st.errors);
        say(c, 2, "node LIST failed", err);
        pause_ms(c, backoff_next(c, &s->b));
        return 0;
    }
    s->need_list = 0;
    say(c, 1, "node cache synced", s->rv);
    return 1;
}

/* Builds the WATCH path from s->rv into s->path. Returns 0, TW_ETOOBIG or TW_ENOMEM. */
static int watch_path(syncer *s)
{
    tw_buf_reset(&s->path);
    int rc = tw_buf_puts(&s->path, "/api/v1/nodes?watch=1&allowWatchBookmarks=true"
                                   "&resourceVersion=");
    if (rc == TW_OK)
        rc = tw_http_append_escaped(&s->path, s->rv);
    if (rc == TW_OK)
        rc = tw_buf_printf(&s->path, "&timeoutSeconds=%ld", s->c->o.watch_timeout_s);
    return rc;
}

/*
 * Decides what follows a watch that ended with rc (err its message) after
 * running ran ms; changes: events were applied meanwhile.
 */
static void watch_ended(syncer *s, const watch_ctx *w, int rc, uint64_t ran, int changes,
                        char err[TW_ERRLEN])
{
    tw_nodecache *c = s->c;
    if (w->delivered > 0)
        backoff_reset(c, &s->b); /* it made progress: whatever ended it, start over */
    if (w->gone || rc == TW_EGONE) {
        count(c, &c->st.relists);
        say(c, 1, "watch expired; listing again", s->rv);
        s->need_list = 1;
        pause_ms(c, backoff_next(c, &s->b));
        return;
    }
    if (w->failed) {
        rc = TW_EHTTP;
        snprintf(err, TW_ERRLEN, "%s", w->err);
    }
    if (rc == TW_OK && (w->delivered > 0 || ran >= SHORT_WATCH_MS)) {
        if (w->delivered == 0)
            heard_at(c, tw_now_ms(), 0); /* ended on time by the server: nothing was missed */
        return;
    }
    if (changes && !w->failed) {
        /*
         * Cut after delivering changes: resume at once. Each such resume
         * consumed a change, so they come no faster than the nodes change.
         */
        count(c, &c->st.errors);
        say(c, 1, "node WATCH cut after delivering changes; resuming", err);
        return;
    }
    count(c, &c->st.errors);
    if (rc == TW_OK)
        say(c, 2, "node WATCH ended at once with nothing delivered", s->rv);
    else
        say(c, 2, "node WATCH failed", err);
    pause_ms(c, backoff_next(c, &s->b));
}

/* Runs one WATCH from s->rv, applying its events, and decides what comes next. */
static void sync_watch(syncer *s)
{
    tw_nodecache *c = s->c;
    int prc = watch_path(s);
    if (prc != TW_OK) {
        say(c, 2, "cannot build the WATCH request", tw_strerror(prc));
        pause_ms(c, backoff_next(c, &s->b));
        return;
    }
    watch_ctx w = {.c = c};
    snprintf(w.rv, sizeof(w.rv), "%s", s->rv);
    pthread_mutex_lock(&c->mu);
    c->st.watches++;
    uint64_t events_before = c->st.events;
    pthread_mutex_unlock(&c->mu);
    uint64_t started = tw_now_ms();
    char err[TW_ERRLEN] = "";
    tw_kube_request req = {.method = "GET",
                           .path = tw_buf_cstr(&s->path),
                           .accept = ACCEPT_WATCH,
                           .deadline = tw_deadline_in((c->o.watch_timeout_s + 30) * 1000)};
    tw_kube_stream st = {.max_line = MAX_EVENT_LINE,
                         .on_line = on_watch_line,
                         .ud = &w,
                         .should_abort = should_abort,
                         .abort_ud = c};
    int rc = tw_kube_stream_lines(s->kc, &req, &st, err);
    snprintf(s->rv, sizeof(s->rv), "%s", w.rv);
    if (stopping(c))
        return;
    uint64_t ran = tw_now_ms() - started;
    pthread_mutex_lock(&c->mu);
    int changes = c->st.events != events_before;
    pthread_mutex_unlock(&c->mu);
    watch_ended(s, &w, rc, ran, changes, err);
}

static void *cache_thread(void *arg)
{
    syncer s = {.c = arg, .need_list = 1};
    s.kc = tw_kube_client_new(s.c->o.kube, s.c->o.user_agent);
    if (s.kc != NULL)
        tw_kube_client_set_abort(s.kc, should_abort, s.c);
    tw_buf_init(&s.path, 2048);
    while (s.kc && !stopping(s.c)) {
        if (s.need_list && !sync_list(&s))
            continue;
        sync_watch(&s);
    }
    tw_buf_free(&s.path);
    tw_kube_client_free(s.kc);
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
    int r = fresh_locked(c, tw_now_ms());
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

/* ---- direct lookups ---------------------------------------------------------------------- */

/* Copies src into *out (a new list; written only on success). Returns 0 or TW_ENOMEM. */
static int kvlist_copy(const tw_kvlist *src, tw_kvlist *out)
{
    tw_kvlist l = {0};
    for (size_t i = 0; i < src->n; i++) {
        if (tw_kvlist_set(&l, src->items[i].key, src->items[i].value) != TW_OK) {
            tw_kvlist_free(&l);
            return TW_ENOMEM;
        }
    }
    *out = l;
    return TW_OK;
}

/* Caller holds mu. */
static negative *negative_find(tw_nodecache *c, const char *node, uint64_t now)
{
    for (size_t i = 0; i < NEGATIVE_MAX; i++)
        if (c->neg[i].until > now && strcmp(c->neg[i].name, node) == 0)
            return &c->neg[i];
    return NULL;
}

/* Remembers a failed lookup, in the slot of the same node or the one that expires first. */
static void negative_put(tw_nodecache *c, const fetch *f, uint64_t now)
{
    negative *slot = &c->neg[0];
    for (size_t i = 0; i < NEGATIVE_MAX; i++) {
        negative *n = &c->neg[i];
        if (strcmp(n->name, f->name) == 0 || n->until <= now) {
            slot = n;
            break;
        }
        if (n->until < slot->until)
            slot = n;
    }
    snprintf(slot->name, sizeof(slot->name), "%s", f->name);
    slot->rc = f->rc;
    snprintf(slot->err, sizeof(slot->err), "%s", f->err);
    slot->until = now + (uint64_t)c->o.negative_ms;
}

static void fetch_unref(fetch *f)
{
    TW_ASSERT(f->refs > 0);
    if (--f->refs > 0)
        return;
    tw_kvlist_free(&f->labels);
    free(f);
}

/* Caches a fetched entry: over an older fetched one, or any when the cache is stale. */
static void keep_fetched(tw_nodecache *c, entry *e)
{
    pthread_mutex_lock(&c->mu);
    int fresh = fresh_locked(c, tw_now_ms());
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_wrlock(&c->lock);
    entry **pp = table_find(&c->t, e->name);
    if (pp == NULL || !fresh || (*pp)->got_ms != 0)
        table_put(&c->t, e); /* takes ownership */
    else
        entry_free(e); /* the watch has it, and knows better */
    pthread_rwlock_unlock(&c->lock);
}

/* Runs one lookup (mu not held): fills f's outcome. */
static void run_fetch(tw_nodecache *c, tw_kube_client *kc, fetch *f)
{
    tw_kvlist labels = {0};
    entry *e = NULL;
    uint64_t deadline = f->deadline;
    if (tw_remaining_ms(deadline) < FETCH_MIN_MS)
        deadline = tw_deadline_in(FETCH_MIN_MS);
    int rc = kc ? tw_kube_get_node_labels(kc, f->name, deadline, &labels, f->err) : TW_ENOMEM;
    if (rc == TW_OK)
        rc = entry_build(c, f->name, &labels, kv_label, &e);
    if (rc == TW_OK)
        rc = copy_entry(c, e, &f->labels);
    if (rc == TW_OK) {
        e->got_ms = tw_now_ms();
        keep_fetched(c, e);
    } else {
        entry_free(e);
        if (f->err[0] == '\0')
            snprintf(f->err, sizeof(f->err), "%s", tw_strerror(rc));
    }
    tw_kvlist_free(&labels);
    f->rc = rc;
}

static void *fetcher_thread(void *arg)
{
    tw_nodecache *c = arg;
    tw_kube_client *kc = tw_kube_client_new(c->o.kube, c->o.user_agent);
    if (kc != NULL)
        tw_kube_client_set_abort(kc, should_abort, c);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        fetch *f = c->fetches;
        while (f && f->running)
            f = f->next;
        if (c->stopping)
            break;
        if (f == NULL) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        TW_ASSERT(!f->done);
        f->running = 1;
        f->started_ms = tw_now_ms();
        c->st.gets++;
        pthread_mutex_unlock(&c->mu);
        run_fetch(c, kc, f);
        pthread_mutex_lock(&c->mu);
        uint64_t now = tw_now_ms();
        if (f->rc != TW_OK && f->rc != TW_ECANCELED)
            negative_put(c, f, now);
        if (f->rc != TW_OK && f->rc != TW_ECANCELED && f->rc != TW_ENOTFOUND && f->rc != TW_EINVAL)
            c->trouble_until = now + (uint64_t)c->o.negative_ms;
        TW_ASSERT(f->running && !f->done); /* queued -> running -> done, once */
        f->done = 1;
        for (fetch **pp = &c->fetches; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        TW_ASSERT(c->nfetches > 0);
        c->nfetches--;
        fetch_unref(f);
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    tw_kube_client_free(kc);
    return NULL;
}

/* True when lookups are slow or failing now (caller holds mu). */
static int in_trouble(const tw_nodecache *c, uint64_t now)
{
    if (now < c->trouble_until)
        return 1;
    for (const fetch *f = c->fetches; f; f = f->next)
        if (f->running && now - f->started_ms > (uint64_t)c->o.quick_wait_ms)
            return 1;
    return 0;
}

/*
 * Finds the lookup of node, or queues a new one (starting fetchers as
 * needed), into *out. Caller holds mu. Returns 0, TW_ERETRY when too many
 * are pending, or TW_ENOMEM.
 */
static int fetch_find_or_queue(tw_nodecache *c, const char *node, uint64_t deadline, uint64_t now,
                               fetch **out, char *err)
{
    fetch *f = c->fetches;
    while (f && strcmp(f->name, node) != 0)
        f = f->next;
    if (f != NULL) {
        *out = f;
        return TW_OK;
    }
    if (c->nfetches >= FETCH_QUEUE_MAX) {
        c->st.skipped++;
        tw_seterr(err, TW_ERETRY, "node %s is not in the cache, and %zu direct lookups are pending",
                  node, c->nfetches);
        return TW_ERETRY;
    }
    while (c->nfetchers < c->o.fetchers &&
           pthread_create(&c->fetchers[c->nfetchers], NULL, fetcher_thread, c) == 0)
        c->nfetchers++;
    TW_ASSERT(c->nfetchers <= MAX_FETCHERS);
    if (c->nfetchers == 0 || (f = calloc(1, sizeof(*f))) == NULL)
        return TW_ENOMEM;
    snprintf(f->name, sizeof(f->name), "%s", node);
    f->deadline = deadline;
    f->created_ms = now;
    f->refs = 1;
    f->next = c->fetches;
    c->fetches = f;
    c->nfetches++;
    pthread_cond_broadcast(&c->cv);
    *out = f;
    return TW_OK;
}

/*
 * Waits for f's answer (caller holds mu): until the deadline for the first
 * waiters, only briefly for the rest, and not at all for those when the API
 * server is in trouble. Returns f's outcome with a copy of its labels in *out,
 * or TW_ERETRY / TW_ETIMEDOUT when the answer was not waited for.
 */
static int fetch_wait(tw_nodecache *c, fetch *f, const char *node, uint64_t deadline, uint64_t now,
                      tw_kvlist *out, char *err)
{
    int rc;
    int quick = c->waiting >= c->o.waiters;
    uint64_t until = deadline;
    if (quick) {
        until = f->created_ms + (uint64_t)c->o.quick_wait_ms;
        if (until > deadline)
            until = deadline;
        if (in_trouble(c, now) || until <= now) {
            c->st.skipped++;
            return tw_seterr(err, TW_ERETRY,
                             "node %s is not in the cache; its lookup goes on without this "
                             "request (%u already waiting)",
                             node, c->waiting);
        }
    } else {
        c->waiting++;
    }
    f->refs++;
    struct timespec ts = tw_monotonic_in(until > now ? (long)(until - now) : 0);
    while (!f->done && !c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    if (!quick) {
        TW_ASSERT(c->waiting > 0);
        c->waiting--;
    }
    if (!f->done && quick) {
        c->st.skipped++;
        rc = tw_seterr(err, TW_ERETRY,
                       "node %s is not in the cache; no answer in %ld ms, its lookup goes on "
                       "without this request",
                       node, c->o.quick_wait_ms);
    } else if (!f->done)
        rc = tw_seterr(err, TW_ETIMEDOUT, "no answer about node %s within the deadline", node);
    else if ((rc = f->rc) == TW_OK)
        rc = kvlist_copy(&f->labels, out);
    else
        tw_seterr(err, rc, "%s", f->err);
    fetch_unref(f);
    return rc;
}

/* Asks the API server about node (not cached, or only in a stale cache). */
static int lookup_remote(tw_nodecache *c, const char *node, uint64_t deadline, tw_kvlist *out,
                         char *err)
{
    if (strlen(node) > TW_DNS_SUBDOMAIN_MAX)
        return tw_seterr(err, TW_EINVAL, "node name of %zu bytes is not a valid node name",
                         strlen(node));
    if (deadline == 0)
        deadline = tw_deadline_in(FETCH_DEFAULT_MS);
    int rc;
    fetch *f = NULL;
    pthread_mutex_lock(&c->mu);
    uint64_t now = tw_now_ms();
    const negative *n = negative_find(c, node, now);
    if (n != NULL) {
        c->st.skipped++;
        rc = tw_seterr(err, n->rc, "%s (remembered for %llu ms more)", n->err,
                       (unsigned long long)(n->until - now));
    } else if ((rc = fetch_find_or_queue(c, node, deadline, now, &f, err)) == TW_OK) {
        rc = fetch_wait(c, f, node, deadline, now, out, err);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int tw_nodecache_get(tw_nodecache *c, const char *node, uint64_t deadline, tw_kvlist *out,
                     char *err)
{
    int rc = TW_ENOTFOUND;
    pthread_mutex_lock(&c->mu);
    uint64_t now = tw_now_ms();
    int fresh = c->o.kube == NULL || fresh_locked(c, now);
    pthread_mutex_unlock(&c->mu);
    pthread_rwlock_rdlock(&c->lock);
    entry **pp = table_find(&c->t, node);
    int use = pp != NULL &&
              (fresh || ((*pp)->got_ms != 0 && now - (*pp)->got_ms <= (uint64_t)c->o.max_age_ms));
    if (use)
        rc = copy_entry(c, *pp, out);
    pthread_rwlock_unlock(&c->lock);
    if (use)
        return rc;
    if (c->o.kube == NULL)
        return tw_seterr(err, TW_ENOTFOUND, "node %s is not in the cache", node);
    return lookup_remote(c, node, deadline, out, err);
}

void tw_nodecache_stats_get(tw_nodecache *c, tw_nodecache_stats *s)
{
    pthread_mutex_lock(&c->mu);
    uint64_t now = tw_now_ms();
    *s = c->st;
    s->ready = fresh_locked(c, now);
    s->age_ms = now - (c->heard_ms ? c->heard_ms : c->created_ms);
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
    for (unsigned i = 0; i < c->nfetchers; i++)
        pthread_join(c->fetchers[i], NULL);
    while (c->fetches) {
        fetch *f = c->fetches;
        c->fetches = f->next;
        fetch_unref(f);
    }
    table_free(&c->t);
    free(c->neg);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
