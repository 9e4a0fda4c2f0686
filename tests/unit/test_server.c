/* test_server.c - the webhook server: start-up failures, the connection guard, certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_on_a_taken_port_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
