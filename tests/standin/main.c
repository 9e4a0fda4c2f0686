/* main.c - topowire-standin: options, the listener, request dispatch, control API, stats and log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "standin.h"
#include "topowire/error.h"

/* Per-request state, created by the URI callback and freed when the request completes. */
typedef struct st_conn {
    char *uri;
    tw_buf body;
    int started;
    int too_big;
} st_conn;

static void usage(FILE *f)
{
    fputs(
        "usage: topowire-standin kube|imds [options]\n"
        "common: --listen ADDR:PORT (127.0.0.1:0)  --port-file FILE  --log FILE  --fault NAME...\n"
        "        --tls-cert FILE --tls-key FILE (required in kube mode)\n"
        "kube:   --token TOKEN | --token-file FILE  --nodes-dir DIR\n"
        "        --bookmark-interval SECONDS (5)  --history EVENTS (10000)  --webhook-config "
        "FILE...\n"
        "imds:   --cloud aws|gcp|azure (aws)  --fixtures DIR (tests/fixtures/imds)\n"
        "Runs until SIGTERM or SIGINT. See docs/testing.md.\n",
        f);
}

/* ---- stats and log ---- */

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

static int has_bearer(const st_req *req)
{
    const char *a = st_header(req, "Authorization");
    return a && strncasecmp(a, "Bearer ", 7) == 0;
}

#define ST_MAX_PATHS 20000

static size_t path_hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void paths_free(standin *st)
{
    for (size_t i = 0; i < st->cap_paths; i++)
        free(st->paths[i].path);
    free(st->paths);
    st->paths = NULL;
    st->npaths = st->cap_paths = 0;
}

/*
 * Counts one request of path in an open-addressing table (benchmarks ask
 * thousands of node paths). Past ST_MAX_PATHS distinct paths the rest count
 * under "(other)". Caller holds st->mu.
 */
static void paths_count(standin *st, const char *path)
{
    if (st->npaths >= ST_MAX_PATHS && strcmp(path, "(other)") != 0) {
        size_t cap = st->cap_paths;
        for (size_t i = path_hash(path) & (cap - 1); st->paths[i].path; i = (i + 1) & (cap - 1))
            if (strcmp(st->paths[i].path, path) == 0) {
                st->paths[i].n++;
                return;
            }
        path = "(other)";
    }
    if ((st->npaths + 1) * 2 > st->cap_paths) {
        size_t cap = st->cap_paths ? st->cap_paths * 2 : 64;
        st_count *grown = calloc(cap, sizeof(*grown));
        if (grown == NULL)
            return;
        for (size_t i = 0; i < st->cap_paths; i++) {
            if (st->paths[i].path == NULL)
                continue;
            size_t j = path_hash(st->paths[i].path) & (cap - 1);
            while (grown[j].path)
                j = (j + 1) & (cap - 1);
            grown[j] = st->paths[i];
        }
        free(st->paths);
        st->paths = grown;
        st->cap_paths = cap;
    }
    size_t cap = st->cap_paths, i = path_hash(path) & (cap - 1);
    for (; st->paths[i].path; i = (i + 1) & (cap - 1)) {
        if (strcmp(st->paths[i].path, path) == 0) {
            st->paths[i].n++;
            return;
        }
    }
    st->paths[i].path = strdup(path);
    if (st->paths[i].path) {
        st->paths[i].n = 1;
        st->npaths++;
    }
}

/* Counts a data request. */
static void stats_count(standin *st, const st_req *req)
{
    pthread_mutex_lock(&st->mu);
    st->requests++;
    st->seen_request = 1;
    paths_count(st, req->path);
    int kind = st->opts.mode == ST_KUBE ? kube_kind(req) : -1;
    if (kind >= 0)
        st->kinds[kind]++;
    set_str(&st->last_accept, st_header(req, "Accept"));
    set_str(&st->last_ua, st_header(req, "User-Agent"));
    set_str(&st->last_method, req->method);
    set_str(&st->last_path, req->uri);
    st->last_bearer = has_bearer(req);
    pthread_mutex_unlock(&st->mu);
}

static void stats_reset(standin *st)
{
    pthread_mutex_lock(&st->mu);
    st->requests = st->redirect_hits = st->imds_v1 = st->imds_v2 = 0;
    memset(st->kinds, 0, sizeof(st->kinds));
    paths_free(st);
    set_str(&st->last_accept, NULL);
    set_str(&st->last_ua, NULL);
    set_str(&st->last_method, NULL);
    set_str(&st->last_path, NULL);
    st->last_bearer = 0;
    st->seen_request = 0;
    pthread_mutex_unlock(&st->mu);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *stats_json(standin *st)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&st->mu);
    cJSON_AddNumberToObject(o, "requests", (double)st->requests);
    cJSON *paths = cJSON_AddObjectToObject(o, "paths");
    for (size_t i = 0; i < st->cap_paths; i++)
        if (st->paths[i].path)
            cJSON_AddNumberToObject(paths, st->paths[i].path, (double)st->paths[i].n);
    add_str_or_null(o, "lastAccept", st->last_accept);
    add_str_or_null(o, "lastUserAgent", st->last_ua);
    add_str_or_null(o, "lastAuth", st->seen_request ? (st->last_bearer ? "bearer" : "none") : NULL);
    add_str_or_null(o, "lastMethod", st->last_method);
    add_str_or_null(o, "lastPath", st->last_path);
    cJSON_AddNumberToObject(o, "redirectHits", (double)st->redirect_hits);
    if (st->opts.mode == ST_IMDS) {
        cJSON_AddNumberToObject(o, "imdsV1", (double)st->imds_v1);
        cJSON_AddNumberToObject(o, "imdsV2", (double)st->imds_v2);
    } else {
        cJSON *k = cJSON_AddObjectToObject(o, "kinds");
        cJSON_AddNumberToObject(k, "get", (double)st->kinds[ST_KIND_GET]);
        cJSON_AddNumberToObject(k, "list", (double)st->kinds[ST_KIND_LIST]);
        cJSON_AddNumberToObject(k, "watch", (double)st->kinds[ST_KIND_WATCH]);
    }
    pthread_mutex_unlock(&st->mu);
    cJSON *f = cJSON_AddArrayToObject(o, "faults");
    st_faults_json(st, f);
    if (st->opts.mode == ST_KUBE)
        kube_stats(st, o);
    return o;
}

static enum MHD_Result collect_header_name(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    tw_buf *b = cls;
    (void)kind;
    (void)value;
    if (b->len > 0)
        tw_buf_puts(b, ",");
    for (const char *p = key; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        /* Keep the line one token per field whatever the client sent. */
        if (c == ',' || c < 0x21)
            c = '_';
        tw_buf_append(b, &c, 1);
    }
    return MHD_YES;
}

/* One line per request: time, method, uri, status, auth=bearer|none, header names. */
static void log_request(standin *st, const st_req *req, const st_resp *resp)
{
    if (st->log == NULL)
        return;
    char when[40] = "";
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
    char status[16];
    if (resp->action == ST_HANG)
        snprintf(status, sizeof(status), "hang");
    else if (resp->action == ST_DROP)
        snprintf(status, sizeof(status), "drop");
    else
        snprintf(status, sizeof(status), "%d", resp->status);
    tw_buf names;
    tw_buf_init(&names, 4096);
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_header_name, &names);
    tw_buf uri;
    tw_buf_init(&uri, 4096);
    /* The URI goes on one line whatever bytes it carries. */
    for (const char *p = req->uri; *p && uri.len < 2000; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x21 || c == 0x7f)
            tw_buf_printf(&uri, "%%%02X", c);
        else
            tw_buf_append(&uri, p, 1);
    }
    pthread_mutex_lock(&st->mu);
    fprintf(st->log, "%s %s %s %s auth=%s headers=%s%s%s\n", when, req->method, tw_buf_cstr(&uri),
            status, has_bearer(req) ? "bearer" : "none", tw_buf_cstr(&names),
            resp->note[0] ? " " : "", resp->note);
    fflush(st->log);
    pthread_mutex_unlock(&st->mu);
    tw_buf_free(&names);
    tw_buf_free(&uri);
}

/* ---- control API ---- */

static int is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return 0;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

static void control_error(st_resp *resp, int code, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    st_reply_json(resp, code, "application/json", o);
    cJSON_Delete(o);
}

static void control_faults(standin *st, const st_req *req, st_resp *resp)
{
    char err[TW_ERRLEN] = "";
    const char *set = st_arg(req, "set");
    const char *add = st_arg(req, "add");
    if (strcmp(req->method, "GET") != 0) {
        if (strcmp(req->method, "POST") != 0) {
            control_error(resp, 405, "use GET or POST");
            return;
        }
        if ((set == NULL) == (add == NULL)) {
            control_error(resp, 400, "give exactly one of set= or add=");
            return;
        }
        if (st_faults_update(st, set ? set : add, add != NULL, err) != TW_OK) {
            control_error(resp, 400, err);
            return;
        }
    }
    cJSON *o = cJSON_CreateObject();
    st_faults_json(st, cJSON_AddArrayToObject(o, "faults"));
    st_reply_json(resp, 200, "application/json", o);
    cJSON_Delete(o);
}

static void control(standin *st, const st_req *req, st_resp *resp)
{
    const char *what = req->path + strlen("/_control");
    if (*what == '/')
        what++;
    if (!is_loopback(req->conn)) {
        control_error(resp, 403, "the control API answers loopback clients only");
        return;
    }
    if (strcmp(what, "fault") == 0 || strcmp(what, "faults") == 0) {
        control_faults(st, req, resp);
    } else if (strcmp(what, "stats") == 0) {
        cJSON *o = stats_json(st);
        st_reply_json(resp, 200, "application/json", o);
        cJSON_Delete(o);
    } else if (strcmp(what, "reset") == 0) {
        if (strcmp(req->method, "POST") != 0) {
            control_error(resp, 405, "use POST");
            return;
        }
        stats_reset(st);
        st_reply(resp, 200, "application/json", "{\"reset\":true}");
    } else if (strcmp(what, "redirect-target") == 0) {
        pthread_mutex_lock(&st->mu);
        st->redirect_hits++;
        pthread_mutex_unlock(&st->mu);
        st_reply(resp, 200, "application/json", "{\"redirected\":true}");
    } else if (st->opts.mode == ST_KUBE && kube_control(st, req, what, resp)) {
        return;
    } else {
        control_error(resp, 404, "no such control endpoint");
    }
}

/* ---- request plumbing ---- */

int st_is_stopping(standin *st)
{
    return atomic_load(&st->stopping);
}

int st_sleep(standin *st, long ms)
{
    while (ms > 0 && !st_is_stopping(st)) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return st_is_stopping(st);
}

void st_error(standin *st, const st_req *req, st_resp *resp, int code)
{
    if (st->opts.mode == ST_KUBE)
        kube_error(st, req, resp, code);
    else
        imds_error(st, req, resp, code);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    st_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->uri = strdup(uri ? uri : "");
    tw_buf_init(&c->body, ST_BODY_MAX);
    return c;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    st_conn *c = *con_cls;
    if (c) {
        free(c->uri);
        tw_buf_free(&c->body);
        free(c);
    }
    *con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    standin *st = cls;
    st_conn *c = *con_cls;
    (void)version;
    if (c == NULL || c->uri == NULL)
        return MHD_NO;
    if (!c->started) {
        c->started = 1;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!c->too_big && tw_buf_append(&c->body, upload, *upload_size) != TW_OK)
            c->too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }

    st_req req = {conn, method, url, c->uri, tw_buf_cstr(&c->body), c->body.len};
    st_resp resp;
    st_resp_init(&resp);
    if (strcmp(url, "/_control") == 0 || strncmp(url, "/_control/", 10) == 0) {
        if (c->too_big)
            control_error(&resp, 413, "request body too large");
        else
            control(st, &req, &resp);
    } else {
        stats_count(st, &req);
        if (c->too_big)
            st_error(st, &req, &resp, 413);
        else if (!st_fault_apply(st, &req, &resp)) {
            if (st->opts.mode == ST_KUBE)
                kube_handle(st, &req, &resp);
            else
                imds_handle(st, &req, &resp);
        }
    }
    log_request(st, &req, &resp);
    if (resp.action == ST_HANG) {
        while (!st_sleep(st, 1000))
            ;
        st_resp_free(&resp);
        return MHD_NO;
    }
    if (resp.action == ST_DROP) {
        st_resp_free(&resp);
        return MHD_NO;
    }
    return st_send(st, conn, &resp);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    /* Dropped and hung requests end with MHD_NO on purpose; that is no news. */
    if (strncmp(fmt, "Application reported internal error", 35) == 0)
        return;
    fputs("topowire-standin: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- options and main ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *v6)
{
    char host[128];
    const char *port;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        *len = sizeof(*in);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*in6);
        *v6 = 1;
        return 0;
    }
    return -1;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int bad = fprintf(f, "%u\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

enum {
    O_LISTEN = 1000,
    O_PORT_FILE,
    O_LOG,
    O_FAULT,
    O_TLS_CERT,
    O_TLS_KEY,
    O_TOKEN,
    O_TOKEN_FILE,
    O_NODES_DIR,
    O_BOOKMARK,
    O_HISTORY,
    O_WEBHOOK,
    O_CLOUD,
    O_FIXTURES,
    O_HELP,
};

/* Fills o from argv; returns 0, or 2 after printing why the command line is wrong. */
static int parse_opts(int argc, char **argv, st_opts *o)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"log", required_argument, NULL, O_LOG},
        {"fault", required_argument, NULL, O_FAULT},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"token", required_argument, NULL, O_TOKEN},
        {"token-file", required_argument, NULL, O_TOKEN_FILE},
        {"nodes-dir", required_argument, NULL, O_NODES_DIR},
        {"bookmark-interval", required_argument, NULL, O_BOOKMARK},
        {"history", required_argument, NULL, O_HISTORY},
        {"webhook-config", required_argument, NULL, O_WEBHOOK},
        {"cloud", required_argument, NULL, O_CLOUD},
        {"fixtures", required_argument, NULL, O_FIXTURES},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:0";
    o->bookmark_interval = 5;
    o->history = 10000;
    o->fixtures = "tests/fixtures/imds";
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "kube") == 0)
        o->mode = ST_KUBE;
    else if (strcmp(argv[1], "imds") == 0)
        o->mode = ST_IMDS;
    else {
        fprintf(stderr, "topowire-standin: unknown mode '%s' (kube or imds)\n", argv[1]);
        return 2;
    }
    int kube_only = 0, imds_only = 0, c;
    const char *kube_opt = NULL, *imds_opt = NULL;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            o->listen = optarg;
            break;
        case O_PORT_FILE:
            o->port_file = optarg;
            break;
        case O_LOG:
            o->log = optarg;
            break;
        case O_FAULT:
            if (o->nfaults == ST_MAX_FAULT) {
                fprintf(stderr, "topowire-standin: at most %d --fault options\n", ST_MAX_FAULT);
                return 2;
            }
            o->faults[o->nfaults++] = optarg;
            break;
        case O_TLS_CERT:
            o->tls_cert = optarg;
            break;
        case O_TLS_KEY:
            o->tls_key = optarg;
            break;
        case O_TOKEN:
            o->token = optarg;
            kube_only = 1, kube_opt = "--token";
            break;
        case O_TOKEN_FILE:
            o->token_file = optarg;
            kube_only = 1, kube_opt = "--token-file";
            break;
        case O_NODES_DIR:
            o->nodes_dir = optarg;
            kube_only = 1, kube_opt = "--nodes-dir";
            break;
        case O_BOOKMARK:
            if (parse_long(optarg, 1, 3600, &o->bookmark_interval) != 0) {
                fprintf(stderr, "topowire-standin: --bookmark-interval wants 1..3600 seconds\n");
                return 2;
            }
            kube_only = 1, kube_opt = "--bookmark-interval";
            break;
        case O_HISTORY:
            if (parse_long(optarg, 1, 10000000, &o->history) != 0) {
                fprintf(stderr, "topowire-standin: --history wants a positive number\n");
                return 2;
            }
            kube_only = 1, kube_opt = "--history";
            break;
        case O_WEBHOOK:
            if (o->nwebhook_configs == 8) {
                fprintf(stderr, "topowire-standin: at most 8 --webhook-config options\n");
                return 2;
            }
            o->webhook_configs[o->nwebhook_configs++] = optarg;
            kube_only = 1, kube_opt = "--webhook-config";
            break;
        case O_CLOUD:
            if (strcmp(optarg, "aws") == 0)
                o->cloud = ST_AWS;
            else if (strcmp(optarg, "gcp") == 0)
                o->cloud = ST_GCP;
            else if (strcmp(optarg, "azure") == 0)
                o->cloud = ST_AZURE;
            else {
                fprintf(stderr, "topowire-standin: --cloud wants aws, gcp or azure\n");
                return 2;
            }
            imds_only = 1, imds_opt = "--cloud";
            break;
        case O_FIXTURES:
            o->fixtures = optarg;
            imds_only = 1, imds_opt = "--fixtures";
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "topowire-standin: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (kube_only && o->mode != ST_KUBE) {
        fprintf(stderr, "topowire-standin: %s is a kube-mode option\n", kube_opt);
        return 2;
    }
    if (imds_only && o->mode != ST_IMDS) {
        fprintf(stderr, "topowire-standin: %s is an imds-mode option\n", imds_opt);
        return 2;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        fprintf(stderr, "topowire-standin: give both --tls-cert and --tls-key\n");
        return 2;
    }
    if (o->mode == ST_KUBE && o->tls_cert == NULL) {
        fprintf(stderr, "topowire-standin: kube mode needs --tls-cert and --tls-key\n");
        return 2;
    }
    if (o->token && o->token_file) {
        fprintf(stderr, "topowire-standin: give --token or --token-file, not both\n");
        return 2;
    }
    return 0;
}

static void standin_free(standin *st)
{
    if (st->kube)
        kube_free(st);
    if (st->imds)
        imds_free(st);
    paths_free(st);
    free(st->last_accept);
    free(st->last_ua);
    free(st->last_method);
    free(st->last_path);
    if (st->log)
        fclose(st->log);
    pthread_mutex_destroy(&st->mu);
}

int main(int argc, char **argv)
{
    static standin st;
    char err[TW_ERRLEN] = "";
    char *cert = NULL, *key = NULL;
    struct MHD_Daemon *d = NULL;
    int rc = 1;

    int prc = parse_opts(argc, argv, &st.opts);
    if (prc != 0)
        return prc;
    pthread_mutex_init(&st.mu, NULL);
    for (int i = 0; i < st.opts.nfaults; i++) {
        if (st_faults_update(&st, st.opts.faults[i], 1, err) != TW_OK) {
            fprintf(stderr, "topowire-standin: %s\n", err);
            rc = 2;
            goto out;
        }
    }
    if (st.opts.log) {
        st.log = fopen(st.opts.log, "a");
        if (st.log == NULL) {
            fprintf(stderr, "topowire-standin: cannot open log %s: %s\n", st.opts.log,
                    strerror(errno));
            goto out;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    int v6;
    if (parse_listen(st.opts.listen, &ss, &sslen, &v6) != 0) {
        fprintf(stderr, "topowire-standin: --listen wants ADDR:PORT or [ADDR6]:PORT\n");
        rc = 2;
        goto out;
    }
    if (st.opts.tls_cert) {
        cert = st_read_file(st.opts.tls_cert, 1 << 20, NULL);
        key = st_read_file(st.opts.tls_key, 1 << 20, NULL);
        if (cert == NULL || key == NULL) {
            fprintf(stderr, "topowire-standin: cannot read the TLS certificate or key\n");
            goto out;
        }
    }
    if ((st.opts.mode == ST_KUBE ? kube_init(&st, err) : imds_init(&st, err)) != TW_OK) {
        fprintf(stderr, "topowire-standin: %s\n", err);
        goto out;
    }

    /* Block the stop signals before any thread exists so that only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &st, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_logger, &st, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_URI_LOG_CALLBACK,
                         on_uri, &st, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &st,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_ARRAY,
                         tls_opts, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "topowire-standin: cannot listen on %s\n", st.opts.listen);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    if (st.opts.port_file && write_port_file(st.opts.port_file, port) != 0) {
        fprintf(stderr, "topowire-standin: cannot write %s\n", st.opts.port_file);
        goto out;
    }
    fprintf(stderr, "topowire-standin: %s listening on %s://%s port %u\n",
            st.opts.mode == ST_KUBE ? "kube" : "imds", cert ? "https" : "http", st.opts.listen,
            port);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    rc = 0;
out:
    atomic_store(&st.stopping, 1);
    if (st.kube)
        kube_wake(&st);
    if (d)
        MHD_stop_daemon(d);
    standin_free(&st);
    free(cert);
    free(key);
    return rc;
}
