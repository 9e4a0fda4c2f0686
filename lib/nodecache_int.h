/* nodecache_int.h - tw__ hooks of nodecache.c for its unit tests and fuzzers. */
#ifndef TOPOWIRE_NODECACHE_INT_H
#define TOPOWIRE_NODECACHE_INT_H

#include <stddef.h>

#include "topowire/nodecache.h"

/*
 * Applies one watch event line (a JSON object with "type" and "object") to
 * the cache; an applied event or bookmark counts as hearing from the API
 * server. Returns 0, TW_EPARSE, TW_ENOMEM, TW_ETOOBIG (a resourceVersion over
 * TW_NODECACHE_RV_MAX bytes; nothing is applied), TW_EHTTP for another ERROR
 * event, or TW_EGONE for an ERROR event with code 410 (the caller must
 * re-LIST); *rv receives the event's resourceVersion when it has one.
 */
int tw__nodecache_apply_event(tw_nodecache *c, const char *line, size_t len,
                              char rv[TW_NODECACHE_RV_MAX + 1], char *err);

/*
 * Replaces the cache's content with a NodeList or PartialObjectMetadataList
 * document (which then counts as listed and fresh); *rv receives the list's
 * resourceVersion. Returns 0, TW_EPARSE, TW_ETOOBIG (a resourceVersion or
 * continue token over its bound) or TW_ENOMEM (the cache is unchanged on
 * failure).
 */
int tw__nodecache_apply_list(tw_nodecache *c, const char *json, size_t len,
                             char rv[TW_NODECACHE_RV_MAX + 1], char *err);

#endif
