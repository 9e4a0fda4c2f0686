/* main.c - topowire-init: find the node's topology and write the rack files. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/imds.h"
#include "topowire/kube.h"
#include "topowire/kubeconfig.h"
#include "topowire/label.h"
#include "topowire/log.h"
#include "topowire/rackfile.h"
#include "topowire/topology.h"
#include "topowire/version.h"

#define PROG       "topowire-init"
#define USER_AGENT PROG "/" TW_VERSION

enum exit_code {
    EXIT_RESOLVED = 0,
    EXIT_UNRESOLVED = 1,
    EXIT_USAGE = 2,
    EXIT_WRITE = 3,
};

/* Time kept back from the resolver so the files are written before --timeout. */
#define WRITE_RESERVE_MS 300
#define MAX_KEYS         16

typedef struct options {
    tw_source sources[3];
    size_t n_sources;
    const char *podinfo_dir;
    const char *out_dir;
    tw_rack_kind rack_kind;
    const char *rack_label;
    const char *rack_arg;
    tw_cloud cloud;
    const char *imds_endpoint;
    int fail_on_missing;
    int print_only;
    long timeout_ms;
    const char *kubeconfig;
    const char *context;
    const char *token_file;
    const char *ca_file;
    const char *node;
    int node_from_flag; /* --node, checked while parsing; else $NODE_NAME */
    char *zone_keys[MAX_KEYS + 1];
    char *region_keys[MAX_KEYS + 1];
    char *zone_id_keys[MAX_KEYS + 1];
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options]\n"
            "Finds the node's zone and writes the rack files for Kafka's client.rack.\n"
            "\n"
            "  --sources LIST        sources in order (default downward,kubernetes,imds)\n"
            "  --rack KIND           zone | zone-id | region | label:KEY (default zone)\n"
            "  --out-dir DIR         where the files go (default /etc/topowire)\n"
            "  --print               write nothing; print topology.env to stdout\n"
            "  --on-missing MODE     empty (default: write an empty rack, exit 0) | fail (exit 1)\n"
            "  --timeout DURATION    bound on the whole run, e.g. 10s, 500ms (default 10s)\n"
            "  --node NAME           the node (default: $NODE_NAME)\n"
            "  --podinfo-dir DIR     Downward-API files (default /etc/podinfo)\n"
            "  --kubeconfig FILE     use a kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
            "  --context NAME        kubeconfig context (default: current-context)\n"
            "  --token-file FILE     in-cluster token (default: the service-account token)\n"
            "  --ca-file FILE        in-cluster CA (default: the service-account ca.crt)\n"
            "  --cloud CLOUD         auto | aws | gcp | azure (default auto)\n"
            "  --imds-endpoint URL   instance-metadata base URL (default: the cloud's)\n"
            "  --zone-labels LIST    label keys for the zone (default %s,%s)\n"
            "  --region-labels LIST  label keys for the region (default %s,%s)\n"
            "  --zone-id-labels LIST label keys for the zone ID (default %s)\n"
            "  --log-format FORMAT   text | json (default text)\n"
            "  --log-level LEVEL     debug | info | warn | error (default info)\n"
            "  --version, --help\n"
            "\n"
            "Exit codes: 0 written (or unresolved with --on-missing empty), 1 unresolved with\n"
            "--on-missing fail, 2 usage or configuration error, 3 cannot write the files.\n",
            tw_default_zone_keys[0], tw_default_zone_keys[1], tw_default_region_keys[0],
            tw_default_region_keys[1], tw_default_zone_id_keys[0]);
}

/* How much of a rejected node name a message shows. */
#define NODE_SHOWN 64

/* A bounded, printable prefix of s for a message: control bytes as '?', "..." when cut. */
static const char *printable(const char *s, char out[NODE_SHOWN + 4])
{
    size_t i = 0;
    for (; i < NODE_SHOWN && s[i] != '\0'; i++)
        out[i] = (char)(((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i]);
    if (s[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

/* Splits a comma list of label keys into keys[] (strings owned by keys). */
static int parse_keys(const char *arg, char **keys, const char *flag)
{
    for (size_t i = 0; keys[i]; i++) {
        free(keys[i]);
        keys[i] = NULL;
    }
    size_t n = 0;
    const char *p = arg;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == MAX_KEYS) {
            fprintf(stderr, PROG ": %s: at most %d keys\n", flag, MAX_KEYS);
            return TW_EINVAL;
        }
        keys[n] = strndup(p, len);
        if (keys[n] == NULL)
            return TW_ENOMEM;
        if (!tw_label_key_valid(keys[n])) {
            fprintf(stderr, PROG ": %s: \"%s\" is not a valid label key\n", flag, keys[n]);
            return TW_EINVAL;
        }
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (n == 0) {
        fprintf(stderr, PROG ": %s needs at least one key\n", flag);
        return TW_EINVAL;
    }
    return TW_OK;
}

static int parse_sources(const char *arg, options *o)
{
    o->n_sources = 0;
    const char *p = arg;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        tw_source s;
        if (len >= sizeof(name) || o->n_sources == 3)
            goto bad;
        memcpy(name, p, len);
        name[len] = '\0';
        if (tw_source_parse(name, &s) != TW_OK)
            goto bad;
        for (size_t i = 0; i < o->n_sources; i++)
            if (o->sources[i] == s)
                goto bad;
        o->sources[o->n_sources++] = s;
        p += len;
        if (*p == ',')
            p++;
    }
    if (o->n_sources > 0)
        return TW_OK;
bad:
    fprintf(stderr, PROG ": --sources: \"%s\" is not a list of downward, kubernetes, imds\n", arg);
    return TW_EINVAL;
}

static void free_keys(char **keys)
{
    for (size_t i = 0; keys[i]; i++)
        free(keys[i]);
}

enum {
    OPT_SOURCES = 256,
    OPT_RACK,
    OPT_OUT_DIR,
    OPT_PRINT,
    OPT_ON_MISSING,
    OPT_TIMEOUT,
    OPT_NODE,
    OPT_PODINFO,
    OPT_KUBECONFIG,
    OPT_CONTEXT,
    OPT_TOKEN_FILE,
    OPT_CA_FILE,
    OPT_CLOUD,
    OPT_IMDS_ENDPOINT,
    OPT_ZONE_LABELS,
    OPT_REGION_LABELS,
    OPT_ZONE_ID_LABELS,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"rack", required_argument, NULL, OPT_RACK},
    {"out-dir", required_argument, NULL, OPT_OUT_DIR},
    {"print", no_argument, NULL, OPT_PRINT},
    {"on-missing", required_argument, NULL, OPT_ON_MISSING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"node", required_argument, NULL, OPT_NODE},
    {"podinfo-dir", required_argument, NULL, OPT_PODINFO},
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"cloud", required_argument, NULL, OPT_CLOUD},
    {"imds-endpoint", required_argument, NULL, OPT_IMDS_ENDPOINT},
    {"zone-labels", required_argument, NULL, OPT_ZONE_LABELS},
    {"region-labels", required_argument, NULL, OPT_REGION_LABELS},
    {"zone-id-labels", required_argument, NULL, OPT_ZONE_ID_LABELS},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    tw_log_format log_format = TW_LOG_TEXT;
    tw_log_level log_level = TW_LOG_INFO;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case OPT_SOURCES:
            if (parse_sources(a, o) != TW_OK)
                return EXIT_USAGE;
            break;
        case OPT_RACK:
            if (tw_rack_parse(a, &o->rack_kind, &o->rack_label) != TW_OK) {
                fprintf(stderr, PROG ": --rack: \"%s\" is not zone, zone-id, region or label:KEY\n",
                        a);
                return EXIT_USAGE;
            }
            o->rack_arg = a;
            break;
        case OPT_OUT_DIR:
            o->out_dir = a;
            break;
        case OPT_PRINT:
            o->print_only = 1;
            break;
        case OPT_ON_MISSING:
            if (strcmp(a, "empty") == 0) {
                o->fail_on_missing = 0;
            } else if (strcmp(a, "fail") == 0) {
                o->fail_on_missing = 1;
            } else {
                fprintf(stderr, PROG ": --on-missing: \"%s\" is not empty or fail\n", a);
                return EXIT_USAGE;
            }
            break;
        case OPT_TIMEOUT:
            if (tw_duration_parse(a, &o->timeout_ms) != TW_OK || o->timeout_ms == 0) {
                fprintf(stderr, PROG ": --timeout: \"%s\" is not a duration such as 10s or 500ms\n",
                        a);
                return EXIT_USAGE;
            }
            break;
        case OPT_NODE:
            if (!tw_label_subdomain_valid(a)) {
                char shown[NODE_SHOWN + 4];
                fprintf(stderr,
                        PROG ": --node: \"%s\" (%zu bytes) is not a node name (a DNS subdomain of "
                             "at most 253 characters)\n",
                        printable(a, shown), strlen(a));
                return EXIT_USAGE;
            }
            o->node = a;
            o->node_from_flag = 1;
            break;
        case OPT_PODINFO:
            o->podinfo_dir = a;
            break;
        case OPT_KUBECONFIG:
            o->kubeconfig = a;
            break;
        case OPT_CONTEXT:
            o->context = a;
            break;
        case OPT_TOKEN_FILE:
            o->token_file = a;
            break;
        case OPT_CA_FILE:
            o->ca_file = a;
            break;
        case OPT_CLOUD:
            if (tw_cloud_parse(a, &o->cloud) != TW_OK) {
                fprintf(stderr, PROG ": --cloud: \"%s\" is not auto, aws, gcp or azure\n", a);
                return EXIT_USAGE;
            }
            break;
        case OPT_IMDS_ENDPOINT:
            o->imds_endpoint = a;
            break;
        case OPT_ZONE_LABELS:
            if (parse_keys(a, o->zone_keys, "--zone-labels") != TW_OK)
                return EXIT_USAGE;
            break;
        case OPT_REGION_LABELS:
            if (parse_keys(a, o->region_keys, "--region-labels") != TW_OK)
                return EXIT_USAGE;
            break;
        case OPT_ZONE_ID_LABELS:
            if (parse_keys(a, o->zone_id_keys, "--zone-id-labels") != TW_OK)
                return EXIT_USAGE;
            break;
        case OPT_LOG_FORMAT:
            if (tw_log_parse_format(a, &log_format) != TW_OK) {
                fprintf(stderr, PROG ": --log-format: \"%s\" is not text or json\n", a);
                return EXIT_USAGE;
            }
            break;
        case OPT_LOG_LEVEL:
            if (tw_log_parse_level(a, &log_level) != TW_OK) {
                fprintf(stderr, PROG ": --log-level: \"%s\" is not debug, info, warn or error\n",
                        a);
                return EXIT_USAGE;
            }
            break;
        case OPT_VERSION:
            printf(PROG " %s\n", TW_VERSION);
            return EXIT_RESOLVED;
        case OPT_HELP:
            usage(stdout);
            return EXIT_RESOLVED;
        default:
            if (optopt >= OPT_SOURCES)
                fprintf(stderr, PROG ": %s needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, PROG ": unknown option %s\n", argv[optind - 1]);
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument \"%s\"\nTry '" PROG " --help'.\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    tw_log_setup(PROG, log_format, log_level);
    return -1;
}

/*
 * The resolver runs on its own thread so that the main thread can keep the
 * promise of --timeout even if a library call were to overstay its deadline:
 * at the hard deadline the main thread writes what is known and exits.
 */
typedef struct run_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
    tw_topology partial; /* the best topology known so far */
    tw_resolve_options ro;
} run_state;

static void on_step(void *ud, tw_source src, int rc, const char *detail, const tw_topology *t)
{
    run_state *st = ud;
    pthread_mutex_lock(&st->mu);
    st->partial = *t;
    pthread_mutex_unlock(&st->mu);
    const char *name = tw_source_name(src);
    if (rc == TW_OK)
        tw_log_kv(TW_LOG_INFO, "source answered", "source", name, "detail", detail, NULL);
    else if (rc == TW_EBADVALUE)
        tw_log_kv(TW_LOG_WARN, "value rejected", "source", name, "detail", detail, NULL);
    else
        tw_log_kv(TW_LOG_INFO, "source gave no rack", "source", name, "reason", tw_strerror(rc),
                  "detail", detail, NULL);
}

static void *resolve_thread(void *arg)
{
    run_state *st = arg;
    tw_topology t;
    int rc = tw_resolve(&st->ro, &t);
    pthread_mutex_lock(&st->mu);
    st->partial = t;
    st->rc = rc;
    st->done = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/*
 * Finds the Kubernetes configuration (tw_kube_config_find's order). None at
 * all is not an error: the kubernetes source then reports why it is missing.
 */
static int load_kube(const options *o, tw_kube_config **cfg, char *why, size_t why_len)
{
    char err[TW_ERRLEN] = "", origin[TW_ERRLEN] = "";
    tw_kube_config_query q = {.kubeconfig = o->kubeconfig,
                              .context = o->context,
                              .token_file = o->token_file,
                              .ca_file = o->ca_file};
    int rc = tw_kube_config_find(&q, cfg, origin, sizeof(origin), err);
    if (rc == TW_ENOCONFIG) {
        snprintf(why, why_len, "%s", err);
        return TW_OK;
    }
    if (rc != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot load the Kubernetes configuration", "error", err, NULL);
        return rc;
    }
    tw_log_kv(TW_LOG_DEBUG, "using the Kubernetes configuration", "from", origin, "server",
              (*cfg)->server, NULL);
    return TW_OK;
}

static int uses(const options *o, tw_source s)
{
    for (size_t i = 0; i < o->n_sources; i++)
        if (o->sources[i] == s)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof(o));
    o.sources[0] = TW_SOURCE_DOWNWARD;
    o.sources[1] = TW_SOURCE_KUBERNETES;
    o.sources[2] = TW_SOURCE_IMDS;
    o.n_sources = 3;
    o.podinfo_dir = "/etc/podinfo";
    o.out_dir = "/etc/topowire";
    o.rack_arg = "zone";
    o.timeout_ms = 10000;
    o.node = getenv("NODE_NAME");
    tw_log_setup(PROG, TW_LOG_TEXT, TW_LOG_INFO);

    int code = parse_args(argc, argv, &o);
    tw_kube_config *kube = NULL;
    int http_ready = 0;
    run_state st;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (code >= 0)
        goto out;

    uint64_t hard_deadline = tw_deadline_in(o.timeout_ms);
    long soft =
        o.timeout_ms > 2 * WRITE_RESERVE_MS ? o.timeout_ms - WRITE_RESERVE_MS : o.timeout_ms / 2;
    if (o.node && o.node[0] == '\0')
        o.node = NULL;
    /*
     * $NODE_NAME comes from the pod's spec.nodeName. A value that is not a
     * node name (a newline would forge lines of topology.env, 131 KB would be
     * cut) is rejected like any bad value from a source: logged and treated
     * as missing, so the pod still starts (--on-missing decides the exit).
     */
    if (o.node && !o.node_from_flag && !tw_label_subdomain_valid(o.node)) {
        char shown[NODE_SHOWN + 4], detail[TW_ERRLEN];
        snprintf(detail, sizeof(detail),
                 "rejected NODE_NAME=\"%s\" (%zu bytes): not a node name (a DNS subdomain of at "
                 "most 253 characters); the kubernetes source is skipped",
                 printable(o.node, shown), strlen(o.node));
        tw_log_kv(TW_LOG_WARN, "value rejected", "source", "env", "detail", detail, NULL);
        o.node = NULL;
    }

    if (tw_http_global_init() != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot initialise the HTTP client", NULL);
        code = EXIT_USAGE;
        goto out;
    }
    http_ready = 1;

    char kube_why[TW_ERRLEN] = "";
    if (uses(&o, TW_SOURCE_KUBERNETES) &&
        load_kube(&o, &kube, kube_why, sizeof(kube_why)) != TW_OK) {
        code = EXIT_USAGE;
        goto out;
    }

    tw_imds_options imds;
    memset(&imds, 0, sizeof(imds));
    imds.cloud = o.cloud;
    imds.endpoint = o.imds_endpoint;
    imds.user_agent = USER_AGENT;
    tw_imds_options_from_env(&imds);

    tw_log_kv(TW_LOG_INFO, "starting", "version", TW_VERSION, "node", o.node ? o.node : "", "rack",
              o.rack_arg, NULL);

    st.ro.sources = o.sources;
    st.ro.n_sources = o.n_sources;
    st.ro.rack_kind = o.rack_kind;
    st.ro.rack_label = o.rack_label;
    st.ro.zone_keys = o.zone_keys[0] ? (const char *const *)o.zone_keys : NULL;
    st.ro.region_keys = o.region_keys[0] ? (const char *const *)o.region_keys : NULL;
    st.ro.zone_id_keys = o.zone_id_keys[0] ? (const char *const *)o.zone_id_keys : NULL;
    st.ro.node = o.node;
    st.ro.podinfo_dir = o.podinfo_dir;
    st.ro.kube = kube;
    st.ro.kube_missing_reason = kube_why;
    st.ro.imds = &imds;
    st.ro.user_agent = USER_AGENT;
    st.ro.deadline = tw_deadline_in(soft);
    st.ro.on_step = on_step;
    st.ro.ud = &st;
    if (o.node)
        snprintf(st.partial.node, sizeof(st.partial.node), "%s", o.node);

    pthread_t th;
    int detached = 0;
    if (pthread_create(&th, NULL, resolve_thread, &st) != 0) {
        tw_log_kv(TW_LOG_ERROR, "cannot start the resolver thread", NULL);
        code = EXIT_USAGE;
        goto out;
    }
    pthread_mutex_lock(&st.mu);
    while (!st.done) {
        long left = tw_remaining_ms(hard_deadline) - WRITE_RESERVE_MS / 2;
        if (left <= 0)
            break;
        struct timespec ts = tw_monotonic_in(left);
        pthread_cond_timedwait(&st.cv, &st.mu, &ts);
    }
    tw_topology t = st.partial;
    int rc = st.done ? st.rc : TW_ETIMEDOUT;
    if (!st.done)
        detached = 1;
    pthread_mutex_unlock(&st.mu);
    if (detached) {
        pthread_detach(th);
        tw_log_kv(TW_LOG_WARN, "the sources overran --timeout; giving up on them", NULL);
    } else {
        pthread_join(th, NULL);
    }

    if (rc != TW_OK) {
        t.rack[0] = '\0';
        t.source = TW_SOURCE_NONE;
    }

    if (o.print_only) {
        tw_buf b;
        tw_buf_init(&b, 64 * 1024);
        if (tw_rackfile_render_env(&t, &b) == TW_OK)
            fwrite(b.data, 1, b.len, stdout);
        tw_buf_free(&b);
        fflush(stdout);
    } else {
        char err[TW_ERRLEN] = "";
        if (mkdir(o.out_dir, 0755) != 0 && errno != EEXIST) {
            tw_log_kv(TW_LOG_ERROR, "cannot create the output directory", "dir", o.out_dir, "error",
                      strerror(errno), NULL);
            code = EXIT_WRITE;
            goto out;
        }
        if (tw_rackfile_write_all(o.out_dir, &t, err) != TW_OK) {
            tw_log_kv(TW_LOG_ERROR, "cannot write the rack files", "dir", o.out_dir, "error", err,
                      NULL);
            code = EXIT_WRITE;
            goto out;
        }
    }

    if (rc == TW_OK) {
        tw_log_kv(TW_LOG_INFO, o.print_only ? "resolved" : "wrote rack files", "rack", t.rack,
                  "source", tw_source_name(t.source), "dir", o.print_only ? "-" : o.out_dir, NULL);
        code = EXIT_RESOLVED;
    } else if (o.fail_on_missing) {
        tw_log_kv(TW_LOG_ERROR, "no source yielded the rack", "rack", o.rack_arg, "reason",
                  tw_strerror(rc), NULL);
        code = EXIT_UNRESOLVED;
    } else {
        tw_log_kv(TW_LOG_WARN,
                  o.print_only ? "no source yielded the rack; the rack is empty"
                               : "no source yielded the rack; wrote an empty rack (clients fetch "
                                 "from leaders)",
                  "rack", o.rack_arg, "reason", tw_strerror(rc), NULL);
        code = EXIT_RESOLVED;
    }
    if (detached) {
        /* The resolver thread still holds the config and libcurl; leave without tearing down. */
        fflush(NULL);
        _exit(code);
    }

out:
    tw_kube_config_free(kube);
    if (http_ready)
        tw_http_global_cleanup();
    free_keys(o.zone_keys);
    free_keys(o.region_keys);
    free_keys(o.zone_id_keys);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    return code;
}
