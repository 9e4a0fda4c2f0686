/* testserver.c - loopback HTTP(S) server for unit tests. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "testserver.h"

struct tw_testserver {
    struct MHD_Daemon *d;
    tw_testserver_handler handler;
    void *ud;
    int port;
    char url[64];
    atomic_int requests;
    atomic_int stopping;
};

typedef struct conn_state {
    char *body;
    size_t len;
} conn_state;

const char *tw_testreq_header(const tw_testreq *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

static ssize_t stall_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    tw_testserver *s = cls;
    (void)pos;
    (void)buf;
    (void)max;
    while (!atomic_load(&s->stopping))
        usleep(10000);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Rebuilds "k=v&k=v" from the parsed arguments (MHD strips the query from url). */
static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    char *q = cls;
    size_t n = strlen(q);
    (void)kind;
    snprintf(q + n, 1024 - n, "%s%s=%s", n ? "&" : "", key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    tw_testserver *s = cls;
    (void)version;
    conn_state *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        char *p = realloc(st->body, st->len + *upload_size + 1);
        if (p == NULL)
            return MHD_NO;
        memcpy(p + st->len, upload, *upload_size);
        st->body = p;
        st->len += *upload_size;
        st->body[st->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->requests, 1);

    char query[1024] = "";
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_arg, query);

    tw_testreq req = {method, url, query, st->body ? st->body : "", st->len, conn};
    tw_testresp resp = {0};
    s->handler(s->ud, &req, &resp);
    if (resp.delay_ms > 0)
        usleep((useconds_t)resp.delay_ms * 1000);
    if (resp.drop)
        return MHD_NO;
    struct MHD_Response *r;
    if (resp.stall) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stall_reader, s, NULL);
    } else {
        size_t n = resp.body ? (resp.body_len ? resp.body_len : strlen(resp.body)) : 0;
        r = MHD_create_response_from_buffer(n, (void *)(resp.body ? resp.body : ""),
                                            MHD_RESPMEM_MUST_COPY);
    }
    if (r == NULL)
        return MHD_NO;
    if (resp.content_type)
        MHD_add_response_header(r, "Content-Type", resp.content_type);
    for (int i = 0; i < 8 && resp.headers[i]; i++) {
        const char *colon = strchr(resp.headers[i], ':');
        if (colon == NULL)
            continue;
        char name[128];
        size_t nl = (size_t)(colon - resp.headers[i]);
        if (nl >= sizeof(name))
            continue;
        memcpy(name, resp.headers[i], nl);
        name[nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        MHD_add_response_header(r, name, v);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)(resp.status ? resp.status : 200), r);
    MHD_destroy_response(r);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_state *st = *con_cls;
    if (st) {
        free(st->body);
        free(st);
    }
    *con_cls = NULL;
}

tw_testserver *tw_testserver_start(tw_testserver_handler handler, void *ud, const char *cert_pem,
                                   const char *key_pem)
{
    tw_testserver *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->handler = handler;
    s->ud = ud;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (cert_pem)
        flags |= MHD_USE_TLS;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (cert_pem) {
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
                                key_pem, MHD_OPTION_END);
    } else {
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    }
    if (s->d == NULL) {
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", cert_pem ? "https" : "http", s->port);
    return s;
}

int tw_testserver_port(const tw_testserver *s)
{
    return s->port;
}

const char *tw_testserver_url(const tw_testserver *s)
{
    return s->url;
}

int tw_testserver_requests(const tw_testserver *s)
{
    return atomic_load(&((tw_testserver *)s)->requests);
}

void tw_testserver_stop(tw_testserver *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, 1);
    MHD_stop_daemon(s->d);
    free(s);
}

int tw_testserver_make_certs(const char *dir)
{
    char cmd[2048];
    snprintf(
        cmd, sizeof(cmd),
        "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-keyout ca-key.pem -out ca.pem -days 2 -subj /CN=tw-test-ca >/dev/null 2>&1 && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-key.pem "
        "-out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1",
        dir);
    return system(cmd) == 0 ? 0 : -1;
}

char *tw_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return s;
}

const char *tw_fixture_path(const char *rel)
{
    static char path[1024];
    const char *root = getenv("TW_FIXTURES");
    snprintf(path, sizeof(path), "%s/%s", root ? root : "tests/fixtures", rel);
    return path;
}
