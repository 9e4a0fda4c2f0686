/* kube.h - the kube stand-in's node store, watch streams and webhook configurations. */
#ifndef TW_STANDIN_KUBE_H
#define TW_STANDIN_KUBE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"

/* ---- the node store (kstore.c) ---- */

typedef struct kstore kstore;

/*
 * How lists and watches are rendered under the faults that stretch them
 * (0 = as the API server usually does): continue tokens padded to cont_len
 * bytes, resourceVersions of lists and bookmarks zero-padded to rv_len digits,
 * and watches cut (without their last chunk) after cut_after events.
 */
typedef struct kshape {
    long cont_len;
    long rv_len;
    long cut_after;
} kshape;

/*
 * Makes a store, loading every *.json Node from dir (NULL = start empty) and
 * keeping up to `history` events for watches. `stopping` is borrowed and
 * read by watch streams. Returns NULL with err filled on failure.
 */
kstore *kstore_new(const char *dir, long history, atomic_int *stopping, char *err);
void kstore_free(kstore *ks);
/* Wakes every watch stream (they notice stopping). */
void kstore_wake(kstore *ks);
/* Applies changes to the nodes directory (new, changed or removed files) as events. */
void kstore_sync(kstore *ks);

/* Appends the node as JSON (full or PartialObjectMetadata). TW_ENOTFOUND when unknown. */
int kstore_get(kstore *ks, const char *name, int partial, tw_buf *out);
/*
 * Appends a NodeList (or PartialObjectMetadataList) of the nodes in name
 * order, at most `limit` (0 = all) starting after the `cont` token.
 * TW_EINVAL for a bad continue token.
 */
int kstore_list(kstore *ks, int partial, long limit, const char *cont, const kshape *shape,
                tw_buf *out, char *err);
/* Adds or replaces a node (borrowed; copied). *created says which; *rv gets the new RV. */
int kstore_put(kstore *ks, const cJSON *node, int *created, long long *rv, char *err);
/* Sets (value non-empty) or removes (value "" or NULL) one label. TW_ENOTFOUND when unknown. */
int kstore_label(kstore *ks, const char *name, const char *key, const char *value, long long *rv);
/* Deletes a node. TW_ENOTFOUND when unknown. */
int kstore_delete(kstore *ks, const char *name, long long *rv);
/* Adds count synthetic EKS nodes spread over zones zones (1..6). */
int kstore_generate(kstore *ks, long count, long zones, long long *rv);
/* Forgets the event history and ends open watches with a 410 ERROR event. */
void kstore_expire(kstore *ks);
/* Closes open watch streams abruptly. */
void kstore_drop_watches(kstore *ks);
/* Takes the next resourceVersion for a change outside the node set. */
long long kstore_bump(kstore *ks);
long long kstore_rv(kstore *ks);
/* Fills stats: resourceVersion, nodes, watches, history. */
void kstore_stats(kstore *ks, cJSON *out);

/*
 * Opens a watch of every node: rv is the resourceVersion asked for (NULL or
 * "0": start with ADDED events for every node). timeout_s 0 = no timeout.
 * Returns 0 and the stream state in *out for kwatch_read/kwatch_free, or
 * TW_EINVAL for an unparsable rv.
 */
int kwatch_open(kstore *ks, int partial, int bookmarks, const char *rv, long timeout_s,
                long interval_s, const kshape *shape, void **out, char *err);
ssize_t kwatch_read(void *cls, uint64_t pos, char *buf, size_t max);
void kwatch_free(void *cls);

/* ---- mutating webhook configurations (kwebhook.c) ---- */

typedef struct kwebhooks kwebhooks;

kwebhooks *kwebhooks_new(void);
void kwebhooks_free(kwebhooks *w);
/*
 * Stores a configuration (takes ownership of obj, even on failure), replacing
 * one of the same name. TW_EINVAL without metadata.name, TW_EBADVALUE for a
 * caBundle that is not base64.
 */
int kwebhooks_put(kwebhooks *w, cJSON *obj, long long rv, char *err);
/* Returns a copy of the named configuration (caller frees) or NULL. */
cJSON *kwebhooks_get(kwebhooks *w, const char *name);
/*
 * Applies a patch of the given Content-Type to the named configuration and
 * returns a copy of the result in *out. Only application/json-patch+json
 * (add, replace, remove and test: what certgen --patch-webhook sends) is
 * taken. TW_ENOTFOUND for an unknown name, TW_EINVAL for another type (err
 * says so), TW_EPARSE for a patch that does not apply, TW_EBADVALUE when the
 * result carries a caBundle that is not base64.
 */
int kwebhooks_patch(kwebhooks *w, const char *name, const char *ctype, const char *body,
                    long long rv, cJSON **out, char *err);

#endif
