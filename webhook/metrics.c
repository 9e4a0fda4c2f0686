/* metrics.c - the webhook's counters, gauges and latency histogram in Prometheus text format. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/version.h"

#include "webhook.h"

#define RENDER_MAX (256 * 1024)

/* Upper bounds of the latency buckets, in nanoseconds and as printed. */
static const uint64_t bucket_ns[] = {100000,    250000,    500000,     1000000,   2500000,
                                     5000000,   10000000,  25000000,   50000000,  100000000,
                                     250000000, 500000000, 1000000000, 2500000000};
static const char *const bucket_le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                        "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
                                        "0.25",   "0.5",     "1",      "2.5"};
#define NBUCKETS (sizeof(bucket_ns) / sizeof(bucket_ns[0]))

typedef struct outcome_slot {
    int route;
    const char *outcome;
    atomic_ullong reviews;
    atomic_ullong patched;
} outcome_slot;

typedef struct route_slot {
    const char *name;
    atomic_ullong buckets[NBUCKETS]; /* non-cumulative; summed when rendered */
    atomic_ullong count;
    atomic_ullong sum_ns;
} route_slot;

static route_slot routes[HOOK_MAX_ROUTES];
static int n_routes;
static outcome_slot outcomes[HOOK_MAX_OUTCOMES];
static int n_outcomes;
static atomic_ullong errors[HOOK_ERR_COUNT];
static atomic_long inflight;
static atomic_long connections;
static atomic_ullong reloads_ok, reloads_failed;
static atomic_llong cert_expiry;
static atomic_ullong topology_added[2]; /* [0] pods with spec.nodeName, [1] Bindings */

static const char *const error_names[HOOK_ERR_COUNT] = {
    "not_found", "method_not_allowed", "unsupported_media_type",
    "too_large", "invalid_json",       "not_a_review",
    "timeout",   "body_memory",        "internal"};
_Static_assert(sizeof(error_names) / sizeof(error_names[0]) == HOOK_ERR_COUNT, "error names");

static atomic_ullong guard_events[HOOK_LISTENERS][HOOK_GUARD_REASONS];
static atomic_size_t body_bytes;
static const char *const listener_names[HOOK_LISTENERS] = {"webhook", "metrics"};
static const char *const guard_names[HOOK_GUARD_REASONS] = {
    "refused_limit", "refused_per_address", "evicted",      "header_timeout",
    "idle_timeout",  "body_timeout",        "body_evicted",
};
_Static_assert(sizeof(guard_names) / sizeof(guard_names[0]) == HOOK_GUARD_REASONS, "guard names");

int hook_metrics_outcome(const char *route, const char *outcome)
{
    int r = -1;
    for (int i = 0; i < n_routes; i++)
        if (strcmp(routes[i].name, route) == 0)
            r = i;
    if (r < 0) {
        if (n_routes == HOOK_MAX_ROUTES)
            return -1;
        r = n_routes++;
        routes[r].name = route;
    }
    for (int i = 0; i < n_outcomes; i++)
        if (outcomes[i].route == r && strcmp(outcomes[i].outcome, outcome) == 0)
            return i;
    if (n_outcomes == HOOK_MAX_OUTCOMES)
        return -1;
    outcomes[n_outcomes].route = r;
    outcomes[n_outcomes].outcome = outcome;
    return n_outcomes++;
}

void hook_metrics_review(int outcome_id, bool patched, uint64_t elapsed_ns)
{
    TW_ASSERT(outcome_id >= 0 && outcome_id < n_outcomes); /* every outcome registered at start */
    if (outcome_id < 0 || outcome_id >= n_outcomes)
        return;
    outcome_slot *o = &outcomes[outcome_id];
    atomic_fetch_add_explicit(&o->reviews, 1, memory_order_relaxed);
    if (patched)
        atomic_fetch_add_explicit(&o->patched, 1, memory_order_relaxed);
    route_slot *r = &routes[o->route];
    size_t b = 0;
    while (b < NBUCKETS && elapsed_ns > bucket_ns[b])
        b++;
    if (b < NBUCKETS)
        atomic_fetch_add_explicit(&r->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_ns, elapsed_ns, memory_order_relaxed);
}

void hook_metrics_error(hook_error e)
{
    TW_ASSERT(e >= 0 && e < HOOK_ERR_COUNT);
    if (e >= 0 && e < HOOK_ERR_COUNT)
        atomic_fetch_add_explicit(&errors[e], 1, memory_order_relaxed);
}

void hook_metrics_inflight(int delta)
{
    atomic_fetch_add(&inflight, delta);
}

long hook_metrics_inflight_now(void)
{
    return atomic_load(&inflight);
}

void hook_metrics_connections(int delta)
{
    atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

void hook_metrics_cert_reload(bool ok)
{
    atomic_fetch_add(ok ? &reloads_ok : &reloads_failed, 1);
}

void hook_metrics_cert_expiry(int64_t not_after)
{
    atomic_store(&cert_expiry, not_after);
}

void hook_metrics_guard(hook_listener l, hook_guard_reason why)
{
    TW_ASSERT(l < HOOK_LISTENERS && why < HOOK_GUARD_REASONS);
    if (l < HOOK_LISTENERS && why < HOOK_GUARD_REASONS)
        atomic_fetch_add_explicit(&guard_events[l][why], 1, memory_order_relaxed);
}

void hook_metrics_body_bytes(size_t n)
{
    atomic_store_explicit(&body_bytes, n, memory_order_relaxed);
}

void hook_metrics_topology_added(bool binding)
{
    atomic_fetch_add_explicit(&topology_added[binding ? 1 : 0], 1, memory_order_relaxed);
}

/* More metrics from another part (the node cache), rendered last. */
static void (*extra_fn)(tw_buf *b, void *ud);
static void *extra_ud;

static void header(tw_buf *b, const char *name, const char *type, const char *help)
{
    tw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Reviews, patches and refusals: the review counters. */
static void render_reviews(tw_buf *b)
{
    header(b, "topowire_webhook_reviews_total", "counter",
           "Admission reviews answered, by route and outcome.");
    for (int i = 0; i < n_outcomes; i++) {
        TW_ASSERT(outcomes[i].route >= 0 && outcomes[i].route < n_routes);
        tw_buf_printf(b, "topowire_webhook_reviews_total{route=\"%s\",outcome=\"%s\"} %llu\n",
                      routes[outcomes[i].route].name, outcomes[i].outcome,
                      (unsigned long long)atomic_load(&outcomes[i].reviews));
    }
    header(b, "topowire_webhook_patches_total", "counter",
           "Admission reviews answered with a patch, by route.");
    for (int r = 0; r < n_routes; r++) {
        unsigned long long n = 0;
        for (int i = 0; i < n_outcomes; i++)
            if (outcomes[i].route == r)
                n += atomic_load(&outcomes[i].patched);
        tw_buf_printf(b, "topowire_webhook_patches_total{route=\"%s\"} %llu\n", routes[r].name, n);
    }
    header(b, "topowire_webhook_errors_total", "counter",
           "Requests refused before a review was made, by reason.");
    for (int e = 0; e < HOOK_ERR_COUNT; e++)
        tw_buf_printf(b, "topowire_webhook_errors_total{reason=\"%s\"} %llu\n", error_names[e],
                      (unsigned long long)atomic_load(&errors[e]));
}

/* The review latency histogram, one per route. */
static void render_durations(tw_buf *b)
{
    header(b, "topowire_webhook_review_duration_seconds", "histogram",
           "Time from a review's request headers to its response, by route.");
    for (int r = 0; r < n_routes; r++) {
        unsigned long long cum = 0;
        for (size_t i = 0; i < NBUCKETS; i++) {
            cum += atomic_load(&routes[r].buckets[i]);
            tw_buf_printf(b,
                          "topowire_webhook_review_duration_seconds_bucket{route=\"%s\",le=\"%s\"}"
                          " %llu\n",
                          routes[r].name, bucket_le[i], cum);
        }
        unsigned long long count = atomic_load(&routes[r].count);
        unsigned long long sum = atomic_load(&routes[r].sum_ns);
        tw_buf_printf(b,
                      "topowire_webhook_review_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                      "%llu\n",
                      routes[r].name, count);
        tw_buf_printf(b, "topowire_webhook_review_duration_seconds_sum{route=\"%s\"} %llu.%09llu\n",
                      routes[r].name, sum / 1000000000ULL, sum % 1000000000ULL);
        tw_buf_printf(b, "topowire_webhook_review_duration_seconds_count{route=\"%s\"} %llu\n",
                      routes[r].name, count);
    }
}

/* Requests and connections in flight, and what the guards closed. */
static void render_connections(tw_buf *b)
{
    header(b, "topowire_webhook_inflight_requests", "gauge",
           "Requests received and not yet answered.");
    tw_buf_printf(b, "topowire_webhook_inflight_requests %ld\n", atomic_load(&inflight));
    header(b, "topowire_webhook_open_connections", "gauge", "Open TLS connections.");
    tw_buf_printf(b, "topowire_webhook_open_connections %ld\n", atomic_load(&connections));
    header(b, "topowire_webhook_connections_closed_total", "counter",
           "Connections refused at accept or closed by the server's limits, by listener and "
           "reason.");
    for (int l = 0; l < HOOK_LISTENERS; l++)
        for (int e = 0; e < HOOK_GUARD_REASONS; e++)
            tw_buf_printf(b,
                          "topowire_webhook_connections_closed_total{listener=\"%s\","
                          "reason=\"%s\"} %llu\n",
                          listener_names[l], guard_names[e],
                          (unsigned long long)atomic_load(&guard_events[l][e]));
    header(b, "topowire_webhook_body_memory_bytes", "gauge",
           "Memory held by request bodies being received (bounded by --max-body-memory).");
    tw_buf_printf(b, "topowire_webhook_body_memory_bytes %zu\n", atomic_load(&body_bytes));
}

/* The serving certificate and the topology binding mode added. */
static void render_cert_and_topology(tw_buf *b)
{
    header(b, "topowire_webhook_certificate_reloads_total", "counter",
           "Serving certificate reloads after its files changed, by result.");
    tw_buf_printf(b, "topowire_webhook_certificate_reloads_total{result=\"success\"} %llu\n",
                  (unsigned long long)atomic_load(&reloads_ok));
    tw_buf_printf(b, "topowire_webhook_certificate_reloads_total{result=\"failure\"} %llu\n",
                  (unsigned long long)atomic_load(&reloads_failed));
    header(b, "topowire_webhook_certificate_expiry_timestamp_seconds", "gauge",
           "When the serving certificate in use expires (Unix time).");
    tw_buf_printf(b, "topowire_webhook_certificate_expiry_timestamp_seconds %lld\n",
                  (long long)atomic_load(&cert_expiry));
    header(b, "topowire_webhook_topology_added_total", "counter",
           "Objects binding mode added node topology to: Bindings, and pods created with "
           "spec.nodeName.");
    tw_buf_printf(b, "topowire_webhook_topology_added_total{object=\"binding\"} %llu\n",
                  (unsigned long long)atomic_load(&topology_added[1]));
    tw_buf_printf(b, "topowire_webhook_topology_added_total{object=\"pod\"} %llu\n",
                  (unsigned long long)atomic_load(&topology_added[0]));
}

char *hook_metrics_render(size_t *len)
{
    tw_buf b;
    tw_buf_init(&b, RENDER_MAX);
    header(&b, "topowire_webhook_build_info", "gauge", "The running version.");
    tw_buf_printf(&b, "topowire_webhook_build_info{version=\"%s\"} 1\n", TW_VERSION);
    render_reviews(&b);
    render_durations(&b);
    render_connections(&b);
    render_cert_and_topology(&b);
    if (extra_fn != NULL)
        extra_fn(&b, extra_ud);
    if (b.data == NULL) {
        tw_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return tw_buf_detach(&b);
}

void hook_metrics_set_extra(void (*fn)(tw_buf *b, void *ud), void *ud)
{
    extra_fn = fn;
    extra_ud = ud;
}
