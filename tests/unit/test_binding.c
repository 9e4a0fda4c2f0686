/* test_binding.c - binding mode (webhook/binding.c): options, legacy labels, readiness, metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../webhook/webhook.h"
#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/jsonpatch.h"
#include "topowire/log.h"

static void parse_keys_and_copy_as(void **state)
{
    (void)state;
    char buf[512];
    const char *keys[17];
    char err[TW_ERRLEN];
    assert_int_equal(
        hook_topology_parse_keys(HOOK_DEFAULT_COPY_LABELS, buf, sizeof(buf), keys, err), TW_OK);
    assert_string_equal(keys[0], "topology.kubernetes.io/zone");
    assert_string_equal(keys[2], "topology.k8s.aws/zone-id");
    assert_null(keys[3]);
    assert_int_equal(hook_topology_parse_keys("a,b", buf, sizeof(buf), keys, err), TW_OK);
    assert_string_equal(keys[1], "b");
    assert_null(keys[2]);
    /* An empty item is a typo, not a key to skip. */
    assert_int_equal(hook_topology_parse_keys("a,,b", buf, sizeof(buf), keys, err), TW_EINVAL);
    assert_non_null(strstr(err, "item 2 is empty"));
    assert_int_equal(hook_topology_parse_keys("a,", buf, sizeof(buf), keys, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_keys("a, b", buf, sizeof(buf), keys, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_keys("", buf, sizeof(buf), keys, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_keys("not a key!", buf, sizeof(buf), keys, err),
                     TW_EINVAL);
    assert_int_equal(
        hook_topology_parse_keys("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", buf, sizeof(buf), keys, err),
        TW_EINVAL);
    bool a, l;
    assert_int_equal(hook_topology_parse_copy_as("labels,annotations", &a, &l, err), TW_OK);
    assert_true(a && l);
    assert_int_equal(hook_topology_parse_copy_as("annotations", &a, &l, err), TW_OK);
    assert_true(a && !l);
    assert_int_equal(hook_topology_parse_copy_as("nothing", &a, &l, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_copy_as("", &a, &l, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_copy_as("labels,", &a, &l, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_copy_as("labelsx", &a, &l, err), TW_EINVAL);
    assert_int_equal(hook_topology_parse_copy_as("label", &a, &l, err), TW_EINVAL);
}

static void null_topology(void **state)
{
    (void)state;
    assert_true(hook_topology_ready(NULL));
    tw_buf b;
    tw_buf_init(&b, 4096);
    hook_topology_metrics(NULL, &b);
    assert_int_equal(b.len, 0);
    tw_buf_free(&b);
    hook_topology_free(NULL);
}

/* A small API server: three nodes, legacy labels on two; watches silent once `quiet`. */
typedef struct api {
    atomic_int quiet;
} api;

static const char *NODES =
    "{\"kind\":\"PartialObjectMetadataList\",\"apiVersion\":\"meta.k8s.io/v1\","
    "\"metadata\":{\"resourceVersion\":\"10\"},\"items\":["
    "{\"metadata\":{\"name\":\"legacy\",\"labels\":{"
    "\"failure-domain.beta.kubernetes.io/zone\":\"us-east-1c\","
    "\"failure-domain.beta.kubernetes.io/region\":\"us-east-1\"}}},"
    "{\"metadata\":{\"name\":\"both\",\"labels\":{"
    "\"failure-domain.beta.kubernetes.io/zone\":\"us-east-1a\","
    "\"topology.kubernetes.io/zone\":\"us-east-1b\",\"topology.k8s.aws/zone-id\":\"use1-az4\"}}},"
    "{\"metadata\":{\"name\":\"bare\",\"labels\":{\"kubernetes.io/os\":\"linux\"}}}]}";

static void serve(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    api *a = ud;
    resp->content_type = "application/json";
    if (strcmp(req->url, "/api/v1/nodes") != 0) {
        resp->status = 404;
        resp->body = "{\"kind\":\"Status\",\"code\":404,\"reason\":\"NotFound\"}";
    } else if (strstr(req->query, "watch=1") == NULL) {
        resp->body = NODES;
    } else if (atomic_load(&a->quiet)) {
        resp->stall = 1;
    } else {
        resp->delay_ms = 200;
        resp->body = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":"
                     "\"10\"}}}\n";
    }
}

typedef struct fixture {
    api a;
    tw_testserver *srv;
    char server[64];
    tw_kube_config kube;
    hook_config cfg;
    hook_topology *t;
} fixture;

static void start(fixture *f, const char *copy_labels, long max_age_ms)
{
    memset(f, 0, sizeof(*f));
    f->srv = tw_testserver_start(serve, &f->a, NULL, NULL);
    assert_non_null(f->srv);
    snprintf(f->server, sizeof(f->server), "%s", tw_testserver_url(f->srv));
    f->kube.server = f->server;
    f->kube.token = (char *)"t";
    hook_config_defaults(&f->cfg);
    f->cfg.kube = &f->kube;
    if (copy_labels)
        f->cfg.copy_labels = copy_labels;
    f->cfg.cache_max_age_ms = max_age_ms;
    char err[TW_ERRLEN] = "";
    if (hook_topology_start(&f->cfg, &f->t, err) != TW_OK)
        fail_msg("start: %s", err);
    uint64_t until = tw_deadline_in(5000);
    while (!hook_topology_ready(f->t) && tw_remaining_ms(until) > 0)
        tw_sleep_ms(20, until);
    assert_true(hook_topology_ready(f->t));
}

static void stop(fixture *f)
{
    hook_topology_free(f->t);
    tw_testserver_stop(f->srv);
}

/* The annotations a binding to node would get, as "k=v;k=v" in patch order, or "-". */
static void annotations_for(hook_topology *t, const char *node, char *out, size_t n)
{
    cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"p\"},\"target\":{\"kind\":\"Node\"}}");
    tw_jsonpatch p;
    assert_int_equal(tw_jsonpatch_init(&p), TW_OK);
    char err[TW_ERRLEN] = "";
    int rc = hook_topology_patch(t, node, obj, tw_deadline_in(2000), &p, obj, err);
    if (rc != TW_OK)
        fail_msg("patch for %s: %s", node, err);
    out[0] = '\0';
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "annotations");
    const cJSON *it;
    size_t len = 0;
    cJSON_ArrayForEach(it, ann)
    {
        len += (size_t)snprintf(out + len, n - len, "%s%s=%s", len ? ";" : "", it->string,
                                it->valuestring);
    }
    if (len == 0)
        snprintf(out, n, "-");
    tw_jsonpatch_free(&p);
    cJSON_Delete(obj);
}

/* Issue 9 item 12: legacy failure-domain labels give the topology keys, as topowire-init reads. */
static void legacy_labels_stand_in(void **state)
{
    (void)state;
    fixture f;
    start(&f, NULL, 0);
    char got[512];
    annotations_for(f.t, "legacy", got, sizeof(got));
    assert_string_equal(got, "topology.kubernetes.io/zone=us-east-1c;"
                             "topology.kubernetes.io/region=us-east-1");
    annotations_for(f.t, "both", got, sizeof(got));
    assert_string_equal(got, "topology.kubernetes.io/zone=us-east-1b;"
                             "topology.k8s.aws/zone-id=use1-az4");
    annotations_for(f.t, "bare", got, sizeof(got));
    assert_string_equal(got, "-");
    stop(&f);
    /* Asked for by name, a legacy key is copied as itself too. */
    start(&f, "topology.kubernetes.io/zone,failure-domain.beta.kubernetes.io/zone", 0);
    annotations_for(f.t, "legacy", got, sizeof(got));
    assert_string_equal(got, "topology.kubernetes.io/zone=us-east-1c;"
                             "failure-domain.beta.kubernetes.io/zone=us-east-1c");
    stop(&f);
}

/* Issue 9 item 6: a cache that stops hearing from the API server stops saying ready. */
static void stale_cache_is_not_ready(void **state)
{
    (void)state;
    fixture f;
    start(&f, NULL, 1500);
    tw_buf b;
    tw_buf_init(&b, 64 * 1024);
    hook_topology_metrics(f.t, &b);
    assert_non_null(strstr(tw_buf_cstr(&b), "\ntopowire_node_cache_ready 1\n"));
    assert_non_null(strstr(tw_buf_cstr(&b), "\ntopowire_node_cache_age_seconds 0."));
    atomic_store(&f.a.quiet, 1);
    uint64_t until = tw_deadline_in(5000);
    while (hook_topology_ready(f.t) && tw_remaining_ms(until) > 0)
        tw_sleep_ms(50, until);
    assert_false(hook_topology_ready(f.t));
    tw_buf_reset(&b);
    hook_topology_metrics(f.t, &b);
    assert_non_null(strstr(tw_buf_cstr(&b), "\ntopowire_node_cache_ready 0\n"));
    const char *age = strstr(tw_buf_cstr(&b), "\ntopowire_node_cache_age_seconds ");
    assert_non_null(age);
    assert_true(strtod(age + 35, NULL) >= 1.5);
    tw_buf_free(&b);
    stop(&f);
}

int main(void)
{
    tw_http_global_init();
    tw_log_setup("test_binding", TW_LOG_TEXT, TW_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_keys_and_copy_as),
        cmocka_unit_test(null_topology),
        cmocka_unit_test(legacy_labels_stand_in),
        cmocka_unit_test(stale_cache_is_not_ready),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tw_http_global_cleanup();
    return rc;
}
