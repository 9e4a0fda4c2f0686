/* nodecache.h - an in-memory cache of node topology labels, kept by LIST + WATCH. */
#ifndef TOPOWIRE_NODECACHE_H
#define TOPOWIRE_NODECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "topowire/kube.h"
#include "topowire/kv.h"

/*
 * The cache lists the nodes' metadata once (PartialObjectMetadataList), then
 * watches from the list's resourceVersion with bookmarks, so it follows node
 * adds, relabels and deletes without polling. Only the label keys asked for
 * are kept, so 5,000 nodes take well under a megabyte. All calls are
 * thread-safe.
 *
 * Faults back off as client-go's reflector does: a failed LIST or WATCH, a
 * 410 Gone, and a watch that ends within a second having delivered nothing
 * each wait a jittered, doubling delay (800 ms, then [d, 2d) up to 30 s)
 * before the next request; the delay starts over after a watch that
 * delivered events or bookmarks, or after two minutes without a failure.
 *
 * The cache is fresh while it has heard from the API server (a LIST, an
 * event, a bookmark, or a watch the server ended on time) within max_age_ms.
 * A stale cache is not ready, and its lookups go to the API server instead.
 *
 * A lookup of a node that is not cached (or only in a stale cache) asks the
 * API server through a few fetcher threads of the cache's own, with one GET
 * per node in flight however many ask; at most `waiters` callers wait for an
 * answer until their deadline, others up to 250 ms after the lookup was asked
 * for (a healthy API server answers well within that) unless lookups are slow
 * or failing now, when they are answered at once without it; a failed lookup
 * is remembered for negative_ms.
 */
typedef struct tw_nodecache tw_nodecache;

/* The longest resourceVersion accepted from the API server (bytes); a longer one is an error. */
#define TW_NODECACHE_RV_MAX 256
/* The longest LIST continue token accepted (bytes); a longer one is an error. */
#define TW_NODECACHE_CONTINUE_MAX TW_KUBE_CONTINUE_MAX
/* Defaults of the options below. */
#define TW_NODECACHE_MAX_AGE_MS    60000L
#define TW_NODECACHE_NEGATIVE_MS   5000L
#define TW_NODECACHE_FETCHERS      2u
#define TW_NODECACHE_WAITERS       1u
#define TW_NODECACHE_QUICK_WAIT_MS 250L
/* Backoff between failed LIST/WATCH requests: initial, cap, and the quiet time that resets it. */
#define TW_NODECACHE_BACKOFF_MIN_MS   800L
#define TW_NODECACHE_BACKOFF_MAX_MS   30000L
#define TW_NODECACHE_BACKOFF_RESET_MS 120000L

typedef struct tw_nodecache_stats {
    size_t nodes;     /* nodes in the cache */
    uint64_t lists;   /* LIST requests made (pages) */
    uint64_t watches; /* WATCH requests made */
    uint64_t events;  /* watch events applied (ADDED, MODIFIED, DELETED) */
    uint64_t relists; /* LISTs after 410 Gone */
    uint64_t errors;  /* failed LIST or WATCH requests (very short watches included) */
    uint64_t gets;    /* direct GETs for nodes missing from the cache (or a stale one) */
    uint64_t skipped; /* such lookups answered at once, without waiting for a GET */
    int ready;        /* listed, and fresh (heard from the API server within max_age_ms) */
    int listed;       /* a LIST has completed */
    uint64_t age_ms;  /* since the cache last heard from the API server (since start: never) */
    long backoff_ms;  /* the wait ceiling of the next failure */
    size_t bytes;     /* memory held for the entries (approximate) */
} tw_nodecache_stats;

/* Called from the cache's thread for each notable event (for logs); may be NULL. */
typedef void (*tw_nodecache_log_fn)(void *ud, int level, const char *msg, const char *detail);

typedef struct tw_nodecache_options {
    tw_kube_config *kube; /* borrowed; must outlive the cache */
    const char *user_agent;
    const char *const *keys; /* label keys to keep, NULL-terminated (borrowed), at most 32 */
    long watch_timeout_s;    /* timeoutSeconds of each WATCH (0 = half of max_age, 10..300) */
    long max_age_ms;         /* freshness bound (0 = TW_NODECACHE_MAX_AGE_MS) */
    long negative_ms;        /* how long a failed lookup is remembered (0 = 5 s) */
    unsigned fetchers;       /* concurrent direct GETs at most (0 = 2) */
    unsigned waiters;        /* callers that may wait for a direct GET at once (0 = 1) */
    long quick_wait_ms;      /* how long the other callers wait for a GET in flight (0 = 250) */
    tw_nodecache_log_fn log;
    void *log_ud;
} tw_nodecache_options;

/* Returns a new cache (not yet started) or NULL on out-of-memory. */
tw_nodecache *tw_nodecache_new(const tw_nodecache_options *o);

/* Starts the LIST/WATCH thread. Returns 0 or TW_ENOMEM/TW_EINVAL. */
int tw_nodecache_start(tw_nodecache *c);

/* True once a LIST has filled the cache and while it is fresh (see above). */
int tw_nodecache_ready(tw_nodecache *c);

/*
 * Copies the kept labels of node into *out (caller frees with
 * tw_kvlist_free). When the node is not cached, or the cache is stale, asks
 * the API server as described above, waiting until deadline at most (0: 5 s)
 * and caching the answer. Returns 0, TW_ENOTFOUND (no such node), the GET's
 * error (also a remembered one), TW_ERETRY when the lookup was not waited for
 * (others are waiting, or too many lookups are pending), or TW_ETIMEDOUT when
 * the deadline came first (the GET goes on and its answer is kept). Without a
 * Kubernetes configuration only the cache is read, however old.
 */
int tw_nodecache_get(tw_nodecache *c, const char *node, uint64_t deadline, tw_kvlist *out,
                     char *err);

/* Fills *s with the current counters. */
void tw_nodecache_stats_get(tw_nodecache *c, tw_nodecache_stats *s);

/* Stops the thread (aborting an open watch) and frees the cache. NULL-safe. */
void tw_nodecache_free(tw_nodecache *c);

#endif
