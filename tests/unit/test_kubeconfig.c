/* test_kubeconfig.c - kubeconfig files, exec credential plugins and the in-cluster config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "support/testserver.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/kubeconfig.h"

#include "../../lib/kubeconfig_int.h"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));                           \
    } while (0)

#define assert_lacks(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("\"%s\" contains \"%s\"", (hay), (needle));                                   \
    } while (0)

static const char CA_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBdzCCAR2gAwIBAgIUQ2FBdXRob3JpdHlGb3JUb3Bvd2lyZVRlc3RzMAoGCCqG\n"
                             "SM49BAMCMBQxEjAQBgNVBAMMCXRvcG93aXJlLWNhMB4XDTI0MDEwMTAwMDAwMFoX\n"
                             "-----END CERTIFICATE-----\n";
static const char CERT_PEM[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBgDCCASagAwIBAgIUY2xpZW50Q2VydGlmaWNhdGVGb3JUb3Bvd2lyZTAKBggq\n"
                               "-----END CERTIFICATE-----\n";
static const char KEY_PEM[] = "-----BEGIN EC PRIVATE KEY-----\n"
                              "MHcCAQEEIHRvcG93aXJlLXRlc3Qta2V5LW5vdC1hLXJlYWwta2V5LWF0LWFsbA==\n"
                              "-----END EC PRIVATE KEY-----\n";

/* A temporary directory per test; kubeconfigs and plugins are written into it. */
typedef struct fx {
    char dir[64];
} fx;

typedef char pathbuf[512];

static const char *fx_path(const fx *f, const char *name, pathbuf p)
{
    snprintf(p, sizeof(pathbuf), "%s/%s", f->dir, name);
    return p;
}

static void write_file(const fx *f, const char *name, const char *text, mode_t mode)
{
    pathbuf p;
    int fd = open(fx_path(f, name, p), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tw-kubeconfig-XXXXXX");
    pathbuf p;
    if (mkdtemp(f->dir) == NULL || mkdir(fx_path(f, "bin", p), 0755) != 0 ||
        mkdir(fx_path(f, "certs", p), 0755) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Writes text as the kubeconfig "config" and loads it. */
static int load_text(const fx *f, const char *text, const char *context, tw_kube_config **cfg,
                     char *err)
{
    pathbuf p;
    write_file(f, "config", text, 0600);
    return tw_kube_config_load(fx_path(f, "config", p), context, cfg, err);
}

/* Number of open descriptors, to catch leaks of pipes and files. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Base64 of s on one line (a new string). */
static char *b64(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len / 3 * 4 + 8);
    assert_non_null(out);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    return out;
}

/* ---- kubeconfig files ---------------------------------------------------------------------- */

/* Two contexts: dev (CA file, token) and prod (CA data, client certificate data). */
static char *two_context_config(void)
{
    char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
    tw_buf b;
    tw_buf_init(&b, 1 << 20);
    assert_int_equal(tw_buf_printf(&b,
                                   "apiVersion: v1\n"
                                   "kind: Config\n"
                                   "preferences: {}\n"
                                   "current-context: dev\n"
                                   "clusters:\n"
                                   "- name: dev-cluster\n"
                                   "  cluster:\n"
                                   "    server: https://dev.example.com:6443/\n"
                                   "    certificate-authority: certs/ca.pem\n"
                                   "- name: prod-cluster\n"
                                   "  cluster:\n"
                                   "    server: \"https://[2001:db8::1]:443\"\n"
                                   "    certificate-authority-data: %s\n"
                                   "    proxy-url: http://proxy:3128\n"
                                   "contexts:\n"
                                   "- name: dev\n"
                                   "  context:\n"
                                   "    cluster: dev-cluster\n"
                                   "    user: dev-user\n"
                                   "    namespace: kafka\n"
                                   "- name: prod\n"
                                   "  context: {cluster: prod-cluster, user: prod-user}\n"
                                   "users:\n"
                                   "- name: dev-user\n"
                                   "  user:\n"
                                   "    token: dev-token-123\n"
                                   "- name: prod-user\n"
                                   "  user:\n"
                                   "    client-certificate-data: %s\n"
                                   "    client-key-data: %s\n",
                                   ca, cert, key),
                     TW_OK);
    free(ca);
    free(cert);
    free(key);
    return tw_buf_detach(&b);
}

static void current_context_is_used(void **state)
{
    fx *f = *state;
    char *text = two_context_config();
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    free(text);
    assert_string_equal(cfg->server, "https://dev.example.com:6443");
    pathbuf p;
    assert_string_equal(cfg->ca_file, fx_path(f, "certs/ca.pem", p));
    assert_null(cfg->ca_pem);
    assert_string_equal(cfg->token, "dev-token-123");
    assert_null(cfg->token_file);
    assert_null(cfg->client_cert_pem);
    assert_null(cfg->exec);
    assert_int_equal(cfg->insecure_skip_verify, 0);
    char *tok = NULL;
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_string_equal(tok, "dev-token-123");
    free(tok);
    tw_kube_config_free(cfg);
}

static void named_context_with_data_fields(void **state)
{
    fx *f = *state;
    char *text = two_context_config();
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, "prod", &cfg, err), TW_OK);
    free(text);
    assert_string_equal(cfg->server, "https://[2001:db8::1]:443");
    assert_null(cfg->ca_file);
    assert_string_equal(cfg->ca_pem, CA_PEM);
    assert_string_equal(cfg->client_cert_pem, CERT_PEM);
    assert_string_equal(cfg->client_key_pem, KEY_PEM);
    assert_null(cfg->token);
    char *tok = (char *)"untouched";
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_null(tok);
    tw_kube_config_free(cfg);
}

static void base64_across_lines_and_data_over_file(void **state)
{
    fx *f = *state;
    char *ca = b64(CA_PEM);
    /* Wrap the base64 at 40 columns inside a literal block, as some tools write it. */
    tw_buf b;
    tw_buf_init(&b, 1 << 20);
    tw_buf_puts(&b, "current-context: c\n"
                    "contexts: [{name: c, context: {cluster: k}}]\n"
                    "clusters:\n"
                    "- name: k\n"
                    "  cluster:\n"
                    "    server: https://k:6443\n"
                    "    certificate-authority: /nonexistent/ca.pem\n"
                    "    certificate-authority-data: |\n");
    for (size_t i = 0; i < strlen(ca); i += 40)
        tw_buf_printf(&b, "      %.40s\n", ca + i);
    free(ca);
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, tw_buf_cstr(&b), NULL, &cfg, err), TW_OK);
    tw_buf_free(&b);
    assert_string_equal(cfg->ca_pem, CA_PEM);
    assert_null(cfg->ca_file); /* -data wins */
    /* No user: anonymous. */
    assert_null(cfg->token);
    assert_null(cfg->exec);
    tw_kube_config_free(cfg);
}

static void files_relative_to_the_kubeconfig(void **state)
{
    fx *f = *state;
    write_file(f, "certs/client.pem", CERT_PEM, 0600);
    write_file(f, "certs/client-key.pem", KEY_PEM, 0600);
    write_file(f, "certs/token", "file-token-1\n", 0600);
    const char *text = "current-context: c\n"
                       "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                       "clusters:\n- name: k\n  cluster: {server: 'https://k:6443'}\n"
                       "users:\n- name: u\n  user:\n"
                       "    tokenFile: certs/token\n"
                       "    client-certificate: certs/client.pem\n"
                       "    client-key: certs/client-key.pem\n";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->client_cert_pem, CERT_PEM);
    assert_string_equal(cfg->client_key_pem, KEY_PEM);
    pathbuf p;
    assert_string_equal(cfg->token_file, fx_path(f, "certs/token", p));
    char *tok = NULL;
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_string_equal(tok, "file-token-1");
    free(tok);
    /* The file rotates: it is read again. */
    write_file(f, "certs/token", "file-token-2", 0600);
    assert_int_equal(tw_kube_config_credentials(cfg, 1, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_string_equal(tok, "file-token-2");
    free(tok);
    tw_kube_config_free(cfg);
}

static void token_wins_over_token_file(void **state)
{
    fx *f = *state;
    const char *text = "current-context: c\n"
                       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                       "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                       "users: [{name: u, user: {token: static-tok, tokenFile: /nonexistent}}]\n";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->token, "static-tok");
    assert_null(cfg->token_file);
    tw_kube_config_free(cfg);
}

static void json_kubeconfig_and_bare_server(void **state)
{
    fx *f = *state;
    const char *text =
        "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"c\","
        "\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"k\",\"user\":\"u\"}}],"
        "\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":\"127.0.0.1:6443\","
        "\"insecure-skip-tls-verify\":true}}],"
        "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"json-tok\"}}]}";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://127.0.0.1:6443");
    assert_int_equal(cfg->insecure_skip_verify, 1);
    assert_string_equal(cfg->token, "json-tok");
    tw_kube_config_free(cfg);
}

/* One kubeconfig with a single context around the given cluster and user bodies. */
static int load_one(const fx *f, const char *cluster, const char *user, tw_kube_config **cfg,
                    char *err)
{
    tw_buf b;
    tw_buf_init(&b, 1 << 20);
    assert_int_equal(tw_buf_printf(&b,
                                   "current-context: c\n"
                                   "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                                   "clusters:\n- name: k\n  cluster:\n%s"
                                   "users:\n- name: u\n  user:\n%s",
                                   cluster, user),
                     TW_OK);
    int rc = load_text(f, tw_buf_cstr(&b), NULL, cfg, err);
    tw_buf_free(&b);
    return rc;
}

static void insecure_flag(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_one(f, "    server: https://k\n    insecure-skip-tls-verify: true\n",
                              "    token: t\n", &cfg, err),
                     TW_OK);
    assert_int_equal(cfg->insecure_skip_verify, 1);
    tw_kube_config_free(cfg);
    assert_int_equal(load_one(f, "    server: https://k\n    insecure-skip-tls-verify: false\n",
                              "    token: t\n", &cfg, err),
                     TW_OK);
    assert_int_equal(cfg->insecure_skip_verify, 0);
    tw_kube_config_free(cfg);

    cfg = (tw_kube_config *)&cfg; /* must stay untouched on failure */
    /* A quoted "true" is a string, not a boolean. */
    assert_int_equal(load_one(f, "    server: https://k\n    insecure-skip-tls-verify: \"true\"\n",
                              "    token: t\n", &cfg, err),
                     TW_EPARSE);
    assert_contains(err, "insecure-skip-tls-verify must be a boolean");
    assert_contains(err, "line 9");
    /* kubectl refuses a CA together with the insecure flag; so does topowire. */
    assert_int_equal(load_one(f,
                              "    server: https://k\n    insecure-skip-tls-verify: true\n"
                              "    certificate-authority: ca.pem\n",
                              "    token: t\n", &cfg, err),
                     TW_EINVAL);
    assert_contains(err, "insecure-skip-tls-verify");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

static void missing_file(void **state)
{
    fx *f = *state;
    pathbuf p;
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_kube_config_load(fx_path(f, "nope", p), NULL, &cfg, err), TW_ENOCONFIG);
    assert_contains(err, "nope");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    /* A directory is there but cannot be read as a file. */
    assert_int_equal(tw_kube_config_load(f->dir, NULL, &cfg, NULL), TW_EIO);
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

/*
 * A FIFO nobody ever writes once blocked the load (and topowire-init past its
 * --timeout) in open(); it is refused at once, as is a token file that is one.
 */
static void fifo_is_refused_at_once(void **state)
{
    fx *f = *state;
    pathbuf p;
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    assert_int_equal(mkfifo(fx_path(f, "fifo", p), 0600), 0);
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_kube_config_load(p, NULL, &cfg, err), TW_EIO);
    assert_contains(err, "is not a regular file");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    assert_int_equal(load_one(f, "    server: https://k\n", "    tokenFile: fifo\n", &cfg, err),
                     TW_OK);
    char *tok = (char *)"untouched";
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_EIO);
    assert_contains(err, "is not a regular file");
    assert_string_equal(tok, "untouched");
    char *cert = (char *)"x", *key = (char *)"x";
    assert_int_equal(tw_kube_config_client_pair(cfg, &cert, &key), TW_OK);
    assert_null(cert);
    assert_null(key);
    tw_kube_config_free(cfg);
    /* Both answers came without waiting for a writer (generous bound). */
    assert_true(tw_now_ms() - t0 < 2000);
}

static void yaml_syntax_error(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f,
                               "current-context: c\n"
                               "clusters:\n"
                               "- name: k\n"
                               "  cluster: {server: https://k\n"
                               "users: []\n",
                               NULL, &cfg, err),
                     TW_EPARSE);
    assert_contains(err, "YAML error");
    assert_contains(err, "line 5");
    assert_int_equal(load_text(f, "a: b\n\tc: d\n", NULL, &cfg, err), TW_EPARSE);
    assert_contains(err, "line 2");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

static void unknown_names(void **state)
{
    fx *f = *state;
    char *text = two_context_config();
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, "staging", &cfg, err), TW_EINVAL);
    assert_contains(err, "no context \"staging\"");
    free(text);

    const char *no_cluster = "current-context: c\n"
                             "contexts: [{name: c, context: {cluster: gone, user: u}}]\n"
                             "clusters: [{name: k, cluster: {server: 'https://k'}}]\n";
    assert_int_equal(load_text(f, no_cluster, NULL, &cfg, err), TW_EINVAL);
    assert_contains(err, "cluster \"gone\"");

    const char *no_user = "current-context: c\n"
                          "contexts: [{name: c, context: {cluster: k, user: ghost}}]\n"
                          "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                          "users: [{name: u, user: {token: t}}]\n";
    assert_int_equal(load_text(f, no_user, NULL, &cfg, err), TW_EINVAL);
    assert_contains(err, "user \"ghost\"");

    assert_int_equal(load_text(f, "apiVersion: v1\nkind: Config\n", NULL, &cfg, err), TW_EINVAL);
    assert_contains(err, "no current-context");
    assert_int_equal(load_text(f, "", NULL, &cfg, err), TW_EINVAL);

    const char *no_server = "current-context: c\n"
                            "contexts: [{name: c, context: {cluster: k}}]\n"
                            "clusters: [{name: k, cluster: {certificate-authority: ca.pem}}]\n";
    assert_int_equal(load_text(f, no_server, NULL, &cfg, err), TW_EINVAL);
    assert_contains(err, "cluster \"k\" has no server");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

static void wrong_types(void **state)
{
    fx *f = *state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"current-context: c\nclusters: 5\ncontexts: [{name: c, context: {cluster: k}}]\n",
         "clusters must be a list"},
        {"current-context: c\ncontexts: {c: {cluster: k}}\n", "contexts must be a list"},
        {"current-context: [c]\n", "current-context must be a string"},
        {"- just\n- a list\n", "the top level must be a map"},
        {"current-context: c\ncontexts: [5]\n", "contexts[0] must be a map"},
        {"current-context: c\ncontexts: [{name: [c]}]\n", "contexts[0].name must be a string"},
        {"current-context: c\ncontexts: [{name: c, context: [k]}]\n",
         "contexts[0].context must be a map"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: {a: b}}}]\n",
         "context \"c\": cluster must be a string"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: [https://k]}}]\n",
         "cluster \"k\": server must be a string"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: https://k}}]\n"
         "users: [{name: u, user: {token: {a: b}}}]\n",
         "user \"u\": token must be a string"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: https://k}}]\n"
         "users: [{name: u, user: {exec: {command: x, apiVersion: v, args: x}}}]\n",
         "user \"u\": exec.args must be a list"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: https://k}}]\n"
         "users: [{name: u, user: {exec: {command: x, apiVersion: v, args: [[a]]}}}]\n",
         "user \"u\": exec.args[0] must be a string"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: https://k}}]\n"
         "users: [{name: u, user: {exec: {command: x, apiVersion: v, env: [a]}}}]\n",
         "user \"u\": exec.env[0] must be a map"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: https://k}}]\n"
         "users: [{name: u, user: {exec: [x]}}]\n",
         "user \"u\": exec must be a map"},
        {"current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
         "clusters: [{name: k, cluster: {server: https://k, insecure-skip-tls-verify: maybe}}]\n",
         "insecure-skip-tls-verify must be a boolean"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_kube_config *cfg = (tw_kube_config *)&cfg;
        char err[TW_ERRLEN] = "";
        int rc = load_text(f, cases[i].text, NULL, &cfg, err);
        if (rc != TW_EPARSE)
            fail_msg("case %zu: rc %d (%s)", i, rc, err);
        assert_contains(err, cases[i].msg);
        assert_contains(err, "line ");
        assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    }
}

static void bad_user_entries(void **state)
{
    fx *f = *state;
    const char *cl = "    server: https://k\n";
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    assert_int_equal(
        load_one(f, cl, "    auth-provider:\n      name: gcp\n      config: {cmd-path: gcloud}\n",
                 &cfg, err),
        TW_EINVAL);
    assert_contains(err, "auth-provider \"gcp\"");
    assert_contains(err, "not support");
    assert_int_equal(load_one(f, cl, "    username: admin\n    password: hunter2\n", &cfg, err),
                     TW_EINVAL);
    assert_contains(err, "basic authentication");
    assert_lacks(err, "hunter2");
    assert_int_equal(load_one(f, cl, "    client-certificate: c.pem\n", &cfg, err), TW_EINVAL);
    assert_contains(err, "no client key");
    assert_int_equal(load_one(f, cl, "    client-key-data: QUJD\n", &cfg, err), TW_EINVAL);
    assert_contains(err, "no client certificate");
    assert_int_equal(load_one(f, cl,
                              "    client-certificate: certs/missing.pem\n"
                              "    client-key: certs/missing-key.pem\n",
                              &cfg, err),
                     TW_EIO);
    assert_contains(err, "certs/missing.pem");
    assert_contains(err, "client-certificate");
    assert_int_equal(load_one(f, "    server: https://k\n    certificate-authority-data: '%%%'\n",
                              "    token: t\n", &cfg, err),
                     TW_EPARSE);
    assert_contains(err, "certificate-authority-data is not base64-encoded PEM");
    /* Valid base64 of something that is not PEM. */
    assert_int_equal(load_one(f,
                              "    server: https://k\n    certificate-authority-data: aGVsbG8=\n",
                              "    token: t\n", &cfg, err),
                     TW_EPARSE);
    assert_int_equal(load_one(f, cl, "    token: \"sekrit\\r\\nX-Evil: 1\"\n", &cfg, err),
                     TW_EPARSE);
    assert_contains(err, "control characters");
    assert_lacks(err, "sekrit");
    assert_int_equal(load_one(f, cl, "    exec: {command: aws}\n", &cfg, err), TW_EINVAL);
    assert_contains(err, "apiVersion");
    assert_int_equal(load_one(f, cl, "    exec: {apiVersion: v1}\n", &cfg, err), TW_EINVAL);
    assert_contains(err, "command");
    assert_int_equal(load_one(f, cl,
                              "    exec:\n      apiVersion: v1\n      command: x\n"
                              "      env: [{value: v}]\n",
                              &cfg, err),
                     TW_EINVAL);
    assert_contains(err, "exec.env[0] needs a valid name");
    /* kubectl has not run v1alpha1 plugins since 1.24; neither does topowire. */
    static const char *const unsupported[] = {
        "client.authentication.k8s.io/v1alpha1",
        "v1",
        "client.authentication.k8s.io/v2",
        "client.authentication.k8s.io/v1beta1x",
    };
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        char user[256];
        snprintf(user, sizeof(user), "    exec: {command: x, apiVersion: \"%s\"}\n",
                 unsupported[i]);
        assert_int_equal(load_one(f, cl, user, &cfg, err), TW_EINVAL);
        assert_contains(err, "is not supported; use client.authentication.k8s.io/v1 or");
        assert_contains(err, unsupported[i]);
        assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    }
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

static void huge_and_deep_files(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    int fds = open_fds();
    size_t n = 5u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    big[0] = 'a';
    big[1] = ':';
    big[2] = '\n';
    big[n] = '\0';
    assert_int_equal(load_text(f, big, NULL, &cfg, err), TW_ETOOBIG);
    assert_contains(err, "larger than");

    /* Deep nesting makes libyaml's scanner quadratic: refused quickly. */
    size_t depth = 1000000;
    memset(big, '[', depth);
    memset(big + depth, ']', depth);
    big[2 * depth] = '\0';
    uint64_t t0 = tw_now_ms();
    assert_int_equal(load_text(f, big, NULL, &cfg, err), TW_EPARSE);
    assert_contains(err, "nested deeper");
    assert_true(tw_now_ms() - t0 < 5000);

    /* Too many nodes for a kubeconfig, even if the file is small enough. */
    size_t k = 0;
    big[k++] = '[';
    for (size_t i = 0; i < 150000; i++) {
        big[k++] = '1';
        big[k++] = ',';
    }
    big[k++] = ']';
    big[k] = '\0';
    assert_int_equal(load_text(f, big, NULL, &cfg, err), TW_ETOOBIG);
    assert_contains(err, "YAML nodes");
    free(big);
    assert_int_equal(open_fds(), fds);
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

static void anchors_and_aliases(void **state)
{
    fx *f = *state;
    const char *text = "current-context: c\n"
                       "x-cluster: &k {server: 'https://shared:6443/'}\n"
                       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                       "clusters: [{name: k, cluster: *k}]\n"
                       "users: [{name: u, user: {token: t}}]\n"
                       "---\n"
                       "this: is: not: read\n";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://shared:6443");
    tw_kube_config_free(cfg);
}

/* Found by fuzz_kubeconfig: a server that is all scheme became "https:" and loaded. */
static void server_without_host(void **state)
{
    fx *f = *state;
    static const char *const servers[] = {"https://", "'https:///'", "\"://k\"", "/", "'//'"};
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        char cl[64];
        snprintf(cl, sizeof(cl), "    server: %s\n", servers[i]);
        tw_kube_config *cfg = (tw_kube_config *)&cfg;
        char err[TW_ERRLEN] = "";
        int rc = load_one(f, cl, "    token: t\n", &cfg, err);
        if (rc != TW_EINVAL)
            fail_msg("server %s: rc %d (%s)", servers[i], rc, err);
        assert_contains(err, "cluster \"k\"");
        assert_contains(err, "no host");
        assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    }
    /* A bare host, with or without a port or path, still means https. */
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_one(f, "    server: k:6443//\n", "    token: t\n", &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://k:6443");
    tw_kube_config_free(cfg);
}

/* The in-memory parser: not NUL-terminated, named in errors, and files can be kept shut. */
static void parse_from_memory(void **state)
{
    (void)state;
    static const char text[] = "current-context: c\n"
                               "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                               "clusters: [{name: k, cluster: {server: k, certificate-authority: "
                               "ca.pem}}]\n"
                               "users: [{name: u, user: {tokenFile: tok}}]\n"
                               "garbage: [";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    /* Only the first len bytes are read: the broken last line is left out. */
    size_t len = strlen(text) - strlen("garbage: [");
    assert_int_equal(tw__kube_config_parse(text, len, "mem", "/base", NULL, 0, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://k");
    assert_string_equal(cfg->ca_file, "/base/ca.pem");
    assert_string_equal(cfg->token_file, "/base/tok");
    tw_kube_config_free(cfg);
    cfg = NULL;
    assert_int_equal(tw__kube_config_parse(text, len, "mem", NULL, NULL, 0, &cfg, err), TW_OK);
    assert_string_equal(cfg->ca_file, "ca.pem"); /* no directory: as written */
    tw_kube_config_free(cfg);
    cfg = (tw_kube_config *)&cfg;
    assert_int_equal(tw__kube_config_parse(text, sizeof(text) - 1, "mem", NULL, NULL, 0, &cfg, err),
                     TW_EPARSE);
    assert_contains(err, "kubeconfig mem line ");
    /* With TW__KUBECONFIG_NO_FILES a client certificate file is not opened. */
    static const char files[] = "current-context: c\n"
                                "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                                "clusters: [{name: k, cluster: {server: k}}]\n"
                                "users: [{name: u, user: {client-certificate: /etc/hostname, "
                                "client-key: /etc/hostname}}]\n";
    assert_int_equal(tw__kube_config_parse(files, sizeof(files) - 1, "mem", NULL, NULL,
                                           TW__KUBECONFIG_NO_FILES, &cfg, err),
                     TW_EIO);
    assert_contains(err, "client-certificate names a file");
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
}

/* ---- exec credential plugins --------------------------------------------------------------- */

/* Writes bin/plugin.sh and a kubeconfig that runs it with args a1 a2 and env GREETING, DIR. */
static tw_kube_config *exec_setup(const fx *f, const char *script, const char *api_version)
{
    tw_buf b;
    tw_buf_init(&b, 1 << 20);
    assert_int_equal(tw_buf_printf(&b, "#!/bin/sh\n%s", script), TW_OK);
    write_file(f, "bin/plugin.sh", tw_buf_cstr(&b), 0755);
    tw_buf_reset(&b);
    assert_int_equal(tw_buf_printf(&b,
                                   "current-context: c\n"
                                   "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                                   "clusters: [{name: k, cluster: {server: 'https://k:6443'}}]\n"
                                   "users:\n"
                                   "- name: u\n"
                                   "  user:\n"
                                   "    client-certificate-data: %s\n"
                                   "    client-key-data: %s\n"
                                   "    exec:\n"
                                   "      apiVersion: %s\n"
                                   "      command: bin/plugin.sh\n"
                                   "      args: [a1, a2]\n"
                                   "      env:\n"
                                   "      - name: GREETING\n"
                                   "        value: hello\n"
                                   "      - name: DIR\n"
                                   "        value: %s\n"
                                   "      interactiveMode: Never\n"
                                   "      installHint: install the plugin\n",
                                   "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm9sZAo=",
                                   "LS0tLS1CRUdJTiBLRVktLS0tLQpvbGQK", api_version, f->dir),
                     TW_OK);
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    int rc = load_text(f, tw_buf_cstr(&b), NULL, &cfg, err);
    if (rc != TW_OK)
        fail_msg("load: %s", err);
    tw_buf_free(&b);
    pathbuf p;
    assert_string_equal(cfg->exec->command, fx_path(f, "bin/plugin.sh", p));
    return cfg;
}

#define V1B1 "client.authentication.k8s.io/v1beta1"

static void exec_token_env_and_args(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg =
        exec_setup(f,
                   "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$DIR/info\"\n"
                   "n=$(cat | wc -c)\n"
                   "printf '{\"apiVersion\":\"" V1B1 "\",\"kind\":\"ExecCredential\","
                   "\"status\":{\"token\":\"tok-%s-%s-%s-%s\"}}' \"$1\" \"$2\" \"$GREETING\" "
                   "\"$n\"\n",
                   V1B1);
    assert_string_equal(cfg->exec->api_version, V1B1);
    assert_string_equal(cfg->exec->args[0], "a1");
    assert_string_equal(cfg->exec->args[1], "a2");
    assert_null(cfg->exec->args[2]);
    assert_string_equal(cfg->exec->env[0], "GREETING=hello");
    /* The config's env and our KUBERNETES_EXEC_INFO replace the program's own. */
    setenv("GREETING", "from-parent", 1);
    setenv("KUBERNETES_EXEC_INFO", "stale", 1);
    char *tok = NULL;
    char err[TW_ERRLEN] = "";
    int rc = tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err);
    unsetenv("GREETING");
    unsetenv("KUBERNETES_EXEC_INFO");
    if (rc != TW_OK)
        fail_msg("credentials: %s", err);
    /* stdin is /dev/null: cat read 0 bytes without waiting. */
    assert_string_equal(tok, "tok-a1-a2-hello-0");
    free(tok);
    pathbuf p;
    char *info = tw_test_read_file(fx_path(f, "info", p), NULL);
    assert_non_null(info);
    assert_string_equal(info, "{\"apiVersion\":\"" V1B1 "\",\"kind\":\"ExecCredential\","
                              "\"spec\":{\"interactive\":false}}");
    free(info);
    /* A token-only answer leaves the configured client certificate alone. */
    assert_string_equal(cfg->client_cert_pem, "-----BEGIN CERTIFICATE-----\nold\n");
    tw_kube_config_free(cfg);
}

static void exec_found_on_path(void **state)
{
    fx *f = *state;
    write_file(f, "bin/tw-test-credential-plugin",
               "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
               "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-path\"}}'\n",
               0755);
    const char *text = "current-context: c\n"
                       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                       "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                       "users:\n- name: u\n  user:\n    exec:\n"
                       "      apiVersion: client.authentication.k8s.io/v1\n"
                       "      command: tw-test-credential-plugin\n";
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(load_text(f, text, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->exec->command, "tw-test-credential-plugin");
    assert_null(cfg->exec->args[0]);
    char *tok = (char *)"untouched";
    /* Not on PATH yet. */
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err), TW_EEXEC);
    assert_contains(err, "tw-test-credential-plugin was not found on PATH");
    assert_string_equal(tok, "untouched");
    const char *old = getenv("PATH");
    char *saved = strdup(old ? old : "/usr/bin:/bin");
    assert_non_null(saved);
    tw_buf path;
    tw_buf_init(&path, 1 << 16);
    tw_buf_printf(&path, "%s/bin:%s", f->dir, saved);
    setenv("PATH", tw_buf_cstr(&path), 1);
    int rc = tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err);
    setenv("PATH", saved, 1);
    free(saved);
    tw_buf_free(&path);
    assert_int_equal(rc, TW_OK);
    assert_string_equal(tok, "from-path");
    free(tok);
    tw_kube_config_free(cfg);
}

static void exec_client_certificate(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg =
        exec_setup(f,
                   "printf '{\"apiVersion\":\"" V1B1 "\",\"kind\":\"ExecCredential\",\"status\":{"
                   "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\\\nnew-cert\\\\n"
                   "-----END CERTIFICATE-----\\\\n\","
                   "\"clientKeyData\":\"-----BEGIN EC PRIVATE KEY-----\\\\nnew-key\\\\n"
                   "-----END EC PRIVATE KEY-----\\\\n\"}}'\n",
                   V1B1);
    char *tok = (char *)"untouched";
    char err[TW_ERRLEN] = "";
    int rc = tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err);
    if (rc != TW_OK)
        fail_msg("credentials: %s", err);
    assert_null(tok);
    assert_string_equal(cfg->client_cert_pem,
                        "-----BEGIN CERTIFICATE-----\nnew-cert\n-----END CERTIFICATE-----\n");
    assert_string_equal(cfg->client_key_pem,
                        "-----BEGIN EC PRIVATE KEY-----\nnew-key\n-----END EC PRIVATE KEY-----\n");
    char *cert = NULL, *key = NULL;
    assert_int_equal(tw_kube_config_client_pair(cfg, &cert, &key), TW_OK);
    assert_string_equal(cert, cfg->client_cert_pem);
    assert_string_equal(key, cfg->client_key_pem);
    free(cert);
    free(key);
    /* Cached: the second call answers without running the plugin. */
    write_file(f, "bin/plugin.sh", "#!/bin/sh\nexit 1\n", 0755);
    tok = (char *)"untouched";
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err), TW_OK);
    assert_null(tok);
    tw_kube_config_free(cfg);
}

static void exec_failure_exit_status(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = exec_setup(f,
                                     "echo '{\"status\":{\"token\":\"secret-on-stdout\"}}'\n"
                                     "echo 'error: you must be logged in to the server' >&2\n"
                                     "echo 'second line' >&2\n"
                                     "exit 3\n",
                                     V1B1);
    char *tok = (char *)"untouched";
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err), TW_EEXEC);
    assert_contains(err, "exited with status 3: error: you must be logged in to the server");
    assert_lacks(err, "second line");
    assert_lacks(err, "secret-on-stdout");
    assert_string_equal(tok, "untouched");

    write_file(f, "bin/plugin.sh", "#!/bin/sh\nkill -9 $$\n", 0755);
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err), TW_EEXEC);
    assert_contains(err, "killed by signal 9");

    write_file(f, "bin/plugin.sh", "not a script", 0644);
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err), TW_EEXEC);
    assert_contains(err, "Permission denied");
    assert_string_equal(tok, "untouched");
    tw_kube_config_free(cfg);
}

static void exec_bad_answers(void **state)
{
    fx *f = *state;
    static const struct {
        const char *out, *msg;
    } cases[] = {
        {"this is not json secret-garbage", "did not print an ExecCredential"},
        {"[\"secret-garbage\"]", "did not print an ExecCredential"},
        {"", "did not print an ExecCredential"},
        {"{\"kind\":\"Pod\",\"status\":{\"token\":\"secret-garbage\"}}", "something else"},
        {"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"status\":{\"token\":\"secret-"
         "garbage\"}}",
         "another apiVersion"},
        {"{\"apiVersion\":\"" V1B1 "\"}", "no status"},
        {"{\"status\":{}}", "neither a token nor a certificate"},
        {"{\"status\":{\"token\":42}}", "status.token"},
        {"{\"status\":{\"token\":\"\"}}", "status.token"},
        {"{\"status\":{\"token\":\"secret-garbage\\r\\nX-Evil: 1\"}}", "control characters"},
        {"{\"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\n\"}}",
         "only one of"},
        {"{\"status\":{\"clientCertificateData\":\"secret-garbage\","
         "\"clientKeyData\":\"-----BEGIN KEY-----\"}}",
         "status.clientCertificateData is not PEM"},
        {"{\"status\":{\"token\":\"secret-garbage\",\"expirationTimestamp\":\"tomorrow\"}}",
         "expirationTimestamp is not an RFC 3339"},
        {"{\"status\":{\"token\":\"secret-garbage\",\"expirationTimestamp\":"
         "\"2030-01-01T00:00:00\"}}",
         "expirationTimestamp"},
        {"{\"status\":{\"token\":\"secret-garbage\",\"expirationTimestamp\":5}}",
         "expirationTimestamp"},
    };
    tw_kube_config *cfg = exec_setup(f, "cat \"$DIR/answer\"\n", V1B1);
    int fds = open_fds();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(f, "answer", cases[i].out, 0600);
        char *tok = (char *)"untouched";
        char err[TW_ERRLEN] = "";
        int rc = tw_kube_config_credentials(cfg, 0, tw_deadline_in(5000), &tok, err);
        if (rc != TW_EPARSE)
            fail_msg("case %zu: rc %d (%s)", i, rc, err);
        assert_contains(err, cases[i].msg);
        assert_lacks(err, "secret-garbage");
        assert_string_equal(tok, "untouched");
        assert_int_equal(cfg->exec->cached, 0);
    }
    assert_int_equal(open_fds(), fds);
    tw_kube_config_free(cfg);
}

static pid_t read_pid(const fx *f, const char *name)
{
    pathbuf p;
    char *s = tw_test_read_file(fx_path(f, name, p), NULL);
    assert_non_null(s);
    pid_t pid = (pid_t)strtol(s, NULL, 10);
    free(s);
    assert_true(pid > 1);
    return pid;
}

/* True once pid is gone or a zombie (dead, waiting for its new parent to reap it). */
static int is_dead(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *st = strrchr(buf, ')');
    return st != NULL && (st[2] == 'Z' || st[2] == 'X');
}

static void exec_killed_at_deadline(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = exec_setup(f,
                                     "echo $$ > \"$DIR/pid\"\n"
                                     "sleep 30 &\n"
                                     "echo $! > \"$DIR/sleeppid\"\n"
                                     "echo 'waiting for the browser' >&2\n"
                                     "wait\n",
                                     V1B1);
    char *tok = (char *)"untouched";
    char err[TW_ERRLEN] = "";
    int fds = open_fds();
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_kube_config_credentials(cfg, 0, t0 + 600, &tok, err), TW_ETIMEDOUT);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took >= 600);
    if (took > 1100)
        fail_msg("took %lu ms for a 600 ms deadline", (unsigned long)took);
    assert_contains(err, "killed");
    assert_string_equal(tok, "untouched");
    assert_int_equal(open_fds(), fds);
    /* Our child was reaped: no zombie left and nothing more to wait for. */
    pid_t pid = read_pid(f, "pid");
    int status;
    assert_int_equal(waitpid(pid, &status, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    /* What it started was killed with it (its process group). */
    pid_t sleeper = read_pid(f, "sleeppid");
    uint64_t until = tw_deadline_in(2000);
    while (!is_dead(sleeper) && tw_remaining_ms(until) > 0)
        tw_sleep_ms(10, until);
    assert_true(is_dead(sleeper));
    /* An already-passed deadline fails at once too. */
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_now_ms(), &tok, err), TW_ETIMEDOUT);
    tw_kube_config_free(cfg);
}

static void exec_floods(void **state)
{
    fx *f = *state;
    /* 512 KiB on stderr before the answer: read concurrently, no deadlock. */
    tw_kube_config *cfg = exec_setup(f,
                                     "head -c 524288 /dev/zero | tr '\\000' e >&2\n"
                                     "echo '{\"status\":{\"token\":\"after-flood\"}}'\n",
                                     V1B1);
    char *tok = NULL;
    char err[TW_ERRLEN] = "";
    int rc = tw_kube_config_credentials(cfg, 0, tw_deadline_in(10000), &tok, err);
    if (rc != TW_OK)
        fail_msg("credentials: %s", err);
    assert_string_equal(tok, "after-flood");
    free(tok);
    /* More than 1 MiB on stdout is refused, and the plugin is stopped. */
    write_file(f, "bin/plugin.sh",
               "#!/bin/sh\necho $$ > \"$DIR/pid\"\nexec head -c 3000000 /dev/zero\n", 0755);
    tok = (char *)"untouched";
    assert_int_equal(tw_kube_config_credentials(cfg, 1, tw_deadline_in(10000), &tok, err),
                     TW_ETOOBIG);
    assert_contains(err, "more than");
    assert_string_equal(tok, "untouched");
    pid_t pid = read_pid(f, "pid");
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    tw_kube_config_free(cfg);
}

/* Counts its runs in $DIR/count and answers with run number and $DIR/expiry. */
static const char COUNTING_PLUGIN[] =
    "n=$(cat \"$DIR/count\" 2>/dev/null || echo 0)\n"
    "n=$((n + 1))\n"
    "echo $n > \"$DIR/count\"\n"
    "exp=$(cat \"$DIR/expiry\" 2>/dev/null)\n"
    "if [ -n \"$exp\" ]; then exp=\",\\\"expirationTimestamp\\\":\\\"$exp\\\"\"; fi\n"
    "printf '{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"run-%s\"%s}}' $n \"$exp\"\n";

static int runs(const fx *f)
{
    pathbuf p;
    char *s = tw_test_read_file(fx_path(f, "count", p), NULL);
    int n = s ? (int)strtol(s, NULL, 10) : 0;
    free(s);
    return n;
}

static void expect_token(tw_kube_config *cfg, int refresh, const char *want)
{
    char *tok = NULL;
    char err[TW_ERRLEN] = "";
    int rc = tw_kube_config_credentials(cfg, refresh, tw_deadline_in(5000), &tok, err);
    if (rc != TW_OK)
        fail_msg("credentials: %s", err);
    assert_string_equal(tok, want);
    free(tok);
}

static void exec_cache_until_expiry(void **state)
{
    fx *f = *state;
    write_file(f, "expiry", "2099-01-01T00:00:00Z", 0600);
    tw_kube_config *cfg = exec_setup(f, COUNTING_PLUGIN, V1B1);
    expect_token(cfg, 0, "run-1");
    expect_token(cfg, 0, "run-1");
    expect_token(cfg, 0, "run-1");
    assert_int_equal(runs(f), 1);
    /* A 401 asks for a refresh: the plugin runs again. */
    expect_token(cfg, 1, "run-2");
    expect_token(cfg, 0, "run-2");
    assert_int_equal(runs(f), 2);
    /* An expired credential is fetched again on every call. */
    write_file(f, "expiry", "2001-02-03T04:05:06.789+01:00", 0600);
    expect_token(cfg, 1, "run-3");
    expect_token(cfg, 0, "run-4");
    expect_token(cfg, 0, "run-5");
    /* One that expires within seconds is renewed early. */
    time_t soon = time(NULL) + 3;
    struct tm tm;
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&soon, &tm));
    write_file(f, "expiry", stamp, 0600);
    expect_token(cfg, 0, "run-6");
    expect_token(cfg, 0, "run-7");
    /* An offset and fractions are understood. */
    write_file(f, "expiry", "2099-01-01T00:00:00.123456789-05:30", 0600);
    expect_token(cfg, 0, "run-8");
    assert_int_equal(cfg->exec->expires, 4070908800LL + 5 * 3600 + 30 * 60);
    expect_token(cfg, 0, "run-8");
    /* Without an expiry the credential is kept until a refresh. */
    write_file(f, "expiry", "", 0600);
    expect_token(cfg, 1, "run-9");
    assert_int_equal(cfg->exec->expires, 0);
    expect_token(cfg, 0, "run-9");
    expect_token(cfg, 0, "run-9");
    assert_int_equal(runs(f), 9);
    tw_kube_config_free(cfg);
}

/* One config, many threads: what node-cache misses and the watch thread do. */
typedef struct shared_cfg {
    tw_kube_config *cfg;
    pthread_barrier_t *start;
    int refresh;
    int calls;
    int failures;
    char first[32];
} shared_cfg;

static void *credentials_thread(void *arg)
{
    shared_cfg *sc = arg;
    pthread_barrier_wait(sc->start);
    for (int i = 0; i < sc->calls; i++) {
        char *tok = NULL;
        char err[TW_ERRLEN] = "";
        int refresh = sc->refresh && i == 0;
        if (tw_kube_config_credentials(sc->cfg, refresh, tw_deadline_in(20000), &tok, err) !=
                TW_OK ||
            tok == NULL || strncmp(tok, "run-", 4) != 0) {
            sc->failures++;
        } else if (i == 0) {
            snprintf(sc->first, sizeof(sc->first), "%s", tok);
        }
        free(tok);
    }
    return NULL;
}

/* Runs n threads that each ask calls times (the first call a refresh when refresh is set). */
static void run_threads(tw_kube_config *cfg, size_t n, int refresh, int calls, shared_cfg *sc)
{
    pthread_t th[16];
    pthread_barrier_t start;
    assert_true(n <= 16);
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (size_t i = 0; i < n; i++) {
        sc[i] = (shared_cfg){.cfg = cfg, .start = &start, .refresh = refresh, .calls = calls};
        assert_int_equal(pthread_create(&th[i], NULL, credentials_thread, &sc[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sc[i].failures, 0);
}

/*
 * Eight threads ask one exec-plugin config for a token at once. The plugin
 * runs once (single flight) and every thread gets its token; concurrent
 * refreshes run it far fewer times than there are threads. Run under
 * ThreadSanitizer by `make tsan`, which also proves the cache race-free.
 */
static void exec_credentials_shared_by_threads(void **state)
{
    fx *f = *state;
    write_file(f, "expiry", "2099-01-01T00:00:00Z", 0600);
    /* Slow enough that every thread arrives while the first run is on. */
    static const char slow[] = "sleep 1\n";
    char script[sizeof(slow) + sizeof(COUNTING_PLUGIN)];
    snprintf(script, sizeof(script), "%s%s", slow, COUNTING_PLUGIN);
    tw_kube_config *cfg = exec_setup(f, script, V1B1);
    shared_cfg sc[8];
    run_threads(cfg, 8, 0, 20, sc);
    assert_int_equal(runs(f), 1);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(sc[i].first, "run-1");
    /* All refresh at once: one run answers every refresh that waited for it. */
    run_threads(cfg, 8, 1, 5, sc);
    int refreshed = runs(f) - 1;
    if (refreshed < 1 || refreshed > 3)
        fail_msg("8 concurrent refreshes ran the plugin %d times", refreshed);
    tw_kube_config_free(cfg);
}

/* ---- in-cluster ---------------------------------------------------------------------------- */

static void incluster(void **state)
{
    fx *f = *state;
    tw_kube_config *cfg = (tw_kube_config *)&cfg;
    char err[TW_ERRLEN] = "";
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_int_equal(tw_kube_config_incluster(NULL, NULL, &cfg, err), TW_ENOCONFIG);
    assert_contains(err, "KUBERNETES_SERVICE_HOST");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    assert_int_equal(tw_kube_config_incluster(NULL, NULL, &cfg, err), TW_ENOCONFIG);
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);

    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(tw_kube_config_incluster(NULL, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://10.96.0.1:443");
    assert_string_equal(cfg->token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
    assert_string_equal(cfg->ca_file, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    tw_kube_config_free(cfg);

    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    pathbuf tp, cp;
    fx_path(f, "token", tp);
    fx_path(f, "ca.crt", cp);
    assert_int_equal(tw_kube_config_incluster(tp, cp, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://[fd00:10:96::1]:6443");
    assert_string_equal(cfg->ca_file, cp);
    char *tok = (char *)"untouched";
    /* No token file yet. */
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_EIO);
    assert_contains(err, "token");
    write_file(f, "token", "eyJhbGciOiJSUzI1NiJ9.first\n", 0600);
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_string_equal(tok, "eyJhbGciOiJSUzI1NiJ9.first");
    free(tok);
    /* The kubelet rotated it: read again, even without a 401. */
    write_file(f, "token", "eyJhbGciOiJSUzI1NiJ9.second", 0600);
    assert_int_equal(tw_kube_config_credentials(cfg, 0, tw_deadline_in(1000), &tok, err), TW_OK);
    assert_string_equal(tok, "eyJhbGciOiJSUzI1NiJ9.second");
    free(tok);
    write_file(f, "token", "\n", 0600);
    tok = (char *)"untouched";
    assert_int_equal(tw_kube_config_credentials(cfg, 1, tw_deadline_in(1000), &tok, err),
                     TW_EPARSE);
    assert_string_equal(tok, "untouched");
    tw_kube_config_free(cfg);
    tw_kube_config_free(NULL);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

/* ---- lists and the search order ------------------------------------------------------------- */

/* Two files merged as kubectl merges them: first to set a value wins, whole entries, own dirs. */
static void list_merges_first_wins(void **state)
{
    fx *f = *state;
    pathbuf a, b, sub, missing;
    assert_int_equal(mkdir(fx_path(f, "second", sub), 0755), 0);
    write_file(f, "certs/ca.crt", CA_PEM, 0600);
    write_file(f, "a",
               "current-context: dev\n"
               "contexts:\n- name: dev\n  context: {cluster: shared, user: alice}\n"
               "clusters:\n- name: shared\n  cluster: {server: 'https://first:6443'}\n",
               0600);
    write_file(f, "second/ca.crt", CA_PEM, 0600);
    write_file(
        f, "second/b",
        "current-context: prod\n"
        "contexts:\n- name: prod\n  context: {cluster: other, user: bob}\n"
        "- name: dev\n  context: {cluster: other, user: bob}\n"
        "clusters:\n- name: shared\n  cluster: {server: 'https://second:6443'}\n"
        "- name: other\n  cluster: {server: 'https://other:6443', certificate-authority: ca.crt}\n"
        "users:\n- name: alice\n  user: {token: alice-token}\n"
        "- name: bob\n  user: {token: bob-token}\n",
        0600);
    const char *paths[] = {fx_path(f, "missing", missing), fx_path(f, "a", a),
                           fx_path(f, "second/b", b)};
    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "";
    /* current-context of the first file that sets one; cluster "shared" from the first file;
     * user "alice" only in the second; the missing file is skipped. */
    assert_int_equal(tw_kube_config_load_list(paths, 3, NULL, &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://first:6443");
    assert_string_equal(cfg->token, "alice-token");
    tw_kube_config_free(cfg);
    /* A named context: dev is taken whole from the first file, never mixed with the second's. */
    assert_int_equal(tw_kube_config_load_list(paths, 3, "prod", &cfg, err), TW_OK);
    assert_string_equal(cfg->server, "https://other:6443");
    assert_string_equal(cfg->token, "bob-token");
    /* A relative path resolves against the directory of the file that holds it. */
    char want[600];
    snprintf(want, sizeof(want), "%s/second/ca.crt", f->dir);
    assert_non_null(cfg->ca_pem != NULL ? cfg->ca_pem : cfg->ca_file);
    if (cfg->ca_file != NULL)
        assert_string_equal(cfg->ca_file, want);
    else
        assert_string_equal(cfg->ca_pem, CA_PEM);
    tw_kube_config_free(cfg);
    /* Unknown names report the list. */
    assert_int_equal(tw_kube_config_load_list(paths, 3, "nope", &cfg, err), TW_EINVAL);
    assert_contains(err, "context \"nope\"");
    assert_contains(err, a);
    assert_contains(err, b);
    /* Nothing exists: TW_ENOCONFIG; a broken file in the list stops the load. */
    const char *none[] = {missing, missing};
    assert_int_equal(tw_kube_config_load_list(none, 2, NULL, &cfg, err), TW_ENOCONFIG);
    write_file(f, "broken", "clusters: [\n", 0600);
    pathbuf br;
    const char *with_broken[] = {a, fx_path(f, "broken", br)};
    assert_int_equal(tw_kube_config_load_list(with_broken, 2, NULL, &cfg, err), TW_EPARSE);
    assert_contains(err, br);
    assert_int_equal(tw_kube_config_load_list(paths, 0, NULL, &cfg, err), TW_EINVAL);
}

static void set_or_unset(const char *name, const char *value)
{
    if (value != NULL)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

/* --kubeconfig, then $KUBECONFIG, then in-cluster, then ~/.kube/config. */
static void find_order(void **state)
{
    fx *f = *state;
    pathbuf flag, env1, env2, home, kube, missing;
    const char *saved_home = getenv("HOME");
    char *old_home = saved_home ? strdup(saved_home) : NULL;
    assert_int_equal(mkdir(fx_path(f, "home", home), 0755), 0);
    assert_int_equal(mkdir(fx_path(f, "home/.kube", kube), 0755), 0);
    static const char tmpl[] = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\n"
                               "clusters:\n- name: k\n  cluster: {server: 'https://%s:6443'}\n";
    char text[256];
    snprintf(text, sizeof(text), tmpl, "flag");
    write_file(f, "flag", text, 0600);
    snprintf(text, sizeof(text), tmpl, "env");
    write_file(f, "env2", text, 0600);
    snprintf(text, sizeof(text), tmpl, "home");
    write_file(f, "home/.kube/config", text, 0600);
    fx_path(f, "flag", flag);
    fx_path(f, "env1-missing", env1);
    fx_path(f, "env2", env2);
    fx_path(f, "missing", missing);
    char list[1200];
    snprintf(list, sizeof(list), "%s::%s", env1, env2);

    tw_kube_config *cfg = NULL;
    char err[TW_ERRLEN] = "", origin[TW_ERRLEN] = "";
    tw_kube_config_query q = {.kubeconfig = flag};
    setenv("HOME", home, 1);
    setenv("KUBECONFIG", list, 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    /* 1. the flag wins over everything */
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_OK);
    assert_string_equal(cfg->server, "https://flag:6443");
    assert_contains(origin, "--kubeconfig");
    tw_kube_config_free(cfg);
    /* a flag naming a missing file is an error, not a reason to look elsewhere */
    q.kubeconfig = missing;
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_EINVAL);
    assert_contains(err, missing);
    /* 2. $KUBECONFIG before in-cluster (the webhook used to try in-cluster first) */
    q.kubeconfig = NULL;
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_OK);
    assert_string_equal(cfg->server, "https://env:6443");
    assert_contains(origin, "$KUBECONFIG");
    tw_kube_config_free(cfg);
    /* 3. $KUBECONFIG naming only missing files: in-cluster */
    setenv("KUBECONFIG", env1, 1);
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_OK);
    assert_string_equal(cfg->server, "https://10.96.0.1:443");
    assert_string_equal(origin, "in-cluster");
    tw_kube_config_free(cfg);
    /* 4. not in a cluster: ~/.kube/config */
    unsetenv("KUBECONFIG");
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_OK);
    assert_string_equal(cfg->server, "https://home:6443");
    assert_contains(origin, "/home/.kube/config");
    tw_kube_config_free(cfg);
    /* nothing anywhere: TW_ENOCONFIG saying what was tried; *out untouched */
    setenv("HOME", f->dir, 1);
    cfg = (tw_kube_config *)&cfg;
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_ENOCONFIG);
    assert_ptr_equal(cfg, (tw_kube_config *)&cfg);
    assert_contains(err, "KUBERNETES_SERVICE_HOST");
    assert_contains(err, ".kube/config");
    /* a broken ~/.kube/config is reported, not skipped */
    setenv("HOME", home, 1);
    write_file(f, "home/.kube/config", "contexts: {\n", 0600);
    assert_int_equal(tw_kube_config_find(&q, &cfg, origin, sizeof(origin), err), TW_EPARSE);
    unsetenv("KUBERNETES_SERVICE_PORT");
    set_or_unset("HOME", old_home);
    free(old_home);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(current_context_is_used),
        T(named_context_with_data_fields),
        T(base64_across_lines_and_data_over_file),
        T(files_relative_to_the_kubeconfig),
        T(token_wins_over_token_file),
        T(json_kubeconfig_and_bare_server),
        T(insecure_flag),
        T(missing_file),
        T(fifo_is_refused_at_once),
        T(yaml_syntax_error),
        T(unknown_names),
        T(wrong_types),
        T(bad_user_entries),
        T(huge_and_deep_files),
        T(anchors_and_aliases),
        T(server_without_host),
        T(parse_from_memory),
        T(exec_token_env_and_args),
        T(exec_found_on_path),
        T(exec_client_certificate),
        T(exec_failure_exit_status),
        T(exec_bad_answers),
        T(exec_killed_at_deadline),
        T(exec_floods),
        T(exec_cache_until_expiry),
        T(exec_credentials_shared_by_threads),
        T(incluster),
        T(list_merges_first_wins),
        T(find_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
