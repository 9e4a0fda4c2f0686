/* kube.h - a minimal Kubernetes API client: requests and node metadata. */
#ifndef TOPOWIRE_KUBE_H
#define TOPOWIRE_KUBE_H

#include <stdint.h>

#include "topowire/http.h"
#include "topowire/kubeconfig.h"
#include "topowire/kv.h"

/* A client bound to one config (borrowed; must outlive the client). */
typedef struct tw_kube_client tw_kube_client;

/* Returns a new client or NULL on out-of-memory. user_agent is copied. */
tw_kube_client *tw_kube_client_new(tw_kube_config *cfg, const char *user_agent);
void tw_kube_client_free(tw_kube_client *c);

/*
 * Sends one request to the API server at path ("/api/v1/nodes/x", query
 * included), with the client's credentials, retries and limits: retries 429,
 * 5xx and connection errors with Retry-After or jittered exponential backoff
 * while the deadline allows; on a 401 re-reads the credentials once and tries
 * again; never follows a redirect; caps the body (4 MiB). accept and
 * content_type may be NULL. On a 2xx answer returns 0 with resp filled; on any
 * other outcome returns the matching error (TW_EUNAUTH, TW_EFORBIDDEN,
 * TW_ENOTFOUND, TW_ERETRY, TW_EHTTP, TW_ETIMEDOUT, TW_ENET, TW_ETLS,
 * TW_EREDIRECT, TW_ETOOBIG, TW_ENOMEM) with the server's Status message in
 * err, and resp holds the last answer received. resp must be initialised;
 * the caller frees it with tw_http_response_free either way.
 */
int tw_kube_do(tw_kube_client *c, const char *method, const char *path, const char *accept,
               const char *content_type, const char *body, size_t body_len, uint64_t deadline,
               tw_http_response *resp, char *err);

/*
 * GET /api/v1/nodes/NAME asking for PartialObjectMetadata (a full Node is
 * accepted too) and returns the node's labels in *labels (owned by caller:
 * tw_kvlist_free). Retries 429, 5xx and connection errors with Retry-After or
 * jittered exponential backoff while the deadline allows; re-reads the
 * credentials once after a 401; returns at once on 403 (TW_EFORBIDDEN) and
 * 404 (TW_ENOTFOUND). err carries the Status message from the server when one
 * was sent. Other errors: TW_EUNAUTH, TW_ERETRY, TW_ETIMEDOUT, TW_ENET,
 * TW_ETLS, TW_EREDIRECT, TW_EPARSE, TW_ETOOBIG, TW_EHTTP, TW_ENOMEM.
 */
int tw_kube_get_node_labels(tw_kube_client *c, const char *node, uint64_t deadline,
                            tw_kvlist *labels, char *err);

/*
 * Parses the labels out of a Node or PartialObjectMetadata JSON document into
 * *labels (caller frees). Every label whose value is not a JSON string is
 * skipped. Returns 0, TW_EPARSE (not JSON, not an object, metadata or labels of
 * the wrong type) or TW_ENOMEM.
 */
int tw_kube_parse_node_labels(const char *json, size_t len, tw_kvlist *labels, char *err);

/*
 * Builds a readable sentence from a Kubernetes Status body ("Forbidden: nodes
 * \"x\" is forbidden ...") into err; falls back to "HTTP <status>" when the
 * body is not a Status. Never fails.
 */
void tw_kube_status_message(const char *json, size_t len, long http_status, char *err);

#endif
