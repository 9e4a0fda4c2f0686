/* test_http.c - the HTTP client against loopback servers: statuses, caps, deadlines, TLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"

#include "../../lib/http_int.h"

/* Slack for timing assertions: the machine is small and shared, and ASan is slow. */
#define MARGIN_MS 600

/* What a handler answers and what it saw of the last request. */
typedef struct scene {
    tw_testresp resp;
    char method[16];
    char auth[256];
    char ua[256];
    char ctype[128];
    char body[256];
    size_t body_len;
} scene;

static void scene_handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    scene *s = ud;
    const char *v;
    snprintf(s->method, sizeof(s->method), "%s", req->method);
    v = tw_testreq_header(req, "Authorization");
    snprintf(s->auth, sizeof(s->auth), "%s", v ? v : "");
    v = tw_testreq_header(req, "User-Agent");
    snprintf(s->ua, sizeof(s->ua), "%s", v ? v : "");
    v = tw_testreq_header(req, "Content-Type");
    snprintf(s->ctype, sizeof(s->ctype), "%s", v ? v : "");
    s->body_len = req->body_len;
    snprintf(s->body, sizeof(s->body), "%.*s", (int)req->body_len, req->body);
    *resp = s->resp;
}

/* Certificates made once for the whole group: a good CA and an unrelated one. */
static char cert_dir[64], other_dir[64];
static char ca_file[128], other_ca_file[128];
static char *server_cert, *server_key, *ca_pem, *other_ca_pem;

static char *read_in(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return tw_test_read_file(path, NULL);
}

static int group_setup(void **state)
{
    (void)state;
    if (tw_http_global_init() != TW_OK)
        return -1;
    snprintf(cert_dir, sizeof(cert_dir), "/tmp/tw-http-XXXXXX");
    snprintf(other_dir, sizeof(other_dir), "/tmp/tw-http-XXXXXX");
    if (mkdtemp(cert_dir) == NULL || mkdtemp(other_dir) == NULL)
        return -1;
    if (tw_testserver_make_certs(cert_dir) != 0 || tw_testserver_make_certs(other_dir) != 0)
        return -1;
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", cert_dir);
    snprintf(other_ca_file, sizeof(other_ca_file), "%s/ca.pem", other_dir);
    server_cert = read_in(cert_dir, "server.pem");
    server_key = read_in(cert_dir, "server-key.pem");
    ca_pem = read_in(cert_dir, "ca.pem");
    other_ca_pem = read_in(other_dir, "ca.pem");
    return server_cert && server_key && ca_pem && other_ca_pem ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(server_cert);
    free(server_key);
    free(ca_pem);
    free(other_ca_pem);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", cert_dir, other_dir);
    int rc = system(cmd);
    tw_http_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* A started plain server, a client and a response, torn down together. */
typedef struct fixture {
    scene sc;
    tw_testserver *srv;
    tw_http_client *cli;
    tw_http_response resp;
    char url[256];
    char err[TW_ERRLEN];
} fixture;

static fixture *fixture_new(int tls)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->srv = tw_testserver_start(scene_handler, &f->sc, tls ? server_cert : NULL,
                                 tls ? server_key : NULL);
    assert_non_null(f->srv);
    f->cli = tw_http_client_new();
    assert_non_null(f->cli);
    tw_http_response_init(&f->resp);
    snprintf(f->url, sizeof(f->url), "%s/x", tw_testserver_url(f->srv));
    return f;
}

static void fixture_free(fixture *f)
{
    tw_http_client_free(f->cli);
    tw_testserver_stop(f->srv);
    tw_http_response_free(&f->resp);
    free(f);
}

static tw_http_request basic_request(const fixture *f)
{
    tw_http_request r = {0};
    r.url = f->url;
    r.deadline = tw_deadline_in(10000);
    return r;
}

static void get_200_with_body(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.body = "hello", .content_type = "text/plain; charset=utf-8"};
    tw_http_request r = basic_request(f);
    r.user_agent = "topowire-test/1.0";
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.status, 200);
    assert_string_equal(tw_buf_cstr(&f->resp.body), "hello");
    assert_int_equal(f->resp.body.len, 5);
    assert_string_equal(f->resp.content_type, "text/plain; charset=utf-8");
    assert_int_equal(f->resp.retry_after_s, -1);
    assert_string_equal(f->sc.method, "GET");
    assert_string_equal(f->sc.ua, "topowire-test/1.0");
    assert_string_equal(f->sc.auth, "");
    assert_int_equal(tw_testserver_requests(f->srv), 1);
    fixture_free(f);
}

static void status_404_is_an_answer(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.status = 404, .body = "{\"kind\":\"Status\"}"};
    tw_http_request r = basic_request(f);
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.status, 404);
    assert_string_equal(tw_buf_cstr(&f->resp.body), "{\"kind\":\"Status\"}");
    fixture_free(f);
}

static void retry_after_is_captured(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.status = 429, .headers = {"Retry-After: 7"}};
    tw_http_request r = basic_request(f);
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.status, 429);
    assert_int_equal(f->resp.retry_after_s, 7);
    /* The next answer on the same client has none, and must not inherit it. */
    f->sc.resp = (tw_testresp){.status = 200};
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.retry_after_s, -1);
    fixture_free(f);
}

/* A redirect is refused, and the server it points at is never contacted. */
static void redirect_is_never_followed(void **state)
{
    (void)state;
    fixture *target = fixture_new(0);
    fixture *f = fixture_new(0);
    char location[300];
    snprintf(location, sizeof(location), "Location: %s", target->url);
    for (int status = 301; status <= 308; status++) {
        if (status == 304 || status == 305 || status == 306)
            continue;
        f->sc.resp = (tw_testresp){.status = status, .headers = {location}};
        tw_http_request r = basic_request(f);
        r.bearer_token = "tok-redirect-secret";
        f->err[0] = '\0';
        assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_EREDIRECT);
        assert_int_equal(f->resp.status, status);
        char code[16];
        snprintf(code, sizeof(code), "%d", status);
        assert_non_null(strstr(f->err, code));
        assert_null(strstr(f->err, target->url));
        assert_null(strstr(f->err, "tok-redirect-secret"));
        assert_string_equal(f->sc.auth, "Bearer tok-redirect-secret");
    }
    assert_int_equal(tw_testserver_requests(target->srv), 0);
    assert_string_equal(target->sc.auth, "");
    fixture_free(f);
    fixture_free(target);
}

static void content_length_over_cap_is_refused(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    static char big[5000];
    memset(big, 'a', sizeof(big));
    f->sc.resp = (tw_testresp){.body = big, .body_len = sizeof(big)};
    tw_http_request r = basic_request(f);
    r.max_body = 4999;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETOOBIG);
    assert_non_null(strstr(f->err, "4999"));
    assert_true(f->resp.body.len == 0);
    /* Exactly at the cap is fine. */
    r.max_body = 5000;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.body.len, 5000);
    fixture_free(f);
}

/*
 * A raw server for what the test server cannot give or tell (a chunked body
 * with no Content-Length; how many connections were opened): answers every
 * request head with the same canned reply, one connection at a time, and
 * keeps the connection open until the client closes it or opens another.
 */
typedef struct raw_server {
    int fd;
    int port;
    const char *reply;
    size_t reply_len;
    atomic_int stop;
    atomic_int connections;
    atomic_int requests;
    pthread_t thread;
} raw_server;

/* Reads one request head from c; returns 0, or -1 when the peer closed or failed. */
static int raw_read_head(int c)
{
    char head[8192];
    size_t n = 0;
    while (n < sizeof(head) - 1) {
        ssize_t k = recv(c, head + n, sizeof(head) - 1 - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n") != NULL)
            return 0;
    }
    return -1;
}

static void *raw_serve(void *arg)
{
    raw_server *s = arg;
    int c = -1;
    while (!atomic_load(&s->stop)) {
        struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = c, .events = POLLIN}};
        if (poll(p, c >= 0 ? 2 : 1, 50) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int n = accept(s->fd, NULL, NULL);
            if (n >= 0) {
                if (c >= 0)
                    close(c);
                c = n;
                atomic_fetch_add(&s->connections, 1);
            }
            continue;
        }
        if (c >= 0 && p[1].revents != 0) {
            if (raw_read_head(c) != 0) {
                close(c);
                c = -1;
                continue;
            }
            atomic_fetch_add(&s->requests, 1);
            size_t off = 0;
            while (off < s->reply_len) {
                ssize_t k = send(c, s->reply + off, s->reply_len - off, MSG_NOSIGNAL);
                if (k <= 0)
                    break;
                off += (size_t)k;
            }
        }
    }
    if (c >= 0)
        close(c);
    return NULL;
}

static raw_server *raw_start(const char *reply, size_t len)
{
    raw_server *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->reply = reply;
    s->reply_len = len;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, raw_serve, s), 0);
    return s;
}

static void raw_stop(raw_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s);
}

static void one_client_keeps_one_connection(void **state)
{
    (void)state;
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    raw_server *s = raw_start(reply, strlen(reply));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/again", s->port);
    tw_http_client *c = tw_http_client_new();
    tw_http_response resp;
    tw_http_response_init(&resp);
    char err[TW_ERRLEN] = "";
    tw_http_request r = {.url = url, .deadline = tw_deadline_in(10000), .user_agent = "ka"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tw_http_do(c, &r, &resp, err), TW_OK);
        assert_string_equal(tw_buf_cstr(&resp.body), "ok");
    }
    assert_int_equal(atomic_load(&s->requests), 3);
    assert_int_equal(atomic_load(&s->connections), 1);
    tw_http_client_free(c);
    /* A second client has a connection of its own. */
    c = tw_http_client_new();
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_OK);
    assert_int_equal(atomic_load(&s->connections), 2);
    tw_http_client_free(c);
    raw_stop(s);
    tw_http_response_free(&resp);
}

static void chunked_body_over_cap_is_cut(void **state)
{
    (void)state;
    tw_buf reply;
    tw_buf_init(&reply, 1 << 20);
    assert_int_equal(tw_buf_puts(&reply, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                         "Transfer-Encoding: chunked\r\n\r\n"),
                     TW_OK);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tw_buf_puts(&reply, "400\r\n"), TW_OK);
        for (int j = 0; j < 1024; j++)
            assert_int_equal(tw_buf_append(&reply, "b", 1), TW_OK);
        assert_int_equal(tw_buf_puts(&reply, "\r\n"), TW_OK);
    }
    assert_int_equal(tw_buf_puts(&reply, "0\r\n\r\n"), TW_OK);

    raw_server *s = raw_start(reply.data, reply.len);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", s->port);
    tw_http_client *c = tw_http_client_new();
    tw_http_response resp;
    tw_http_response_init(&resp);
    char err[TW_ERRLEN] = "";
    tw_http_request r = {.url = url, .deadline = tw_deadline_in(10000), .max_body = 3000};
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_ETOOBIG);
    assert_non_null(strstr(err, "3000"));
    assert_true(resp.body.len <= 3000);
    assert_int_equal(resp.status, 200);
    /* The same answer fits under a larger cap, on the same client. */
    r.max_body = 8192;
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_OK);
    assert_int_equal(resp.body.len, 8192);
    assert_int_equal(atomic_load(&s->requests), 2);
    tw_http_client_free(c);
    raw_stop(s);
    tw_http_response_free(&resp);
    tw_buf_free(&reply);
}

static void stalled_body_times_out(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.stall = 1};
    tw_http_request r = basic_request(f);
    long budget = 3000;
    r.deadline = tw_deadline_in(budget);
    r.low_speed_ms = 300;
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETIMEDOUT);
    uint64_t elapsed = tw_now_ms() - t0;
    assert_true(elapsed >= 300);
    /* Noticed when it happened, well before the deadline. */
    assert_true(elapsed < 300 + MARGIN_MS);
    assert_true(elapsed < (uint64_t)budget);
    assert_non_null(strstr(f->err, "sent nothing for 300 ms"));
    assert_int_equal(f->resp.status, 200);
    fixture_free(f);
}

static void stalled_body_without_stall_detection_ends_at_deadline(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.stall = 1};
    tw_http_request r = basic_request(f);
    long budget = 800;
    r.deadline = tw_deadline_in(budget);
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETIMEDOUT);
    uint64_t elapsed = tw_now_ms() - t0;
    assert_true(elapsed >= (uint64_t)budget - 50);
    assert_true(elapsed < (uint64_t)budget + MARGIN_MS);
    fixture_free(f);
}

static void slow_reply_past_deadline_times_out(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.body = "late", .delay_ms = 2000};
    tw_http_request r = basic_request(f);
    long budget = 400;
    r.deadline = tw_deadline_in(budget);
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETIMEDOUT);
    uint64_t elapsed = tw_now_ms() - t0;
    assert_true(elapsed < (uint64_t)budget + MARGIN_MS);
    assert_int_equal(f->resp.status, 0);
    assert_non_null(strstr(f->err, "127.0.0.1"));
    fixture_free(f);
}

static void passed_deadline_sends_nothing(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    tw_http_request r = basic_request(f);
    r.deadline = tw_now_ms() - 1;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETIMEDOUT);
    assert_int_equal(tw_testserver_requests(f->srv), 0);
    assert_int_equal(f->resp.status, 0);
    fixture_free(f);
}

/* A port that was free a moment ago: nothing listens there. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void refused_port_is_a_network_error(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    tw_http_client *c = tw_http_client_new();
    tw_http_response resp;
    tw_http_response_init(&resp);
    char err[TW_ERRLEN] = "";
    tw_http_request r = {.url = url, .deadline = tw_deadline_in(5000), .bearer_token = "tok-net"};
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_ENET);
    assert_int_equal(resp.status, 0);
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_null(strstr(err, "tok-net"));
    tw_http_client_free(c);
    tw_http_response_free(&resp);
}

static void dropped_connection_is_a_network_error(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.drop = 1};
    tw_http_request r = basic_request(f);
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ENET);
    fixture_free(f);
}

static void tls_with_ca_file_and_ca_pem(void **state)
{
    (void)state;
    fixture *f = fixture_new(1);
    f->sc.resp = (tw_testresp){.body = "secure"};
    tw_http_request r = basic_request(f);
    r.ca_file = ca_file;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_string_equal(tw_buf_cstr(&f->resp.body), "secure");
    r.ca_file = NULL;
    r.ca_pem = ca_pem;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_string_equal(tw_buf_cstr(&f->resp.body), "secure");
    fixture_free(f);
}

static void tls_with_wrong_ca_fails(void **state)
{
    (void)state;
    fixture *f = fixture_new(1);
    tw_http_request r = basic_request(f);
    r.bearer_token = "tok-tls-secret";
    r.ca_file = other_ca_file;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETLS);
    assert_null(strstr(f->err, "tok-tls-secret"));
    r.ca_file = NULL;
    r.ca_pem = other_ca_pem;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETLS);
    /* With no CA given, the system store does not know the throw-away CA either. */
    r.ca_pem = NULL;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETLS);
    assert_int_equal(tw_testserver_requests(f->srv), 0);
    assert_string_equal(f->sc.auth, "");
    /* The insecure switch for tests does connect. */
    r.insecure_skip_verify = 1;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(tw_testserver_requests(f->srv), 1);
    fixture_free(f);
}

static void bearer_token_and_user_agent_are_sent(void **state)
{
    (void)state;
    fixture *f = fixture_new(1);
    tw_http_request r = basic_request(f);
    r.ca_file = ca_file;
    r.bearer_token = "eyJhbGciOiJSUzI1NiJ9.payload.sig";
    r.user_agent = "topowire/0.1 (linux)";
    const char *hdrs[] = {"Accept: application/json", NULL};
    r.headers = hdrs;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_string_equal(f->sc.auth, "Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig");
    assert_string_equal(f->sc.ua, "topowire/0.1 (linux)");
    fixture_free(f);
}

static void line_breaks_in_headers_are_refused(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    tw_http_request r = basic_request(f);
    r.bearer_token = "tok-inject\r\nX-Evil: 1";
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_EINVAL);
    assert_null(strstr(f->err, "tok-inject"));
    r.bearer_token = NULL;
    const char *hdrs[] = {"X-A: 1\nX-B: 2", NULL};
    r.headers = hdrs;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_EINVAL);
    r.headers = NULL;
    r.user_agent = "ua\r\n";
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_EINVAL);
    assert_int_equal(tw_testserver_requests(f->srv), 0);
    fixture_free(f);
}

static void bad_urls_and_methods_are_refused(void **state)
{
    (void)state;
    tw_http_client *c = tw_http_client_new();
    tw_http_response resp;
    tw_http_response_init(&resp);
    char err[TW_ERRLEN];
    tw_http_request r = {.url = "ftp://127.0.0.1/x"};
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_EINVAL);
    assert_non_null(strstr(err, "ftp"));
    r.url = "file:///etc/passwd";
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_EINVAL);
    r.url = "not a url";
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_EINVAL);
    r.url = NULL;
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_EINVAL);
    r.url = "http://127.0.0.1/";
    r.method = "GET /other HTTP/1.1\r\n";
    assert_int_equal(tw_http_do(c, &r, &resp, err), TW_EINVAL);
    tw_http_client_free(c);
    tw_http_response_free(&resp);
}

static void put_with_body_then_get_on_the_same_client(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    f->sc.resp = (tw_testresp){.status = 201, .body = "created"};
    tw_http_request r = basic_request(f);
    const char body[] = "{\"zone\":\"us-east-1b\"}";
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    r.method = "PUT";
    r.body = body;
    r.body_len = strlen(body);
    r.headers = hdrs;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.status, 201);
    assert_string_equal(f->sc.method, "PUT");
    assert_string_equal(f->sc.body, body);
    assert_int_equal(f->sc.body_len, strlen(body));
    assert_string_equal(f->sc.ctype, "application/json");

    /* Nothing of the PUT leaks into the next request on the reused handle. */
    f->sc.resp = (tw_testresp){.body = "plain"};
    tw_http_request g = basic_request(f);
    assert_int_equal(tw_http_do(f->cli, &g, &f->resp, f->err), TW_OK);
    assert_string_equal(f->sc.method, "GET");
    assert_int_equal(f->sc.body_len, 0);
    assert_string_equal(f->sc.ctype, "");
    assert_string_equal(tw_buf_cstr(&f->resp.body), "plain");

    /* A POST without a Content-Type gets none (not a form encoding). */
    tw_http_request p = basic_request(f);
    p.method = "POST";
    p.body = "x";
    p.body_len = 1;
    assert_int_equal(tw_http_do(f->cli, &p, &f->resp, f->err), TW_OK);
    assert_string_equal(f->sc.method, "POST");
    assert_string_equal(f->sc.body, "x");
    assert_string_equal(f->sc.ctype, "");
    assert_int_equal(tw_testserver_requests(f->srv), 3);
    fixture_free(f);
}

typedef struct sink {
    tw_buf got;
    int calls;
    int fail_with;
} sink;

static int sink_data(void *ud, const char *data, size_t len)
{
    sink *s = ud;
    s->calls++;
    if (s->fail_with != 0)
        return s->fail_with;
    return tw_buf_append(&s->got, data, len) == TW_OK ? 0 : -1;
}

static void streaming_hands_over_the_body(void **state)
{
    (void)state;
    fixture *f = fixture_new(0);
    static char big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    f->sc.resp = (tw_testresp){.body = big, .body_len = sizeof(big)};
    sink s = {.fail_with = 0};
    tw_buf_init(&s.got, 1 << 20);
    tw_http_request r = basic_request(f);
    r.on_data = sink_data;
    r.on_data_ud = &s;
    r.max_body = 10; /* buffering cap: not applied to a stream */
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_OK);
    assert_int_equal(f->resp.body.len, 0);
    assert_int_equal(s.got.len, sizeof(big));
    assert_memory_equal(s.got.data, big, sizeof(big));
    assert_true(s.calls >= 1);

    /* A negative code from on_data stops the transfer and comes back as is. */
    s.fail_with = TW_ETOOBIG;
    s.calls = 0;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_ETOOBIG);
    assert_int_equal(s.calls, 1);
    /* Any other non-zero value is TW_EINVAL. */
    s.fail_with = 1;
    assert_int_equal(tw_http_do(f->cli, &r, &f->resp, f->err), TW_EINVAL);
    tw_buf_free(&s.got);
    fixture_free(f);
}

static void retry_after_parsing(void **state)
{
    (void)state;
    long now = (long)curl_getdate("Wed, 21 Oct 2015 07:28:00 GMT", NULL);
    assert_true(now > 0);
    assert_int_equal(tw__http_parse_retry_after("120", now), 120);
    assert_int_equal(tw__http_parse_retry_after(" 5 ", now), 5);
    assert_int_equal(tw__http_parse_retry_after("0", now), 0);
    /* HTTP dates in the three formats RFC 9110 names. */
    assert_int_equal(tw__http_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30);
    assert_int_equal(tw__http_parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now), 60);
    assert_int_equal(tw__http_parse_retry_after("Wed Oct 21 07:28:10 2015", now), 10);
    /* A date already past means now. */
    assert_int_equal(tw__http_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    /* Absurd waits are clamped to a day. */
    assert_int_equal(tw__http_parse_retry_after("99999999999999999999999", now), 86400);
    assert_int_equal(tw__http_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now), 86400);
    /* Found by fuzz_retry_after: a clock far in the past overflowed the difference. */
    assert_int_equal(tw__http_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", LONG_MIN), 86400);
    assert_int_equal(tw__http_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", -1), 86400);
    assert_int_equal(tw__http_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", LONG_MAX), 0);
    /* Garbage, negatives, fractions and empty values are not Retry-After. */
    assert_int_equal(tw__http_parse_retry_after("garbage", now), -1);
    assert_int_equal(tw__http_parse_retry_after("-5", now), -1);
    assert_int_equal(tw__http_parse_retry_after("+5", now), -1);
    assert_int_equal(tw__http_parse_retry_after("1.5", now), -1);
    assert_int_equal(tw__http_parse_retry_after("5 seconds", now), -1);
    assert_int_equal(tw__http_parse_retry_after("12 34", now), -1);
    assert_int_equal(tw__http_parse_retry_after("", now), -1);
    assert_int_equal(tw__http_parse_retry_after("   ", now), -1);
    assert_int_equal(tw__http_parse_retry_after(NULL, now), -1);
    char longv[200];
    memset(longv, '1', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    assert_int_equal(tw__http_parse_retry_after(longv, now), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_200_with_body),
        cmocka_unit_test(status_404_is_an_answer),
        cmocka_unit_test(retry_after_is_captured),
        cmocka_unit_test(redirect_is_never_followed),
        cmocka_unit_test(content_length_over_cap_is_refused),
        cmocka_unit_test(chunked_body_over_cap_is_cut),
        cmocka_unit_test(one_client_keeps_one_connection),
        cmocka_unit_test(stalled_body_times_out),
        cmocka_unit_test(stalled_body_without_stall_detection_ends_at_deadline),
        cmocka_unit_test(slow_reply_past_deadline_times_out),
        cmocka_unit_test(passed_deadline_sends_nothing),
        cmocka_unit_test(refused_port_is_a_network_error),
        cmocka_unit_test(dropped_connection_is_a_network_error),
        cmocka_unit_test(tls_with_ca_file_and_ca_pem),
        cmocka_unit_test(tls_with_wrong_ca_fails),
        cmocka_unit_test(bearer_token_and_user_agent_are_sent),
        cmocka_unit_test(line_breaks_in_headers_are_refused),
        cmocka_unit_test(bad_urls_and_methods_are_refused),
        cmocka_unit_test(put_with_body_then_get_on_the_same_client),
        cmocka_unit_test(streaming_hands_over_the_body),
        cmocka_unit_test(retry_after_parsing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
