/* main.c - topowire-webhook: serve the admission webhook, make its certificates, version. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topowire/certgen.h"
#include "topowire/clock.h"
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

static int parse_uint(const char *flag, const char *v, unsigned max, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (end != NULL && end != v && strcmp(end, "s") == 0)
        end++;
    if (errno != 0 || end == NULL || end == v || *end != '\0' || v[0] == '-' || n > max) {
        fprintf(stderr, PROG ": %s: \"%s\" is not a number from 0 to %u\n", flag, v, max);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static int setup_logging(const char *format, const char *level)
{
    tw_log_format f;
    tw_log_level l;
    if (tw_log_parse_format(format, &f) != TW_OK) {
        fprintf(stderr, PROG ": --log-format must be text or json\n");
        return -1;
    }
    if (tw_log_parse_level(level, &l) != TW_OK) {
        fprintf(stderr, PROG ": --log-level must be debug, info, warn or error\n");
        return -1;
    }
    tw_log_setup(PROG, f, l);
    return 0;
}

enum {
    OPT_LISTEN = 256,
    OPT_METRICS_LISTEN,
    OPT_CERT,
    OPT_KEY,
    OPT_TLS_MIN,
    OPT_THREADS,
    OPT_MAX_CONN,
    OPT_MAX_CONN_ADDR,
    OPT_HEADER_TIMEOUT,
    OPT_BODY_MEMORY,
    OPT_CONN_TIMEOUT,
    OPT_REQ_TIMEOUT,
    OPT_GRACE,
    OPT_IMAGE,
    OPT_PULL,
    OPT_RACK,
    OPT_OUT_DIR,
    OPT_PODINFO_DIR,
    OPT_SIZE,
    OPT_CPU_REQ,
    OPT_CPU_LIM,
    OPT_MEM_REQ,
    OPT_MEM_LIM,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_SERVICE,
    OPT_NAMESPACE,
    OPT_DOMAIN,
    OPT_DAYS,
    OPT_CA_DAYS,
    OPT_CA_CERT,
    OPT_CA_KEY,
    OPT_EXTRA_SAN,
    OPT_PATCH_WEBHOOK,
    OPT_SECRET,
    OPT_KUBECONFIG,
    OPT_CONTEXT,
    OPT_TOKEN_FILE,
    OPT_KUBE_CA,
    OPT_BINDING,
    OPT_COPY_LABELS,
    OPT_COPY_AS,
    OPT_TIMEOUT,
    OPT_CACHE_MAX_AGE,
    OPT_HELP,
};

typedef struct kube_opts {
    const char *kubeconfig, *context, *token_file, *ca_file;
} kube_opts;

/* The API server, found in tw_kube_config_find's order. */
static int load_kube(const kube_opts *o, tw_kube_config **out, char *err)
{
    char origin[TW_ERRLEN];
    tw_kube_config_query q = {.kubeconfig = o->kubeconfig,
                              .context = o->context,
                              .token_file = o->token_file,
                              .ca_file = o->ca_file};
    int rc = tw_kube_config_find(&q, out, origin, sizeof(origin), err);
    if (rc == TW_OK)
        tw_log_kv(TW_LOG_INFO, "using the Kubernetes configuration", "from", origin, "server",
                  (*out)->server, NULL);
    return rc;
}

static int serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
        {"tls-cert-file", required_argument, NULL, OPT_CERT},
        {"tls-key-file", required_argument, NULL, OPT_KEY},
        {"tls-min-version", required_argument, NULL, OPT_TLS_MIN},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"max-connections-per-address", required_argument, NULL, OPT_MAX_CONN_ADDR},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"max-body-memory", required_argument, NULL, OPT_BODY_MEMORY},
        {"connection-timeout", required_argument, NULL, OPT_CONN_TIMEOUT},
        {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
        {"shutdown-grace", required_argument, NULL, OPT_GRACE},
        {"init-image", required_argument, NULL, OPT_IMAGE},
        {"init-image-pull-policy", required_argument, NULL, OPT_PULL},
        {"rack", required_argument, NULL, OPT_RACK},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"podinfo-dir", required_argument, NULL, OPT_PODINFO_DIR},
        {"volume-size-limit", required_argument, NULL, OPT_SIZE},
        {"init-cpu-request", required_argument, NULL, OPT_CPU_REQ},
        {"init-cpu-limit", required_argument, NULL, OPT_CPU_LIM},
        {"init-memory-request", required_argument, NULL, OPT_MEM_REQ},
        {"init-memory-limit", required_argument, NULL, OPT_MEM_LIM},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"binding", required_argument, NULL, OPT_BINDING},
        {"copy-labels", required_argument, NULL, OPT_COPY_LABELS},
        {"copy-as", required_argument, NULL, OPT_COPY_AS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"cache-max-age", required_argument, NULL, OPT_CACHE_MAX_AGE},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"ca-file", required_argument, NULL, OPT_KUBE_CA},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    kube_opts kube = {0};
    hook_config cfg;
    hook_config_defaults(&cfg);
    const char *log_format = "text", *log_level = "info";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_LISTEN:
            cfg.listen = optarg;
            break;
        case OPT_METRICS_LISTEN:
            cfg.metrics_listen = optarg;
            break;
        case OPT_CERT:
            cfg.cert_file = optarg;
            break;
        case OPT_KEY:
            cfg.key_file = optarg;
            break;
        case OPT_TLS_MIN:
            cfg.tls_min_version = optarg;
            break;
        case OPT_THREADS:
            bad = parse_uint("--threads", optarg, 256, &cfg.threads);
            break;
        case OPT_MAX_CONN:
            bad = parse_uint("--max-connections", optarg, 1000000, &cfg.max_connections);
            break;
        case OPT_MAX_CONN_ADDR:
            bad = parse_uint("--max-connections-per-address", optarg, 1000000,
                             &cfg.max_connections_per_address);
            break;
        case OPT_HEADER_TIMEOUT:
            bad = parse_uint("--header-timeout", optarg, 3600, &cfg.header_timeout_s);
            break;
        case OPT_BODY_MEMORY: {
            unsigned mib = 0;
            bad = parse_uint("--max-body-memory", optarg, 65536, &mib);
            cfg.max_body_memory = (size_t)mib * 1024 * 1024;
            break;
        }
        case OPT_CONN_TIMEOUT:
            bad = parse_uint("--connection-timeout", optarg, 3600, &cfg.connection_timeout_s);
            break;
        case OPT_REQ_TIMEOUT:
            bad = parse_uint("--request-timeout", optarg, 3600, &cfg.request_timeout_s);
            break;
        case OPT_GRACE:
            bad = parse_uint("--shutdown-grace", optarg, 3600, &cfg.shutdown_grace_s);
            break;
        case OPT_IMAGE:
            cfg.pod.init_image = optarg;
            break;
        case OPT_PULL:
            cfg.pod.image_pull_policy = optarg;
            break;
        case OPT_RACK:
            cfg.pod.rack = optarg;
            break;
        case OPT_OUT_DIR:
            cfg.pod.out_dir = optarg;
            break;
        case OPT_PODINFO_DIR:
            cfg.pod.podinfo_dir = optarg;
            break;
        case OPT_SIZE:
            cfg.pod.size_limit = optarg;
            break;
        case OPT_CPU_REQ:
            cfg.pod.cpu_request = optarg;
            break;
        case OPT_CPU_LIM:
            cfg.pod.cpu_limit = optarg;
            break;
        case OPT_MEM_REQ:
            cfg.pod.memory_request = optarg;
            break;
        case OPT_MEM_LIM:
            cfg.pod.memory_limit = optarg;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_LOG_LEVEL:
            log_level = optarg;
            break;
        case OPT_BINDING:
            if (strcmp(optarg, "true") == 0) {
                cfg.binding = 1;
            } else if (strcmp(optarg, "false") == 0) {
                cfg.binding = 0;
            } else {
                fprintf(stderr, PROG " serve: --binding takes true or false\n");
                bad = 1;
            }
            break;
        case OPT_COPY_LABELS:
            cfg.copy_labels = optarg;
            break;
        case OPT_COPY_AS:
            cfg.copy_as = optarg;
            break;
        case OPT_TIMEOUT:
            if (tw_duration_parse(optarg, &cfg.timeout_ms) != TW_OK || cfg.timeout_ms == 0) {
                fprintf(stderr, PROG " serve: --timeout: \"%s\" is not a duration such as 2s\n",
                        optarg);
                bad = 1;
            }
            break;
        case OPT_CACHE_MAX_AGE:
            if (tw_duration_parse(optarg, &cfg.cache_max_age_ms) != TW_OK ||
                cfg.cache_max_age_ms == 0) {
                fprintf(stderr, PROG " serve: --cache-max-age: \"%s\" is not a duration\n", optarg);
                bad = 1;
            }
            break;
        case OPT_KUBECONFIG:
            kube.kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            kube.context = optarg;
            break;
        case OPT_TOKEN_FILE:
            kube.token_file = optarg;
            break;
        case OPT_KUBE_CA:
            kube.ca_file = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, PROG " serve: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (setup_logging(log_format, log_level) != 0)
        return EXIT_USAGE;

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
        if (load_kube(&kube, &kcfg, err) != TW_OK) {
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
    for (;;) {
        struct timespec tick = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &tick);
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
        break;
    }
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
    FILE *f = fopen(SA_NAMESPACE_FILE, "r");
    if (f) {
        if (fgets(buf, (int)len, f)) {
            buf[strcspn(buf, "\r\n")] = '\0';
            fclose(f);
            if (buf[0])
                return buf;
        } else {
            fclose(f);
        }
    }
    return "topowire-system";
}

/*
 * Reaches the API server (found by load_kube), stores the Secret when secret
 * is set, then sets the caBundle of the webhook configuration when webhook is set.
 */
static int kube_steps(const kube_opts *o, const char *namespace, const char *secret,
                      const char *webhook, const tw_certgen_pems *pems, char *err)
{
    tw_kube_config *kcfg = NULL;
    tw_kube_client *client = NULL;
    int rc = load_kube(o, &kcfg, err);
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

static int certgen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"service", required_argument, NULL, OPT_SERVICE},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"cluster-domain", required_argument, NULL, OPT_DOMAIN},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"days", required_argument, NULL, OPT_DAYS},
        {"ca-days", required_argument, NULL, OPT_CA_DAYS},
        {"ca-cert-file", required_argument, NULL, OPT_CA_CERT},
        {"ca-key-file", required_argument, NULL, OPT_CA_KEY},
        {"extra-san", required_argument, NULL, OPT_EXTRA_SAN},
        {"patch-webhook", required_argument, NULL, OPT_PATCH_WEBHOOK},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"ca-file", required_argument, NULL, OPT_KUBE_CA},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    char nsbuf[256];
    tw_certgen_config cfg = {.service = "topowire-webhook"};
    const char *ns = NULL, *out_dir = ".", *ca_cert_file = NULL, *ca_key_file = NULL;
    const char *webhook = NULL, *secret = NULL;
    kube_opts kube = {0};
    const char *log_format = "text", *log_level = "info";
    const char *extra[TW_CERTGEN_MAX_EXTRA_SANS];
    size_t n_extra = 0;
    unsigned days = 0, ca_days = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case OPT_SERVICE:
            cfg.service = optarg;
            break;
        case OPT_NAMESPACE:
            ns = optarg;
            break;
        case OPT_DOMAIN:
            cfg.cluster_domain = optarg;
            break;
        case OPT_OUT_DIR:
            out_dir = optarg;
            break;
        case OPT_DAYS:
            bad = parse_uint("--days", optarg, 36600, &days);
            break;
        case OPT_CA_DAYS:
            bad = parse_uint("--ca-days", optarg, 36600, &ca_days);
            break;
        case OPT_CA_CERT:
            ca_cert_file = optarg;
            break;
        case OPT_CA_KEY:
            ca_key_file = optarg;
            break;
        case OPT_EXTRA_SAN:
            if (n_extra == TW_CERTGEN_MAX_EXTRA_SANS) {
                fprintf(stderr, PROG ": at most %d --extra-san\n", TW_CERTGEN_MAX_EXTRA_SANS);
                return EXIT_USAGE;
            }
            extra[n_extra++] = optarg;
            break;
        case OPT_PATCH_WEBHOOK:
            webhook = optarg;
            break;
        case OPT_KUBECONFIG:
            kube.kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            kube.context = optarg;
            break;
        case OPT_TOKEN_FILE:
            kube.token_file = optarg;
            break;
        case OPT_KUBE_CA:
            kube.ca_file = optarg;
            break;
        case OPT_SECRET:
            secret = optarg;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_LOG_LEVEL:
            log_level = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, PROG " certgen: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (setup_logging(log_format, log_level) != 0)
        return EXIT_USAGE;
    if ((ca_cert_file == NULL) != (ca_key_file == NULL)) {
        fprintf(stderr, PROG " certgen: --ca-cert-file and --ca-key-file go together\n");
        return EXIT_USAGE;
    }
    cfg.namespace = ns ? ns : default_namespace(nsbuf, sizeof(nsbuf));
    cfg.days = (int)days;
    cfg.ca_days = (int)ca_days;
    cfg.extra_sans = extra;
    cfg.n_extra_sans = n_extra;

    char err[TW_ERRLEN] = "";
    char *ca_cert = NULL, *ca_key = NULL;
    tw_certgen_pems pems = {0};
    int rc, status = 1;
    if (ca_cert_file && (tw_certgen_read_file(ca_cert_file, 0, &ca_cert, err) != TW_OK ||
                         tw_certgen_read_file(ca_key_file, 0, &ca_key, err) != TW_OK)) {
        tw_log_kv(TW_LOG_ERROR, "cannot read the CA", "error", err, NULL);
        goto out;
    }
    cfg.ca_cert_pem = ca_cert;
    cfg.ca_key_pem = ca_key;
    if ((rc = tw_certgen_generate(&cfg, &pems, err)) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot make the certificates", "error", err, NULL);
        status = rc == TW_EINVAL ? EXIT_USAGE : 1;
        goto out;
    }
    if (ca_cert != NULL) {
        /* The CA key stays where it was. */
        free(pems.ca_key);
        pems.ca_key = NULL;
    }
    if (tw_certgen_write(out_dir, &pems, err) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot write the certificates", "error", err, NULL);
        goto out;
    }
    char dns[300];
    snprintf(dns, sizeof(dns), "%s.%s.svc", cfg.service, cfg.namespace);
    tw_log_kv(TW_LOG_INFO, "certificates written", "dir", out_dir, "name", dns, NULL);
    if ((secret != NULL || webhook != NULL) &&
        kube_steps(&kube, cfg.namespace, secret, webhook, &pems, err) != TW_OK)
        goto out;
    status = 0;
out:
    tw_certgen_free(&pems);
    free(ca_cert);
    free(ca_key);
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
