/* webhook.h - what the parts of topowire-webhook share: server, certificate store, metrics. */
#ifndef TOPOWIRE_WEBHOOK_H
#define TOPOWIRE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/abstract.h>

#include <cjson/cJSON.h>

#include "topowire/admission.h"
#include "topowire/buf.h"
#include "topowire/certgen.h"
#include "topowire/downward.h"
#include "topowire/jsonpatch.h"
#include "topowire/kube.h"
#include "topowire/podpatch.h"

/* The API server's request body limit; a bigger review is answered 413. */
#define HOOK_MAX_BODY (3 * 1024 * 1024)
/* What all request bodies being received may hold together, by default. */
#define HOOK_DEFAULT_BODY_MEMORY_MIB 16

/* ---- certificate store (certstore.c) ---------------------------------- */

/*
 * The serving certificate and key, loaded from two PEM files and reloaded
 * when either file changes (inode, size or mtime: a replaced file, a Secret
 * volume's symlink swap, or an in-place write). New TLS handshakes get the
 * current pair; connections already set up keep theirs. A reload that fails
 * (unreadable, unparsable, key not matching) keeps the pair in use.
 */
typedef struct hook_certstore hook_certstore;

/*
 * Loads cert_file and key_file (paths copied). Returns 0 and a new store (free
 * with hook_certstore_free), or TW_ENOTFOUND/TW_EIO/TW_EPARSE/TW_EINVAL/
 * TW_ENOMEM with the reason in err.
 */
int hook_certstore_open(const char *cert_file, const char *key_file, hook_certstore **out,
                        char *err);
void hook_certstore_free(hook_certstore *s);

/*
 * Checks the files and reloads them when they changed, at most once per
 * min_interval_ms. Returns 1 when a new pair was loaded, 0 when nothing
 * changed or the check was skipped, or a negative TW_E* code when the files
 * changed but could not be loaded (err says why; the same change is
 * reported once, not at every check). A certificate that has expired or is
 * not valid yet is not loaded (TW_EINVAL): the pair in use stays, and a
 * not-yet-valid one is tried again once its notBefore has passed.
 */
int hook_certstore_check(hook_certstore *s, long min_interval_ms, char *err);

/* The current certificate's serial (hex) and expiry (Unix seconds). */
void hook_certstore_info(hook_certstore *s, char *serial, size_t serial_len, int64_t *not_after);

/*
 * The GnuTLS certificate callback (a gnutls_certificate_retrieve_function3,
 * for MHD_OPTION_HTTPS_CERT_CALLBACK2) serving the store made current with
 * hook_certstore_set_current (one per process). Each handshake gets its own
 * copies of the chain and key, which GnuTLS frees with the session, so a
 * reload never frees what a session still uses.
 */
void hook_certstore_set_current(hook_certstore *s);
int hook_certstore_retrieve(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                            gnutls_pcert_st **certs, unsigned int *n_certs,
                            gnutls_ocsp_data_st **ocsp, unsigned int *n_ocsp,
                            gnutls_privkey_t *pkey, unsigned int *flags);

/* ---- connection guard (guard.c) ---------------------------------------- */

/* The two listeners, for the guard's metrics. */
typedef enum hook_listener {
    HOOK_LISTENER_WEBHOOK = 0,
    HOOK_LISTENER_METRICS,
    HOOK_LISTENERS
} hook_listener;

/* Why the guard refused or closed a connection. */
typedef enum hook_guard_reason {
    HOOK_GUARD_REFUSED_LIMIT = 0,   /* at the connection limit, nothing to make room with */
    HOOK_GUARD_REFUSED_PER_ADDRESS, /* its address at its limit, nothing to make room with */
    HOOK_GUARD_EVICTED,             /* closed to make room for a new connection */
    HOOK_GUARD_HEAD_TIMEOUT,        /* no complete request head within the deadline */
    HOOK_GUARD_IDLE_TIMEOUT,        /* keep-alive: no next request head within the deadline */
    HOOK_GUARD_BODY_TIMEOUT,        /* the body did not arrive within the deadline */
    HOOK_GUARD_BODY_EVICTED,        /* its stalled body's memory went to another request */
    HOOK_GUARD_REASONS
} hook_guard_reason;

typedef struct hook_guard_config {
    hook_listener listener;
    unsigned max_connections;
    unsigned max_per_address;
    long head_timeout_ms;    /* accept to a complete first request head */
    long idle_timeout_ms;    /* keep-alive: an answer to the next complete head */
    long request_timeout_ms; /* end of the head to the end of the body */
    size_t body_budget;      /* bytes all bodies held may take together */
    bool evict_any;          /* make room with any connection, not only those waiting for a head */
} hook_guard_config;

/*
 * A listener's connections and what they hold. Every function is
 * thread-safe; a NULL connection (one the guard could not track) is ignored.
 */
typedef struct hook_guard hook_guard;
typedef struct hook_conn hook_conn;

/* Returns 0 and a new guard (cfg copied; free with hook_guard_free) or TW_ENOMEM. */
int hook_guard_new(const hook_guard_config *cfg, hook_guard **out);
/* Frees the guard and whatever connections it still tracks. NULL-safe. */
void hook_guard_free(hook_guard *g);

/*
 * Before accepting a connection from addr: true to accept. At the limit of
 * its address or overall, first closes the oldest connection still waiting
 * for a request head (of that address, or any); false (counted) only when
 * there is none.
 */
bool hook_guard_admit(hook_guard *g, const struct sockaddr *addr);

/* A connection was accepted on socket fd: starts its head deadline. NULL on out-of-memory. */
hook_conn *hook_guard_opened(hook_guard *g, int fd, const struct sockaddr *addr);
/* The connection is closing (before its socket is closed); frees c. */
void hook_guard_closed(hook_guard *g, hook_conn *c);

/* Its request head arrived; with a body to come, the body deadline starts. */
void hook_guard_head_done(hook_guard *g, hook_conn *c, bool body_expected);
/* The whole body arrived (the request is being answered). */
void hook_guard_body_done(hook_guard *g, hook_conn *c);
/* The body's memory was freed before the request ended. */
void hook_guard_release_body(hook_guard *g, hook_conn *c);
/* The request ended: body memory given back; the next head must come within the idle deadline. */
void hook_guard_request_done(hook_guard *g, hook_conn *c);

/*
 * Raises what c's body may hold to total bytes, and notes that data arrived.
 * When the budget has no room, closes the other bodies that have gone longest
 * without data until there is; returns TW_ETOOBIG when that is not enough.
 */
int hook_guard_body_reserve(hook_guard *g, hook_conn *c, size_t total);

/* Closes the connections past their deadline. Call a few times a second. */
void hook_guard_sweep(hook_guard *g);

/* Open connections (not counting those being closed) and body bytes held. */
void hook_guard_stats(hook_guard *g, unsigned *open, size_t *body_bytes);

/* ---- metrics (metrics.c) ---------------------------------------------- */

/* Why a request was refused before any review was made. */
typedef enum hook_error {
    HOOK_ERR_NOT_FOUND = 0,
    HOOK_ERR_METHOD,       /* 405 */
    HOOK_ERR_CONTENT_TYPE, /* 415 */
    HOOK_ERR_TOO_LARGE,    /* 413 */
    HOOK_ERR_BAD_JSON,     /* 400: not JSON */
    HOOK_ERR_NOT_REVIEW,   /* 400: JSON but not an AdmissionReview */
    HOOK_ERR_TIMEOUT,      /* the body did not arrive in time */
    HOOK_ERR_BODY_MEMORY,  /* no room for the body in the memory budget (closed) */
    HOOK_ERR_INTERNAL,     /* 500: out of memory */
    HOOK_ERR_COUNT
} hook_error;

/* Most routes and (route, outcome) pairs the metrics hold. */
#define HOOK_MAX_ROUTES   4
#define HOOK_MAX_OUTCOMES 32

/*
 * Registers an outcome of a route before serving (not thread-safe); returns
 * its id for hook_metrics_review, or -1 when the table is full. Registering
 * the same pair again returns the same id.
 */
int hook_metrics_outcome(const char *route, const char *outcome);

/* Counts one answered review of an outcome, whether it carried a patch, and its latency. */
void hook_metrics_review(int outcome_id, bool patched, uint64_t elapsed_ns);
void hook_metrics_error(hook_error e);
void hook_metrics_inflight(int delta);
long hook_metrics_inflight_now(void);
void hook_metrics_connections(int delta);
void hook_metrics_cert_reload(bool ok);
void hook_metrics_cert_expiry(int64_t not_after);
void hook_metrics_guard(hook_listener l, hook_guard_reason why);
/* Body bytes held by requests being received, for the gauge. */
void hook_metrics_body_bytes(size_t n);
/* Counts one object binding mode added node topology to: a Binding, or a pod with spec.nodeName. */
void hook_metrics_topology_added(bool binding);

/*
 * Renders every metric in the Prometheus text exposition format (0.0.4).
 * Returns a new string (caller frees) or NULL on out-of-memory.
 */
char *hook_metrics_render(size_t *len);

/* Adds fn's metrics at the end of every rendering (set before serving). */
void hook_metrics_set_extra(void (*fn)(tw_buf *b, void *ud), void *ud);

/* ---- server (server.c) ------------------------------------------------ */

typedef struct hook_config {
    const char *listen;         /* "[host]:port" of the TLS listener */
    const char *metrics_listen; /* "[host]:port" of the plain-HTTP listener; "" = off */
    const char *cert_file;
    const char *key_file;
    const char *tls_min_version; /* "1.2" or "1.3" */
    unsigned threads;            /* 0 = one per online core */
    unsigned max_connections;
    unsigned max_connections_per_address; /* from one client address */
    unsigned connection_timeout_s;        /* idle connections and stalled clients */
    unsigned header_timeout_s;            /* accept to a complete first request head */
    unsigned request_timeout_s;           /* end of the head to the end of the body */
    size_t max_body_memory;               /* bytes all request bodies may hold together */
    unsigned shutdown_grace_s;            /* SIGTERM: how long in-flight requests may take */
    tw_podpatch_config pod;
    /* binding mode (binding.c) */
    int binding;             /* serve /mutate/binding and keep the node cache */
    const char *copy_labels; /* comma list of node label keys to copy */
    const char *copy_as;     /* "annotations", "labels" or both */
    long timeout_ms;         /* the most one admission may take */
    tw_kube_config *kube;    /* borrowed; NULL when binding is off */
    long cache_max_age_ms;   /* node cache freshness bound; 0 = HOOK_DEFAULT_CACHE_MAX_AGE_MS */
} hook_config;

/* Fills cfg with the defaults. */
void hook_config_defaults(hook_config *cfg);

/*
 * Checks a configuration without touching files or sockets: listen
 * addresses, TLS version, limits and the pod patch settings. Returns 0 or
 * TW_EINVAL with the setting in err.
 */
int hook_config_check(const hook_config *cfg, char *err);

typedef struct hook_server hook_server;

/*
 * What a route's handler decides for one review. The handler fills outcome
 * (a registered outcome id), patch (malloc'd JSON Patch text, or NULL) and
 * warnings (malloc'd); the server frees them.
 */
typedef struct hook_decision {
    int outcome_id;
    const char *outcome; /* its name, for the log */
    char *patch;
    size_t patch_len;
    char *warnings[TW_ADMISSION_MAX_WARNINGS];
    size_t n_warnings;
} hook_decision;

/*
 * One route: a path, its metrics name and the handler that decides a
 * review. A handler returns 0, or a negative TW_E* code for an internal
 * failure (the review is then allowed without a patch).
 */
typedef struct hook_route {
    const char *path;
    const char *name;
    int (*decide)(hook_server *srv, const tw_admission_request *req, hook_decision *d);
} hook_route;

/*
 * Starts both listeners. Returns 0 and a running server, or an error with
 * the reason in err. cfg is borrowed for the server's lifetime.
 */
int hook_server_start(const hook_config *cfg, hook_server **out, char *err);

/* The ports actually bound (useful with port 0). */
int hook_server_port(const hook_server *s);
int hook_server_metrics_port(const hook_server *s);

/*
 * Runs the periodic work: checks the certificate files (at most once a
 * second, or at once with now set) and loads them when they changed. Call
 * about once a second.
 */
void hook_server_tick(hook_server *s, bool now);

/*
 * Stops accepting, lets in-flight requests finish within the grace period,
 * then stops and frees the server. Returns the number of requests still in
 * flight when the grace ran out (0 on a clean drain). NULL-safe.
 */
long hook_server_shutdown(hook_server *s);

/* ---- node topology for bindings (binding.c) ------------------------------ */

/*
 * The binding mode's state: a node cache (LIST + WATCH of node metadata,
 * keeping only the copied keys) and how the keys are copied.
 */
typedef struct hook_topology hook_topology;

/*
 * How long the node cache may go without hearing from the API server (a
 * LIST, an event, a bookmark) before it stops saying ready and lookups go to
 * the API server (hook_config.cache_max_age_ms when 0).
 */
#define HOOK_DEFAULT_CACHE_MAX_AGE_MS 60000L

/* Default keys copied from the node. */
#define HOOK_DEFAULT_COPY_LABELS                                                                   \
    "topology.kubernetes.io/zone,topology.kubernetes.io/region,topology.k8s.aws/zone-id"

/*
 * Splits a comma list of label keys into keys (pointing into buf, at most 16,
 * NULL-terminated) and checks each. Returns 0 or TW_EINVAL.
 */
int hook_topology_parse_keys(const char *list, char *buf, size_t buf_len, const char *keys[17],
                             char *err);

/* Parses "annotations", "labels" or "annotations,labels". Returns 0 or TW_EINVAL. */
int hook_topology_parse_copy_as(const char *list, bool *annotations, bool *labels, char *err);

/* Starts the node cache for cfg (borrowed). Returns 0 and *out, or an error with err. */
int hook_topology_start(const hook_config *cfg, hook_topology **out, char *err);

/*
 * True while the node cache is listed and fresh (heard from the API server
 * within cache_max_age_ms), and always for a NULL topology.
 */
int hook_topology_ready(hook_topology *t);

/* Stops the cache and frees. NULL-safe. */
void hook_topology_free(hook_topology *t);

/*
 * Appends to p the operations that put node's copied labels on obj's metadata
 * (annotations, and labels when configured), skipping keys obj already has;
 * a copied topology.kubernetes.io/zone or /region the node lacks takes the
 * value of its failure-domain.beta.kubernetes.io label, as topowire-init
 * reads them. A node missing from the cache (or a stale cache) is looked up
 * as tw_nodecache_get says, before deadline. With
 * apply_to set (a copy of obj), makes the same change there, so operations
 * built later from the copy are right after these. Returns 0 (possibly with
 * nothing added), TW_ENOTFOUND and the other errors of tw_nodecache_get
 * (err says why), or TW_ENOMEM.
 */
int hook_topology_patch(hook_topology *t, const char *node, const cJSON *obj, uint64_t deadline,
                        tw_jsonpatch *p, cJSON *apply_to, char *err);

/* Appends the cache's metrics in the Prometheus text format. NULL-safe. */
void hook_topology_metrics(hook_topology *t, tw_buf *b);

/* ---- per-review JSON arena (arena.c) ---------------------------------- */

/*
 * Installs cJSON allocation hooks (once, before any thread starts) that,
 * between hook_arena_begin() and hook_arena_end() on a thread, take cJSON's
 * memory from that thread's bump arena and make its frees no-ops. Nothing
 * cJSON allocates inside the bracket may be used after hook_arena_end().
 * Outside it cJSON uses malloc and free. hook_arena_begin returns 0, or -1
 * when out of memory (cJSON then simply uses malloc).
 */
void hook_arena_install(void);
int hook_arena_begin(void);
void hook_arena_end(void);

/* What all arenas may hold together beyond each thread's first 64 KiB. */
#define HOOK_ARENA_SHARED_MIB 32

/*
 * True when, since hook_arena_begin() on this thread, an allocation was
 * refused because the review went past the arena's cap (24 MiB), or past
 * what is left of the allowance all threads share (HOOK_ARENA_SHARED_MIB):
 * the review holds too many JSON values, and it is refused rather than let
 * memory grow.
 */
bool hook_arena_exhausted(void);

/* ---- caBundle (cabundle.c) --------------------------------------------- */

/*
 * Sets clientConfig.caBundle of every webhook in the
 * MutatingWebhookConfiguration `name` to the CA certificate ca_pem, through
 * c (borrowed): GET, then a JSON Patch guarded by tests of the
 * resourceVersion and each webhook's name, read again and retried when the
 * object changed in between (409/422). A webhook whose bundle started with
 * another CA still valid keeps that one after the new one, so the serving
 * certificates of both verify while a rotation reaches every webhook pod.
 * Nothing is sent when every bundle already starts with this CA. Returns 0,
 * TW_EINVAL (bad name, ca_pem not a PEM certificate), TW_EPARSE (not a
 * configuration with webhooks), the errors of tw_kube_do, or TW_ENOMEM; err
 * says which.
 */
int hook_patch_ca_bundle(tw_kube_client *c, const char *name, const char *ca_pem, uint64_t deadline,
                         char *err);

/*
 * Creates the kubernetes.io/tls Secret namespace/name holding tls.crt,
 * tls.key and ca.crt from pems, or, when it exists (409), replaces those
 * three keys with a merge patch (other keys stay). Needs RBAC create on
 * secrets and patch on that one. Returns 0, TW_EINVAL (bad names), the
 * errors of tw_kube_do, or TW_ENOMEM.
 */
int hook_write_tls_secret(tw_kube_client *c, const char *namespace, const char *name,
                          const tw_certgen_pems *pems, uint64_t deadline, char *err);

/* ---- the downward injection's settings (inject_downward.c) --------------- */

/*
 * What a pod labelled topowire.io/inject: "downward" gets, from the flags:
 * --rack, --out-dir, the version, and, from the binding flags, which keys
 * the pod will carry and whether as annotations or labels.
 */
typedef struct hook_downward {
    char keys_text[1024];
    const char *keys[17];
    tw_downward *bound;   /* namespaces binding mode serves */
    tw_downward *unbound; /* the others: the files stay empty */
} hook_downward;

/*
 * Refuses, in binding mode, a --rack label:KEY whose KEY is not among
 * --copy-labels: no pod would ever carry it. Returns 0 or TW_EINVAL with a
 * sentence naming both flags in err.
 */
int hook_downward_check(const hook_config *cfg, char *err);

/*
 * Prepares d from cfg (borrowed; its strings must outlive d). binding says
 * whether binding mode runs. Returns 0, TW_EINVAL or TW_ENOMEM; free with
 * hook_downward_free (also after a failure).
 */
int hook_downward_init(const hook_config *cfg, bool binding, hook_downward *d, char *err);

/* Frees what hook_downward_init prepared. NULL-safe. */
void hook_downward_free(hook_downward *d);

#endif
