/* kube.h - a minimal Kubernetes API client: requests and node metadata. */
#ifndef TOPOWIRE_KUBE_H
#define TOPOWIRE_KUBE_H

#include <stdint.h>

#include "topowire/http.h"
#include "topowire/kubeconfig.h"
#include "topowire/kv.h"

/*
 * The longest LIST continue token a request may carry (bytes): API servers
 * encode the storage key in it, which a long prefix or name makes grow.
 */
#define TW_KUBE_CONTINUE_MAX (16 * 1024)

/* A client bound to one config (borrowed; must outlive the client). */
typedef struct tw_kube_client tw_kube_client;

/*
 * Returns a new client or NULL on out-of-memory; free with tw_kube_client_free.
 * user_agent is copied (NULL sends libcurl's default). Not thread-safe: one
 * client per thread; it keeps its connection to the API server alive.
 */
tw_kube_client *tw_kube_client_new(tw_kube_config *cfg, const char *user_agent);
void tw_kube_client_free(tw_kube_client *c);

/*
 * Makes every later request of c stop early, with TW_ECANCELED, once
 * should_abort(ud) returns non-zero: it is polled about every 200 ms while an
 * answer is awaited and every 100 ms while waiting to retry (so a thread
 * stopping a cache need not wait out a hung API server). NULL clears it.
 */
void tw_kube_client_set_abort(tw_kube_client *c, int (*should_abort)(void *ud), void *ud);

/*
 * One request to the API server (every pointer borrowed for the call).
 * path is "/api/v1/nodes/x", query included; accept, content_type and body
 * may be NULL; deadline is from tw_deadline_in() (0: none).
 */
typedef struct tw_kube_request {
    const char *method;       /* "GET", "POST", "PATCH", ... */
    const char *path;         /* must start with '/' */
    const char *accept;       /* the Accept header, or NULL */
    const char *content_type; /* the Content-Type header, or NULL */
    const char *body;         /* body_len bytes, or NULL */
    size_t body_len;
    uint64_t deadline;
} tw_kube_request;

/*
 * Sends req to the API server with the client's credentials, retries and
 * limits: retries 429, 5xx and connection errors with Retry-After or jittered
 * exponential backoff while the deadline allows; on a 401 re-reads the
 * credentials once and tries again; never follows a redirect; caps the body
 * (4 MiB). On a 2xx answer returns 0 with resp filled; on any other outcome
 * returns the matching error (TW_EUNAUTH, TW_EFORBIDDEN, TW_ENOTFOUND,
 * TW_ERETRY, TW_EHTTP, TW_ETIMEDOUT, TW_ENET, TW_ETLS, TW_EREDIRECT,
 * TW_ETOOBIG, TW_ENOMEM, TW_ECANCELED when the client's abort callback fired,
 * TW_EINVAL for a path not starting with '/' or a config naming no server)
 * with the server's Status message in err, and resp holds the last answer
 * received. resp must be initialised; it is emptied first, and the caller
 * frees it with tw_http_response_free either way. Credential failures pass
 * through (TW_EIO, TW_EEXEC ...).
 *
 * Retries: at most 10 attempts. Retry-After is honoured (a longer one is
 * cut to 10 s); otherwise the wait is drawn at random up to 200 ms, doubling
 * per attempt up to 2 s. No wait starts that would leave less than 50 ms
 * before the deadline. Giving up between attempts is TW_ERETRY; the deadline
 * passing during a retry is TW_ETIMEDOUT. Other 4xx answers are TW_EHTTP at
 * once. TLS failures and redirects are never retried.
 */
int tw_kube_do(tw_kube_client *c, const tw_kube_request *req, tw_http_response *resp, char *err);

/* Where a stream's lines go. Borrowed for the call. */
typedef struct tw_kube_stream {
    size_t max_line; /* a longer line fails the stream with TW_ETOOBIG */
    int (*on_line)(void *ud, const char *line, size_t len); /* non-zero: stop, returning 0 */
    void *ud;
    int (*should_abort)(void *ud); /* NULL: the client's, if set */
    void *abort_ud;
} tw_kube_stream;

/*
 * Streams GET req->path (a watch; req's accept and deadline apply, its method
 * and body are ignored) and calls st->on_line for every newline-delimited
 * line of the body as it arrives (line borrowed, without its newline, NUL-
 * terminated). One attempt, no retries: the caller decides how to resume.
 * Re-reads the credentials once after a 401. should_abort is polled while
 * waiting for data: non-zero ends with TW_ECANCELED. A stream silent for over
 * 150 s fails with TW_ETIMEDOUT. Returns 0 when the server ended the stream
 * (or on_line stopped it), TW_EGONE on a 410 answer, or the codes of
 * tw_kube_do with the server's message in err.
 */
int tw_kube_stream_lines(tw_kube_client *c, const tw_kube_request *req, const tw_kube_stream *st,
                         char *err);

/*
 * GET /api/v1/nodes/NAME asking for PartialObjectMetadata (a full Node is
 * accepted too) and returns the node's labels in *labels (owned by caller:
 * tw_kvlist_free). Retries 429, 5xx and connection errors with Retry-After or
 * jittered exponential backoff while the deadline allows; re-reads the
 * credentials once after a 401; returns at once on 403 (TW_EFORBIDDEN) and
 * 404 (TW_ENOTFOUND). err carries the Status message from the server when one
 * was sent. A node name that is not a DNS subdomain is TW_EINVAL before
 * anything is sent. Other errors: TW_EUNAUTH, TW_ERETRY, TW_ETIMEDOUT,
 * TW_ENET, TW_ETLS, TW_EREDIRECT, TW_EPARSE, TW_ETOOBIG, TW_EHTTP, TW_ENOMEM.
 */
int tw_kube_get_node_labels(tw_kube_client *c, const char *node, uint64_t deadline,
                            tw_kvlist *labels, char *err);

#endif
