/* test_kube.c - the Kubernetes client against a loopback TLS API server stand-in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/testserver.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/kube.h"

#include "../../lib/kube_int.h"

#define MARGIN_MS   700
#define SLOTS       16
#define NODE        "ip-10-0-41-17.ec2.internal"
#define NODE_ACCEPT "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define UA          "topowire-test/1.0 (linux/amd64)"
#define TOKEN_OLD   "tok-old-3c9f2b7e51d04a8b"
#define TOKEN_NEW   "tok-new-91e0d6a4c27f4b33"

/* The whole group shares certificates, fixtures and a token directory. */
static char cert_dir[64], other_dir[64], tok_dir[64];
static char ca_file[128], other_ca_file[128], token_path[128];
static char *server_cert, *server_key;
static char *fx_partial, *fx_eks, *fx_gke, *fx_aks, *fx_legacy, *fx_bare;
static char *st_401, *st_403, *st_404, *st_429;

/* What the API server stand-in answers, and what it saw of each request. */
typedef struct kscene {
    const tw_testresp *script; /* answer i is script[min(i, n - 1)] */
    int n;
    const char *require_token; /* when set, any other bearer token gets a 401 */
    int rotate;                /* on the first 401, replace the token file with require_token */
    int remove;                /* on the first 401, delete the token file */
    atomic_int count;
    char auth[SLOTS][256];
    char accept[SLOTS][256];
    char ua[SLOTS][256];
    char path[SLOTS][256];
    char method[SLOTS][16];
    char ctype[SLOTS][128];
    char body[SLOTS][256];
} kscene;

static void write_file(const char *path, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    /* Replaced atomically, as the kubelet rotates a projected token. */
    assert_int_equal(rename(tmp, path), 0);
}

static void api_handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    kscene *s = ud;
    int i = atomic_fetch_add(&s->count, 1);
    int slot = i < SLOTS ? i : SLOTS - 1;
    const char *v;
    v = tw_testreq_header(req, "Authorization");
    snprintf(s->auth[slot], sizeof(s->auth[slot]), "%s", v ? v : "");
    v = tw_testreq_header(req, "Accept");
    snprintf(s->accept[slot], sizeof(s->accept[slot]), "%s", v ? v : "");
    v = tw_testreq_header(req, "User-Agent");
    snprintf(s->ua[slot], sizeof(s->ua[slot]), "%s", v ? v : "");
    v = tw_testreq_header(req, "Content-Type");
    snprintf(s->ctype[slot], sizeof(s->ctype[slot]), "%s", v ? v : "");
    snprintf(s->path[slot], sizeof(s->path[slot]), "%s", req->url);
    snprintf(s->method[slot], sizeof(s->method[slot]), "%s", req->method);
    snprintf(s->body[slot], sizeof(s->body[slot]), "%.*s", (int)req->body_len, req->body);

    if (s->require_token != NULL) {
        char want[256];
        snprintf(want, sizeof(want), "Bearer %s", s->require_token);
        if (strcmp(s->auth[slot], want) != 0) {
            if (s->rotate) {
                s->rotate = 0;
                write_file(token_path, s->require_token);
            }
            if (s->remove) {
                s->remove = 0;
                unlink(token_path);
            }
            *resp =
                (tw_testresp){.status = 401, .body = st_401, .content_type = "application/json"};
            return;
        }
    }
    int k = i < s->n ? i : s->n - 1;
    *resp = s->script[k];
}

static char *read_or_null(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return tw_test_read_file(path, NULL);
}

static char *fixture(const char *rel)
{
    return tw_test_read_file(tw_fixture_path(rel), NULL);
}

static int group_setup(void **state)
{
    (void)state;
    if (tw_http_global_init() != TW_OK)
        return -1;
    snprintf(cert_dir, sizeof(cert_dir), "/tmp/tw-kube-XXXXXX");
    snprintf(other_dir, sizeof(other_dir), "/tmp/tw-kube-XXXXXX");
    snprintf(tok_dir, sizeof(tok_dir), "/tmp/tw-kube-XXXXXX");
    if (!mkdtemp(cert_dir) || !mkdtemp(other_dir) || !mkdtemp(tok_dir))
        return -1;
    if (tw_testserver_make_certs(cert_dir) != 0 || tw_testserver_make_certs(other_dir) != 0)
        return -1;
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", cert_dir);
    snprintf(other_ca_file, sizeof(other_ca_file), "%s/ca.pem", other_dir);
    snprintf(token_path, sizeof(token_path), "%s/token", tok_dir);
    server_cert = read_or_null(cert_dir, "server.pem");
    server_key = read_or_null(cert_dir, "server-key.pem");
    fx_partial = fixture("nodes/eks-node-partial-metadata.json");
    fx_eks = fixture("nodes/eks-node-full.json");
    fx_gke = fixture("nodes/gke-node-full.json");
    fx_aks = fixture("nodes/aks-node-full.json");
    fx_legacy = fixture("nodes/legacy-labels-only.json");
    fx_bare = fixture("nodes/bare-metal-no-topology.json");
    st_401 = fixture("status/401-unauthorized.json");
    st_403 = fixture("status/403-forbidden.json");
    st_404 = fixture("status/404-not-found.json");
    st_429 = fixture("status/429-too-many-requests.json");
    return server_cert && server_key && fx_partial && fx_eks && fx_gke && fx_aks && fx_legacy &&
                   fx_bare && st_401 && st_403 && st_404 && st_429
               ? 0
               : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char *all[] = {server_cert, server_key, fx_partial, fx_eks, fx_gke, fx_aks,
                   fx_legacy,   fx_bare,    st_401,     st_403, st_404, st_429};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", cert_dir, other_dir, tok_dir);
    int rc = system(cmd);
    tw_http_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* A TLS stand-in, a config built by hand for it, and a client. */
typedef struct fx {
    kscene sc;
    tw_testserver *srv;
    char server[64];
    tw_kube_config cfg;
    tw_kube_client *kc;
    int inotify;
    char err[TW_ERRLEN];
} fx;

static fx *fx_new(const tw_testresp *script, int n)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->sc.script = script;
    f->sc.n = n;
    f->srv = tw_testserver_start(api_handler, &f->sc, server_cert, server_key);
    assert_non_null(f->srv);
    snprintf(f->server, sizeof(f->server), "%s", tw_testserver_url(f->srv));
    f->cfg.server = f->server;
    f->cfg.ca_file = ca_file;
    f->cfg.token_file = token_path;
    write_file(token_path, TOKEN_OLD "\n");
    f->kc = tw_kube_client_new(&f->cfg, UA);
    assert_non_null(f->kc);
    /*
     * Counts how often the token file is opened, i.e. read. Closes are watched
     * too: inotify merges identical events in a row, and open, close, open
     * never are.
     */
    f->inotify = inotify_init1(IN_NONBLOCK);
    assert_true(f->inotify >= 0);
    assert_true(inotify_add_watch(f->inotify, tok_dir, IN_OPEN | IN_CLOSE) >= 0);
    return f;
}

static int token_reads(fx *f)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int n = 0;
    ssize_t len;
    while ((len = read(f->inotify, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_OPEN) && e->len > 0 && strcmp(e->name, "token") == 0)
                n++;
            p += sizeof(*e) + e->len;
        }
    }
    return n;
}

static void fx_free(fx *f)
{
    tw_kube_client_free(f->kc);
    tw_testserver_stop(f->srv);
    close(f->inotify);
    free(f);
}

static int requests(const fx *f)
{
    return tw_testserver_requests(f->srv);
}

/* No token, old or new, may ever show in an error sentence. */
static void assert_no_token(const char *err)
{
    assert_null(strstr(err, TOKEN_OLD));
    assert_null(strstr(err, TOKEN_NEW));
    assert_null(strstr(err, "tok-"));
}

static int get_labels(fx *f, long budget_ms, tw_kvlist *labels)
{
    f->err[0] = '\0';
    int rc = tw_kube_get_node_labels(f->kc, NODE, tw_deadline_in(budget_ms), labels, f->err);
    assert_no_token(f->err);
    return rc;
}

static tw_testresp ok_json(const char *body)
{
    return (tw_testresp){.body = body, .content_type = "application/json"};
}

static void labels_from_partial_metadata_with_headers(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_OK);
    assert_int_equal(l.n, 17);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1b");
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/region"), "us-east-1");
    assert_string_equal(tw_kvlist_get(&l, "topology.k8s.aws/zone-id"), "use1-az4");
    assert_null(tw_kvlist_get(&l, "alpha.kubernetes.io/provided-node-ip")); /* an annotation */
    assert_int_equal(requests(f), 1);
    assert_string_equal(f->sc.method[0], "GET");
    assert_string_equal(f->sc.path[0], "/api/v1/nodes/" NODE);
    assert_string_equal(f->sc.accept[0], NODE_ACCEPT);
    assert_string_equal(f->sc.ua[0], UA);
    assert_string_equal(f->sc.auth[0], "Bearer " TOKEN_OLD);
    assert_int_equal(token_reads(f), 1);
    tw_kvlist_free(&l);
    fx_free(f);
}

static void labels_from_full_nodes(void **state)
{
    (void)state;
    struct {
        const char *body;
        const char *zone, *region, *legacy_zone, *hostname;
    } cases[] = {
        {fx_eks, "us-east-1b", "us-east-1", "us-east-1b", NODE},
        {fx_gke, "europe-west1-d", "europe-west1", NULL, "gke-prod-pool-1-8e1077f6-17st"},
        {fx_aks, "eastus-2", "eastus", NULL, "aks-nodepool1-27339101-vmss000002"},
        {fx_legacy, NULL, NULL, "eu-west-1c", "ip-10-1-2-3.eu-west-1.compute.internal"},
        {fx_bare, NULL, NULL, NULL, "rack7-blade3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_testresp script[] = {ok_json(cases[i].body)};
        fx *f = fx_new(script, 1);
        tw_kvlist l = {0};
        assert_int_equal(get_labels(f, 10000, &l), TW_OK);
        const char *z = tw_kvlist_get(&l, "topology.kubernetes.io/zone");
        const char *r = tw_kvlist_get(&l, "topology.kubernetes.io/region");
        const char *lz = tw_kvlist_get(&l, "failure-domain.beta.kubernetes.io/zone");
        if (cases[i].zone)
            assert_string_equal(z, cases[i].zone);
        else
            assert_null(z);
        if (cases[i].region)
            assert_string_equal(r, cases[i].region);
        else
            assert_null(r);
        if (cases[i].legacy_zone)
            assert_string_equal(lz, cases[i].legacy_zone);
        else
            assert_null(lz);
        assert_string_equal(tw_kvlist_get(&l, "kubernetes.io/hostname"), cases[i].hostname);
        tw_kvlist_free(&l);
        fx_free(f);
    }
}

static void parse_checks_types(void **state)
{
    (void)state;
    char err[TW_ERRLEN];
    tw_kvlist l = {0};
    static const char *const bad[] = {
        "",
        "not json",
        "<html><body>502 Bad Gateway</body></html>",
        "[]",
        "\"Node\"",
        "{\"kind\":\"Node\"}",
        "{\"kind\":\"Node\",\"metadata\":\"x\"}",
        "{\"kind\":\"Node\",\"metadata\":[]}",
        "{\"kind\":\"Node\",\"metadata\":{\"labels\":[\"a\"]}}",
        "{\"kind\":\"Node\",\"metadata\":{\"labels\":\"a=b\"}}",
        "{\"kind\":\"Node\",\"metadata\":{\"labels\":7}}",
        "{\"kind\":\"Node\",\"metadata\":{\"name\":7,\"labels\":{}}}",
        "{\"kind\":7,\"metadata\":{\"labels\":{}}}",
        "{\"kind\":\"Status\",\"metadata\":{},\"message\":\"x\"}",
        "{\"kind\":\"Node\",\"metadata\":{\"labels\":{\"a\":\"b\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(tw__kube_parse_node_labels(bad[i], strlen(bad[i]), &l, err), TW_EPARSE);
        assert_true(err[0] != '\0');
        assert_null(l.items); /* untouched on failure */
    }
    /* Non-string values are skipped, strings kept. */
    const char *mixed = "{\"kind\":\"Node\",\"metadata\":{\"labels\":{\"a\":1,\"b\":null,"
                        "\"c\":\"x\",\"d\":{},\"e\":[],\"f\":true,\"g\":\"\"}}}";
    assert_int_equal(tw__kube_parse_node_labels(mixed, strlen(mixed), &l, err), TW_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(tw_kvlist_get(&l, "c"), "x");
    assert_string_equal(tw_kvlist_get(&l, "g"), "");
    tw_kvlist_free(&l);
    /* No labels, or null labels, is an empty list; so is a kind-less object. */
    const char *none[] = {"{\"kind\":\"Node\",\"metadata\":{\"name\":\"n\"}}",
                          "{\"metadata\":{\"labels\":null}}"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(tw__kube_parse_node_labels(none[i], strlen(none[i]), &l, err), TW_OK);
        assert_int_equal(l.n, 0);
        tw_kvlist_free(&l);
    }
    /* Length is respected: the same text cut short is not JSON. */
    assert_int_equal(tw__kube_parse_node_labels(mixed, 20, &l, err), TW_EPARSE);
    /* An escaped NUL does not cut a value to a clean-looking zone. */
    const char *nul = "{\"kind\":\"Node\",\"metadata\":{\"labels\":"
                      "{\"topology.kubernetes.io/zone\":\"us-east-1a\\u0000junk\"}}}";
    assert_int_equal(tw__kube_parse_node_labels(nul, strlen(nul), &l, err), TW_OK);
    const char *z = tw_kvlist_get(&l, "topology.kubernetes.io/zone");
    assert_true(z == NULL || strcmp(z, "us-east-1a") != 0);
    tw_kvlist_free(&l);
    /* A full Node whose status carries "names": null parses. */
    assert_int_equal(tw__kube_parse_node_labels(fx_eks, strlen(fx_eks), &l, err), TW_OK);
    assert_int_equal(l.n, 17);
    tw_kvlist_free(&l);
}

/*
 * A node with very many labels (the 4 MiB body cap allows about 150,000) took
 * quadratic time: over a minute, far past any deadline. Duplicate keys keep
 * the place of their first occurrence and the value of their last.
 */
static void many_labels_parse_quickly(void **state)
{
    (void)state;
    const size_t n = 120000;
    tw_buf b;
    tw_buf_init(&b, 8u << 20);
    assert_int_equal(tw_buf_puts(&b, "{\"kind\":\"Node\",\"metadata\":{\"labels\":{"), TW_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tw_buf_printf(&b, "\"example.com/k%06zu\":\"v%zu\",", i, i), TW_OK);
    assert_int_equal(
        tw_buf_puts(&b, "\"example.com/k000000\":\"last\",\"example.com/k000001\":7}}}"), TW_OK);
    tw_kvlist l = {0};
    char err[TW_ERRLEN] = "";
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw__kube_parse_node_labels(b.data, b.len, &l, err), TW_OK);
    uint64_t took = tw_now_ms() - t0;
    if (took > 5000)
        fail_msg("%zu labels took %llu ms", n, (unsigned long long)took);
    assert_int_equal(l.n, n);
    assert_string_equal(l.items[0].key, "example.com/k000000");
    assert_string_equal(l.items[0].value, "last");
    assert_string_equal(l.items[1].value, "v1"); /* a later non-string changes nothing */
    assert_string_equal(l.items[n - 1].key, "example.com/k119999");
    assert_string_equal(tw_kvlist_get(&l, "example.com/k077777"), "v77777");
    tw_kvlist_free(&l);
    tw_buf_free(&b);
}

static void status_messages(void **state)
{
    (void)state;
    char err[TW_ERRLEN];
    tw__kube_status_message(st_403, strlen(st_403), 403, err);
    assert_string_equal(err, "403 Forbidden: nodes \"ip-10-0-41-17.ec2.internal\" is forbidden: "
                             "User \"system:serviceaccount:spark:spark-executor\" cannot get "
                             "resource \"nodes\" in API group \"\" at the cluster scope");
    tw__kube_status_message(st_429, strlen(st_429), 429, err);
    assert_string_equal(err, "429 TooManyRequests: storage is (re)initializing");
    tw__kube_status_message("<html>oops</html>", 17, 502, err);
    assert_string_equal(err, "HTTP 502");
    tw__kube_status_message("{\"kind\":\"Node\",\"message\":\"m\"}", 29, 500, err);
    assert_string_equal(err, "HTTP 500");
    tw__kube_status_message(NULL, 0, 503, err);
    assert_string_equal(err, "HTTP 503");
    const char *nl = "{\"kind\":\"Status\",\"message\":\"line one\\nline two\",\"reason\":7}";
    tw__kube_status_message(nl, strlen(nl), 500, err);
    assert_string_equal(err, "500 line one?line two");
    /* Bytes that are not UTF-8 are not passed on either. */
    const char *bin = "{\"kind\":\"Status\",\"message\":\"caf\xc3 \xff\xc3\xa9\"}";
    tw__kube_status_message(bin, strlen(bin), 500, err);
    assert_string_equal(err, "500 caf? ?\xc3\xa9");
    tw__kube_status_message(st_403, strlen(st_403), 403, NULL);
}

static void retry_after_429_then_success(void **state)
{
    (void)state;
    tw_testresp script[] = {
        {.status = 429, .body = st_429, .headers = {"Retry-After: 1"}},
        ok_json(fx_partial),
    };
    fx *f = fx_new(script, 2);
    tw_kvlist l = {0};
    uint64_t t0 = tw_now_ms();
    assert_int_equal(get_labels(f, 10000, &l), TW_OK);
    uint64_t elapsed = tw_now_ms() - t0;
    assert_true(elapsed >= 950);
    assert_true(elapsed < 1000 + MARGIN_MS);
    assert_int_equal(requests(f), 2);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1b");
    tw_kvlist_free(&l);
    fx_free(f);
}

static void retry_after_beyond_the_deadline_gives_up_at_once(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 429, .body = st_429, .headers = {"Retry-After: 3600"}}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    uint64_t t0 = tw_now_ms();
    assert_int_equal(get_labels(f, 3000, &l), TW_ERETRY);
    assert_true(tw_now_ms() - t0 < 1000);
    assert_int_equal(requests(f), 1);
    assert_non_null(strstr(f->err, "429 TooManyRequests: storage is (re)initializing"));
    fx_free(f);
}

static void server_errors_then_success(void **state)
{
    (void)state;
    tw_testresp script[] = {
        {.status = 500, .body = "internal"},
        {.status = 502, .body = "<html>bad gateway</html>"},
        ok_json(fx_partial),
    };
    fx *f = fx_new(script, 3);
    tw_kvlist l = {0};
    uint64_t t0 = tw_now_ms();
    assert_int_equal(get_labels(f, 10000, &l), TW_OK);
    /* Two backoffs of at most 200 and 400 ms. */
    assert_true(tw_now_ms() - t0 < 600 + MARGIN_MS);
    assert_int_equal(requests(f), 3);
    assert_int_equal(l.n, 17);
    tw_kvlist_free(&l);
    fx_free(f);
}

static void endless_503_ends_by_the_deadline(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 503, .body = "{\"kind\":\"Status\",\"message\":\"down\"}"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    long budget = 2000;
    uint64_t t0 = tw_now_ms();
    int rc = get_labels(f, budget, &l);
    uint64_t elapsed = tw_now_ms() - t0;
    assert_true(rc == TW_ERETRY || rc == TW_ETIMEDOUT);
    assert_true(elapsed < (uint64_t)budget + MARGIN_MS);
    assert_true(requests(f) >= 3);
    assert_true(requests(f) <= 10);
    assert_non_null(strstr(f->err, "503 down"));
    assert_null(l.items);
    fx_free(f);
}

static void dropped_connection_is_retried(void **state)
{
    (void)state;
    tw_testresp script[] = {{.drop = 1}, ok_json(fx_partial)};
    fx *f = fx_new(script, 2);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_OK);
    assert_int_equal(requests(f), 2);
    tw_kvlist_free(&l);
    fx_free(f);
}

static void unauthorized_then_rotated_token(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    f->sc.require_token = TOKEN_NEW;
    f->sc.rotate = 1;
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_OK);
    assert_int_equal(requests(f), 2);
    assert_string_equal(f->sc.auth[0], "Bearer " TOKEN_OLD);
    assert_string_equal(f->sc.auth[1], "Bearer " TOKEN_NEW);
    /* Read once for the request and exactly once more after the 401. */
    assert_int_equal(token_reads(f), 2);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1b");
    tw_kvlist_free(&l);
    fx_free(f);
}

static void unauthorized_twice(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    f->sc.require_token = TOKEN_NEW; /* never written: the token stays stale */
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EUNAUTH);
    assert_int_equal(requests(f), 2);
    assert_int_equal(token_reads(f), 2);
    assert_non_null(strstr(f->err, "401 Unauthorized: Unauthorized"));
    fx_free(f);
}

static void rotation_without_a_deadline(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    f->sc.require_token = TOKEN_NEW;
    f->sc.rotate = 1;
    tw_kvlist l = {0};
    assert_int_equal(tw_kube_get_node_labels(f->kc, NODE, 0, &l, f->err), TW_OK);
    assert_int_equal(requests(f), 2);
    assert_int_equal(token_reads(f), 2);
    tw_kvlist_free(&l);
    fx_free(f);
}

static void unauthorized_then_token_file_gone(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    f->sc.require_token = TOKEN_NEW;
    f->sc.remove = 1;
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EIO);
    assert_int_equal(requests(f), 1);
    assert_non_null(strstr(f->err, "401 Unauthorized"));
    assert_non_null(strstr(f->err, "credentials"));
    fx_free(f);
}

static void attempts_are_bounded(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 503, .headers = {"Retry-After: 0"}}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 20000, &l), TW_ERETRY);
    assert_int_equal(requests(f), 10);
    assert_non_null(strstr(f->err, "HTTP 503 (gave up after 10 attempts)"));
    fx_free(f);
}

static void forbidden_at_once_with_the_status_message(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 403, .body = st_403, .content_type = "application/json"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EFORBIDDEN);
    assert_int_equal(requests(f), 1);
    assert_non_null(strstr(f->err, "403 Forbidden: nodes \"" NODE "\" is forbidden: User "
                                   "\"system:serviceaccount:spark:spark-executor\" cannot get "
                                   "resource \"nodes\""));
    fx_free(f);
}

static void not_found_at_once(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 404, .body = st_404, .content_type = "application/json"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_ENOTFOUND);
    assert_int_equal(requests(f), 1);
    assert_non_null(strstr(f->err, "404 NotFound"));
    fx_free(f);
}

static void other_client_errors_are_not_retried(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 400,
                             .body = "{\"kind\":\"Status\",\"reason\":\"BadRequest\","
                                     "\"message\":\"bad\"}"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EHTTP);
    assert_int_equal(requests(f), 1);
    assert_string_equal(f->err, "400 BadRequest: bad");
    fx_free(f);
}

/* 410 means the same on a plain request as on a watch: the resourceVersion expired. */
static void gone_at_once(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 410,
                             .body = "{\"kind\":\"Status\",\"reason\":\"Expired\","
                                     "\"message\":\"too old resource version\"}"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EGONE);
    assert_int_equal(requests(f), 1);
    assert_string_equal(f->err, "410 Expired: too old resource version");
    fx_free(f);
}

static void redirect_refused_at_once(void **state)
{
    (void)state;
    tw_testresp elsewhere_script[] = {ok_json(fx_partial)};
    fx *elsewhere = fx_new(elsewhere_script, 1);
    char location[128];
    snprintf(location, sizeof(location), "Location: %s/api/v1/nodes/" NODE, elsewhere->server);
    tw_testresp script[] = {{.status = 307, .headers = {location}}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EREDIRECT);
    assert_int_equal(requests(f), 1);
    assert_int_equal(requests(elsewhere), 0);
    assert_non_null(strstr(f->err, "307"));
    fx_free(f);
    fx_free(elsewhere);
}

static void garbage_body_is_a_parse_error(void **state)
{
    (void)state;
    tw_testresp script[] = {{.body = "<html>login page</html>", .content_type = "text/html"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_EPARSE);
    assert_non_null(strstr(f->err, NODE));
    assert_null(l.items);
    fx_free(f);
}

static void huge_body_is_refused(void **state)
{
    (void)state;
    size_t n = 5u * 1024 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    tw_testresp script[] = {{.body = big, .body_len = n}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 10000, &l), TW_ETOOBIG);
    assert_int_equal(requests(f), 1);
    fx_free(f);
    free(big);
}

static void wrong_ca_fails_without_retry(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    f->cfg.ca_file = other_ca_file;
    tw_kvlist l = {0};
    uint64_t t0 = tw_now_ms();
    assert_int_equal(get_labels(f, 10000, &l), TW_ETLS);
    assert_true(tw_now_ms() - t0 < 2000);
    assert_int_equal(requests(f), 0);
    assert_non_null(strstr(f->err, "127.0.0.1"));
    fx_free(f);
}

/* A port nothing listens on. */
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

static void refused_connections_are_retried_until_the_deadline(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    snprintf(f->server, sizeof(f->server), "https://127.0.0.1:%d", closed_port());
    tw_kvlist l = {0};
    long budget = 1500;
    uint64_t t0 = tw_now_ms();
    int rc = get_labels(f, budget, &l);
    assert_true(rc == TW_ERETRY || rc == TW_ETIMEDOUT);
    assert_true(tw_now_ms() - t0 < (uint64_t)budget + MARGIN_MS);
    assert_non_null(strstr(f->err, "127.0.0.1"));
    fx_free(f);
}

static void invalid_node_names_send_nothing(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad[] = {
        "",   "Upper.example", "../secrets", "a/b",   "a..b", "-a",      "a-", ".a",
        "a.", "a b",           "a?x=1",      "a%2fb", "a\nb", long_name, NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tw_kvlist l = {0};
        f->err[0] = '\0';
        assert_int_equal(tw_kube_get_node_labels(f->kc, bad[i], tw_deadline_in(5000), &l, f->err),
                         TW_EINVAL);
        assert_null(strchr(f->err, '\n'));
        assert_null(l.items);
    }
    assert_int_equal(requests(f), 0);
    fx_free(f);
}

static void missing_token_file_sends_nothing(void **state)
{
    (void)state;
    tw_testresp script[] = {ok_json(fx_partial)};
    fx *f = fx_new(script, 1);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/absent", tok_dir);
    f->cfg.token_file = missing;
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 5000, &l), TW_EIO);
    assert_int_equal(requests(f), 0);
    fx_free(f);
}

static void token_echoed_by_the_server_is_redacted(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 403,
                             .body = "{\"kind\":\"Status\",\"reason\":\"Forbidden\",\"message\":"
                                     "\"token " TOKEN_OLD " is not allowed\"}"}};
    fx *f = fx_new(script, 1);
    tw_kvlist l = {0};
    assert_int_equal(get_labels(f, 5000, &l), TW_EFORBIDDEN); /* get_labels checks the token */
    assert_non_null(strstr(f->err, "is not allowed"));
    fx_free(f);
}

static void kube_do_put_with_body(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 201, .body = "{\"kind\":\"Binding\"}"}};
    fx *f = fx_new(script, 1);
    tw_http_response resp;
    tw_http_response_init(&resp);
    const char body[] = "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}";
    tw_kube_request rq = {.method = "PUT",
                          .path = "/api/v1/namespaces/ns/pods/p?dryRun=All",
                          .accept = "application/json",
                          .content_type = "application/merge-patch+json",
                          .body = body,
                          .body_len = strlen(body),
                          .deadline = tw_deadline_in(5000)};
    assert_int_equal(tw_kube_do(f->kc, &rq, &resp, f->err), TW_OK);
    assert_int_equal(resp.status, 201);
    assert_string_equal(tw_buf_cstr(&resp.body), "{\"kind\":\"Binding\"}");
    assert_string_equal(f->sc.method[0], "PUT");
    assert_string_equal(f->sc.path[0], "/api/v1/namespaces/ns/pods/p");
    assert_string_equal(f->sc.ctype[0], "application/merge-patch+json");
    assert_string_equal(f->sc.accept[0], "application/json");
    assert_string_equal(f->sc.body[0], body);
    /* A path must be absolute; the server must be set. */
    tw_kube_request rel = {.method = "GET", .path = "api/v1", .deadline = tw_deadline_in(5000)};
    assert_int_equal(tw_kube_do(f->kc, &rel, &resp, f->err), TW_EINVAL);
    f->cfg.server = NULL;
    tw_kube_request abs = {.method = "GET", .path = "/api/v1", .deadline = tw_deadline_in(5000)};
    assert_int_equal(tw_kube_do(f->kc, &abs, &resp, f->err), TW_EINVAL);
    assert_int_equal(requests(f), 1);
    tw_http_response_free(&resp);
    fx_free(f);
}

/* On failure resp holds the last answer, for callers who want the body. */
static void kube_do_keeps_the_last_answer(void **state)
{
    (void)state;
    tw_testresp script[] = {{.status = 403, .body = st_403}};
    fx *f = fx_new(script, 1);
    tw_http_response resp;
    tw_http_response_init(&resp);
    tw_kube_request rq = {
        .method = "GET", .path = "/api/v1/nodes/" NODE, .deadline = tw_deadline_in(5000)};
    assert_int_equal(tw_kube_do(f->kc, &rq, &resp, f->err), TW_EFORBIDDEN);
    assert_int_equal(resp.status, 403);
    assert_string_equal(tw_buf_cstr(&resp.body), st_403);
    tw_http_response_free(&resp);
    fx_free(f);
}

static uint64_t abort_at;

static int abort_when_due(void *ud)
{
    (void)ud;
    return tw_now_ms() >= abort_at;
}

/* A client told to stop gives up a hung request, and a wait before a retry, promptly. */
static void abort_stops_hung_requests_and_retry_waits(void **state)
{
    (void)state;
    tw_testresp hung[] = {{.stall = 1, .body = "{\"kind\":"}};
    tw_testresp told_to_wait[] = {{.status = 429, .body = st_429, .headers = {"Retry-After: 8"}}};
    const tw_testresp *scripts[] = {hung, told_to_wait};
    for (int i = 0; i < 2; i++) {
        fx *f = fx_new(scripts[i], 1);
        tw_kube_client_set_abort(f->kc, abort_when_due, NULL);
        tw_kvlist l = {0};
        abort_at = tw_now_ms() + 300;
        int rc = get_labels(f, 10000, &l);
        uint64_t late = tw_now_ms() - abort_at;
        assert_int_equal(rc, TW_ECANCELED);
        if (late > 300 + MARGIN_MS)
            fail_msg("script %d: stopped %llu ms after being told", i, (unsigned long long)late);
        assert_int_equal(requests(f), 1);
        assert_null(l.items);
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_from_partial_metadata_with_headers),
        cmocka_unit_test(abort_stops_hung_requests_and_retry_waits),
        cmocka_unit_test(labels_from_full_nodes),
        cmocka_unit_test(parse_checks_types),
        cmocka_unit_test(many_labels_parse_quickly),
        cmocka_unit_test(status_messages),
        cmocka_unit_test(retry_after_429_then_success),
        cmocka_unit_test(retry_after_beyond_the_deadline_gives_up_at_once),
        cmocka_unit_test(server_errors_then_success),
        cmocka_unit_test(endless_503_ends_by_the_deadline),
        cmocka_unit_test(dropped_connection_is_retried),
        cmocka_unit_test(unauthorized_then_rotated_token),
        cmocka_unit_test(unauthorized_twice),
        cmocka_unit_test(rotation_without_a_deadline),
        cmocka_unit_test(unauthorized_then_token_file_gone),
        cmocka_unit_test(attempts_are_bounded),
        cmocka_unit_test(forbidden_at_once_with_the_status_message),
        cmocka_unit_test(not_found_at_once),
        cmocka_unit_test(other_client_errors_are_not_retried),
        cmocka_unit_test(gone_at_once),
        cmocka_unit_test(redirect_refused_at_once),
        cmocka_unit_test(garbage_body_is_a_parse_error),
        cmocka_unit_test(huge_body_is_refused),
        cmocka_unit_test(wrong_ca_fails_without_retry),
        cmocka_unit_test(refused_connections_are_retried_until_the_deadline),
        cmocka_unit_test(invalid_node_names_send_nothing),
        cmocka_unit_test(missing_token_file_sends_nothing),
        cmocka_unit_test(token_echoed_by_the_server_is_redacted),
        cmocka_unit_test(kube_do_put_with_body),
        cmocka_unit_test(kube_do_keeps_the_last_answer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
