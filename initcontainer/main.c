/* main.c - topowire-init: find the node's topology and write the rack files. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "topowire/buf.h"
#include "topowire/cli.h"
#include "topowire/clock.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/imds.h"
#include "topowire/kube.h"
#include "topowire/kubeconfig.h"
#include "topowire/label.h"
#include "topowire/list.h"
#include "topowire/log.h"
#include "topowire/rackfile.h"
#include "topowire/text.h"
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
    tw_kube_config_query kube;
    const char *node;
    tw_label_keys zone_keys, region_keys, zone_id_keys;
    tw_log_format log_format;
    tw_log_level log_level;
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
            "  --kubeconfig FILE     use a kubeconfig (default: $KUBECONFIG, in-cluster, "
            "~/.kube/config)\n"
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

/* --sources: a comma list of distinct source names. */
static int flag_sources(void *target, const char *arg, char *why, size_t why_len)
{
    options *o = target;
    tw_list_item items[3];
    tw_source got[3];
    size_t n = 0;
    if (tw_list_split(arg, items, 3, &n, NULL) != TW_OK)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        if (items[i].len >= sizeof(name))
            goto bad;
        memcpy(name, items[i].p, items[i].len);
        name[items[i].len] = '\0';
        if (tw_source_parse(name, &got[i]) != TW_OK)
            goto bad;
        for (size_t j = 0; j < i; j++)
            if (got[j] == got[i])
                goto bad;
    }
    memcpy(o->sources, got, n * sizeof(got[0]));
    o->n_sources = n;
    return TW_OK;
bad:
    snprintf(why, why_len, "is not a list of downward, kubernetes, imds");
    return TW_EINVAL;
}

static int flag_rack(void *target, const char *arg, char *why, size_t why_len)
{
    options *o = target;
    if (tw_rack_parse(arg, &o->rack_kind, &o->rack_label) != TW_OK) {
        snprintf(why, why_len, "is not zone, zone-id, region or label:KEY");
        return TW_EINVAL;
    }
    o->rack_arg = arg;
    return TW_OK;
}

static int flag_on_missing(void *target, const char *arg, char *why, size_t why_len)
{
    if (strcmp(arg, "empty") != 0 && strcmp(arg, "fail") != 0) {
        snprintf(why, why_len, "is not empty or fail");
        return TW_EINVAL;
    }
    *(int *)target = arg[0] == 'f';
    return TW_OK;
}

static int flag_node(void *target, const char *arg, char *why, size_t why_len)
{
    options *o = target;
    if (!tw_dns_subdomain_valid(arg)) {
        snprintf(why, why_len,
                 "(%zu bytes) is not a node name (a DNS subdomain of at most 253 characters)",
                 strlen(arg));
        return TW_EINVAL;
    }
    o->node = arg;
    return TW_OK;
}

static int flag_cloud(void *target, const char *arg, char *why, size_t why_len)
{
    if (tw_cloud_parse(arg, target) != TW_OK) {
        snprintf(why, why_len, "is not auto, aws, gcp or azure");
        return TW_EINVAL;
    }
    return TW_OK;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    const tw_flag flags[] = {
        {"sources", TW_FLAG_CALL, 0, o, flag_sources},
        {"rack", TW_FLAG_CALL, 0, o, flag_rack},
        {"out-dir", TW_FLAG_STRING, 0, &o->out_dir, NULL},
        {"print", TW_FLAG_SET, 0, &o->print_only, NULL},
        {"on-missing", TW_FLAG_CALL, 0, &o->fail_on_missing, flag_on_missing},
        {"timeout", TW_FLAG_DURATION, 0, &o->timeout_ms, NULL},
        {"node", TW_FLAG_CALL, 0, o, flag_node},
        {"podinfo-dir", TW_FLAG_STRING, 0, &o->podinfo_dir, NULL},
        {"kubeconfig", TW_FLAG_STRING, 0, &o->kube.kubeconfig, NULL},
        {"context", TW_FLAG_STRING, 0, &o->kube.context, NULL},
        {"token-file", TW_FLAG_STRING, 0, &o->kube.token_file, NULL},
        {"ca-file", TW_FLAG_STRING, 0, &o->kube.ca_file, NULL},
        {"cloud", TW_FLAG_CALL, 0, &o->cloud, flag_cloud},
        {"imds-endpoint", TW_FLAG_STRING, 0, &o->imds_endpoint, NULL},
        {"zone-labels", TW_FLAG_CALL, 0, &o->zone_keys, tw_flag_label_keys},
        {"region-labels", TW_FLAG_CALL, 0, &o->region_keys, tw_flag_label_keys},
        {"zone-id-labels", TW_FLAG_CALL, 0, &o->zone_id_keys, tw_flag_label_keys},
        {"log-format", TW_FLAG_CALL, 0, &o->log_format, tw_flag_log_format},
        {"log-level", TW_FLAG_CALL, 0, &o->log_level, tw_flag_log_level},
        {"version", TW_FLAG_VERSION, 0, NULL, NULL},
        {"help", TW_FLAG_HELP, 0, NULL, NULL},
    };
    switch (tw_flags_parse(PROG, flags, sizeof(flags) / sizeof(flags[0]), argc, argv)) {
    case TW_FLAGS_GO:
        tw_log_setup(PROG, o->log_format, o->log_level);
        return -1;
    case TW_FLAGS_HELP:
        usage(stdout);
        return EXIT_RESOLVED;
    case TW_FLAGS_VERSION:
        printf(PROG " %s\n", TW_VERSION);
        return EXIT_RESOLVED;
    default:
        return EXIT_USAGE;
    }
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
    int rc = tw_kube_config_find(&o->kube, cfg, origin, sizeof(origin), err);
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

/*
 * $NODE_NAME comes from the pod's spec.nodeName. A value that is not a node
 * name (a newline would forge lines of topology.env, 131 KB would be cut) is
 * rejected like any bad value from a source: logged and treated as missing,
 * so the pod still starts (--on-missing decides the exit).
 */
static void check_node_env(options *o)
{
    if (o->node && o->node[0] == '\0')
        o->node = NULL;
    if (o->node == NULL || tw_dns_subdomain_valid(o->node)) /* --node was checked as parsed */
        return;
    char shown[TW_TEXT_SHOWN_SIZE], detail[TW_ERRLEN];
    snprintf(detail, sizeof(detail),
             "rejected NODE_NAME=\"%s\" (%zu bytes): not a node name (a DNS subdomain of at "
             "most 253 characters); the kubernetes source is skipped",
             tw_text_show(shown, sizeof(shown), o->node, strlen(o->node)), strlen(o->node));
    tw_log_kv(TW_LOG_WARN, "value rejected", "source", "env", "detail", detail, NULL);
    o->node = NULL;
}

/* The resolver's options: o's choices, the Kubernetes config and the instance metadata. */
static void resolve_options(const options *o, tw_kube_config *kube, const char *kube_why,
                            const tw_imds_options *imds, long soft_ms, run_state *st)
{
    tw_resolve_options *ro = &st->ro;
    ro->sources = o->sources;
    ro->n_sources = o->n_sources;
    ro->rack_kind = o->rack_kind;
    ro->rack_label = o->rack_label;
    ro->zone_keys = o->zone_keys.keys[0] ? (const char *const *)o->zone_keys.keys : NULL;
    ro->region_keys = o->region_keys.keys[0] ? (const char *const *)o->region_keys.keys : NULL;
    ro->zone_id_keys = o->zone_id_keys.keys[0] ? (const char *const *)o->zone_id_keys.keys : NULL;
    ro->node = o->node;
    ro->podinfo_dir = o->podinfo_dir;
    ro->kube = kube;
    ro->kube_missing_reason = kube_why;
    ro->imds = imds;
    ro->user_agent = USER_AGENT;
    ro->deadline = tw_deadline_in(soft_ms);
    ro->on_step = on_step;
    ro->ud = st;
    if (o->node)
        snprintf(st->partial.node, sizeof(st->partial.node), "%s", o->node);
}

/*
 * Runs the resolver on its own thread until it ends or hard_deadline (less
 * half the write reserve) passes. Returns its result in *t and its code, or
 * TW_ETIMEDOUT with what was known; *detached is set when the thread still runs.
 */
static int resolve_bounded(run_state *st, uint64_t hard_deadline, tw_topology *t, int *detached)
{
    pthread_t th;
    *detached = 0;
    if (pthread_create(&th, NULL, resolve_thread, st) != 0) {
        tw_log_kv(TW_LOG_ERROR, "cannot start the resolver thread", NULL);
        return TW_ENOMEM;
    }
    pthread_mutex_lock(&st->mu);
    while (!st->done) {
        long left = tw_remaining_ms(hard_deadline) - WRITE_RESERVE_MS / 2;
        if (left <= 0)
            break;
        struct timespec ts = tw_monotonic_in(left);
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    }
    *t = st->partial;
    int rc = st->done ? st->rc : TW_ETIMEDOUT;
    *detached = !st->done;
    pthread_mutex_unlock(&st->mu);
    if (*detached) {
        pthread_detach(th);
        tw_log_kv(TW_LOG_WARN, "the sources overran --timeout; giving up on them", NULL);
    } else {
        pthread_join(th, NULL);
    }
    return rc;
}

/* Writes the rack files (or prints topology.env): 0, or EXIT_WRITE after logging why. */
static int write_output(const options *o, const tw_topology *t)
{
    if (o->print_only) {
        tw_buf b;
        tw_buf_init(&b, 64 * 1024);
        if (tw_rackfile_render_env(t, &b) == TW_OK)
            fwrite(b.data, 1, b.len, stdout);
        tw_buf_free(&b);
        fflush(stdout);
        return 0;
    }
    char err[TW_ERRLEN] = "";
    if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST) {
        tw_log_kv(TW_LOG_ERROR, "cannot create the output directory", "dir", o->out_dir, "error",
                  strerror(errno), NULL);
        return EXIT_WRITE;
    }
    if (tw_rackfile_write_all(o->out_dir, t, err) != TW_OK) {
        tw_log_kv(TW_LOG_ERROR, "cannot write the rack files", "dir", o->out_dir, "error", err,
                  NULL);
        return EXIT_WRITE;
    }
    return 0;
}

/* Logs the outcome and returns the exit code for a run that wrote its files. */
static int report(const options *o, int rc, const tw_topology *t)
{
    if (rc == TW_OK) {
        tw_log_kv(TW_LOG_INFO, o->print_only ? "resolved" : "wrote rack files", "rack", t->rack,
                  "source", tw_source_name(t->source), "dir", o->print_only ? "-" : o->out_dir,
                  NULL);
        return EXIT_RESOLVED;
    }
    if (o->fail_on_missing) {
        tw_log_kv(TW_LOG_ERROR, "no source yielded the rack", "rack", o->rack_arg, "reason",
                  tw_strerror(rc), NULL);
        return EXIT_UNRESOLVED;
    }
    tw_log_kv(TW_LOG_WARN,
              o->print_only ? "no source yielded the rack; the rack is empty"
                            : "no source yielded the rack; wrote an empty rack (clients fetch "
                              "from leaders)",
              "rack", o->rack_arg, "reason", tw_strerror(rc), NULL);
    return EXIT_RESOLVED;
}

/* Resolves, writes and reports, within --timeout; returns the exit code. */
static int run(options *o, run_state *st)
{
    uint64_t hard_deadline = tw_deadline_in(o->timeout_ms);
    long soft =
        o->timeout_ms > 2 * WRITE_RESERVE_MS ? o->timeout_ms - WRITE_RESERVE_MS : o->timeout_ms / 2;
    tw_kube_config *kube = NULL;
    char kube_why[TW_ERRLEN] = "";
    int code = EXIT_USAGE;
    check_node_env(o);
    if (uses(o, TW_SOURCE_KUBERNETES) && load_kube(o, &kube, kube_why, sizeof(kube_why)) != TW_OK)
        return EXIT_USAGE;

    tw_imds_options imds;
    memset(&imds, 0, sizeof(imds));
    imds.cloud = o->cloud;
    imds.endpoint = o->imds_endpoint;
    imds.user_agent = USER_AGENT;
    tw_imds_options_from_env(&imds);
    tw_log_kv(TW_LOG_INFO, "starting", "version", TW_VERSION, "node", o->node ? o->node : "",
              "rack", o->rack_arg, NULL);
    resolve_options(o, kube, kube_why, &imds, soft, st);

    tw_topology t;
    int detached = 0;
    int rc = resolve_bounded(st, hard_deadline, &t, &detached);
    if (!detached && !st->done) /* neither ended nor overran: the thread did not start */
        goto out;
    if (rc != TW_OK) {
        t.rack[0] = '\0';
        t.source = TW_SOURCE_NONE;
    }
    if ((code = write_output(o, &t)) == 0)
        code = report(o, rc, &t);
    if (detached) {
        /* The resolver thread still holds the config and libcurl; leave without tearing down. */
        fflush(NULL);
        _exit(code);
    }
out:
    tw_kube_config_free(kube);
    return code;
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
    o.log_format = TW_LOG_TEXT;
    o.log_level = TW_LOG_INFO;
    tw_log_setup(PROG, TW_LOG_TEXT, TW_LOG_INFO);

    int code = parse_args(argc, argv, &o);
    if (code < 0) {
        run_state st;
        memset(&st, 0, sizeof(st));
        pthread_mutex_init(&st.mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&st.cv, &ca);
        pthread_condattr_destroy(&ca);
        if (tw_http_global_init() != TW_OK) {
            tw_log_kv(TW_LOG_ERROR, "cannot initialise the HTTP client", NULL);
            code = EXIT_USAGE;
        } else {
            code = run(&o, &st);
            tw_http_global_cleanup();
        }
        pthread_cond_destroy(&st.cv);
        pthread_mutex_destroy(&st.mu);
    }
    tw_label_keys_free(&o.zone_keys);
    tw_label_keys_free(&o.region_keys);
    tw_label_keys_free(&o.zone_id_keys);
    return code;
}
