/* kube.c - the kube-apiserver stand-in: bearer tokens, Status bodies, nodes, discovery, webhook
 * configs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "kube.h"
#include "standin.h"
#include "topowire/error.h"

struct st_kube {
    kstore *store;
    kwebhooks *hooks;
};

#define WEBHOOKS_PATH "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
#define WEBHOOK_GROUP "admissionregistration.k8s.io"
#define RBAC_USER     "system:serviceaccount:spark:spark-executor"

#define CT_JSON         "application/json"
#define CT_PARTIAL      "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
#define CT_PARTIAL_LIST "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

/* ---- Status bodies ---- */

typedef struct kstatus_args {
    int code;
    const char *reason;
    const char *message;
    const char *name; /* details, each optional */
    const char *group;
    const char *kind;
} kstatus_args;

/* A metav1.Status as the API server sends it, fields in its order. */
static void kstatus(st_resp *resp, const kstatus_args *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(o, "status", "Failure");
    cJSON_AddStringToObject(o, "message", a->message);
    cJSON_AddStringToObject(o, "reason", a->reason);
    if (a->name || a->group || a->kind || a->code == 429) {
        cJSON *d = cJSON_AddObjectToObject(o, "details");
        if (a->name)
            cJSON_AddStringToObject(d, "name", a->name);
        if (a->group)
            cJSON_AddStringToObject(d, "group", a->group);
        if (a->kind)
            cJSON_AddStringToObject(d, "kind", a->kind);
        if (a->code == 429)
            cJSON_AddNumberToObject(d, "retryAfterSeconds", 1);
    }
    cJSON_AddNumberToObject(o, "code", a->code);
    st_reply_json(resp, a->code, CT_JSON, o);
    cJSON_Delete(o);
    if (a->code == 429)
        st_add_header(resp, "Retry-After", "1");
}

static void kstatus_simple(st_resp *resp, int code, const char *reason, const char *message)
{
    kstatus_args a = {code, reason, message, NULL, NULL, NULL};
    kstatus(resp, &a);
}

/* The node name in /api/v1/nodes/NAME, or NULL for any other path. */
static const char *node_name(const char *path)
{
    const char *p = "/api/v1/nodes/";
    size_t n = strlen(p);
    if (strncmp(path, p, n) != 0 || path[n] == '\0' || strchr(path + n, '/'))
        return NULL;
    return path + n;
}

static void node_not_found(st_resp *resp, const char *name)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "nodes \"%s\" not found", name);
    kstatus_args a = {404, "NotFound", msg, name, NULL, "nodes"};
    kstatus(resp, &a);
}

/* The RBAC denial of a node GET. */
static void node_forbidden(st_resp *resp, const char *name)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "nodes \"%s\" is forbidden: User \"" RBAC_USER
             "\" cannot get resource \"nodes\" in API group \"\" at the cluster scope",
             name);
    kstatus_args a = {403, "Forbidden", msg, name, NULL, "nodes"};
    kstatus(resp, &a);
}

void kube_error(standin *st, const st_req *req, st_resp *resp, int code)
{
    (void)st;
    const char *name = node_name(req->path);
    char msg[512];
    switch (code) {
    case 401:
        kstatus_simple(resp, 401, "Unauthorized", "Unauthorized");
        break;
    case 403:
        if (name) {
            node_forbidden(resp, name);
        } else {
            snprintf(msg, sizeof(msg), "forbidden: User \"" RBAC_USER "\" cannot get path \"%s\"",
                     req->path);
            kstatus_simple(resp, 403, "Forbidden", msg);
        }
        break;
    case 404:
        if (name)
            node_not_found(resp, name);
        else
            kstatus_simple(resp, 404, "NotFound",
                           "the server could not find the requested resource");
        break;
    case 413:
        kstatus_simple(resp, 413, "RequestEntityTooLarge",
                       "Request entity too large: limit is 3145728");
        break;
    case 429:
        kstatus_simple(resp, 429, "TooManyRequests", "storage is (re)initializing");
        break;
    case 500: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", "Status");
        cJSON_AddStringToObject(o, "apiVersion", "v1");
        cJSON_AddObjectToObject(o, "metadata");
        cJSON_AddStringToObject(o, "status", "Failure");
        cJSON_AddStringToObject(o, "message",
                                "Internal error occurred: etcdserver: request timed out");
        cJSON_AddStringToObject(o, "reason", "InternalError");
        cJSON *causes = cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "details"), "causes");
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "message", "etcdserver: request timed out");
        cJSON_AddItemToArray(causes, c);
        cJSON_AddNumberToObject(o, "code", 500);
        st_reply_json(resp, 500, CT_JSON, o);
        cJSON_Delete(o);
        break;
    }
    case 503:
        kstatus_simple(resp, 503, "ServiceUnavailable",
                       "the server is currently unable to handle the request");
        break;
    default:
        snprintf(msg, sizeof(msg), "the server answered %d", code);
        kstatus_simple(resp, code, "Unknown", msg);
        break;
    }
}

/* ---- authentication ---- */

/*
 * Checks the bearer token against --token, or the token file read afresh (it
 * rotates). Returns 1 when the request may pass. Without either option every
 * request passes.
 */
static int authorized(standin *st, const st_req *req)
{
    const char *want = st->opts.token;
    char *file = NULL;
    if (st->opts.token_file) {
        file = st_read_file(st->opts.token_file, 64 * 1024, NULL);
        if (file == NULL)
            return 0;
        size_t n = strlen(file);
        while (n > 0 && (file[n - 1] == '\n' || file[n - 1] == '\r' || file[n - 1] == ' ' ||
                         file[n - 1] == '\t'))
            file[--n] = '\0';
        want = file;
    } else if (want == NULL) {
        return 1;
    }
    const char *got = st_header(req, "Authorization");
    int ok =
        want[0] != '\0' && got && strncasecmp(got, "Bearer ", 7) == 0 && strcmp(got + 7, want) == 0;
    free(file);
    return ok;
}

/* ---- content negotiation ---- */

/* 1 when some media range of Accept asks for PartialObjectMetadata(List) in meta.k8s.io/v1. */
static int wants_partial(const st_req *req)
{
    const char *accept = st_header(req, "Accept");
    if (accept == NULL)
        return 0;
    const char *p = accept;
    while (*p) {
        size_t n = strcspn(p, ",");
        int as = 0, g = 0, v = 0;
        const char *q = p;
        while (q < p + n) {
            size_t m = strcspn(q, ";");
            if (q + m > p + n)
                m = (size_t)(p + n - q);
            while (m > 0 && (*q == ' ' || *q == '\t'))
                q++, m--;
            size_t t = m;
            while (t > 0 && (q[t - 1] == ' ' || q[t - 1] == '\t'))
                t--;
            if ((t == 24 && strncmp(q, "as=PartialObjectMetadata", 24) == 0) ||
                (t == 28 && strncmp(q, "as=PartialObjectMetadataList", 28) == 0))
                as = 1;
            else if (t == 13 && strncmp(q, "g=meta.k8s.io", 13) == 0)
                g = 1;
            else if (t == 4 && strncmp(q, "v=v1", 4) == 0)
                v = 1;
            q += m;
            if (q < p + n && *q == ';')
                q++;
        }
        if (as && g && v)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0);
}

static int has_arg(const st_req *req, const char *name)
{
    const char *v = st_arg(req, name);
    return v && *v;
}

/* ---- discovery ---- */

static void discovery(const st_req *req, st_resp *resp)
{
    cJSON *o = cJSON_CreateObject();
    if (strcmp(req->path, "/api") == 0) {
        cJSON_AddStringToObject(o, "kind", "APIVersions");
        cJSON_AddItemToObject(o, "versions", cJSON_CreateStringArray((const char *[]){"v1"}, 1));
        cJSON *addrs = cJSON_AddArrayToObject(o, "serverAddressByClientCIDRs");
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "clientCIDR", "0.0.0.0/0");
        const char *host = st_header(req, "Host");
        cJSON_AddStringToObject(a, "serverAddress", host ? host : "127.0.0.1");
        cJSON_AddItemToArray(addrs, a);
    } else if (strcmp(req->path, "/apis") == 0) {
        cJSON_AddStringToObject(o, "kind", "APIGroupList");
        cJSON_AddStringToObject(o, "apiVersion", "v1");
        cJSON_AddArrayToObject(o, "groups");
    } else {
        static const char *const node_verbs[] = {"create", "delete", "deletecollection", "get",
                                                 "list",   "patch",  "update",           "watch"};
        static const char *const status_verbs[] = {"get", "patch", "update"};
        static const char *const create_verb[] = {"create"};
        cJSON_AddStringToObject(o, "kind", "APIResourceList");
        cJSON_AddStringToObject(o, "groupVersion", "v1");
        cJSON *rs = cJSON_AddArrayToObject(o, "resources");
        struct {
            const char *name, *singular, *kind, *shortname;
            const char *const *verbs;
            int nverbs;
            int namespaced;
        } res[] = {
            {"nodes", "node", "Node", "no", node_verbs, 8, 0},
            {"nodes/status", "", "Node", NULL, status_verbs, 3, 0},
            {"pods", "pod", "Pod", "po", node_verbs, 8, 1},
            {"pods/binding", "", "Binding", NULL, create_verb, 1, 1},
        };
        for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "name", res[i].name);
            cJSON_AddStringToObject(r, "singularName", res[i].singular);
            cJSON_AddBoolToObject(r, "namespaced", res[i].namespaced);
            cJSON_AddStringToObject(r, "kind", res[i].kind);
            cJSON_AddItemToObject(
                r, "verbs", cJSON_CreateStringArray((const char **)res[i].verbs, res[i].nverbs));
            if (res[i].shortname)
                cJSON_AddItemToObject(r, "shortNames",
                                      cJSON_CreateStringArray(&res[i].shortname, 1));
            cJSON_AddItemToArray(rs, r);
        }
    }
    st_reply_json(resp, 200, CT_JSON, o);
    cJSON_Delete(o);
}

static void version(st_resp *resp)
{
    st_reply(
        resp, 200, CT_JSON,
        "{\"major\":\"1\",\"minor\":\"31\",\"gitVersion\":\"v1.31.4-eks-2d5f260\","
        "\"gitCommit\":\"4ef4ae8ef1cd1a3a1e4e4a4a7d3d7c1b1e4d4b3c\",\"gitTreeState\":\"clean\","
        "\"buildDate\":\"2024-12-12T21:47:37Z\",\"goVersion\":\"go1.22.9\",\"compiler\":\"gc\","
        "\"platform\":\"linux/amd64\"}");
}

/* ---- nodes ---- */

static void get_node(st_kube *k, const char *name, int partial, st_resp *resp)
{
    st_reply(resp, 200, partial ? CT_PARTIAL : CT_JSON, NULL);
    if (kstore_get(k->store, name, partial, &resp->body) != TW_OK)
        node_not_found(resp, name);
}

/* The stretching faults in force (kshape in kube.h). */
static kshape shape_now(standin *st)
{
    kshape s = {st_fault_number(st, "long-continue"), st_fault_number(st, "long-rv"),
                st_fault_number(st, "watch-cut")};
    if (s.cont_len < 0)
        s.cont_len = 0;
    if (s.rv_len < 0)
        s.rv_len = 0;
    if (s.cut_after < 0)
        s.cut_after = 0;
    return s;
}

static void hang(st_resp *resp, const char *fault)
{
    resp->action = ST_HANG;
    snprintf(resp->note, sizeof(resp->note), "fault=%s", fault);
}

static void list_or_watch(standin *st, const st_req *req, int partial, st_resp *resp)
{
    st_kube *k = st->kube;
    char err[TW_ERRLEN] = "";
    int watch = truthy(st_arg(req, "watch"));
    kshape shape = shape_now(st);
    if (!watch && st_fault_active(st, "list-hang")) {
        hang(resp, "list-hang");
        return;
    }
    if (watch && st_fault_active(st, "watch-end")) {
        /* Accepted, then ended at once with nothing in it. */
        st_reply(resp, 200, partial ? CT_PARTIAL : CT_JSON, NULL);
        snprintf(resp->note, sizeof(resp->note), "watch fault=watch-end");
        return;
    }
    if (watch && st_fault_active(st, "watch-gone")) {
        /* What an API server sends for a resourceVersion older than its history. */
        const char *rv = st_arg(req, "resourceVersion");
        long long asked = rv ? strtoll(rv, NULL, 10) : 0;
        char line[512];
        snprintf(line, sizeof(line),
                 "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                 "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: "
                 "%lld (%lld)\",\"reason\":\"Expired\",\"code\":410}}\n",
                 asked, kstore_rv(k->store));
        st_reply(resp, 200, partial ? CT_PARTIAL : CT_JSON, line);
        snprintf(resp->note, sizeof(resp->note), "watch fault=watch-gone");
        return;
    }
    if (has_arg(req, "labelSelector") || has_arg(req, "fieldSelector")) {
        /* Neither program sends one; the stand-in does not pretend to filter. */
        kstatus_simple(resp, 400, "BadRequest",
                       "the stand-in does not support labelSelector or fieldSelector");
        return;
    }
    if (!watch) {
        long limit = 0;
        const char *l = st_arg(req, "limit");
        if (l && *l) {
            char *end;
            limit = strtol(l, &end, 10);
            if (*end != '\0' || limit < 0)
                limit = 0;
        }
        st_reply(resp, 200, partial ? CT_PARTIAL_LIST : CT_JSON, NULL);
        if (kstore_list(k->store, partial, limit, st_arg(req, "continue"), &shape, &resp->body,
                        err) != TW_OK)
            kstatus_simple(resp, 400, "BadRequest", err);
        return;
    }
    long timeout = 0;
    const char *t = st_arg(req, "timeoutSeconds");
    if (t && *t) {
        char *end;
        errno = 0;
        timeout = strtol(t, &end, 10);
        if (*end != '\0' || errno || timeout < 0) {
            kstatus_simple(resp, 400, "BadRequest", "timeoutSeconds: Invalid value");
            return;
        }
    }
    void *w = NULL;
    if (kwatch_open(k->store, partial, truthy(st_arg(req, "allowWatchBookmarks")),
                    st_arg(req, "resourceVersion"), timeout, st->opts.bookmark_interval, &shape, &w,
                    err) != TW_OK) {
        kstatus_simple(resp, 400, "BadRequest", err);
        return;
    }
    resp->status = 200;
    resp->ctype = partial ? CT_PARTIAL : CT_JSON;
    resp->action = ST_STREAM;
    resp->reader = kwatch_read;
    resp->reader_cls = w;
    resp->reader_free = kwatch_free;
    snprintf(resp->note, sizeof(resp->note), "watch");
}

/* ---- webhook configurations ---- */

static void webhook_not_found(st_resp *resp, const char *name)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "mutatingwebhookconfigurations." WEBHOOK_GROUP " \"%s\" not found",
             name);
    kstatus_args a = {404, "NotFound", msg, name, WEBHOOK_GROUP, "mutatingwebhookconfigurations"};
    kstatus(resp, &a);
}

static void webhooks(standin *st, const st_req *req, st_resp *resp)
{
    st_kube *k = st->kube;
    char err[TW_ERRLEN] = "";
    const char *rest = req->path + strlen(WEBHOOKS_PATH);
    const char *name = rest[0] == '/' && rest[1] && !strchr(rest + 1, '/') ? rest + 1 : NULL;
    if (name == NULL) {
        kube_error(st, req, resp, 404);
        return;
    }
    if (strcmp(req->method, "GET") == 0) {
        cJSON *obj = kwebhooks_get(k->hooks, name);
        if (obj)
            st_reply_json(resp, 200, CT_JSON, obj);
        else
            webhook_not_found(resp, name);
        cJSON_Delete(obj);
    } else if (strcmp(req->method, "PATCH") == 0) {
        cJSON *out = NULL;
        int rc = kwebhooks_patch(k->hooks, name, st_header(req, "Content-Type"), req->body,
                                 kstore_bump(k->store), &out, err);
        if (rc == TW_OK)
            st_reply_json(resp, 200, CT_JSON, out);
        else if (rc == TW_ENOTFOUND)
            webhook_not_found(resp, name);
        else if (rc == TW_EINVAL)
            kstatus_simple(resp, 415, "UnsupportedMediaType", err);
        else if (rc == TW_EBADVALUE)
            kstatus_simple(resp, 400, "BadRequest", err);
        else
            kstatus_simple(resp, 422, "Invalid", err);
        cJSON_Delete(out);
    } else {
        kstatus_simple(resp, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
    }
}

/* ---- the entry points ---- */

void kube_handle(standin *st, const st_req *req, st_resp *resp)
{
    st_kube *k = st->kube;
    const char *path = req->path;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    kstore_sync(k->store);
    /* What system:public-info-viewer lets anyone read. */
    if (get && strcmp(path, "/version") == 0) {
        version(resp);
        return;
    }
    if (get && (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0 ||
                strcmp(path, "/readyz") == 0)) {
        st_reply(resp, 200, "text/plain; charset=utf-8", "ok");
        return;
    }
    if (!authorized(st, req)) {
        kube_error(st, req, resp, 401);
        return;
    }
    const char *name = node_name(path);
    int nodes = strcmp(path, "/api/v1/nodes") == 0;
    if (get &&
        (strcmp(path, "/api") == 0 || strcmp(path, "/apis") == 0 || strcmp(path, "/api/v1") == 0)) {
        discovery(req, resp);
    } else if (name || nodes) {
        if (!get) {
            kstatus_simple(resp, 405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource");
        } else if (name && st_fault_active(st, "get-hang")) {
            hang(resp, "get-hang");
        } else if (name) {
            get_node(k, name, wants_partial(req), resp);
        } else {
            list_or_watch(st, req, wants_partial(req), resp);
        }
    } else if (strncmp(path, WEBHOOKS_PATH, strlen(WEBHOOKS_PATH)) == 0 &&
               (path[strlen(WEBHOOKS_PATH)] == '\0' || path[strlen(WEBHOOKS_PATH)] == '/')) {
        webhooks(st, req, resp);
    } else {
        kube_error(st, req, resp, 404);
    }
}

static void control_json(st_resp *resp, int code, cJSON *o)
{
    st_reply_json(resp, code, CT_JSON, o);
    cJSON_Delete(o);
}

static void control_fail(st_resp *resp, int code, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    control_json(resp, code, o);
}

static void control_rv(st_resp *resp, long long rv, const char *extra_key, double extra)
{
    char s[32];
    snprintf(s, sizeof(s), "%lld", rv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "resourceVersion", s);
    if (extra_key)
        cJSON_AddNumberToObject(o, extra_key, extra);
    control_json(resp, 200, o);
}

static int arg_long(const st_req *req, const char *name, long def, long *out)
{
    const char *v = st_arg(req, name);
    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    *out = strtol(v, &end, 10);
    return *end != '\0' || errno ? -1 : 0;
}

/* The kube-only control endpoints; returns 0 when `what` is not one of them. */
int kube_control(standin *st, const st_req *req, const char *what, st_resp *resp)
{
    st_kube *k = st->kube;
    char err[TW_ERRLEN] = "";
    long long rv = 0;
    int post = strcmp(req->method, "POST") == 0;
    if (strcmp(what, "node") == 0) {
        if (strcmp(req->method, "DELETE") == 0) {
            const char *name = st_arg(req, "name");
            if (name == NULL || *name == '\0')
                control_fail(resp, 400, "name= is required");
            else if (kstore_delete(k->store, name, &rv) != TW_OK)
                control_fail(resp, 404, "no such node");
            else
                control_rv(resp, rv, NULL, 0);
        } else if (post) {
            cJSON *node = cJSON_Parse(req->body);
            int created = 0;
            if (node == NULL)
                control_fail(resp, 400, "the body is not JSON");
            else if (kstore_put(k->store, node, &created, &rv, err) != TW_OK)
                control_fail(resp, 400, err);
            else
                control_rv(resp, rv, "created", created);
            cJSON_Delete(node);
        } else {
            control_fail(resp, 405, "use POST or DELETE");
        }
    } else if (strcmp(what, "node/label") == 0) {
        const char *name = st_arg(req, "name"), *key = st_arg(req, "key");
        if (!post)
            control_fail(resp, 405, "use POST");
        else if (name == NULL || key == NULL || *key == '\0')
            control_fail(resp, 400, "name= and key= are required");
        else if (kstore_label(k->store, name, key, st_arg(req, "value"), &rv) != TW_OK)
            control_fail(resp, 404, "no such node");
        else
            control_rv(resp, rv, NULL, 0);
    } else if (strcmp(what, "expire") == 0 || strcmp(what, "drop-watches") == 0) {
        if (!post) {
            control_fail(resp, 405, "use POST");
        } else {
            if (what[0] == 'e')
                kstore_expire(k->store);
            else
                kstore_drop_watches(k->store);
            control_rv(resp, kstore_rv(k->store), NULL, 0);
        }
    } else if (strcmp(what, "nodes/generate") == 0) {
        long count, zones;
        if (!post)
            control_fail(resp, 405, "use POST");
        else if (arg_long(req, "count", 100, &count) != 0 ||
                 arg_long(req, "zones", 3, &zones) != 0 ||
                 kstore_generate(k->store, count, zones, &rv) != TW_OK)
            control_fail(resp, 400, "count= wants 1..1000000 and zones= 1..6");
        else
            control_rv(resp, rv, "generated", (double)count);
    } else {
        return 0;
    }
    return 1;
}

int kube_kind(const st_req *req)
{
    if (strcmp(req->method, "GET") != 0)
        return -1;
    if (node_name(req->path))
        return ST_KIND_GET;
    if (strcmp(req->path, "/api/v1/nodes") == 0)
        return truthy(st_arg(req, "watch")) ? ST_KIND_WATCH : ST_KIND_LIST;
    return -1;
}

void kube_stats(standin *st, cJSON *out)
{
    kstore_stats(st->kube->store, out);
}

void kube_wake(standin *st)
{
    if (st->kube && st->kube->store)
        kstore_wake(st->kube->store);
}

/* Loads the configurations of one --webhook-config file: a JSON MutatingWebhookConfiguration, or a
 * List of them (other kinds are skipped). */
static int load_webhooks(standin *st, const char *path, char *err)
{
    char *text = st_read_file(path, ST_FILE_MAX, NULL);
    if (text == NULL)
        return tw_seterr(err, TW_EIO, "cannot read %s", path);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (doc == NULL)
        return tw_seterr(err, TW_EPARSE, "%s is not JSON", path);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    cJSON *one = cJSON_IsArray(items) ? items->child : doc;
    int found = 0, rc = TW_OK;
    for (; one && rc == TW_OK; one = cJSON_IsArray(items) ? one->next : NULL) {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(one, "kind"));
        if (kind == NULL || strcmp(kind, "MutatingWebhookConfiguration") != 0)
            continue;
        rc = kwebhooks_put(st->kube->hooks, cJSON_Duplicate(one, 1), kstore_bump(st->kube->store),
                           err);
        found++;
    }
    cJSON_Delete(doc);
    if (rc == TW_OK && found == 0)
        rc = tw_seterr(err, TW_EINVAL, "%s holds no MutatingWebhookConfiguration", path);
    return rc;
}

int kube_init(standin *st, char *err)
{
    st_kube *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    st->kube = k;
    k->store = kstore_new(st->opts.nodes_dir, st->opts.history, &st->stopping, err);
    if (k->store == NULL)
        return TW_EIO;
    k->hooks = kwebhooks_new();
    if (k->hooks == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    for (int i = 0; i < st->opts.nwebhook_configs; i++) {
        int rc = load_webhooks(st, st->opts.webhook_configs[i], err);
        if (rc != TW_OK)
            return rc;
    }
    return TW_OK;
}

void kube_free(standin *st)
{
    st_kube *k = st->kube;
    if (k == NULL)
        return;
    kstore_free(k->store);
    kwebhooks_free(k->hooks);
    free(k);
    st->kube = NULL;
}
