/* server.c - the HTTPS admission listener and its routes; the plain-HTTP health/metrics one. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <cjson/cJSON.h>

#include "topowire/admission.h"
#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/downward.h"
#include "topowire/error.h"
#include "topowire/log.h"
#include "topowire/podpatch.h"

#include "webhook.h"

struct hook_server {
    const hook_config *cfg;
    struct MHD_Daemon *tls;
    struct MHD_Daemon *plain;
    hook_certstore *certs;
    tw_podpatch *pods;   /* the prepared injection */
    hook_topology *topo; /* binding mode's node cache, or NULL */
    hook_guard *guard;   /* the TLS listener's connections */
    hook_guard *mguard;  /* the metrics listener's */
    pthread_t sweeper;   /* closes connections past their deadlines */
    bool sweeping;
    pthread_mutex_t sweep_lock;
    pthread_cond_t sweep_cond;
    bool sweep_stop;
    hook_downward down; /* what topowire.io/inject: "downward" pods get */
    atomic_int draining;
    int port;
    int metrics_port;
    char priorities[160];
};

/* One request on the TLS listener, from its headers to its completion. */
typedef struct hook_request {
    uint64_t start_ns;
    hook_conn *conn; /* its connection in the guard (NULL when untracked) */
    const hook_route *route;
    tw_buf body;
    bool too_big;
    bool responded;
} hook_request;

static int decide_pods(hook_server *srv, const tw_admission_request *req, hook_decision *d);
static int decide_pods_unbound(hook_server *srv, const tw_admission_request *req, hook_decision *d);
static int decide_binding(hook_server *srv, const tw_admission_request *req, hook_decision *d);

/* The routes of the TLS listener. A new admission endpoint is one more line. */
static const hook_route routes[] = {
    {"/mutate/pods", "pods", decide_pods},
    /* The same, from namespaces binding mode does not serve: no topology will come there. */
    {"/mutate/pods/no-binding", "pods", decide_pods_unbound},
    {"/mutate/binding", "binding", decide_binding},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Metric ids of the pods route: one per podpatch outcome, then not_applicable. */
static int pod_ids[TW_PODPATCH_OUTCOMES];
static int pod_not_applicable_id = -1;
static int pod_downward_id = -1; /* a topowire.io/inject: "downward" pod got its volume and env */
/* Every route's "error" outcome: its handler failed and the review was allowed unchanged. */
static int route_error_ids[N_ROUTES];

/* Metric ids of the binding route, and of topology added to pods with spec.nodeName. */
enum {
    BIND_PATCHED,
    BIND_UNCHANGED,
    BIND_NODE_UNKNOWN,
    BIND_NOT_A_NODE,
    BIND_NOT_APPLICABLE,
    BIND_DISABLED,
    BIND_OUTCOMES
};
static const char *const bind_names[] = {
    "patched", "unchanged", "node_unknown", "not_a_node", "not_applicable", "disabled",
};
_Static_assert(sizeof(bind_names) / sizeof(bind_names[0]) == BIND_OUTCOMES,
               "binding outcome names");
static int bind_ids[BIND_OUTCOMES];
static int pod_topology_id = -1; /* a pod with spec.nodeName got topology, no injection */

/*
 * The metrics listener: kubelet probes and a scraper. Its connections may hold
 * little: a request head within 2 s, and when it is full the oldest connection
 * of any kind makes room, so probes are answered whatever other clients do.
 */
#define METRICS_MAX_CONNECTIONS 64
#define METRICS_MAX_PER_ADDRESS 16
#define METRICS_HEAD_TIMEOUT_MS 2000L
#define METRICS_IDLE_TIMEOUT_S  10
#define SWEEP_INTERVAL_MS       250

/* MHD's own messages are debug noise once serving (TLS alerts from scanners ...). */
static atomic_int mhd_serving;

void hook_config_defaults(hook_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = ":8443";
    cfg->metrics_listen = ":9090";
    cfg->cert_file = "/etc/topowire-webhook/tls/tls.crt";
    cfg->key_file = "/etc/topowire-webhook/tls/tls.key";
    cfg->tls_min_version = "1.2";
    cfg->threads = 0;
    cfg->max_connections = 512;
    cfg->max_connections_per_address = 128;
    cfg->connection_timeout_s = 30;
    cfg->header_timeout_s = 10;
    cfg->request_timeout_s = 10;
    cfg->max_body_memory = (size_t)HOOK_DEFAULT_BODY_MEMORY_MIB * 1024 * 1024;
    cfg->shutdown_grace_s = 25;
    tw_podpatch_config_defaults(&cfg->pod);
    cfg->binding = 1;
    cfg->copy_labels = HOOK_DEFAULT_COPY_LABELS;
    cfg->copy_as = "annotations";
    cfg->timeout_ms = 2000;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    tw_log_kv(atomic_load(&mhd_serving) ? TW_LOG_DEBUG : TW_LOG_WARN, "libmicrohttpd", "detail",
              msg, NULL);
}

/* ---- the pods route ----------------------------------------------------- */

static const char *pod_display_name(const tw_admission_request *req)
{
    if (req->name[0])
        return req->name;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(req->object, "metadata");
    const char *gen = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "generateName"));
    return gen ? gen : "";
}

static void add_warning(hook_decision *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(hook_decision *d, const char *fmt, ...)
{
    if (d->n_warnings >= TW_ADMISSION_MAX_WARNINGS)
        return;
    char text[TW_ADMISSION_WARNING_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char *w = strdup(text);
    if (w)
        d->warnings[d->n_warnings++] = w;
}

/*
 * A pod created with spec.nodeName set never gets a Binding: its node's
 * topology goes straight onto it, before the injection, which is then built
 * from the pod as these operations leave it. Fills ops (initialised here)
 * and returns the pod as they leave it (a new tree; caller deletes), or NULL
 * when there is nothing to add (ops then stays empty; a lookup that failed
 * is a warning in d).
 */
static cJSON *node_topology(hook_server *srv, const tw_admission_request *req, tw_jsonpatch *ops,
                            hook_decision *d)
{
    char err[TW_ERRLEN] = "";
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req->object, "spec");
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "nodeName"));
    if (srv->topo == NULL || node == NULL || node[0] == '\0')
        return NULL;
    cJSON *after = cJSON_Duplicate(req->object, 1);
    if (after == NULL)
        return NULL;
    tw_jsonpatch_init(ops);
    uint64_t deadline = tw_deadline_in(srv->cfg->timeout_ms);
    if (hook_topology_patch(srv->topo, node, req->object, deadline, ops, after, err) != TW_OK) {
        tw_log_kv(TW_LOG_WARN, "no topology for a pod with spec.nodeName", "uid", req->uid, "node",
                  node, "error", err, NULL);
        add_warning(d, "topowire: no topology for node %s: %s", node, err);
        tw_jsonpatch_free(ops);
    }
    if (tw_jsonpatch_count(ops) == 0) { /* the builders read the pod itself, not a copy */
        cJSON_Delete(after);
        return NULL;
    }
    return after;
}

/* bound: the pod's namespace is served by binding mode (its Binding will get topology). */
static int decide_pods_in(hook_server *srv, const tw_admission_request *req, hook_decision *d,
                          bool bound)
{
    char err[TW_ERRLEN] = "";
    if (strcmp(req->kind, "Pod") != 0 || req->kind_group[0] != '\0' ||
        strcmp(req->operation, "CREATE") != 0 || req->sub_resource[0] != '\0' ||
        req->object == NULL) {
        d->outcome_id = pod_not_applicable_id;
        d->outcome = "not_applicable";
        return TW_OK;
    }
    tw_jsonpatch topo_ops = {0};
    bool topology_only = false;
    cJSON *after = bound ? node_topology(srv, req, &topo_ops, d) : NULL;
    tw_podpatch_result r;
    /* Both kinds build from the pod as the topology operations leave it: one patch, in order. */
    const cJSON *pod = after ? after : req->object;
    bool downward = tw_downward_selected(pod);
    int rc = downward ? tw_downward_build_prepared(bound ? srv->down.bound : srv->down.unbound, pod,
                                                   &r, err)
                      : tw_podpatch_build_prepared(srv->pods, pod, &r, err);
    if (rc != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot build the pod patch", "uid", req->uid, "error", err, NULL);
        tw_jsonpatch_free(&topo_ops);
        cJSON_Delete(after);
        return rc;
    }
    cJSON_Delete(after);
    if (tw_jsonpatch_count(&topo_ops) > 0) {
        hook_metrics_topology_added(false);
        rc = tw_jsonpatch_prepend(&r.patch, &topo_ops);
        if (rc != TW_OK) {
            tw_jsonpatch_free(&topo_ops);
            tw_podpatch_result_free(&r);
            return rc;
        }
        topology_only = r.outcome != TW_PODPATCH_INJECTED;
    }
    tw_jsonpatch_free(&topo_ops);
    if (tw_jsonpatch_count(&r.patch) > 0 &&
        tw_jsonpatch_finish(&r.patch, &d->patch, &d->patch_len) != TW_OK) {
        tw_podpatch_result_free(&r);
        return TW_ENOMEM;
    }
    if (topology_only) {
        d->outcome_id = pod_topology_id;
        d->outcome = "topology_added";
    } else if (downward && r.outcome == TW_PODPATCH_INJECTED) {
        d->outcome_id = pod_downward_id;
        d->outcome = "downward_injected";
    } else {
        TW_ASSERT((unsigned)r.outcome < TW_PODPATCH_OUTCOMES);
        d->outcome_id = pod_ids[r.outcome];
        d->outcome = tw_podpatch_outcome_name(r.outcome);
    }
    for (size_t i = 0; i < r.n_warnings && d->n_warnings < TW_ADMISSION_MAX_WARNINGS; i++) {
        d->warnings[d->n_warnings++] = r.warnings[i];
        r.warnings[i] = NULL;
    }
    tw_podpatch_result_free(&r);
    return TW_OK;
}

static int decide_pods(hook_server *srv, const tw_admission_request *req, hook_decision *d)
{
    return decide_pods_in(srv, req, d, true);
}

static int decide_pods_unbound(hook_server *srv, const tw_admission_request *req, hook_decision *d)
{
    return decide_pods_in(srv, req, d, false);
}

/* ---- the binding route -------------------------------------------------- */

static int decide_binding(hook_server *srv, const tw_admission_request *req, hook_decision *d)
{
    char err[TW_ERRLEN] = "";
    if (strcmp(req->kind, "Binding") != 0 || req->kind_group[0] != '\0' ||
        strcmp(req->operation, "CREATE") != 0 || req->object == NULL) {
        d->outcome_id = bind_ids[BIND_NOT_APPLICABLE];
        d->outcome = bind_names[BIND_NOT_APPLICABLE];
        return TW_OK;
    }
    if (srv->topo == NULL) {
        d->outcome_id = bind_ids[BIND_DISABLED];
        d->outcome = bind_names[BIND_DISABLED];
        return TW_OK;
    }
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(req->object, "target");
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(target, "kind"));
    const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(target, "name"));
    if ((kind != NULL && kind[0] != '\0' && strcmp(kind, "Node") != 0) || node == NULL ||
        node[0] == '\0') {
        d->outcome_id = bind_ids[BIND_NOT_A_NODE];
        d->outcome = bind_names[BIND_NOT_A_NODE];
        return TW_OK;
    }
    tw_jsonpatch p;
    if (tw_jsonpatch_init(&p) != TW_OK)
        return TW_ENOMEM;
    int rc = hook_topology_patch(srv->topo, node, req->object, tw_deadline_in(srv->cfg->timeout_ms),
                                 &p, NULL, err);
    if (rc == TW_ENOMEM) {
        tw_jsonpatch_free(&p);
        return rc;
    }
    if (rc != TW_OK) {
        /* Never block a binding: allow it unchanged, and say why. */
        tw_log_kv(TW_LOG_WARN, "binding left unchanged: node topology unknown", "uid", req->uid,
                  "node", node, "error", err, NULL);
        add_warning(d, "topowire: binding left unchanged, no topology for node %s: %s", node, err);
        d->outcome_id = bind_ids[BIND_NODE_UNKNOWN];
        d->outcome = bind_names[BIND_NODE_UNKNOWN];
        tw_jsonpatch_free(&p);
        return TW_OK;
    }
    if (tw_jsonpatch_count(&p) == 0) {
        d->outcome_id = bind_ids[BIND_UNCHANGED];
        d->outcome = bind_names[BIND_UNCHANGED];
        tw_jsonpatch_free(&p);
        return TW_OK;
    }
    rc = tw_jsonpatch_finish(&p, &d->patch, &d->patch_len);
    tw_jsonpatch_free(&p);
    if (rc != TW_OK)
        return rc;
    d->outcome_id = bind_ids[BIND_PATCHED];
    d->outcome = bind_names[BIND_PATCHED];
    hook_metrics_topology_added(true);
    return TW_OK;
}

/* ---- request bodies ------------------------------------------------- */

/*
 * The capacity a tw_buf holding n bytes has grown to (it doubles from 64),
 * which is what a body of n bytes takes from the memory budget.
 */
static size_t body_cap_for(size_t n)
{
    size_t cap = 64;
    while (cap < n + 1)
        cap *= 2;
    return cap;
}

static hook_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static void body_freed(hook_server *s, hook_request *r)
{
    tw_buf_free(&r->body);
    hook_guard_release_body(s->guard, r->conn);
}

/* ---- answering -------------------------------------------------------- */

static enum MHD_Result send_response(hook_server *s, struct MHD_Connection *c, hook_request *r,
                                     unsigned status, struct MHD_Response *resp,
                                     const char *content_type)
{
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    /* While draining, tell keep-alive clients to go elsewhere. */
    if (s != NULL && atomic_load(&s->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (r != NULL)
        r->responded = true;
    return ok;
}

static enum MHD_Result send_text(hook_server *s, struct MHD_Connection *c, hook_request *r,
                                 unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    return send_response(s, c, r, status, resp, "text/plain; charset=utf-8");
}

/* Refuses a request: metric, log line, and a short text answer. */
static enum MHD_Result refuse(hook_server *s, struct MHD_Connection *c, hook_request *r,
                              unsigned status, hook_error e, const char *url, const char *why)
{
    char text[TW_ERRLEN + 64], code[8];
    hook_metrics_error(e);
    snprintf(code, sizeof(code), "%u", status);
    tw_log_kv(TW_LOG_WARN, "request refused", "status", code, "path", url, "reason", why, NULL);
    snprintf(text, sizeof(text), "%s\n", why);
    return send_text(s, c, r, status, text);
}

static bool json_content_type(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static void free_decision(hook_decision *d)
{
    free(d->patch);
    d->patch = NULL;
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    d->n_warnings = 0;
}

/* Decides and answers one review; every JSON tree it makes lives in the thread's arena. */
static enum MHD_Result answer_in_arena(hook_server *s, struct MHD_Connection *c, hook_request *r,
                                       const char *url)
{
    char err[TW_ERRLEN] = "";
    tw_admission_request *req = NULL;
    hook_decision d = {.outcome_id = -1, .outcome = "error"};
    char *out = NULL;
    size_t out_len = 0;
    int rc = tw_admission_decode(tw_buf_cstr(&r->body), r->body.len, &req, err);
    body_freed(s, r);
    if (rc != TW_OK && hook_arena_exhausted())
        return refuse(s, c, r, MHD_HTTP_CONTENT_TOO_LARGE, HOOK_ERR_TOO_LARGE, url,
                      "the review holds too many JSON values");
    if (rc == TW_EPARSE)
        return refuse(s, c, r, MHD_HTTP_BAD_REQUEST, HOOK_ERR_BAD_JSON, url, err);
    if (rc == TW_EINVAL)
        return refuse(s, c, r, MHD_HTTP_BAD_REQUEST, HOOK_ERR_NOT_REVIEW, url, err);
    if (rc != TW_OK)
        return refuse(s, c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, HOOK_ERR_INTERNAL, url,
                      "out of memory");

    rc = r->route->decide(s, req, &d);
    if (rc != TW_OK) {
        /* Never deny: an internal failure answers allowed, unchanged. */
        free_decision(&d);
        d.outcome_id = route_error_ids[r->route - routes];
        d.outcome = "error";
        d.warnings[0] = strdup("topowire: internal error; the object was admitted unchanged");
        d.n_warnings = d.warnings[0] ? 1 : 0;
    }
    tw_admission_reply reply = {.uid = req->uid,
                                .patch = d.patch,
                                .patch_len = d.patch_len,
                                .warnings = (const char *const *)d.warnings,
                                .n_warnings = d.n_warnings};
    rc = tw_admission_encode(req->version, &reply, &out, &out_len, err);
    if (rc != TW_OK && d.patch != NULL) {
        /* The answer with its patch cannot be made (memory): allow unchanged, with a warning. */
        free_decision(&d);
        d.outcome_id = route_error_ids[r->route - routes];
        d.outcome = "error";
        d.warnings[0] = strdup("topowire: the patch could not be sent; the object was admitted "
                               "unchanged");
        d.n_warnings = d.warnings[0] ? 1 : 0;
        reply.patch = NULL;
        reply.patch_len = 0;
        reply.warnings = (const char *const *)d.warnings;
        reply.n_warnings = d.n_warnings;
        rc = tw_admission_encode(req->version, &reply, &out, &out_len, err);
    }
    enum MHD_Result ok;
    if (rc != TW_OK) {
        ok = refuse(s, c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, HOOK_ERR_INTERNAL, url, err);
        goto out;
    }
    /* MHD sends the body after the arena is rewound: it gets its own copy. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(out_len, out, MHD_RESPMEM_MUST_COPY);
    cJSON_free(out);
    if (resp == NULL) {
        ok = MHD_NO;
        goto out;
    }
    ok = send_response(s, c, r, MHD_HTTP_OK, resp, "application/json");
    uint64_t elapsed = now_ns() - r->start_ns;
    hook_metrics_review(d.outcome_id, d.patch != NULL, elapsed);

    bool notable = d.patch != NULL || d.n_warnings > 0;
    char micros[24];
    snprintf(micros, sizeof(micros), "%llu", (unsigned long long)(elapsed / 1000));
    tw_log_kv(notable ? TW_LOG_INFO : TW_LOG_DEBUG, "review answered", "route", r->route->name,
              "uid", req->uid, "namespace", req->namespace, "name", pod_display_name(req),
              "outcome", d.outcome, "dry_run", req->dry_run == 1 ? "true" : "false", "warning",
              d.n_warnings ? d.warnings[0] : NULL, "micros", micros, NULL);
out:
    free_decision(&d);
    tw_admission_request_free(req);
    return ok;
}

static enum MHD_Result answer_review(hook_server *s, struct MHD_Connection *c, hook_request *r,
                                     const char *url)
{
    int arena = hook_arena_begin();
    enum MHD_Result ok = answer_in_arena(s, c, r, url);
    if (arena == 0)
        hook_arena_end();
    return ok;
}

static const hook_route *find_route(const char *url)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(url, routes[i].path) == 0)
            return &routes[i];
    return NULL;
}

static enum MHD_Result refuse_body_memory(hook_server *s, struct MHD_Connection *c, hook_request *r,
                                          const char *url)
{
    hook_guard_head_done(s->guard, r->conn, false);
    return refuse(s, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, HOOK_ERR_BODY_MEMORY, url,
                  "too many request bodies in flight; retry");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    hook_server *s = cls;
    hook_request *r = *con_cls;
    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->start_ns = now_ns();
        r->conn = conn_of(c);
        tw_buf_init(&r->body, HOOK_MAX_BODY);
        *con_cls = r;
        hook_metrics_inflight(1);
        r->route = find_route(url);
        /* A refused request's body is discarded: only an accepted one has the body deadline. */
        hook_guard_head_done(s->guard, r->conn, false);
        if (r->route == NULL)
            return refuse(s, c, r, MHD_HTTP_NOT_FOUND, HOOK_ERR_NOT_FOUND, url, "no such path");
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return refuse(s, c, r, MHD_HTTP_METHOD_NOT_ALLOWED, HOOK_ERR_METHOD, url,
                          "only POST is allowed here");
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!json_content_type(ct))
            return refuse(s, c, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, HOOK_ERR_CONTENT_TYPE, url,
                          "the body must be application/json");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || n > HOOK_MAX_BODY)
                return refuse(s, c, r, MHD_HTTP_CONTENT_TOO_LARGE, HOOK_ERR_TOO_LARGE, url,
                              "the body is over 3 MiB");
            /* The memory the whole body will take is taken from the budget now. */
            if (n > 0 &&
                hook_guard_body_reserve(s->guard, r->conn, body_cap_for((size_t)n)) != TW_OK)
                return refuse_body_memory(s, c, r, url);
        }
        hook_guard_head_done(s->guard, r->conn, true);
        return MHD_YES;
    }
    if (r->responded) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* A client trickling its body is cut off; one that stalls meets the idle timeout. */
        if (now_ns() - r->start_ns > (uint64_t)s->cfg->request_timeout_s * 1000000000ULL) {
            hook_metrics_error(HOOK_ERR_TIMEOUT);
            tw_log_kv(TW_LOG_WARN, "request body too slow; closing the connection", "path", url,
                      NULL);
            return MHD_NO;
        }
        if (!r->too_big && r->body.len + *upload_size <= HOOK_MAX_BODY &&
            hook_guard_body_reserve(s->guard, r->conn, body_cap_for(r->body.len + *upload_size)) !=
                TW_OK) {
            hook_metrics_error(HOOK_ERR_BODY_MEMORY);
            tw_log_kv(TW_LOG_WARN,
                      "no room for the request body in --max-body-memory; closing the connection",
                      "path", url, NULL);
            return MHD_NO;
        }
        if (!r->too_big && tw_buf_append(&r->body, upload, *upload_size) != TW_OK) {
            r->too_big = true;
            body_freed(s, r);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    hook_guard_body_done(s->guard, r->conn);
    if (r->too_big)
        return refuse(s, c, r, MHD_HTTP_CONTENT_TOO_LARGE, HOOK_ERR_TOO_LARGE, url,
                      "the body is over 3 MiB");
    return answer_review(s, c, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    hook_server *s = cls;
    (void)c;
    hook_request *r = *con_cls;
    if (r == NULL)
        return;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED && !r->responded)
        hook_metrics_error(HOOK_ERR_TIMEOUT);
    tw_buf_free(&r->body);
    hook_guard_request_done(s->guard, r->conn);
    free(r);
    *con_cls = NULL;
    hook_metrics_inflight(-1);
}

/* Admission by the guard: at a limit, room is made or the newcomer is closed at once. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    return hook_guard_admit(cls, addr) ? MHD_YES : MHD_NO;
}

/* Puts a new connection in guard g, or takes a closing one out. */
static void guard_notify(hook_guard *g, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context =
            fd != NULL ? hook_guard_opened(g, fd->connect_fd, addr ? addr->client_addr : NULL)
                       : NULL;
    } else {
        hook_guard_closed(g, *socket_context);
        *socket_context = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    hook_server *s = cls;
    guard_notify(s->guard, c, socket_context, toe);
    hook_metrics_connections(toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void on_plain_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe)
{
    hook_server *s = cls;
    guard_notify(s->mguard, c, socket_context, toe);
}

static void on_plain_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    hook_server *s = cls;
    (void)con_cls;
    (void)toe;
    hook_guard_request_done(s->mguard, conn_of(c));
}

/* ---- health and metrics ------------------------------------------------ */

static enum MHD_Result on_plain(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    hook_server *s = cls;
    (void)version;
    (void)upload;
    if (*con_cls == NULL) {
        *con_cls = (void *)1;
        hook_guard_head_done(s->mguard, conn_of(c), false);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool known =
        strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0;
    if (!known)
        return send_text(NULL, c, NULL, MHD_HTTP_NOT_FOUND, "not found\n");
    if (!get) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            strlen("only GET\n"), (void *)"only GET\n", MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return send_response(NULL, c, NULL, MHD_HTTP_METHOD_NOT_ALLOWED, resp,
                             "text/plain; charset=utf-8");
    }
    if (strcmp(url, "/healthz") == 0)
        return send_text(NULL, c, NULL, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0) {
        /* Ready once the certificate is loaded (it is, or the server would not run) and not
         * draining. */
        if (s->certs == NULL || atomic_load(&s->draining) || !hook_topology_ready(s->topo))
            return send_text(NULL, c, NULL, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
        return send_text(NULL, c, NULL, MHD_HTTP_OK, "ok\n");
    }
    size_t len = 0;
    char *text = hook_metrics_render(&len);
    if (text == NULL)
        return send_text(NULL, c, NULL, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    return send_response(NULL, c, NULL, MHD_HTTP_OK, resp,
                         "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- starting and stopping ---------------------------------------------- */

/*
 * Parses "[host]:port", "host:port" or ":port" into an address. An empty host
 * means every address (*any set; the caller binds the wildcard). Returns 0 or
 * TW_EINVAL.
 */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, int *any, int *port,
                        char *err)
{
    char host[256] = "";
    const char *colon = strrchr(spec, ':');
    if (colon == NULL)
        return tw_seterr(err, TW_EINVAL, "listen address \"%s\" is not [host]:port", spec);
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return tw_seterr(err, TW_EINVAL, "listen host is too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return tw_seterr(err, TW_EINVAL, "listen address \"%s\" has no valid port", spec);
    *port = (int)p;
    *any = host[0] == '\0' || strcmp(host, "*") == 0;
    if (*any)
        return TW_OK;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", *port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0 || res == NULL)
        return tw_seterr(err, TW_EINVAL, "cannot resolve listen host \"%s\": %s", host,
                         gai_strerror(g));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return TW_OK;
}

static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

/* The cores this process may run on (a cpuset limits it in a container), else those online. */
static unsigned online_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int start_tls(hook_server *s, char *err)
{
    const hook_config *cfg = s->cfg;
    struct sockaddr_storage ss;
    int any = 0, port = 0;
    int rc = parse_listen(cfg->listen, &ss, &any, &port, err);
    if (rc != TW_OK)
        return rc;
    unsigned threads = cfg->threads ? cfg->threads : online_cores();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[20];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK2, 0,
                                        (void *)hook_certstore_retrieve};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, s->priorities};
    /*
     * The guard holds connections to --max-connections (closing the surplus at
     * once); libmicrohttpd's own limit, which would leave newcomers waiting in
     * the backlog, is only headroom for connections being closed.
     */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)cfg->max_connections * 2 + 64, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 * 1024, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    if (!any)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->tls = MHD_start_daemon(flags | (any ? MHD_USE_DUAL_STACK : 0), (uint16_t)port, on_accept,
                              s->guard, on_request, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (s->tls == NULL && any) /* no IPv6 here: the IPv4 wildcard */
        s->tls = MHD_start_daemon(flags, (uint16_t)port, on_accept, s->guard, on_request, s,
                                  MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (s->tls == NULL)
        return tw_seterr(err, TW_EIO, "cannot listen on %s (see the libmicrohttpd line above)",
                         cfg->listen);
    s->port = bound_port(s->tls);
    return TW_OK;
}

static int start_plain(hook_server *s, char *err)
{
    const hook_config *cfg = s->cfg;
    if (cfg->metrics_listen == NULL || cfg->metrics_listen[0] == '\0')
        return TW_OK;
    struct sockaddr_storage ss;
    int any = 0, port = 0;
    int rc = parse_listen(cfg->metrics_listen, &ss, &any, &port, err);
    if (rc != TW_OK)
        return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, METRICS_MAX_CONNECTIONS * 2 + 16, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, METRICS_IDLE_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16 * 1024, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_plain_connection, s},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_plain_completed, s},
        {any ? MHD_OPTION_END : MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_END, 0, NULL},
    };
    s->plain = MHD_start_daemon(flags | (any ? MHD_USE_DUAL_STACK : 0), (uint16_t)port, on_accept,
                                s->mguard, on_plain, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (s->plain == NULL && any)
        s->plain = MHD_start_daemon(flags, (uint16_t)port, on_accept, s->mguard, on_plain, s,
                                    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (s->plain == NULL)
        return tw_seterr(err, TW_EIO, "cannot listen on %s (see the libmicrohttpd line above)",
                         cfg->metrics_listen);
    s->metrics_port = bound_port(s->plain);
    return TW_OK;
}

/* Closes connections past their deadlines, four times a second, until told to stop. */
static void *sweep_main(void *arg)
{
    hook_server *s = arg;
    pthread_mutex_lock(&s->sweep_lock);
    while (!s->sweep_stop) {
        struct timespec at = tw_monotonic_in(SWEEP_INTERVAL_MS);
        pthread_cond_timedwait(&s->sweep_cond, &s->sweep_lock, &at);
        if (s->sweep_stop)
            break;
        hook_guard_sweep(s->guard);
        hook_guard_sweep(s->mguard);
        size_t body = 0;
        hook_guard_stats(s->guard, NULL, &body);
        hook_metrics_body_bytes(body);
    }
    pthread_mutex_unlock(&s->sweep_lock);
    return NULL;
}

/* The guards of both listeners and the thread that enforces their deadlines. */
static int start_guards(hook_server *s, char *err)
{
    const hook_config *cfg = s->cfg;
    hook_guard_config g = {
        .listener = HOOK_LISTENER_WEBHOOK,
        .max_connections = cfg->max_connections,
        .max_per_address = cfg->max_connections_per_address < cfg->max_connections
                               ? cfg->max_connections_per_address
                               : cfg->max_connections,
        .head_timeout_ms = (long)cfg->header_timeout_s * 1000L,
        /* libmicrohttpd closes idle connections after N to N+1 s; a trickled next head at N+1. */
        .idle_timeout_ms = (long)cfg->connection_timeout_s * 1000L + 1000L,
        .request_timeout_ms = (long)cfg->request_timeout_s * 1000L,
        .body_budget = cfg->max_body_memory,
    };
    hook_guard_config m = {
        .listener = HOOK_LISTENER_METRICS,
        .max_connections = METRICS_MAX_CONNECTIONS,
        .max_per_address = METRICS_MAX_PER_ADDRESS,
        .head_timeout_ms = METRICS_HEAD_TIMEOUT_MS,
        .idle_timeout_ms = METRICS_IDLE_TIMEOUT_S * 1000L + 1000L,
        .request_timeout_ms = METRICS_HEAD_TIMEOUT_MS,
        .evict_any = true,
    };
    if (hook_guard_new(&g, &s->guard) != TW_OK || hook_guard_new(&m, &s->mguard) != TW_OK)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->sweep_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->sweep_lock, NULL);
    if (pthread_create(&s->sweeper, NULL, sweep_main, s) != 0) {
        pthread_cond_destroy(&s->sweep_cond);
        pthread_mutex_destroy(&s->sweep_lock);
        return tw_seterr(err, TW_ENOMEM, "cannot start a thread");
    }
    s->sweeping = true;
    return TW_OK;
}

/* Stops the sweeper and frees the guards; the listeners must be stopped already. */
static void stop_guards(hook_server *s)
{
    if (s->sweeping) {
        pthread_mutex_lock(&s->sweep_lock);
        s->sweep_stop = true;
        pthread_cond_signal(&s->sweep_cond);
        pthread_mutex_unlock(&s->sweep_lock);
        pthread_join(s->sweeper, NULL);
        pthread_cond_destroy(&s->sweep_cond);
        pthread_mutex_destroy(&s->sweep_lock);
        s->sweeping = false;
    }
    hook_guard_free(s->guard);
    hook_guard_free(s->mguard);
    s->guard = s->mguard = NULL;
}

static void register_metrics(void)
{
    for (int o = 0; o < TW_PODPATCH_OUTCOMES; o++)
        pod_ids[o] = hook_metrics_outcome("pods", tw_podpatch_outcome_name((tw_podpatch_outcome)o));
    pod_not_applicable_id = hook_metrics_outcome("pods", "not_applicable");
    for (size_t i = 0; i < N_ROUTES; i++)
        route_error_ids[i] = hook_metrics_outcome(routes[i].name, "error");
    for (int o = 0; o < BIND_OUTCOMES; o++)
        bind_ids[o] = hook_metrics_outcome("binding", bind_names[o]);
    pod_topology_id = hook_metrics_outcome("pods", "topology_added");
    pod_downward_id = hook_metrics_outcome("pods", "downward_injected");
}

static void topology_metrics(tw_buf *b, void *ud)
{
    hook_topology_metrics(ud, b);
}

static void note_cert(hook_server *s, const char *msg)
{
    char serial[80];
    int64_t not_after = 0;
    hook_certstore_info(s->certs, serial, sizeof(serial), &not_after);
    hook_metrics_cert_expiry(not_after);
    char exp[32];
    time_t t = (time_t)not_after;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    tw_log_kv(TW_LOG_INFO, msg, "serial", serial, "not_after", exp, "cert", s->cfg->cert_file,
              NULL);
}

int hook_config_check(const hook_config *cfg, char *err)
{
    struct sockaddr_storage ss;
    int any, port, rc;
    if ((rc = parse_listen(cfg->listen, &ss, &any, &port, err)) != TW_OK)
        return rc;
    if (cfg->metrics_listen && cfg->metrics_listen[0] &&
        (rc = parse_listen(cfg->metrics_listen, &ss, &any, &port, err)) != TW_OK)
        return rc;
    if (strcmp(cfg->tls_min_version, "1.2") != 0 && strcmp(cfg->tls_min_version, "1.3") != 0)
        return tw_seterr(err, TW_EINVAL, "the minimum TLS version must be 1.2 or 1.3");
    if (cfg->max_connections == 0 || cfg->connection_timeout_s == 0 ||
        cfg->request_timeout_s == 0 || cfg->header_timeout_s == 0)
        return tw_seterr(err, TW_EINVAL, "connection limit and timeouts must be positive");
    if (cfg->max_connections_per_address == 0)
        return tw_seterr(err, TW_EINVAL, "--max-connections-per-address must be positive");
    if (cfg->max_body_memory < body_cap_for(HOOK_MAX_BODY))
        return tw_seterr(err, TW_EINVAL,
                         "--max-body-memory must be at least %zu MiB (one 3 MiB review)",
                         body_cap_for(HOOK_MAX_BODY) >> 20);
    if (cfg->timeout_ms <= 0)
        return tw_seterr(err, TW_EINVAL, "--timeout must be positive");
    char buf[1024];
    const char *keys[17];
    bool a, l;
    if ((rc = hook_topology_parse_keys(cfg->copy_labels, buf, sizeof(buf), keys, err)) != TW_OK ||
        (rc = hook_topology_parse_copy_as(cfg->copy_as, &a, &l, err)) != TW_OK)
        return rc;
    if ((rc = tw_podpatch_config_check(&cfg->pod, err)) != TW_OK)
        return rc;
    /* Last: it assumes the rack and the binding flags are valid. */
    return hook_downward_check(cfg, err);
}

/* Stops both listeners and frees everything the server holds (any part may be missing). */
static void server_free(hook_server *s)
{
    if (s->tls)
        MHD_stop_daemon(s->tls);
    if (s->plain)
        MHD_stop_daemon(s->plain);
    stop_guards(s);
    hook_metrics_set_extra(NULL, NULL);
    hook_topology_free(s->topo);
    hook_certstore_free(s->certs);
    tw_podpatch_free(s->pods);
    hook_downward_free(&s->down);
    free(s);
}

int hook_server_start(const hook_config *cfg, hook_server **out, char *err)
{
    int rc;
    if (!MHD_is_feature_supported(MHD_FEATURE_TLS) ||
        !MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK2))
        return tw_seterr(err, TW_EINVAL,
                         "this libmicrohttpd lacks TLS or the certificate callback");
    if ((rc = hook_config_check(cfg, err)) != TW_OK)
        return rc;
    hook_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return TW_ENOMEM;
    s->cfg = cfg;
    snprintf(s->priorities, sizeof(s->priorities),
             "NORMAL:-VERS-ALL:+VERS-TLS1.3%s:%%SERVER_PRECEDENCE",
             strcmp(cfg->tls_min_version, "1.2") == 0 ? ":+VERS-TLS1.2" : "");
    register_metrics();
    hook_arena_install();
    if ((rc = tw_podpatch_prepare(&cfg->pod, &s->pods, err)) != TW_OK ||
        (rc = hook_downward_init(cfg, cfg->binding != 0, &s->down, err)) != TW_OK ||
        (rc = hook_certstore_open(cfg->cert_file, cfg->key_file, &s->certs, err)) != TW_OK)
        goto fail;
    hook_certstore_set_current(s->certs);
    note_cert(s, "serving certificate loaded");
    if (cfg->binding) {
        if ((rc = hook_topology_start(cfg, &s->topo, err)) != TW_OK)
            goto fail;
        hook_metrics_set_extra(topology_metrics, s->topo);
    }
    atomic_store(&mhd_serving, 0);
    if ((rc = start_guards(s, err)) != TW_OK || (rc = start_tls(s, err)) != TW_OK ||
        (rc = start_plain(s, err)) != TW_OK)
        goto fail;
    atomic_store(&mhd_serving, 1);
    char p1[16], p2[16], th[16];
    snprintf(p1, sizeof(p1), "%d", s->port);
    snprintf(p2, sizeof(p2), "%d", s->metrics_port);
    snprintf(th, sizeof(th), "%u", cfg->threads ? cfg->threads : online_cores());
    tw_log_kv(TW_LOG_INFO, "serving", "listen", cfg->listen, "port", p1, "metrics_listen",
              cfg->metrics_listen, "metrics_port", s->plain ? p2 : "", "threads", th,
              "tls_min_version", cfg->tls_min_version, NULL);
    *out = s;
    return TW_OK;
fail:
    server_free(s);
    return rc;
}

int hook_server_port(const hook_server *s)
{
    return s->port;
}

int hook_server_metrics_port(const hook_server *s)
{
    return s->metrics_port;
}

void hook_server_tick(hook_server *s, bool now)
{
    char err[TW_ERRLEN] = "";
    int rc = hook_certstore_check(s->certs, now ? 0 : 1000, err);
    if (rc == 1) {
        hook_metrics_cert_reload(true);
        note_cert(s, "serving certificate reloaded");
    } else if (rc < 0) {
        hook_metrics_cert_reload(false);
        tw_log_kv(TW_LOG_ERROR,
                  "serving certificate changed but cannot be loaded; keeping the "
                  "one in use",
                  "error", err, NULL);
    }
}

long hook_server_shutdown(hook_server *s)
{
    if (s == NULL)
        return 0;
    atomic_store(&s->draining, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->tls);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    char n[24];
    snprintf(n, sizeof(n), "%ld", hook_metrics_inflight_now());
    tw_log_kv(TW_LOG_INFO, "shutting down: no longer accepting; finishing requests in flight",
              "inflight", n, NULL);
    uint64_t deadline = tw_deadline_in((long)s->cfg->shutdown_grace_s * 1000L);
    long left;
    while ((left = hook_metrics_inflight_now()) > 0 && tw_remaining_ms(deadline) > 0)
        tw_sleep_ms(20, deadline);
    server_free(s);
    return left;
}
