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
 * adds, relabels and deletes without polling. A dropped watch is resumed from
 * the last resourceVersion seen, with jittered backoff; an expired one (410
 * Gone) triggers a fresh LIST. Only the label keys asked for are kept, so
 * 5,000 nodes take well under a megabyte. All calls are thread-safe.
 */
typedef struct tw_nodecache tw_nodecache;

typedef struct tw_nodecache_stats {
    size_t nodes;     /* nodes in the cache */
    uint64_t lists;   /* LIST requests made */
    uint64_t watches; /* WATCH requests made */
    uint64_t events;  /* watch events applied (ADDED, MODIFIED, DELETED) */
    uint64_t relists; /* LISTs after 410 Gone */
    uint64_t errors;  /* failed LIST or WATCH requests */
    uint64_t gets;    /* direct GETs for nodes missing from the cache */
    int ready;        /* the first LIST has completed */
    size_t bytes;     /* memory held for the entries (approximate) */
} tw_nodecache_stats;

/* Called from the cache's thread for each notable event (for logs); may be NULL. */
typedef void (*tw_nodecache_log_fn)(void *ud, int level, const char *msg, const char *detail);

typedef struct tw_nodecache_options {
    tw_kube_config *kube; /* borrowed; must outlive the cache */
    const char *user_agent;
    const char *const *keys; /* label keys to keep, NULL-terminated (borrowed) */
    long watch_timeout_s;    /* server-side timeoutSeconds of each WATCH (0 = 300) */
    tw_nodecache_log_fn log;
    void *log_ud;
} tw_nodecache_options;

/* Returns a new cache (not yet started) or NULL on out-of-memory. */
tw_nodecache *tw_nodecache_new(const tw_nodecache_options *o);

/* Starts the LIST/WATCH thread. Returns 0 or TW_ENOMEM/TW_EINVAL. */
int tw_nodecache_start(tw_nodecache *c);

/* True once the first LIST has filled the cache. */
int tw_nodecache_ready(tw_nodecache *c);

/*
 * Copies the kept labels of node into *out (caller frees with
 * tw_kvlist_free). When the node is not cached, makes one direct GET of its
 * metadata within deadline (and caches the answer). Returns 0, TW_ENOTFOUND
 * (no such node), or the GET's error.
 */
int tw_nodecache_get(tw_nodecache *c, const char *node, uint64_t deadline, tw_kvlist *out,
                     char *err);

/* Fills *s with the current counters. */
void tw_nodecache_stats_get(tw_nodecache *c, tw_nodecache_stats *s);

/* Stops the thread (aborting an open watch) and frees the cache. NULL-safe. */
void tw_nodecache_free(tw_nodecache *c);

/*
 * Applies one watch event line (a JSON object with "type" and "object") to
 * the cache. Exposed for tests and fuzzing. Returns 0, TW_EPARSE, TW_ENOMEM,
 * or TW_EGONE for an ERROR event with code 410 (the caller must re-LIST);
 * *rv receives the event's resourceVersion (64 bytes) when it has one.
 */
int tw_nodecache_apply_event(tw_nodecache *c, const char *line, size_t len, char rv[64], char *err);

/*
 * Replaces the cache's content with a NodeList or PartialObjectMetadataList
 * document; *rv receives the list's resourceVersion. Exposed for tests and
 * fuzzing. Returns 0, TW_EPARSE or TW_ENOMEM (the cache is unchanged on
 * failure).
 */
int tw_nodecache_apply_list(tw_nodecache *c, const char *json, size_t len, char rv[64], char *err);

#endif
