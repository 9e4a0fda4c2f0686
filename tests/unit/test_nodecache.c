/* test_nodecache.c - the node cache: lists, watch events, lookups, misses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/nodecache.h"

static const char *const keys[] = {
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.k8s.aws/zone-id",
    NULL,
};

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
    char rv[64] = "";
    assert_int_equal(tw_nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
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
    char rv[64] = "";
    assert_int_equal(tw_nodecache_apply_list(c, LIST, strlen(LIST), rv, NULL), TW_OK);
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
    assert_int_equal(tw_nodecache_apply_event(c, ev_add, strlen(ev_add), rv, NULL), TW_OK);
    assert_string_equal(rv, "101");
    assert_int_equal(tw_nodecache_apply_event(c, ev_mod, strlen(ev_mod), rv, NULL), TW_OK);
    assert_int_equal(tw_nodecache_apply_event(c, ev_del, strlen(ev_del), rv, NULL), TW_OK);
    assert_int_equal(tw_nodecache_apply_event(c, ev_bm, strlen(ev_bm), rv, NULL), TW_OK);
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

static void gone_and_malformed_events(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[64] = "7";
    char err[TW_ERRLEN];
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"message\":\"too old resource version: 1 (5)\"}}";
    assert_int_equal(tw_nodecache_apply_event(c, gone, strlen(gone), rv, err), TW_EGONE);
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
        int rc = tw_nodecache_apply_event(c, bad[i], strlen(bad[i]), rv, err);
        if (rc == TW_OK)
            fail_msg("event %zu accepted: %s", i, bad[i]);
    }
    assert_string_equal(rv, "7");
    const char *badlists[] = {"", "{", "[]", "{\"items\":{}}",
                              "{\"items\":[{\"metadata\":{\"name\":5}}]}"};
    for (size_t i = 0; i < sizeof(badlists) / sizeof(badlists[0]); i++)
        assert_int_not_equal(tw_nodecache_apply_list(c, badlists[i], strlen(badlists[i]), rv, err),
                             TW_OK);
    tw_nodecache_free(c);
}

static void many_nodes_stay_small(void **state)
{
    (void)state;
    tw_nodecache *c = new_cache(NULL);
    char rv[64];
    for (int i = 0; i < 5000; i++) {
        char ev[512];
        snprintf(ev, sizeof(ev),
                 "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"ip-10-0-%d-%d.ec2."
                 "internal\",\"resourceVersion\":\"%d\",\"labels\":{"
                 "\"topology.kubernetes.io/zone\":\"us-east-1%c\","
                 "\"topology.kubernetes.io/region\":\"us-east-1\","
                 "\"topology.k8s.aws/zone-id\":\"use1-az%d\"}}}}",
                 i / 256, i % 256, i, 'a' + i % 3, 1 + i % 3);
        assert_int_equal(tw_nodecache_apply_event(c, ev, strlen(ev), rv, NULL), TW_OK);
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

int main(void)
{
    tw_http_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(list_fills_and_keeps_only_valid_kept_keys),
        cmocka_unit_test(events_add_relabel_delete_bookmark),
        cmocka_unit_test(gone_and_malformed_events),
        cmocka_unit_test(many_nodes_stay_small),
        cmocka_unit_test(miss_asks_the_api_once_then_caches),
        cmocka_unit_test(started_cache_lists_and_watches),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tw_http_global_cleanup();
    return rc;
}
