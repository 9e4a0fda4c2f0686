/* test_topology.c - the resolver: order, fill-missing, validation, deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/topology.h"

#define NODE "ip-10-0-41-17.ec2.internal"

typedef struct steps {
    int n;
    int bad_values;
    char log[4096];
} steps;

static void on_step(void *ud, tw_source src, int rc, const char *detail, const tw_topology *t)
{
    steps *s = ud;
    (void)t;
    s->n++;
    if (rc == TW_EBADVALUE)
        s->bad_values++;
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof(s->log) - len, "%s:%d:%s\n", tw_source_name(src), rc, detail);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tw-topo-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int clear_dir(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/annotations", tmpdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/labels", tmpdir);
    unlink(path);
    return 0;
}

static tw_resolve_options base_options(const tw_source *src, size_t n, steps *s)
{
    tw_resolve_options o;
    memset(&o, 0, sizeof(o));
    o.sources = src;
    o.n_sources = n;
    o.node = NODE;
    o.podinfo_dir = tmpdir;
    o.user_agent = "topowire-test";
    o.deadline = tw_deadline_in(5000);
    o.on_step = on_step;
    o.ud = s;
    return o;
}

/* The instance-metadata stand-in for these tests: AWS IMDSv1 answers only. */
static void aws_handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    const char *zone = ud;
    if (strcmp(req->method, "PUT") == 0) {
        resp->status = 405;
    } else if (strcmp(req->url, "/latest/meta-data/placement/availability-zone") == 0) {
        resp->body = zone;
    } else if (strcmp(req->url, "/latest/meta-data/placement/availability-zone-id") == 0) {
        resp->body = "use1-az4";
    } else if (strcmp(req->url, "/latest/meta-data/placement/region") == 0) {
        resp->body = "us-east-1";
    } else {
        resp->status = 404;
    }
}

static void downward_fixture_answers(void **state)
{
    (void)state;
    char *ann = tw_test_read_file(tw_fixture_path("podinfo/annotations"), NULL);
    assert_non_null(ann);
    write_file("annotations", ann);
    free(ann);
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_KUBERNETES, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 3, &s);
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "us-east-1b");
    assert_string_equal(t.zone, "us-east-1b");
    assert_string_equal(t.zone_id, "use1-az4");
    assert_string_equal(t.region, "us-east-1");
    assert_string_equal(t.node, NODE);
    assert_int_equal(t.source, TW_SOURCE_DOWNWARD);
    /* kube and imds are NULL: had they been asked, a step would say so. */
    assert_int_equal(s.n, 1);
}

static void later_sources_fill_only_missing_fields(void **state)
{
    (void)state;
    /* downward knows the zone (us-east-1a), not the zone ID that --rack zone-id wants. */
    write_file("annotations", "topology.kubernetes.io/zone=\"us-east-1a\"");
    tw_testserver *srv = tw_testserver_start(aws_handler, (void *)"us-east-1b", NULL, NULL);
    assert_non_null(srv);
    tw_imds_options imds = {.cloud = TW_CLOUD_AWS, .endpoint = tw_testserver_url(srv)};
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 2, &s);
    o.rack_kind = TW_RACK_ZONE_ID;
    o.imds = &imds;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "use1-az4");
    assert_int_equal(t.source, TW_SOURCE_IMDS);
    assert_string_equal(t.zone, "us-east-1a"); /* the first source's value is kept */
    assert_string_equal(t.region, "us-east-1");
    tw_testserver_stop(srv);
}

static void first_complete_source_wins_and_later_ones_are_not_asked(void **state)
{
    (void)state;
    write_file("labels", "topology.kubernetes.io/zone=\"us-east-1c\"");
    tw_testserver *srv = tw_testserver_start(aws_handler, (void *)"us-east-1b", NULL, NULL);
    assert_non_null(srv);
    tw_imds_options imds = {.cloud = TW_CLOUD_AWS, .endpoint = tw_testserver_url(srv)};
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 2, &s);
    o.imds = &imds;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "us-east-1c");
    assert_int_equal(t.source, TW_SOURCE_DOWNWARD);
    assert_int_equal(tw_testserver_requests(srv), 0);
    tw_testserver_stop(srv);
}

static void hostile_values_are_rejected_and_reported(void **state)
{
    (void)state;
    write_file("annotations", "topology.kubernetes.io/zone=\"us-east-1b\\n$(reboot)\"\n"
                              "topology.kubernetes.io/region=\"us-east-1\"");
    tw_testserver *srv = tw_testserver_start(aws_handler, (void *)"us-east-1d", NULL, NULL);
    tw_imds_options imds = {.cloud = TW_CLOUD_AWS, .endpoint = tw_testserver_url(srv)};
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 2, &s);
    o.imds = &imds;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "us-east-1d");
    assert_int_equal(t.source, TW_SOURCE_IMDS);
    assert_int_equal(s.bad_values, 1);
    assert_non_null(strstr(s.log, "rejected topology.kubernetes.io/zone"));
    /* The control byte is shown as '?', never raw. */
    assert_non_null(strstr(s.log, "us-east-1b?$(reboot)"));
    tw_testserver_stop(srv);
}

static void nothing_found_reports_partial_topology(void **state)
{
    (void)state;
    write_file("labels", "topology.kubernetes.io/region=\"us-east-1\"");
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_KUBERNETES, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 3, &s);
    o.kube_missing_reason = "not in a cluster";
    tw_topology t;
    memset(&t, 'x', sizeof(t));
    assert_int_equal(tw_resolve(&o, &t), TW_ENOTFOUND);
    assert_string_equal(t.rack, "");
    assert_string_equal(t.zone, "");
    assert_string_equal(t.region, "us-east-1");
    assert_int_equal(t.source, TW_SOURCE_NONE);
    assert_non_null(strstr(s.log, "kubernetes:-15:not in a cluster"));
    assert_non_null(strstr(s.log, "imds:"));
}

static void missing_node_name_skips_kubernetes(void **state)
{
    (void)state;
    tw_kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = (char *)"https://127.0.0.1:9";
    static const tw_source src[] = {TW_SOURCE_KUBERNETES};
    steps s = {0};
    tw_resolve_options o = base_options(src, 1, &s);
    o.kube = &cfg;
    o.node = NULL;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_ENOTFOUND);
    assert_non_null(strstr(s.log, "NODE_NAME"));
}

static void passed_deadline_skips_everything(void **state)
{
    (void)state;
    write_file("labels", "topology.kubernetes.io/zone=\"us-east-1c\"");
    static const tw_source src[] = {TW_SOURCE_DOWNWARD, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 2, &s);
    o.deadline = tw_now_ms() - 1;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_ETIMEDOUT);
    assert_string_equal(t.rack, "");
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.log, "deadline"));
}

static void rack_from_any_label_and_custom_keys(void **state)
{
    (void)state;
    write_file("labels", "rack.example.com/row=\"r7\"\nexample.com/az=\"az-2\"");
    static const tw_source src[] = {TW_SOURCE_DOWNWARD};
    static const char *const zone_keys[] = {"example.com/az", NULL};
    steps s = {0};
    tw_resolve_options o = base_options(src, 1, &s);
    o.rack_kind = TW_RACK_LABEL;
    o.rack_label = "rack.example.com/row";
    o.zone_keys = zone_keys;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "r7");
    assert_string_equal(t.label, "r7");
    assert_string_equal(t.zone, "az-2");
}

static void legacy_labels_are_read(void **state)
{
    (void)state;
    write_file("labels", "failure-domain.beta.kubernetes.io/zone=\"us-west-2a\"\n"
                         "failure-domain.beta.kubernetes.io/region=\"us-west-2\"");
    static const tw_source src[] = {TW_SOURCE_DOWNWARD};
    steps s = {0};
    tw_resolve_options o = base_options(src, 1, &s);
    o.rack_kind = TW_RACK_REGION;
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_string_equal(t.rack, "us-west-2");
    assert_string_equal(t.zone, "us-west-2a");
}

static void always_503(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    (void)ud;
    (void)req;
    resp->status = 503;
    resp->body = "{\"kind\":\"Status\",\"code\":503,\"message\":\"etcd is down\"}";
}

static void a_failing_source_leaves_time_for_the_next(void **state)
{
    (void)state;
    tw_testserver *api = tw_testserver_start(always_503, NULL, NULL, NULL);
    tw_testserver *md = tw_testserver_start(aws_handler, (void *)"us-east-1b", NULL, NULL);
    assert_non_null(api);
    assert_non_null(md);
    char server[64];
    snprintf(server, sizeof(server), "%s", tw_testserver_url(api));
    tw_kube_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.token = (char *)"a-long-enough-token";
    tw_imds_options imds = {.cloud = TW_CLOUD_AWS, .endpoint = tw_testserver_url(md)};
    static const tw_source src[] = {TW_SOURCE_KUBERNETES, TW_SOURCE_IMDS};
    steps s = {0};
    tw_resolve_options o = base_options(src, 2, &s);
    o.kube = &cfg;
    o.imds = &imds;
    uint64_t t0 = tw_now_ms();
    o.deadline = tw_deadline_in(3000);
    tw_topology t;
    assert_int_equal(tw_resolve(&o, &t), TW_OK);
    assert_int_equal(t.source, TW_SOURCE_IMDS);
    assert_true(tw_now_ms() - t0 < 3000);
    assert_true(tw_testserver_requests(api) >= 2); /* it did retry */
    assert_non_null(strstr(s.log, "etcd is down"));
    tw_testserver_stop(api);
    tw_testserver_stop(md);
}

static void parsers(void **state)
{
    (void)state;
    tw_rack_kind k;
    const char *key = NULL;
    assert_int_equal(tw_rack_parse("zone", &k, &key), TW_OK);
    assert_int_equal(k, TW_RACK_ZONE);
    assert_int_equal(tw_rack_parse("zone-id", &k, &key), TW_OK);
    assert_int_equal(k, TW_RACK_ZONE_ID);
    assert_int_equal(tw_rack_parse("region", &k, &key), TW_OK);
    assert_int_equal(k, TW_RACK_REGION);
    assert_int_equal(tw_rack_parse("label:topology.k8s.aws/zone-id", &k, &key), TW_OK);
    assert_int_equal(k, TW_RACK_LABEL);
    assert_string_equal(key, "topology.k8s.aws/zone-id");
    assert_int_equal(tw_rack_parse("label:", &k, &key), TW_EINVAL);
    assert_int_equal(tw_rack_parse("label:Bad Key", &k, &key), TW_EINVAL);
    assert_int_equal(tw_rack_parse("Zone", &k, &key), TW_EINVAL);
    tw_source src;
    assert_int_equal(tw_source_parse("imds", &src), TW_OK);
    assert_int_equal(src, TW_SOURCE_IMDS);
    assert_int_equal(tw_source_parse("cloud", &src), TW_EINVAL);
    assert_string_equal(tw_source_name(TW_SOURCE_NONE), "none");
    assert_string_equal(tw_source_name(TW_SOURCE_KUBERNETES), "kubernetes");
}

int main(void)
{
    tw_http_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(downward_fixture_answers, clear_dir),
        cmocka_unit_test_setup(later_sources_fill_only_missing_fields, clear_dir),
        cmocka_unit_test_setup(first_complete_source_wins_and_later_ones_are_not_asked, clear_dir),
        cmocka_unit_test_setup(hostile_values_are_rejected_and_reported, clear_dir),
        cmocka_unit_test_setup(nothing_found_reports_partial_topology, clear_dir),
        cmocka_unit_test_setup(missing_node_name_skips_kubernetes, clear_dir),
        cmocka_unit_test_setup(passed_deadline_skips_everything, clear_dir),
        cmocka_unit_test_setup(rack_from_any_label_and_custom_keys, clear_dir),
        cmocka_unit_test_setup(legacy_labels_are_read, clear_dir),
        cmocka_unit_test_setup(a_failing_source_leaves_time_for_the_next, clear_dir),
        cmocka_unit_test(parsers),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    tw_http_global_cleanup();
    return rc;
}
