/* kube_int.h - tw__ hooks of kube.c for its unit tests and fuzzers. */
#ifndef TOPOWIRE_KUBE_INT_H
#define TOPOWIRE_KUBE_INT_H

#include <stddef.h>

#include "topowire/kv.h"

/*
 * Parses the labels out of a Node or PartialObjectMetadata JSON document into
 * *labels (caller frees with tw_kvlist_free; written only on success). Every
 * label whose value is not a JSON string is skipped; absent or null labels
 * give an empty list. Returns 0, TW_EPARSE (not JSON, not an object, another
 * kind, no metadata object, kind, name or labels of the wrong type) or
 * TW_ENOMEM.
 */
int tw__kube_parse_node_labels(const char *json, size_t len, tw_kvlist *labels, char *err);

/*
 * Builds a readable sentence from a Kubernetes Status body ("403 Forbidden:
 * nodes \"x\" is forbidden ...": status, reason, message) into err (TW_ERRLEN
 * bytes; NULL does nothing), made safe to show; falls back to "HTTP <status>"
 * when the body is not a Status. Never fails.
 */
void tw__kube_status_message(const char *json, size_t len, long http_status, char *err);

#endif
