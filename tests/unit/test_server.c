/* test_server.c - the webhook server: start-up failures, the connection guard, certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/kubeconfig.h"
#include "topowire/log.h"

#include "../../webhook/webhook.h"

static char dir[64];
static char cert_file[128], key_file[128];

static int group_setup(void **state)
{
    (void)state;
    tw_log_setup("test_server", TW_LOG_TEXT, TW_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/tw-server-XXXXXX");
    if (mkdtemp(dir) == NULL || tw_testserver_make_certs(dir) != 0)
        return -1;
    snprintf(cert_file, sizeof(cert_file), "%s/server.pem", dir);
    snprintf(key_file, sizeof(key_file), "%s/server-key.pem", dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A listening socket on 127.0.0.1 with an ephemeral port; its port in *port. */
static int taken_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_config(hook_config *cfg, char *listen, size_t listen_len, int port)
{
    hook_config_defaults(cfg);
    snprintf(listen, listen_len, "127.0.0.1:%d", port);
    cfg->listen = listen;
    cfg->metrics_listen = "127.0.0.1:0";
    cfg->cert_file = cert_file;
    cfg->key_file = key_file;
    cfg->threads = 1;
}

/* Binding mode on (the node cache started) and the port taken: an error, not a double free. */
static void start_on_a_taken_port_fails_cleanly(void **state)
{
    (void)state;
    int port = 0;
    int fd = taken_port(&port);
    char listen[64];
    hook_config cfg;
    test_config(&cfg, listen, sizeof(listen), port);
    tw_kube_config kube;
    memset(&kube, 0, sizeof(kube));
    kube.server = (char *)"http://127.0.0.1:1";
    kube.token = (char *)"t";
    cfg.binding = 1;
    cfg.kube = &kube;
    hook_server *s = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(hook_server_start(&cfg, &s, err), TW_EIO);
    assert_null(s);
    if (strstr(err, listen) == NULL)
        fail_msg("err does not name the address: %s", err);
    /* Without binding mode too. */
    cfg.binding = 0;
    cfg.kube = NULL;
    assert_int_equal(hook_server_start(&cfg, &s, err), TW_EIO);
    close(fd);
}

/*
 * Writes a self-signed ECDSA certificate valid from now+from_s to now+to_s and
 * its key to cert_path and key_path (through a rename, so the store sees a new
 * file). Returns the serial it used.
 */
static long write_pair(const char *cert_path, const char *key_path, long from_s, long to_s)
{
    static long serial = 1000;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", key_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    assert_int_equal(rename(tmp, key_path), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", cert_path);
    f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(PEM_write_X509(f, x) == 1);
    fclose(f);
    assert_int_equal(rename(tmp, cert_path), 0);
    X509_free(x);
    EVP_PKEY_free(key);
    return serial;
}

/* An expired or not-yet-valid certificate is not hot-loaded: the old pair stays, an error. */
static void certstore_refuses_expired_and_future_certificates(void **state)
{
    (void)state;
    char c[160], k[160], err[TW_ERRLEN] = "", serial[80], want[80];
    snprintf(c, sizeof(c), "%s/rot.pem", dir);
    snprintf(k, sizeof(k), "%s/rot-key.pem", dir);
    long first = write_pair(c, k, -60, 3600);
    hook_certstore *cs = NULL;
    assert_int_equal(hook_certstore_open(c, k, &cs, err), TW_OK);
    int64_t not_after = 0;
    snprintf(want, sizeof(want), "%04lX", first);
    hook_certstore_info(cs, serial, sizeof(serial), &not_after);
    assert_string_equal(serial, want);

    write_pair(c, k, -7200, -60); /* expired a minute ago */
    assert_int_equal(hook_certstore_check(cs, 0, err), TW_EINVAL);
    if (strstr(err, "expired") == NULL)
        fail_msg("err: %s", err);
    hook_certstore_info(cs, serial, sizeof(serial), &not_after);
    assert_string_equal(serial, want);
    assert_int_equal(hook_certstore_check(cs, 0, err), 0); /* reported once */

    write_pair(c, k, 3600, 7200); /* valid in an hour */
    err[0] = '\0';
    assert_int_equal(hook_certstore_check(cs, 0, err), TW_EINVAL);
    if (strstr(err, "not valid until") == NULL)
        fail_msg("err: %s", err);
    hook_certstore_info(cs, serial, sizeof(serial), &not_after);
    assert_string_equal(serial, want);

    long good = write_pair(c, k, -60, 3600);
    assert_int_equal(hook_certstore_check(cs, 0, err), 1);
    snprintf(want, sizeof(want), "%04lX", good);
    hook_certstore_info(cs, serial, sizeof(serial), &not_after);
    assert_string_equal(serial, want);
    hook_certstore_free(cs);
}

/* ---- the connection guard, on socket pairs ---------------------------------------------- */

typedef struct pair_fds {
    int ours;   /* what the guard shuts down */
    int client; /* the client's end */
} pair_fds;

static pair_fds new_pair(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    return (pair_fds){sv[0], sv[1]};
}

static void close_pair(pair_fds p)
{
    close(p.ours);
    close(p.client);
}

/* True when the guard shut the server's end: the client reads the end of the stream. */
static bool shut(pair_fds p)
{
    char c;
    return recv(p.client, &c, 1, MSG_DONTWAIT) == 0;
}

static struct sockaddr_in addr_of(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return sa;
}

#define SA(x) ((const struct sockaddr *)&(x))

static hook_guard *new_guard(unsigned max, unsigned per_addr, size_t budget)
{
    hook_guard_config cfg = {
        .listener = HOOK_LISTENER_WEBHOOK,
        .max_connections = max,
        .max_per_address = per_addr,
        .head_timeout_ms = 400,
        .idle_timeout_ms = 10000,
        .request_timeout_ms = 400,
        .body_budget = budget,
    };
    hook_guard *g = NULL;
    assert_int_equal(hook_guard_new(&cfg, &g), TW_OK);
    return g;
}

/* At the limit a newcomer is let in by closing the oldest connection still waiting for a head. */
static void guard_makes_room_with_the_oldest_head_waiter(void **state)
{
    (void)state;
    struct sockaddr_in a1 = addr_of("127.0.0.1"), a2 = addr_of("127.0.0.2");
    hook_guard *g = new_guard(2, 10, 1 << 20);
    pair_fds p1 = new_pair(), p2 = new_pair(), p3 = new_pair();
    hook_conn *c1 = hook_guard_opened(g, p1.ours, SA(a1));
    hook_conn *c2 = hook_guard_opened(g, p2.ours, SA(a2));
    assert_true(hook_guard_admit(g, SA(a2)));
    assert_true(shut(p1));
    assert_false(shut(p2));
    hook_conn *c3 = hook_guard_opened(g, p3.ours, SA(a2));
    hook_guard_closed(g, c1);
    /* Both left are mid-request: nothing may be closed for a newcomer, who is refused. */
    hook_guard_head_done(g, c2, true);
    hook_guard_head_done(g, c3, false);
    assert_false(hook_guard_admit(g, SA(a1)));
    assert_false(shut(p2));
    assert_false(shut(p3));
    unsigned open = 0;
    hook_guard_stats(g, &open, NULL);
    assert_int_equal(open, 2);
    hook_guard_closed(g, c2);
    hook_guard_closed(g, c3);
    hook_guard_free(g);
    close_pair(p1);
    close_pair(p2);
    close_pair(p3);
}

/* One address at its limit is refused (or makes room among its own); others are not. */
static void guard_limits_each_address(void **state)
{
    (void)state;
    struct sockaddr_in a1 = addr_of("127.0.0.1"), a2 = addr_of("127.0.0.2");
    hook_guard *g = new_guard(100, 2, 1 << 20);
    pair_fds p1 = new_pair(), p2 = new_pair(), p3 = new_pair();
    hook_conn *c1 = hook_guard_opened(g, p1.ours, SA(a1));
    hook_conn *c2 = hook_guard_opened(g, p2.ours, SA(a1));
    hook_conn *c3 = hook_guard_opened(g, p3.ours, SA(a2));
    hook_guard_head_done(g, c1, true);
    assert_true(hook_guard_admit(g, SA(a1))); /* c2 still waits for its head: it goes */
    assert_true(shut(p2));
    assert_false(shut(p1));
    assert_false(shut(p3));
    hook_guard_closed(g, c2);
    hook_conn *c4 = hook_guard_opened(g, -1, SA(a1));
    hook_guard_head_done(g, c4, true);
    assert_false(hook_guard_admit(g, SA(a1)));
    assert_true(hook_guard_admit(g, SA(a2)));
    assert_false(shut(p3));
    hook_guard_closed(g, c1);
    hook_guard_closed(g, c3);
    hook_guard_closed(g, c4);
    hook_guard_free(g);
    close_pair(p1);
    close_pair(p2);
    close_pair(p3);
}

/* A head or a body past its deadline is closed whether or not bytes keep coming. */
static void guard_sweeps_heads_and_bodies_past_their_deadline(void **state)
{
    (void)state;
    struct sockaddr_in a1 = addr_of("127.0.0.1");
    hook_guard *g = new_guard(10, 10, 1 << 20);
    pair_fds head = new_pair(), body = new_pair(), busy = new_pair();
    hook_conn *ch = hook_guard_opened(g, head.ours, SA(a1));
    hook_conn *cb = hook_guard_opened(g, body.ours, SA(a1));
    hook_conn *cu = hook_guard_opened(g, busy.ours, SA(a1));
    hook_guard_head_done(g, cb, true);
    hook_guard_head_done(g, cu, true);
    hook_guard_body_done(g, cu);
    hook_guard_sweep(g);
    assert_false(shut(head));
    assert_false(shut(body));
    usleep(250 * 1000);
    assert_int_equal(hook_guard_body_reserve(g, cb, 100), TW_OK); /* data arrived */
    usleep(250 * 1000);
    hook_guard_sweep(g);
    assert_true(shut(head));
    assert_true(shut(body));  /* 500 ms after its head, data or not */
    assert_false(shut(busy)); /* being answered: no deadline of ours */
    hook_guard_closed(g, ch);
    hook_guard_closed(g, cb);
    hook_guard_closed(g, cu);
    hook_guard_free(g);
    close_pair(head);
    close_pair(body);
    close_pair(busy);
}

/* Bodies share one budget; a body that needs room takes it from the one stalled longest. */
static void guard_body_budget_takes_from_the_stalled(void **state)
{
    (void)state;
    struct sockaddr_in a1 = addr_of("127.0.0.1");
    hook_guard *g = new_guard(10, 10, 1000);
    pair_fds p1 = new_pair(), p2 = new_pair(), p3 = new_pair();
    hook_conn *c1 = hook_guard_opened(g, p1.ours, SA(a1));
    hook_conn *c2 = hook_guard_opened(g, p2.ours, SA(a1));
    hook_conn *c3 = hook_guard_opened(g, p3.ours, SA(a1));
    hook_guard_head_done(g, c1, true);
    hook_guard_head_done(g, c2, true);
    hook_guard_head_done(g, c3, true);
    assert_int_equal(hook_guard_body_reserve(g, c1, 600), TW_OK);
    usleep(20 * 1000);
    assert_int_equal(hook_guard_body_reserve(g, c2, 300), TW_OK);
    size_t used = 0;
    hook_guard_stats(g, NULL, &used);
    assert_int_equal(used, 900);
    assert_int_equal(hook_guard_body_reserve(g, c3, 500), TW_OK); /* c1 stalled longest */
    assert_true(shut(p1));
    assert_false(shut(p2));
    hook_guard_closed(g, c1);
    hook_guard_stats(g, NULL, &used);
    assert_int_equal(used, 800);
    assert_int_equal(hook_guard_body_reserve(g, c3, 2000), TW_ETOOBIG); /* more than it all */
    assert_true(shut(p2));
    hook_guard_request_done(g, c3);
    hook_guard_closed(g, c2);
    hook_guard_stats(g, NULL, &used);
    assert_int_equal(used, 0);
    hook_guard_closed(g, c3);
    hook_guard_free(g);
    close_pair(p1);
    close_pair(p2);
    close_pair(p3);
}

/* ---- the JSON arenas' shared allowance ----------------------------------------------------- */

static pthread_barrier_t arena_barrier;

/* Takes n MiB in 1 MiB pieces from this thread's arena; returns how many it got. */
static size_t take_mib(size_t n)
{
    size_t got = 0;
    while (got < n && cJSON_malloc(1024 * 1024) != NULL)
        got++;
    return got;
}

static void *hold_20_mib(void *arg)
{
    size_t *got = arg;
    hook_arena_begin();
    *got = take_mib(20);
    pthread_barrier_wait(&arena_barrier); /* held while the other thread tries */
    pthread_barrier_wait(&arena_barrier);
    hook_arena_end();
    return NULL;
}

/* All threads' arenas together stay within the shared allowance, however many threads parse. */
static void arenas_share_one_allowance(void **state)
{
    (void)state;
    hook_arena_install();
    pthread_barrier_init(&arena_barrier, NULL, 2);
    size_t held = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_20_mib, &held), 0);
    pthread_barrier_wait(&arena_barrier);
    assert_int_equal(held, 20);
    assert_int_equal(hook_arena_begin(), 0);
    size_t got = take_mib(20);
    bool exhausted = hook_arena_exhausted();
    hook_arena_end();
    pthread_barrier_wait(&arena_barrier);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&arena_barrier);
    if (got + held > HOOK_ARENA_SHARED_MIB || !exhausted)
        fail_msg("two arenas took %zu + %zu MiB (allowance %d MiB)", held, got,
                 HOOK_ARENA_SHARED_MIB);
    /* Given back at the end of the review: the whole per-review cap is there again. */
    assert_int_equal(hook_arena_begin(), 0);
    assert_int_equal(take_mib(20), 20);
    hook_arena_end();
}

/* The new limits have sane defaults and are checked before anything starts. */
static void config_check_covers_the_limits(void **state)
{
    (void)state;
    hook_config cfg;
    char err[TW_ERRLEN] = "";
    hook_config_defaults(&cfg);
    assert_int_equal(hook_config_check(&cfg, err), TW_OK);
    assert_int_equal(cfg.max_connections, 512);
    assert_int_equal(cfg.max_connections_per_address, 128);
    assert_int_equal(cfg.header_timeout_s, 10);
    assert_int_equal(cfg.max_body_memory, 16u << 20);
    cfg.max_connections_per_address = 0;
    assert_int_equal(hook_config_check(&cfg, err), TW_EINVAL);
    hook_config_defaults(&cfg);
    cfg.header_timeout_s = 0;
    assert_int_equal(hook_config_check(&cfg, err), TW_EINVAL);
    hook_config_defaults(&cfg);
    cfg.max_body_memory = 3u << 20; /* one 3 MiB body needs a 4 MiB buffer */
    assert_int_equal(hook_config_check(&cfg, err), TW_EINVAL);
    if (strstr(err, "--max-body-memory") == NULL)
        fail_msg("err: %s", err);
    cfg.max_body_memory = 4u << 20;
    assert_int_equal(hook_config_check(&cfg, err), TW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_on_a_taken_port_fails_cleanly),
        cmocka_unit_test(certstore_refuses_expired_and_future_certificates),
        cmocka_unit_test(guard_makes_room_with_the_oldest_head_waiter),
        cmocka_unit_test(guard_limits_each_address),
        cmocka_unit_test(guard_sweeps_heads_and_bodies_past_their_deadline),
        cmocka_unit_test(guard_body_budget_takes_from_the_stalled),
        cmocka_unit_test(arenas_share_one_allowance),
        cmocka_unit_test(config_check_covers_the_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
