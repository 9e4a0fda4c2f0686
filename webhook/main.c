/* main.c - topowire-webhook: serve the admission webhook, make its certificates, version. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topowire/certgen.h"
#include "topowire/cli.h"
#include "topowire/clock.h"
#include "topowire/dnsname.h"
#include "topowire/files.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/kube.h"
#include "topowire/kubeconfig.h"
#include "topowire/log.h"
#include "topowire/version.h"

#include "webhook.h"

#define PROG              "topowire-webhook"
#define EXIT_USAGE        2
#define PATCH_TIMEOUT_MS  60000
#define SA_NAMESPACE_FILE "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

static void usage(FILE *f)
{
    fputs(
        "usage: " PROG " serve [flags]     run the HTTPS admission webhook\n"
        "       " PROG " certgen [flags]   make a CA and a serving certificate\n"
        "       " PROG " version           print the version\n"
        "\n"
        "serve flags:\n"
        "  --listen [HOST]:PORT          TLS listener (default :8443)\n"
        "  --metrics-listen [HOST]:PORT  plain-HTTP /healthz /readyz /metrics (default :9090; \"\" "
        "= off)\n"
        "  --tls-cert-file FILE          serving certificate chain, PEM (reloaded when it "
        "changes)\n"
        "  --tls-key-file FILE           its private key, PEM\n"
        "  --tls-min-version 1.2|1.3     (default 1.2)\n"
        "  --threads N                   worker threads (default: one per core)\n"
        "  --max-connections N           (default 512)\n"
        "  --max-connections-per-address N   from one client address (default 128)\n"
        "  --connection-timeout SECONDS  close idle or stalled connections (default 30)\n"
        "  --header-timeout SECONDS      a new connection's request head must arrive within\n"
        "                                this, TLS handshake included (default 10)\n"
        "  --request-timeout SECONDS     a request body must arrive within this (default 10)\n"
        "  --max-body-memory MIB         memory all request bodies may hold together (default "
        "16)\n"
        "  --shutdown-grace SECONDS      SIGTERM: time to finish requests in flight (default 25)\n"
        "  --init-image IMAGE            the topowire-init image\n"
        "  --init-image-pull-policy P    Always|IfNotPresent|Never|\"\" (default IfNotPresent)\n"
        "  --rack zone|zone-id|region|label:KEY   default rack (default zone)\n"
        "  --out-dir DIR                 where pods read the rack files (default /etc/topowire)\n"
        "  --podinfo-dir DIR             the init container's Downward-API mount (default "
        "/etc/podinfo)\n"
        "  --volume-size-limit Q         the emptyDir's sizeLimit (default 1Mi)\n"
        "  --init-cpu-request Q, --init-cpu-limit Q          (default 10m, 100m; \"\" = no limit)\n"
        "  --init-memory-request Q, --init-memory-limit Q    (default 16Mi, 32Mi)\n"
        "  --binding true|false          serve /mutate/binding from a node cache (default true;\n"
        "                                needs get/list/watch on nodes)\n"
        "  --copy-labels LIST            node labels copied (default topology.kubernetes.io/zone,\n"
        "                                topology.kubernetes.io/region,topology.k8s.aws/zone-id)\n"
        "  --copy-as LIST                annotations, labels or both (default annotations)\n"
        "  --timeout DURATION            the most one admission may take (default 2s)\n"
        "  --cache-max-age DURATION      not ready, and direct lookups, when the node cache\n"
        "                                has not heard from the API server for this long\n"
        "                                (default 60s)\n"
        "  --kubeconfig FILE, --context NAME, --token-file F, --ca-file F   the API server\n"
        "                                (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
        "\n"
        "certgen flags:\n"
        "  --service NAME                the webhook's Service (default topowire-webhook)\n"
        "  --namespace NS                its namespace (default: this pod's, else "
        "topowire-system)\n"
        "  --cluster-domain DOMAIN       (default cluster.local)\n"
        "  --out-dir DIR                 where ca.crt, ca.key, tls.crt, tls.key go (default .)\n"
        "  --days N, --ca-days N         validity (default 365, 3650)\n"
        "  --ca-cert-file F --ca-key-file F   sign with this CA instead of making one\n"
        "  --extra-san NAME|IP           another subject alternative name (repeatable)\n"
        "  --secret NAME                 store tls.crt, tls.key, ca.crt in this kubernetes.io/tls\n"
        "                                Secret of --namespace (created, or its keys replaced)\n"
        "  --patch-webhook NAME          set caBundle in every webhook of this\n"
        "                                MutatingWebhookConfiguration\n"
        "  --kubeconfig FILE, --context NAME   reach the API from outside the cluster\n"
        "  --token-file F, --ca-file F   in-cluster: the service-account token and CA to use\n"
        "\n"
        "common: --log-format text|json, --log-level debug|info|warn|error\n",
        f);
}

/* What the flags every command takes set. */
typedef struct common_opts {
    tw_log_format log_format;
    tw_log_level log_level;
    tw_kube_config_query kube;
} common_opts;

/* The flags every webhook command takes, as table rows for common_opts c. */
#define COMMON_FLAGS(c)                                                                            \
    {"kubeconfig", TW_FLAG_STRING, 0, &(c).kube.kubeconfig, NULL},                                 \
        {"context", TW_FLAG_STRING, 0, &(c).kube.context, NULL},                                   \
        {"token-file", TW_FLAG_STRING, 0, &(c).kube.token_file, NULL},                             \
        {"ca-file", TW_FLAG_STRING, 0, &(c).kube.ca_file, NULL},                                   \
        {"log-format", TW_FLAG_CALL, 0, &(c).log_format, tw_flag_log_format},                      \
        {"log-level", TW_FLAG_CALL, 0, &(c).log_level, tw_flag_log_level},                         \
    {                                                                                              \
        "help", TW_FLAG_HELP, 0, NULL, NULL                                                        \
    }

/* Parses a command's flags: -1 to go on (logging set up), else the exit status. */
static int parse_flags(const char *cmd, const tw_flag *flags, size_t n, int argc, char **argv,
                       const common_opts *c)
{
    switch (tw_flags_parse(cmd, flags, n, argc, argv)) {
    case TW_FLAGS_GO:
        tw_log_setup(PROG, c->log_format, c->log_level);
        return -1;
    case TW_FLAGS_HELP:
        usage(stdout);
        return 0;
    default:
        return EXIT_USAGE;
    }
}

/* --max-body-memory: whole MiB, at most 64 GiB. */
static int flag_mib(void *target, const char *arg, char *why, size_t why_len)
{
    char *end = NULL;
    errno = 0;
    unsigned long mib = arg[0] >= '0' && arg[0] <= '9' ? strtoul(arg, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || mib > 65536) {
        snprintf(why, why_len, "is not a number of MiB from 0 to 65536");
        return TW_EINVAL;
    }
    *(size_t *)target = (size_t)mib * 1024 * 1024;
    return TW_OK;
}

/* The API server, found in tw_kube_config_find's order. */
static int load_kube(const tw_kube_config_query *q, tw_kube_config **out, char *err)
{
    char origin[TW_ERRLEN];
    int rc = tw_kube_config_find(q, out, origin, sizeof(origin), err);
    if (rc == TW_OK)
        tw_log_kv(TW_LOG_INFO, "using the Kubernetes configuration", "from", origin, "server",
                  (*out)->server, NULL);
    return rc;
}

/* serve's flags into cfg and c; -1 to go on, else the exit status. */
static int serve_flags(int argc, char **argv, hook_config *cfg, common_opts *c)
{
    const tw_flag flags[] = {
        {"listen", TW_FLAG_STRING, 0, &cfg->listen, NULL},
        {"metrics-listen", TW_FLAG_STRING, 0, &cfg->metrics_listen, NULL},
        {"tls-cert-file", TW_FLAG_STRING, 0, &cfg->cert_file, NULL},
        {"tls-key-file", TW_FLAG_STRING, 0, &cfg->key_file, NULL},
        {"tls-min-version", TW_FLAG_STRING, 0, &cfg->tls_min_version, NULL},
        {"threads", TW_FLAG_COUNT, 256, &cfg->threads, NULL},
        {"max-connections", TW_FLAG_COUNT, 1000000, &cfg->max_connections, NULL},
        {"max-connections-per-address", TW_FLAG_COUNT, 1000000, &cfg->max_connections_per_address,
         NULL},
        {"header-timeout", TW_FLAG_SECONDS, 3600, &cfg->header_timeout_s, NULL},
        {"max-body-memory", TW_FLAG_CALL, 0, &cfg->max_body_memory, flag_mib},
        {"connection-timeout", TW_FLAG_SECONDS, 3600, &cfg->connection_timeout_s, NULL},
        {"request-timeout", TW_FLAG_SECONDS, 3600, &cfg->request_timeout_s, NULL},
        {"shutdown-grace", TW_FLAG_SECONDS, 3600, &cfg->shutdown_grace_s, NULL},
        {"init-image", TW_FLAG_STRING, 0, &cfg->pod.init_image, NULL},
        {"init-image-pull-policy", TW_FLAG_STRING, 0, &cfg->pod.image_pull_policy, NULL},
        {"rack", TW_FLAG_STRING, 0, &cfg->pod.rack, NULL},
        {"out-dir", TW_FLAG_STRING, 0, &cfg->pod.out_dir, NULL},
        {"podinfo-dir", TW_FLAG_STRING, 0, &cfg->pod.podinfo_dir, NULL},
        {"volume-size-limit", TW_FLAG_STRING, 0, &cfg->pod.size_limit, NULL},
        {"init-cpu-request", TW_FLAG_STRING, 0, &cfg->pod.cpu_request, NULL},
        {"init-cpu-limit", TW_FLAG_STRING, 0, &cfg->pod.cpu_limit, NULL},
        {"init-memory-request", TW_FLAG_STRING, 0, &cfg->pod.memory_request, NULL},
        {"init-memory-limit", TW_FLAG_STRING, 0, &cfg->pod.memory_limit, NULL},
        {"binding", TW_FLAG_BOOL, 0, &cfg->binding, NULL},
        {"copy-labels", TW_FLAG_STRING, 0, &cfg->copy_labels, NULL},
        {"copy-as", TW_FLAG_STRING, 0, &cfg->copy_as, NULL},
        {"timeout", TW_FLAG_DURATION, 0, &cfg->timeout_ms, NULL},
        {"cache-max-age", TW_FLAG_DURATION, 0, &cfg->cache_max_age_ms, NULL},
        COMMON_FLAGS(*c),
    };
    return parse_flags(PROG " serve", flags, sizeof(flags) / sizeof(flags[0]), argc, argv, c);
}

/* Waits for SIGTERM or SIGINT (blocked in set), ticking the server each second and on SIGHUP. */
static void wait_for_stop(hook_server *srv, const sigset_t *set)
{
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &tick);
        if (sig < 0) {
            if (errno == EAGAIN)
                hook_server_tick(srv, false);
            continue;
        }
        if (sig == SIGHUP) {
            hook_server_tick(srv, true);
            continue;
        }
        tw_log_kv(TW_LOG_INFO, "signal received", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                  NULL);
        return;
    }
}

static int serve(int argc, char **argv)
{
    common_opts c = {.log_format = TW_LOG_TEXT, .log_level = TW_LOG_INFO};
    hook_config cfg;
    hook_config_defaults(&cfg);
    int status = serve_flags(argc, argv, &cfg, &c);
    if (status >= 0)
        return status;

    /* Signals are taken synchronously by the main thread; block them before any thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[TW_ERRLEN] = "";
    if (hook_config_check(&cfg, err) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "invalid configuration", "error", err, NULL);
        return EXIT_USAGE;
    }
    tw_kube_config *kcfg = NULL;
    if (cfg.binding) {
        if (load_kube(&c.kube, &kcfg, err) != TW_OK) {
            tw_log_kv(TW_LOG_ERROR,
                      "binding mode needs the Kubernetes API (or run with --binding=false)",
                      "error", err, NULL);
            return EXIT_USAGE;
        }
        cfg.kube = kcfg;
    }
    hook_server *srv = NULL;
    if (hook_server_start(&cfg, &srv, err) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot start", "error", err, NULL);
        tw_kube_config_free(kcfg);
        return 1;
    }
    wait_for_stop(srv, &set);
    long left = hook_server_shutdown(srv);
    if (left > 0) {
        char n[24];
        snprintf(n, sizeof(n), "%ld", left);
        tw_log_kv(TW_LOG_WARN, "shutdown grace ran out with requests in flight", "inflight", n,
                  NULL);
    }
    tw_kube_config_free(kcfg);
    tw_log_kv(TW_LOG_INFO, "stopped", NULL);
    return 0;
}

/* This pod's namespace from the service-account mount, when there is one. */
static const char *default_namespace(char *buf, size_t len)
{
    const char *env = getenv("POD_NAMESPACE");
    if (env && *env)
        return env;
    char *text = NULL;
    if (tw_file_read(SA_NAMESPACE_FILE, len - 1, &text, NULL, NULL) == TW_OK) {
        snprintf(buf, len, "%.*s", (int)strcspn(text, "\r\n"), text);
        free(text);
        if (tw_dns_label_valid(buf))
            return buf;
    }
    return "topowire-system";
}

/*
 * Reaches the API server (found by load_kube), stores the Secret when secret
 * is set, then sets the caBundle of the webhook configuration when webhook is set.
 */
static int kube_steps(const tw_kube_config_query *q, const char *namespace, const char *secret,
                      const char *webhook, const tw_certgen_pems *pems, char *err)
{
    tw_kube_config *kcfg = NULL;
    tw_kube_client *client = NULL;
    int rc = load_kube(q, &kcfg, err);
    if (rc != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot reach the Kubernetes API", "error", err, NULL);
        return rc;
    }
    client = tw_kube_client_new(kcfg, PROG "/" TW_VERSION);
    if (client == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    uint64_t deadline = tw_deadline_in(PATCH_TIMEOUT_MS);
    if (secret != NULL) {
        if ((rc = hook_write_tls_secret(client, namespace, secret, pems, deadline, err)) != TW_OK) {
            tw_log_kv(TW_LOG_ERROR, "cannot store the Secret", "secret", secret, "error", err,
                      NULL);
            goto out;
        }
        tw_log_kv(TW_LOG_INFO, "Secret stored", "namespace", namespace, "secret", secret, NULL);
    }
    if (webhook != NULL) {
        if ((rc = hook_patch_ca_bundle(client, webhook, pems->ca_cert, deadline, err)) != TW_OK) {
            tw_log_kv(TW_LOG_ERROR, "cannot set caBundle", "webhook", webhook, "error", err, NULL);
            goto out;
        }
        tw_log_kv(TW_LOG_INFO, "caBundle set", "webhook", webhook, NULL);
    }
out:
    tw_kube_client_free(client);
    tw_kube_config_free(kcfg);
    return rc;
}

/* certgen's settings beyond tw_certgen_config. */
typedef struct certgen_opts {
    common_opts c;
    const char *namespace, *out_dir, *ca_cert_file, *ca_key_file, *webhook, *secret;
    unsigned days, ca_days;
    const char *extra[TW_CERTGEN_MAX_EXTRA_SANS];
    size_t n_extra;
} certgen_opts;

/* --extra-san, repeatable. */
static int flag_extra_san(void *target, const char *arg, char *why, size_t why_len)
{
    certgen_opts *o = target;
    if (o->n_extra == TW_CERTGEN_MAX_EXTRA_SANS) {
        snprintf(why, why_len, "is one more than the %d allowed", TW_CERTGEN_MAX_EXTRA_SANS);
        return TW_EINVAL;
    }
    o->extra[o->n_extra++] = arg;
    return TW_OK;
}

/* certgen's flags into cfg and o; -1 to go on, else the exit status. */
static int certgen_flags(int argc, char **argv, tw_certgen_config *cfg, certgen_opts *o)
{
    const tw_flag flags[] = {
        {"service", TW_FLAG_STRING, 0, &cfg->service, NULL},
        {"namespace", TW_FLAG_STRING, 0, &o->namespace, NULL},
        {"cluster-domain", TW_FLAG_STRING, 0, &cfg->cluster_domain, NULL},
        {"out-dir", TW_FLAG_STRING, 0, &o->out_dir, NULL},
        {"days", TW_FLAG_COUNT, 36600, &o->days, NULL},
        {"ca-days", TW_FLAG_COUNT, 36600, &o->ca_days, NULL},
        {"ca-cert-file", TW_FLAG_STRING, 0, &o->ca_cert_file, NULL},
        {"ca-key-file", TW_FLAG_STRING, 0, &o->ca_key_file, NULL},
        {"extra-san", TW_FLAG_CALL, 0, o, flag_extra_san},
        {"patch-webhook", TW_FLAG_STRING, 0, &o->webhook, NULL},
        {"secret", TW_FLAG_STRING, 0, &o->secret, NULL},
        COMMON_FLAGS(o->c),
    };
    int status =
        parse_flags(PROG " certgen", flags, sizeof(flags) / sizeof(flags[0]), argc, argv, &o->c);
    if (status < 0 && (o->ca_cert_file == NULL) != (o->ca_key_file == NULL)) {
        fprintf(stderr, PROG " certgen: --ca-cert-file and --ca-key-file go together\n");
        status = EXIT_USAGE;
    }
    return status;
}

/* Makes (or signs with the given CA) and writes the certificates: 0, or the exit status. */
static int make_certificates(const certgen_opts *o, tw_certgen_config *cfg, tw_certgen_pems *pems)
{
    char err[TW_ERRLEN] = "";
    char *ca_cert = NULL, *ca_key = NULL;
    int rc, status = 1;
    if (o->ca_cert_file &&
        (tw_file_read(o->ca_cert_file, TW_FILE_PEM_MAX, &ca_cert, NULL, err) != TW_OK ||
         tw_file_read(o->ca_key_file, TW_FILE_PEM_MAX, &ca_key, NULL, err) != TW_OK)) {
        tw_log_kv(TW_LOG_ERROR, "cannot read the CA", "error", err, NULL);
        goto out;
    }
    cfg->ca_cert_pem = ca_cert;
    cfg->ca_key_pem = ca_key;
    if ((rc = tw_certgen_generate(cfg, pems, err)) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot make the certificates", "error", err, NULL);
        status = rc == TW_EINVAL ? EXIT_USAGE : 1;
        goto out;
    }
    if (ca_cert != NULL) {
        /* The CA key stays where it was. */
        free(pems->ca_key);
        pems->ca_key = NULL;
    }
    if (tw_certgen_write(o->out_dir, pems, err) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot write the certificates", "error", err, NULL);
        goto out;
    }
    char dns[300];
    snprintf(dns, sizeof(dns), "%s.%s.svc", cfg->service, cfg->namespace);
    tw_log_kv(TW_LOG_INFO, "certificates written", "dir", o->out_dir, "name", dns, NULL);
    status = 0;
out:
    cfg->ca_cert_pem = cfg->ca_key_pem = NULL;
    free(ca_cert);
    free(ca_key);
    return status;
}

static int certgen(int argc, char **argv)
{
    char nsbuf[256];
    tw_certgen_config cfg = {.service = "topowire-webhook"};
    certgen_opts o = {.c = {.log_format = TW_LOG_TEXT, .log_level = TW_LOG_INFO}, .out_dir = "."};
    int status = certgen_flags(argc, argv, &cfg, &o);
    if (status >= 0)
        return status;
    cfg.namespace = o.namespace ? o.namespace : default_namespace(nsbuf, sizeof(nsbuf));
    cfg.days = (int)o.days;
    cfg.ca_days = (int)o.ca_days;
    cfg.extra_sans = o.extra;
    cfg.n_extra_sans = o.n_extra;

    tw_certgen_pems pems = {0};
    char err[TW_ERRLEN] = "";
    status = make_certificates(&o, &cfg, &pems);
    if (status == 0 && (o.secret != NULL || o.webhook != NULL) &&
        kube_steps(&o.c.kube, cfg.namespace, o.secret, o.webhook, &pems, err) != TW_OK)
        status = 1;
    tw_certgen_free(&pems);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts(PROG " " TW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    int status;
    bool serving = strcmp(cmd, "serve") == 0;
    if (serving || strcmp(cmd, "certgen") == 0) {
        /* Before any thread starts: serve's node cache and certgen both use libcurl. */
        if (tw_http_global_init() != TW_OK) {
            fprintf(stderr, PROG ": cannot initialise the HTTP client\n");
            return 1;
        }
        status = serving ? serve(argc - 1, argv + 1) : certgen(argc - 1, argv + 1);
        tw_http_global_cleanup();
    } else {
        fprintf(stderr, PROG ": unknown command \"%s\"\n", cmd);
        usage(stderr);
        status = EXIT_USAGE;
    }
    return status;
}
