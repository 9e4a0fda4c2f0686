/* test_nodecache.c - the node cache: lists, watch events, lookups, misses. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/nodecache.h"

#include "../../lib/nodecache_int.h"

static const char *const keys[] = {
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.k8s.aws/zone-id",
    NULL,
};

static tw_nodecache *new_cache_waiting(tw_kube_config *cfg, long quick_wait_ms)
{
    tw_nodecache_options o = {
        .kube = cfg, .user_agent = "test", .keys = keys, .quick_wait_ms = quick_wait_ms};
    tw_nodecache *c = tw_nodecache_new(&o);
    assert_non_null(c);
    return c;
}

static tw_nodecache *new_cache(tw_kube_config *cfg)
{
    tw_nodecache_options o = {.kube = cfg, .user_agent = "test", .keys = keys};
    tw_nodecache *c = tw_nodecache_new(&o);
    assert_non_null(c);
    return c;
}

static const char *LIST =
    "{\"kind\":\"PartialObjectMetadataList\",\"apiVersion\":\"meta.k8s.io/v1\","
    "\"metadata\":{\"resourceVersion\":\"100\"},\"items\":["
    "{\"metadata\":{\"name\":\"a\",\"labels\":{\"topology.kubernetes.io/zone\":\"us-east-1a\","
    "\"topology.k8s.aws/zone-id\":\"use1-az1\",\"kubernetes.io/os\":\"linux\"}}},"
    "{\"metadata\":{\"name\":\"b\",\"labels\":{\"topology.kubernetes.io/zone\":\"bad value!\"}}},"
    "{\"metadata\":{\"name\":\"c\"}}]}";

static void list_fills_and_keeps_only_valid_kept_keys(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1] = "";
    assert_int_equal(tw__nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
    assert_string_equal(rv, "100");
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "a", 0, &l, NULL), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1a");
    assert_string_equal(tw_kvlist_get(&l, "topology.k8s.aws/zone-id"), "use1-az1");
    assert_null(tw_kvlist_get(&l, "kubernetes.io/os"));
    tw_kvlist_free(&l);
    assert_int_equal(tw_nodecache_get(c, "b", 0, &l, NULL), TW_OK);
    assert_int_equal(l.n, 0); /* the invalid value was dropped */
    tw_kvlist_free(&l);
    assert_int_equal(tw_nodecache_get(c, "zz", 0, &l, NULL), TW_ENOTFOUND);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    assert_int_equal(st.nodes, 3);
    tw_nodecache_free(c);
}

static void events_add_relabel_delete_bookmark(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1] = "";
    assert_int_equal(tw__nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
    const char *ev_add = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"d\","
                         "\"resourceVersion\":\"101\",\"labels\":{\"topology.kubernetes.io/zone\":"
                         "\"us-east-1d\"}}}}";
    const char *ev_mod = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                         "\"resourceVersion\":\"102\",\"labels\":{\"topology.kubernetes.io/zone\":"
                         "\"us-east-1f\"}}}}";
    const char *ev_del = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\","
                         "\"resourceVersion\":\"103\"}}}";
    const char *ev_bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"PartialObjectMetadata\","
                        "\"metadata\":{\"resourceVersion\":\"150\"}}}";
    assert_int_equal(tw__nodecache_apply_event(c, ev_add, strlen(ev_add), rv, NULL), TW_OK);
    assert_string_equal(rv, "101");
    assert_int_equal(tw__nodecache_apply_event(c, ev_mod, strlen(ev_mod), rv, NULL), TW_OK);
    assert_int_equal(tw__nodecache_apply_event(c, ev_del, strlen(ev_del), rv, NULL), TW_OK);
    assert_int_equal(tw__nodecache_apply_event(c, ev_bm, strlen(ev_bm), rv, NULL), TW_OK);
    assert_string_equal(rv, "150");
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "d", 0, &l, NULL), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1d");
    tw_kvlist_free(&l);
    assert_int_equal(tw_nodecache_get(c, "a", 0, &l, NULL), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1f");
    assert_null(tw_kvlist_get(&l, "topology.k8s.aws/zone-id")); /* relabel removed it */
    tw_kvlist_free(&l);
    assert_int_equal(tw_nodecache_get(c, "c", 0, &l, NULL), TW_ENOTFOUND);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.nodes, 3);
    tw_nodecache_free(c);
}

/* An escaped NUL in a label value must not cut it to a valid-looking zone. */
static void escaped_nul_in_a_label_is_refused(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1] = "";
    assert_int_equal(tw__nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
    const char *ev = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                     "\"resourceVersion\":\"102\",\"labels\":{\"topology.kubernetes.io/zone\":"
                     "\"us-east-1f\\u0000junk\"}}}}";
    assert_int_equal(tw__nodecache_apply_event(c, ev, strlen(ev), rv, NULL), TW_OK);
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "a", 0, &l, NULL), TW_OK);
    assert_null(tw_kvlist_get(&l, "topology.kubernetes.io/zone"));
    tw_kvlist_free(&l);
    tw_nodecache_free(c);
}

static void gone_and_malformed_events(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1] = "7";
    char err[TW_ERRLEN];
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"message\":\"too old resource version: 1 (5)\"}}";
    assert_int_equal(tw__nodecache_apply_event(c, gone, strlen(gone), rv, err), TW_EGONE);
    assert_non_null(strstr(err, "too old"));
    const char *bad[] = {
        "",
        "null",
        "[]",
        "{\"type\":\"ADDED\"}",
        "{\"type\":5,\"object\":{}}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\",\"labels\":[1]}}}",
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{}}}",
        "{\"type\":\"SURPRISE\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
        "{\"type\":\"ERROR\",\"object\":{\"code\":500}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = tw__nodecache_apply_event(c, bad[i], strlen(bad[i]), rv, err);
        if (rc == TW_OK)
            fail_msg("event %zu accepted: %s", i, bad[i]);
    }
    assert_string_equal(rv, "7");
    const char *badlists[] = {"", "{", "[]", "{\"items\":{}}",
                              "{\"items\":[{\"metadata\":{\"name\":5}}]}"};
    for (size_t i = 0; i < sizeof(badlists) / sizeof(badlists[0]); i++)
        assert_int_not_equal(tw__nodecache_apply_list(c, badlists[i], strlen(badlists[i]), rv, err),
                             TW_OK);
    tw_nodecache_free(c);
}

static void many_nodes_stay_small(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1];
    for (int i = 0; i < 5000; i++) {
        char ev[512];
        snprintf(ev, sizeof(ev),
                 "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"ip-10-0-%d-%d.ec2."
                 "internal\",\"resourceVersion\":\"%d\",\"labels\":{"
                 "\"topology.kubernetes.io/zone\":\"us-east-1%c\","
                 "\"topology.kubernetes.io/region\":\"us-east-1\","
                 "\"topology.k8s.aws/zone-id\":\"use1-az%d\"}}}}",
                 i / 256, i % 256, i, 'a' + i % 3, 1 + i % 3);
        assert_int_equal(tw__nodecache_apply_event(c, ev, strlen(ev), rv, NULL), TW_OK);
    }
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    assert_int_equal(st.nodes, 5000);
    if (st.bytes >= 2u * 1024 * 1024)
        fail_msg("%zu bytes", st.bytes);
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "ip-10-0-19-135.ec2.internal", 0, &l, NULL), TW_OK);
    /* node 4999: 1 + 4999 % 3 */
    assert_string_equal(tw_kvlist_get(&l, "topology.k8s.aws/zone-id"), "use1-az2");
    tw_kvlist_free(&l);
    tw_nodecache_free(c);
}

/* A tiny API server: node "x" by GET, and a LIST. */
static void api(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    (void)ud;
    if (strcmp(req->url, "/api/v1/nodes/x") == 0) {
        resp->body = "{\"kind\":\"PartialObjectMetadata\",\"metadata\":{\"name\":\"x\","
                     "\"labels\":{\"topology.kubernetes.io/zone\":\"eu-west-1c\"}}}";
        resp->content_type = "application/json";
    } else if (strcmp(req->url, "/api/v1/nodes") == 0 && strstr(req->query, "watch") == NULL) {
        resp->body = LIST;
    } else if (strcmp(req->url, "/api/v1/nodes") == 0) {
        resp->body = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"w\","
                     "\"resourceVersion\":\"101\",\"labels\":{\"topology.kubernetes.io/zone\":"
                     "\"us-east-1w\"}}}}\n";
    } else {
        resp->status = 404;
        resp->body = "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\","
                     "\"message\":\"nodes \\\"y\\\" not found\"}";
    }
}

static void miss_asks_the_api_once_then_caches(void **state)
{
    (void)state;
    tw_testserver *s = tw_testserver_start(api, NULL, NULL, NULL);
    assert_non_null(s);
    char server[64];
    snprintf(server, sizeof(server), "%s", tw_testserver_url(s));
    tw_kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.token = (char *)"t";
    tw_nodecache *c = new_cache(&cfg);
    tw_kvlist l = {0};
    char err[TW_ERRLEN];
    assert_int_equal(tw_nodecache_get(c, "x", tw_deadline_in(2000), &l, err), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "eu-west-1c");
    tw_kvlist_free(&l);
    assert_int_equal(tw_nodecache_get(c, "x", tw_deadline_in(2000), &l, err), TW_OK);
    tw_kvlist_free(&l);
    assert_int_equal(tw_testserver_requests(s), 1);
    assert_int_equal(tw_nodecache_get(c, "y", tw_deadline_in(2000), &l, err), TW_ENOTFOUND);
    if (strstr(err, "not found") == NULL)
        fail_msg("err: %s", err);
    tw_nodecache_free(c);
    tw_testserver_stop(s);
}

static void started_cache_lists_and_watches(void **state)
{
    (void)state;
    tw_testserver *s = tw_testserver_start(api, NULL, NULL, NULL);
    assert_non_null(s);
    char server[64];
    snprintf(server, sizeof(server), "%s", tw_testserver_url(s));
    tw_kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.token = (char *)"t";
    tw_nodecache *c = new_cache(&cfg);
    assert_int_equal(tw_nodecache_start(c), TW_OK);
    uint64_t until = tw_deadline_in(5000);
    tw_kvlist l = {0};
    while (tw_remaining_ms(until) > 0) {
        if (tw_nodecache_ready(c) && tw_nodecache_get(c, "w", 0, &l, NULL) == TW_OK)
            break;
        tw_sleep_ms(20, until);
    }
    assert_true(tw_nodecache_ready(c));
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1w");
    tw_kvlist_free(&l);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    assert_true(st.lists >= 1);
    assert_true(st.watches >= 1);
    uint64_t t0 = tw_now_ms();
    tw_nodecache_free(c); /* stops promptly even with a watch open */
    assert_true(tw_now_ms() - t0 < 3000);
    tw_testserver_stop(s);
}

/* ---- faults of the API server: a scripted server, counting what it is asked ---- */

enum { MODE_GONE, MODE_EMPTY_WATCH, MODE_PAGES, MODE_QUIET, MODE_HANG_GET, MODE_SLOW_GET };

typedef struct fake {
    int mode;
    size_t token_len; /* MODE_PAGES: the continue token's length */
    atomic_int lists, watches, gets;
    atomic_int quiet; /* MODE_QUIET: 1 = watches stay silent (no bookmarks) and LISTs hang */
    char *token;
} fake;

static const char *PAGE1 = "{\"kind\":\"PartialObjectMetadataList\",\"metadata\":{"
                           "\"resourceVersion\":\"100\",\"continue\":\"%s\"},\"items\":["
                           "{\"metadata\":{\"name\":\"a\",\"labels\":{"
                           "\"topology.kubernetes.io/zone\":\"us-east-1a\"}}}]}";
static const char *PAGE2 = "{\"kind\":\"PartialObjectMetadataList\",\"metadata\":{"
                           "\"resourceVersion\":\"100\"},\"items\":["
                           "{\"metadata\":{\"name\":\"b\",\"labels\":{"
                           "\"topology.kubernetes.io/zone\":\"us-east-1b\"}}}]}";

static void fake_api(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    fake *f = ud;
    static __thread char buf[64 * 1024];
    resp->content_type = "application/json";
    if (strncmp(req->url, "/api/v1/nodes/", 14) == 0) {
        atomic_fetch_add(&f->gets, 1);
        if (f->mode == MODE_HANG_GET) {
            resp->stall = 1;
            return;
        }
        if (f->mode == MODE_SLOW_GET)
            resp->delay_ms = 100;
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"PartialObjectMetadata\",\"metadata\":{\"name\":\"%s\",\"labels\":{"
                 "\"topology.kubernetes.io/zone\":\"eu-west-1c\"}}}",
                 req->url + 14);
        resp->body = buf;
        return;
    }
    if (strstr(req->query, "watch=1") == NULL) {
        atomic_fetch_add(&f->lists, 1);
        if (f->mode == MODE_QUIET && atomic_load(&f->quiet)) {
            resp->stall = 1;
            return;
        }
        const char *t = MHD_lookup_connection_value((struct MHD_Connection *)req->conn,
                                                    MHD_GET_ARGUMENT_KIND, "continue");
        if (f->mode == MODE_PAGES && t == NULL) {
            snprintf(buf, sizeof(buf), PAGE1, f->token);
            resp->body = buf;
        } else if (f->mode == MODE_PAGES) {
            /* The whole token must come back. */
            if (strcmp(t, f->token) != 0) {
                resp->status = 410;
                resp->body = "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}";
            } else {
                resp->body = PAGE2;
            }
        } else {
            resp->body = LIST;
        }
        return;
    }
    atomic_fetch_add(&f->watches, 1);
    switch (f->mode) {
    case MODE_GONE:
        resp->body =
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
            "\"reason\":\"Expired\",\"message\":\"too old resource version: 100 (200)\"}}\n";
        break;
    case MODE_EMPTY_WATCH:
        resp->body = ""; /* 200 and nothing */
        break;
    case MODE_QUIET:
        if (atomic_load(&f->quiet)) {
            resp->stall = 1;
        } else {
            resp->delay_ms = 100;
            resp->body = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":"
                         "\"100\"}}}\n";
        }
        break;
    default:
        resp->stall = 1;
        break;
    }
}

static tw_nodecache *started(fake *f, tw_testserver **srv, tw_kube_config *cfg, char *server,
                             long max_age_ms)
{
    *srv = tw_testserver_start(fake_api, f, NULL, NULL);
    assert_non_null(*srv);
    snprintf(server, 64, "%s", tw_testserver_url(*srv));
    memset(cfg, 0, sizeof(*cfg));
    cfg->server = server;
    cfg->token = (char *)"t";
    tw_nodecache_options o = {
        .kube = cfg, .user_agent = "test", .keys = keys, .max_age_ms = max_age_ms};
    tw_nodecache *c = tw_nodecache_new(&o);
    assert_non_null(c);
    assert_int_equal(tw_nodecache_start(c), TW_OK);
    return c;
}

/* Issue 9 item 5: a 410 on every WATCH re-LISTs with backoff, not at once. */
static void gone_on_every_watch_backs_off(void **state)
{
    (void)state;
    fake f = {.mode = MODE_GONE};
    tw_testserver *srv;
    tw_kube_config cfg;
    char server[64];
    tw_nodecache *c = started(&f, &srv, &cfg, server, 0);
    tw_sleep_ms(4000, tw_deadline_in(4000));
    int lists = atomic_load(&f.lists), watches = atomic_load(&f.watches);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    tw_nodecache_free(c);
    tw_testserver_stop(srv);
    /* 800 ms, then [1.6, 3.2) s, ...: at most 3 LISTs in 4 s; without backoff, hundreds. */
    if (lists > 4 || lists < 2 || watches > 4)
        fail_msg("%d LISTs and %d WATCHes in 4 s", lists, watches);
    assert_true(st.relists >= 1);
    assert_true(st.backoff_ms > TW_NODECACHE_BACKOFF_MIN_MS);
}

/* Issue 9 item 5: a WATCH that ends at once with nothing is a failure, and backs off. */
static void empty_watches_back_off(void **state)
{
    (void)state;
    fake f = {.mode = MODE_EMPTY_WATCH};
    tw_testserver *srv;
    tw_kube_config cfg;
    char server[64];
    tw_nodecache *c = started(&f, &srv, &cfg, server, 0);
    tw_sleep_ms(4000, tw_deadline_in(4000));
    int lists = atomic_load(&f.lists), watches = atomic_load(&f.watches);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    tw_nodecache_free(c);
    tw_testserver_stop(srv);
    if (watches > 4 || lists != 1)
        fail_msg("%d WATCHes and %d LISTs in 4 s", watches, lists);
    assert_true(st.errors >= 2);
}

/* Issue 9 item 8: a long continue token is followed to the last page; a too-long one fails. */
static void long_continue_tokens(void **state)
{
    (void)state;
    size_t lens[] = {9000, TW_NODECACHE_CONTINUE_MAX + 1};
    for (size_t i = 0; i < 2; i++) {
        fake f = {.mode = MODE_PAGES, .token_len = lens[i]};
        f.token = malloc(lens[i] + 1);
        assert_non_null(f.token);
        for (size_t k = 0; k < lens[i]; k++)
            f.token[k] = "ABCdef0123-_"[k % 12];
        f.token[lens[i]] = '\0';
        tw_testserver *srv;
        tw_kube_config cfg;
        char server[64];
        tw_nodecache *c = started(&f, &srv, &cfg, server, 0);
        uint64_t until = tw_deadline_in(3000);
        while (!tw_nodecache_ready(c) && tw_remaining_ms(until) > 0)
            tw_sleep_ms(20, until);
        tw_nodecache_stats st;
        tw_nodecache_stats_get(c, &st);
        if (i == 0) {
            assert_true(st.ready);
            assert_int_equal(st.nodes, 2); /* both pages */
        } else {
            tw_sleep_ms(300, tw_deadline_in(300));
            tw_nodecache_stats_get(c, &st);
            assert_false(st.ready); /* never a partial cache that says ready */
            assert_int_equal(st.nodes, 0);
            assert_true(st.errors >= 1);
        }
        tw_nodecache_free(c);
        tw_testserver_stop(srv);
        free(f.token);
    }
}

/* Issue 9 item 8: resourceVersions up to the bound are kept; longer ones are errors. */
static void long_resource_versions(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[TW_NODECACHE_RV_MAX + 1] = "";
    char big[TW_NODECACHE_RV_MAX + 2];
    char doc[1024];
    memset(big, '7', sizeof(big) - 1);
    big[TW_NODECACHE_RV_MAX] = '\0'; /* exactly the bound */
    snprintf(doc, sizeof(doc), "{\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[]}", big);
    assert_int_equal(tw__nodecache_apply_list(c, doc, strlen(doc), rv, NULL), TW_OK);
    assert_int_equal(strlen(rv), TW_NODECACHE_RV_MAX);
    big[TW_NODECACHE_RV_MAX] = '7';
    big[TW_NODECACHE_RV_MAX + 1] = '\0';
    snprintf(doc, sizeof(doc), "{\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[]}", big);
    char err[TW_ERRLEN];
    assert_int_equal(tw__nodecache_apply_list(c, doc, strlen(doc), rv, err), TW_ETOOBIG);
    snprintf(doc, sizeof(doc),
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\","
             "\"resourceVersion\":\"%s\"}}}",
             big);
    assert_int_equal(tw__nodecache_apply_event(c, doc, strlen(doc), rv, err), TW_ETOOBIG);
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "n", 0, &l, NULL), TW_ENOTFOUND); /* nothing applied */
    assert_int_equal(strlen(rv), TW_NODECACHE_RV_MAX);
    tw_nodecache_free(c);
}

/*
 * Issue 9 item 6: a cache that stops hearing from the API server (silent
 * watch, hung re-list) stops saying ready within its bound, and answers
 * lookups from a direct GET instead of its old entries.
 */
static void silent_api_makes_the_cache_stale(void **state)
{
    (void)state;
    fake f = {.mode = MODE_QUIET};
    tw_testserver *srv;
    tw_kube_config cfg;
    char server[64];
    tw_nodecache *c = started(&f, &srv, &cfg, server, 1500);
    uint64_t until = tw_deadline_in(3000);
    while (!tw_nodecache_ready(c) && tw_remaining_ms(until) > 0)
        tw_sleep_ms(20, until);
    assert_true(tw_nodecache_ready(c));
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "a", tw_deadline_in(1000), &l, NULL), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1a");
    tw_kvlist_free(&l);
    assert_int_equal(atomic_load(&f.gets), 0);
    atomic_store(&f.quiet, 1);
    until = tw_deadline_in(4000);
    while (tw_nodecache_ready(c) && tw_remaining_ms(until) > 0)
        tw_sleep_ms(50, until);
    assert_false(tw_nodecache_ready(c));
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    if (st.age_ms < 1500)
        fail_msg("not ready at an age of %llu ms", (unsigned long long)st.age_ms);
    /* Stale: the old zone is not served; the node's own GET answers. */
    assert_int_equal(tw_nodecache_get(c, "a", tw_deadline_in(1000), &l, NULL), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "eu-west-1c");
    tw_kvlist_free(&l);
    assert_int_equal(atomic_load(&f.gets), 1);
    /* ... once: the answer is fresh for the bound. */
    assert_int_equal(tw_nodecache_get(c, "a", tw_deadline_in(1000), &l, NULL), TW_OK);
    tw_kvlist_free(&l);
    assert_int_equal(atomic_load(&f.gets), 1);
    uint64_t t0 = tw_now_ms();
    tw_nodecache_free(c); /* the hung LIST or silent watch does not hold it up */
    assert_true(tw_now_ms() - t0 < 3000);
    tw_testserver_stop(srv);
}

typedef struct miss_arg {
    tw_nodecache *c;
    const char *node;
    int rc;
    uint64_t ms;
} miss_arg;

static void *miss_thread(void *p)
{
    miss_arg *a = p;
    tw_kvlist l = {0};
    uint64_t t0 = tw_now_ms();
    a->rc = tw_nodecache_get(a->c, a->node, tw_deadline_in(1500), &l, NULL);
    a->ms = tw_now_ms() - t0;
    tw_kvlist_free(&l);
    return NULL;
}

/*
 * Issue 9 item 10: misses against a hanging API server: one GET per node in
 * flight, one caller waits, the others are answered at once, cached nodes at
 * once, and a failure is remembered.
 */
static void misses_against_an_api(int mode)
{
    fake f = {.mode = mode};
    tw_testserver *srv = tw_testserver_start(fake_api, &f, NULL, NULL);
    assert_non_null(srv);
    char server[64];
    snprintf(server, sizeof(server), "%s", tw_testserver_url(srv));
    tw_kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.token = (char *)"t";
    /* A healthy API server answers well within 250 ms; a loaded machine under a
     * sanitizer may not, so the burst case gives the other callers longer. */
    tw_nodecache *c = mode == MODE_SLOW_GET ? new_cache_waiting(&cfg, 1200) : new_cache(&cfg);
    char rv[TW_NODECACHE_RV_MAX + 1];
    assert_int_equal(tw__nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
    miss_arg a[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (miss_arg){.c = c, .node = "new-node"};
        assert_int_equal(pthread_create(&th[i], NULL, miss_thread, &a[i]), 0);
    }
    /* Meanwhile a cached node answers at once. */
    tw_sleep_ms(200, tw_deadline_in(200));
    uint64_t t0 = tw_now_ms();
    tw_kvlist l = {0};
    assert_int_equal(tw_nodecache_get(c, "a", tw_deadline_in(1500), &l, NULL), TW_OK);
    tw_kvlist_free(&l);
    /* Bounds below are far under the 1.5 s a blocked caller would take, with room
     * for a loaded machine and the sanitizers. */
    assert_true(tw_now_ms() - t0 < 500);
    int waited = 0, quick = 0;
    if (mode == MODE_SLOW_GET) {
        /* A healthy API server: the burst of misses all get the answer of one GET. */
        for (int i = 0; i < 6; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(a[i].rc, TW_OK);
        }
        assert_int_equal(atomic_load(&f.gets), 1);
        tw_nodecache_free(c);
        tw_testserver_stop(srv);
        return;
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_not_equal(a[i].rc, TW_OK);
        if (a[i].ms >= 1000)
            waited++;
        else
            quick++;
    }
    if (waited != 1 || quick != 5)
        fail_msg("%d callers waited out the deadline, %d were answered at once", waited, quick);
    /* Asked again right away: the failure is remembered, no new GET. */
    t0 = tw_now_ms();
    assert_int_not_equal(tw_nodecache_get(c, "new-node", tw_deadline_in(1500), &l, NULL), TW_OK);
    assert_true(tw_now_ms() - t0 < 500);
    tw_sleep_ms(300, tw_deadline_in(300));
    assert_int_equal(atomic_load(&f.gets), 1);
    tw_nodecache_stats st;
    tw_nodecache_stats_get(c, &st);
    assert_true(st.skipped >= 5);
    t0 = tw_now_ms();
    tw_nodecache_free(c);
    assert_true(tw_now_ms() - t0 < 3000);
    tw_testserver_stop(srv);
}

static void misses_against_a_hanging_api(void **state)
{
    (void)state;
    misses_against_an_api(MODE_HANG_GET);
}

static void a_burst_of_misses_shares_one_get(void **state)
{
    (void)state;
    misses_against_an_api(MODE_SLOW_GET);
}

int main(void)
{
    tw_http_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_fills_and_keeps_only_valid_kept_keys),
        cmocka_unit_test(events_add_relabel_delete_bookmark),
        cmocka_unit_test(escaped_nul_in_a_label_is_refused),
        cmocka_unit_test(gone_and_malformed_events),
        cmocka_unit_test(many_nodes_stay_small),
        cmocka_unit_test(miss_asks_the_api_once_then_caches),
        cmocka_unit_test(started_cache_lists_and_watches),
        cmocka_unit_test(gone_on_every_watch_backs_off),
        cmocka_unit_test(empty_watches_back_off),
        cmocka_unit_test(long_continue_tokens),
        cmocka_unit_test(long_resource_versions),
        cmocka_unit_test(silent_api_makes_the_cache_stale),
        cmocka_unit_test(misses_against_a_hanging_api),
        cmocka_unit_test(a_burst_of_misses_shares_one_get),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tw_http_global_cleanup();
    return rc;
}
