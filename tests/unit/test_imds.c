/* test_imds.c - the instance-metadata clients against a loopback stand-in for AWS, GCP and Azure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support/testserver.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/imds.h"

#include "../../lib/imds_int.h"

#define TOKEN      "AQAEAKq4-fake_token-Yw=="
#define TOKEN_WAIT 300 /* token_timeout_ms in the tests */
#define MARGIN     700 /* ms allowed past an expected time (slow sanitizer builds) */
#define NO_DMI     "/nonexistent/topowire-dmi"
#define LONG_WAIT  5000

/* The fixtures, read once. */
static char *fx_zone, *fx_zone_id, *fx_region, *fx_gcp_zone, *fx_azure;

/*
 * What the stand-in plays and what it saw. Behaviour fields are set before
 * the server starts; the counters are written from the server's threads.
 */
typedef struct stub {
    bool aws, gcp, azure;
    int put_status;                                 /* 0: 200 with a token */
    const char *put_body;                           /* NULL: TOKEN */
    bool put_stall;                                 /* answer the PUT's headers, never its body */
    long put_delay_ms;                              /* answer the PUT this late */
    bool v2_only;                                   /* a GET without a token gets 401 */
    int zone_status, zone_id_status, region_status; /* 0: 200 */
    const char *zone_body, *zone_id_body, *region_body; /* NULL: the fixture */
    size_t zone_len;                                    /* for a body with a NUL */
    long get_delay_ms;                                  /* AWS GETs answer this late */
    long all_delay_ms;                                  /* every answer this late */
    int gcp_status;
    const char *gcp_body;
    int azure_status;
    const char *azure_body;
    const char *want_ua; /* user agent expected */

    atomic_int puts, put_ttl_ok, aws_gets, gets_token_ok, gets_token_bad, gets_no_token;
    atomic_int gcp_gets, gcp_flavor_ok, azure_gets, azure_header_ok, ua_ok, ua_seen;
} stub;

/* The name of c for failure messages. */
static const char *cloud_str(tw_cloud c)
{
    static const char *const names[] = {"auto", "aws", "gcp", "azure"};
    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

static bool streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static void aws_leaf(stub *st, const char *leaf, tw_testresp *resp)
{
    if (strcmp(leaf, "availability-zone") == 0) {
        resp->status = st->zone_status;
        resp->body = st->zone_body ? st->zone_body : fx_zone;
        resp->body_len = st->zone_len;
    } else if (strcmp(leaf, "availability-zone-id") == 0) {
        resp->status = st->zone_id_status;
        resp->body = st->zone_id_body ? st->zone_id_body : fx_zone_id;
    } else if (strcmp(leaf, "region") == 0) {
        resp->status = st->region_status;
        resp->body = st->region_body ? st->region_body : fx_region;
    } else {
        resp->status = 404;
    }
    if (resp->status == 301)
        resp->headers[0] = "Location: http://127.0.0.1:1/elsewhere";
    if (resp->status != 0 && resp->status != 200)
        resp->body = "error";
}

static void handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    stub *st = ud;
    static const char placement[] = "/latest/meta-data/placement/";
    const char *ua = tw_testreq_header(req, "User-Agent");
    atomic_fetch_add(&st->ua_seen, 1);
    if (st->want_ua ? streq(ua, st->want_ua) : (ua != NULL && strncmp(ua, "topowire/", 9) == 0))
        atomic_fetch_add(&st->ua_ok, 1);
    resp->content_type = "text/plain";
    resp->delay_ms = st->all_delay_ms;

    if (st->aws && streq(req->method, "PUT") && streq(req->url, "/latest/api/token")) {
        atomic_fetch_add(&st->puts, 1);
        bool ttl = streq(tw_testreq_header(req, "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
        if (ttl)
            atomic_fetch_add(&st->put_ttl_ok, 1);
        if (st->put_stall) {
            resp->stall = 1;
            return;
        }
        if (st->put_delay_ms)
            resp->delay_ms = st->put_delay_ms;
        if (st->put_status) {
            resp->status = st->put_status;
            return;
        }
        if (!ttl) {
            resp->status = 400;
            return;
        }
        resp->body = st->put_body ? st->put_body : TOKEN;
        return;
    }
    if (st->aws && streq(req->method, "GET") &&
        strncmp(req->url, placement, sizeof(placement) - 1) == 0) {
        atomic_fetch_add(&st->aws_gets, 1);
        const char *tok = tw_testreq_header(req, "X-aws-ec2-metadata-token");
        if (tok != NULL && strcmp(tok, TOKEN) != 0) {
            atomic_fetch_add(&st->gets_token_bad, 1);
            resp->status = 401;
            return;
        }
        if (tok != NULL)
            atomic_fetch_add(&st->gets_token_ok, 1);
        else
            atomic_fetch_add(&st->gets_no_token, 1);
        if (tok == NULL && st->v2_only) {
            resp->status = 401;
            return;
        }
        if (st->get_delay_ms)
            resp->delay_ms = st->get_delay_ms;
        aws_leaf(st, req->url + sizeof(placement) - 1, resp);
        return;
    }
    if (st->gcp && streq(req->method, "GET") &&
        streq(req->url, "/computeMetadata/v1/instance/zone")) {
        atomic_fetch_add(&st->gcp_gets, 1);
        /* The real server refuses a request without the header, and says nothing of itself. */
        if (!streq(tw_testreq_header(req, "Metadata-Flavor"), "Google")) {
            resp->status = 403;
            resp->body = "Missing Metadata-Flavor:Google header.";
            return;
        }
        atomic_fetch_add(&st->gcp_flavor_ok, 1);
        resp->headers[0] = "Metadata-Flavor: Google";
        resp->status = st->gcp_status;
        resp->body = st->gcp_body ? st->gcp_body : fx_gcp_zone;
        return;
    }
    if (st->azure && streq(req->method, "GET") && streq(req->url, "/metadata/instance")) {
        atomic_fetch_add(&st->azure_gets, 1);
        if (!streq(tw_testreq_header(req, "Metadata"), "true") ||
            strcmp(req->query, "api-version=2021-02-01") != 0) {
            resp->status = 400;
            resp->content_type = "application/json";
            resp->body = "{\"error\":\"Bad request. Required metadata header not specified\"}";
            return;
        }
        atomic_fetch_add(&st->azure_header_ok, 1);
        resp->status = st->azure_status;
        resp->content_type = "application/json";
        resp->body = st->azure_body ? st->azure_body : fx_azure;
        return;
    }
    resp->status = 404;
    resp->body = "not found";
}

static tw_testserver *start(stub *st)
{
    tw_testserver *s = tw_testserver_start(handler, st, NULL, NULL);
    assert_non_null(s);
    return s;
}

static tw_imds_options options(tw_testserver *s, tw_cloud cloud)
{
    tw_imds_options o = {0};
    o.cloud = cloud;
    o.endpoint = tw_testserver_url(s);
    o.dmi_dir = NO_DMI;
    o.token_timeout_ms = TOKEN_WAIT;
    return o;
}

/* A result full of marks, to see that a failing call leaves it alone. */
static tw_imds_result marked(void)
{
    tw_imds_result r;
    memset(&r, 'x', sizeof(r));
    r.zone[0] = 'M';
    r.zone[1] = '\0';
    return r;
}

static void assert_untouched(const tw_imds_result *r)
{
    assert_string_equal(r->zone, "M");
}

/* ---- AWS ---------------------------------------------------------------- */

static void aws_v2_happy_path(void **state)
{
    (void)state;
    stub st = {.aws = true, .v2_only = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r = marked();
    char err[TW_ERRLEN] = "stale";
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_AWS);
    assert_string_equal(r.zone, "us-east-1b");
    assert_string_equal(r.zone_id, "use1-az4");
    assert_string_equal(r.region, "us-east-1");
    assert_int_equal(r.imds_v1, 0);
    assert_string_equal(err, "");
    assert_int_equal(atomic_load(&st.puts), 1);
    assert_int_equal(atomic_load(&st.put_ttl_ok), 1);
    assert_int_equal(atomic_load(&st.gets_token_ok), 3);
    assert_int_equal(atomic_load(&st.gets_token_bad), 0);
    assert_int_equal(atomic_load(&st.gets_no_token), 0);
    assert_int_equal(atomic_load(&st.ua_ok), tw_testserver_requests(s));
    tw_testserver_stop(s);
}

static void aws_custom_user_agent(void **state)
{
    (void)state;
    stub st = {.aws = true, .want_ua = "rack-finder/2.0"};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    o.user_agent = "rack-finder/2.0";
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_int_equal(atomic_load(&st.ua_seen), 4);
    assert_int_equal(atomic_load(&st.ua_ok), 4);
    tw_testserver_stop(s);
}

static void aws_put_refused_falls_back_to_v1(void **state)
{
    (void)state;
    static const int refusals[] = {403, 404, 405};
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        stub st = {.aws = true, .put_status = refusals[i]};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AWS);
        tw_imds_result r;
        char err[TW_ERRLEN];
        assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
        assert_int_equal(r.imds_v1, 1);
        assert_string_equal(r.zone, "us-east-1b");
        assert_string_equal(r.zone_id, "use1-az4");
        assert_string_equal(r.region, "us-east-1");
        assert_int_equal(atomic_load(&st.puts), 1);
        assert_int_equal(atomic_load(&st.gets_no_token), 3);
        assert_int_equal(atomic_load(&st.gets_token_ok), 0);
        tw_testserver_stop(s);
    }
}

static void aws_put_other_status_is_an_error(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_status = 503};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_ERETRY);
    assert_non_null(strstr(err, "503"));
    assert_untouched(&r);
    assert_int_equal(atomic_load(&st.aws_gets), 0);
    tw_testserver_stop(s);
}

static void aws_put_stall_falls_back_within_token_timeout(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_stall = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took >= TOKEN_WAIT - 20);
    assert_true(took < TOKEN_WAIT + MARGIN);
    assert_int_equal(r.imds_v1, 1);
    assert_string_equal(r.zone, "us-east-1b");
    assert_int_equal(atomic_load(&st.gets_no_token), 3);
    tw_testserver_stop(s);
}

static void aws_put_delay_falls_back_within_token_timeout(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_delay_ms = 1500};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    o.token_timeout_ms = 200;
    tw_imds_result r;
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took < 200 + MARGIN);
    assert_int_equal(r.imds_v1, 1);
    assert_string_equal(r.zone, "us-east-1b");
    tw_testserver_stop(s);
}

static void aws_default_token_timeout_is_500ms(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_stall = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    o.token_timeout_ms = 0;
    tw_imds_result r;
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took >= 480);
    assert_true(took < 500 + MARGIN);
    assert_int_equal(r.imds_v1, 1);
    tw_testserver_stop(s);
}

static void aws_v2_required_and_put_hangs_is_clear_error(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_stall = true, .v2_only = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_EUNAUTH);
    assert_true(tw_now_ms() - t0 < TOKEN_WAIT + MARGIN);
    assert_non_null(strstr(err, "IMDSv2"));
    assert_non_null(strstr(err, "hop limit"));
    assert_untouched(&r);
    assert_int_equal(atomic_load(&st.gets_no_token), 1);
    tw_testserver_stop(s);
}

static void aws_token_rejected_is_unauthorized(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_body = "some-other-token"};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_EUNAUTH);
    assert_null(strstr(err, "some-other-token"));
    assert_int_equal(atomic_load(&st.gets_token_bad), 1);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void aws_unusable_token_falls_back_to_v1(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_body = "bad token\r\nX-Injected: 1"};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_int_equal(r.imds_v1, 1);
    assert_non_null(strstr(err, "token"));
    assert_int_equal(atomic_load(&st.gets_token_bad), 0);
    assert_int_equal(atomic_load(&st.gets_no_token), 3);
    tw_testserver_stop(s);
}

static void aws_zone_id_404_is_empty_and_success(void **state)
{
    (void)state;
    stub st = {.aws = true, .zone_id_status = 404};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_string_equal(r.zone, "us-east-1b");
    assert_string_equal(r.zone_id, "");
    assert_string_equal(r.region, "us-east-1");
    assert_string_equal(err, "");
    tw_testserver_stop(s);
}

static void aws_region_404_is_derived(void **state)
{
    (void)state;
    stub st = {.aws = true, .zone_body = "eu-west-3a", .region_status = 404};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_string_equal(r.zone, "eu-west-3a");
    assert_string_equal(r.region, "eu-west-3");
    assert_string_equal(err, "");
    tw_testserver_stop(s);
}

static void aws_trailing_newline_trimmed(void **state)
{
    (void)state;
    stub st = {.aws = true,
               .zone_body = "us-west-2-lax-1a\n",
               .zone_id_body = "usw2-lax1-az1\n",
               .region_status = 404};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_string_equal(r.zone, "us-west-2-lax-1a");
    assert_string_equal(r.zone_id, "usw2-lax1-az1");
    assert_string_equal(r.region, "us-west-2");
    tw_testserver_stop(s);
}

static void aws_hostile_zone_is_bad_value(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t len;
    } cases[] = {
        {"us-east-1b; rm -rf /", 0},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0}, /* 64 */
        {"", 0},
        {"\n", 0},
        {"us-east-1b\n\n", 0},
        {"us-east-1b\0evil", 15},
        {"$(reboot)", 0},
        {"us-east-1b\r\nSet-Cookie: x", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stub st = {.aws = true, .zone_body = cases[i].body, .zone_len = cases[i].len};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AWS);
        tw_imds_result r = marked();
        char err[TW_ERRLEN];
        int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err);
        if (rc != TW_EBADVALUE)
            fail_msg("case %zu: got %d (%s)", i, rc, err);
        assert_non_null(strstr(err, "not a valid label value"));
        assert_null(strstr(err, "rm -rf"));
        assert_untouched(&r);
        tw_testserver_stop(s);
    }
}

static void aws_hostile_zone_id_and_region_dropped(void **state)
{
    (void)state;
    stub st = {.aws = true, .zone_id_body = "use1-az4$(reboot)", .region_body = "us east 1"};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_string_equal(r.zone, "us-east-1b");
    assert_string_equal(r.zone_id, "");
    assert_string_equal(r.region, "us-east-1"); /* derived instead */
    assert_non_null(strstr(err, "availability-zone-id"));
    assert_non_null(strstr(err, "region"));
    assert_null(strstr(err, "reboot"));
    tw_testserver_stop(s);
}

static void aws_zone_id_server_error_is_noted(void **state)
{
    (void)state;
    stub st = {.aws = true, .zone_id_status = 500};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_string_equal(r.zone, "us-east-1b");
    assert_string_equal(r.zone_id, "");
    assert_string_equal(r.region, "us-east-1");
    assert_non_null(strstr(err, "500"));
    tw_testserver_stop(s);
}

static void aws_zone_status_errors(void **state)
{
    (void)state;
    static const struct {
        int status;
        int rc;
    } cases[] = {
        {500, TW_ERETRY},    {503, TW_ERETRY},     {429, TW_ERETRY},
        {404, TW_ENOTFOUND}, {403, TW_EFORBIDDEN}, {301, TW_EREDIRECT},
        {410, TW_EGONE},     {418, TW_EHTTP},      {204, TW_EHTTP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stub st = {.aws = true, .zone_status = cases[i].status};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AWS);
        tw_imds_result r = marked();
        char err[TW_ERRLEN] = "";
        int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err);
        if (rc != cases[i].rc)
            fail_msg("status %d: got %d, want %d (%s)", cases[i].status, rc, cases[i].rc, err);
        assert_true(err[0] != '\0');
        assert_untouched(&r);
        /* Nothing else is asked once the zone failed. */
        assert_int_equal(atomic_load(&st.aws_gets), 1);
        tw_testserver_stop(s);
    }
}

static void aws_slow_server_times_out_at_deadline(void **state)
{
    (void)state;
    stub st = {.aws = true, .get_delay_ms = 1500};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(500), &r, err), TW_ETIMEDOUT);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took >= 480);
    assert_true(took < 500 + MARGIN);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void aws_deadline_shorter_than_token_wait(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_stall = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    o.token_timeout_ms = 2000;
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(300), &r, err), TW_ETIMEDOUT);
    assert_true(tw_now_ms() - t0 < 300 + MARGIN);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void aws_disabled_sends_nothing(void **state)
{
    (void)state;
    stub st = {.aws = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    o.aws_disabled = 1;
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_EDISABLED);
    assert_non_null(strstr(err, "AWS_EC2_METADATA_DISABLED"));
    assert_untouched(&r);
    assert_int_equal(tw_testserver_requests(s), 0);
    tw_testserver_stop(s);
}

/* Sets or unsets one variable, remembering the old value in saved (caller frees). */
static void swap_env(const char *name, const char *value, char **saved)
{
    const char *old = getenv(name);
    *saved = old ? strdup(old) : NULL;
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void restore_env(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void never_through_a_proxy(void **state)
{
    (void)state;
    static const char *const names[] = {"http_proxy", "HTTP_PROXY", "all_proxy",
                                        "ALL_PROXY",  "no_proxy",   "NO_PROXY"};
    static const char *const values[] = {"http://127.0.0.1:9",
                                         "http://127.0.0.1:9",
                                         "http://127.0.0.1:9",
                                         "http://127.0.0.1:9",
                                         NULL,
                                         NULL};
    char *saved[6];
    for (size_t i = 0; i < 6; i++)
        swap_env(names[i], values[i], &saved[i]);
    stub st = {.aws = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AWS);
    tw_imds_result r;
    char err[TW_ERRLEN];
    int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err);
    for (size_t i = 0; i < 6; i++)
        restore_env(names[i], saved[i]);
    assert_int_equal(rc, TW_OK);
    assert_string_equal(r.zone, "us-east-1b");
    assert_int_equal(tw_testserver_requests(s), 4);
    tw_testserver_stop(s);
}

static void connection_refused_is_net_error(void **state)
{
    (void)state;
    /* A port nothing listens on: start a server, note its URL, stop it. */
    stub st = {0};
    tw_testserver *s = start(&st);
    char url[64];
    snprintf(url, sizeof(url), "%s", tw_testserver_url(s));
    tw_testserver_stop(s);
    tw_imds_options o = {.cloud = TW_CLOUD_AWS, .endpoint = url, .dmi_dir = NO_DMI};
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_ENET);
    assert_true(err[0] != '\0');
    assert_untouched(&r);
}

static void bad_arguments(void **state)
{
    (void)state;
    tw_imds_options o = {.cloud = (tw_cloud)42, .dmi_dir = NO_DMI};
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(100), &r, err), TW_EINVAL);
    assert_int_equal(tw_imds_query(NULL, tw_deadline_in(100), &r, err), TW_EINVAL);
    o.cloud = TW_CLOUD_AWS;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(100), NULL, err), TW_EINVAL);
    assert_untouched(&r);
}

/* ---- GCP ---------------------------------------------------------------- */

static void gcp_happy_path(void **state)
{
    (void)state;
    stub st = {.gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_GCP);
    char endpoint[96];
    snprintf(endpoint, sizeof(endpoint), "%s/", tw_testserver_url(s)); /* a trailing slash */
    o.endpoint = endpoint;
    tw_imds_result r = marked();
    char err[TW_ERRLEN] = "stale";
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_GCP);
    assert_string_equal(r.zone, "europe-west1-d");
    assert_string_equal(r.region, "europe-west1");
    assert_string_equal(r.zone_id, "");
    assert_int_equal(r.imds_v1, 0);
    assert_string_equal(err, "");
    assert_int_equal(tw_testserver_requests(s), 1);
    tw_testserver_stop(s);
}

static void gcp_sends_metadata_flavor(void **state)
{
    (void)state;
    /* The stand-in answers 403 without the header: success proves it was sent. */
    stub st = {.gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_GCP);
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_int_equal(atomic_load(&st.gcp_gets), 1);
    assert_int_equal(atomic_load(&st.gcp_flavor_ok), 1);
    tw_testserver_stop(s);
}

static void gcp_status_errors(void **state)
{
    (void)state;
    static const struct {
        int status;
        int rc;
    } cases[] = {{403, TW_EFORBIDDEN}, {404, TW_ENOTFOUND}, {500, TW_ERETRY}, {400, TW_EHTTP}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stub st = {.gcp = true, .gcp_status = cases[i].status};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_GCP);
        tw_imds_result r = marked();
        char err[TW_ERRLEN];
        assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), cases[i].rc);
        assert_non_null(strstr(err, "GCP"));
        assert_untouched(&r);
        tw_testserver_stop(s);
    }
}

static void gcp_malformed_answers(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"europe-west1-d", TW_EPARSE},
        {"projects/1/regions/europe-west1", TW_EPARSE},
        {"", TW_EPARSE},
        {"projects/1/zones/", TW_EBADVALUE},
        {"projects/1/zones/europe west1", TW_EBADVALUE},
        {"projects/1/zones/europe-west1-d;id", TW_EBADVALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stub st = {.gcp = true, .gcp_body = cases[i].body};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_GCP);
        tw_imds_result r = marked();
        char err[TW_ERRLEN];
        int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err);
        if (rc != cases[i].rc)
            fail_msg("body \"%s\": got %d, want %d (%s)", cases[i].body, rc, cases[i].rc, err);
        assert_untouched(&r);
        tw_testserver_stop(s);
    }
}

static void gcp_zone_with_newline(void **state)
{
    (void)state;
    stub st = {.gcp = true, .gcp_body = "projects/7/zones/us-central1-f\n"};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_GCP);
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_string_equal(r.zone, "us-central1-f");
    assert_string_equal(r.region, "us-central1");
    tw_testserver_stop(s);
}

/* ---- Azure -------------------------------------------------------------- */

static void azure_happy_path(void **state)
{
    (void)state;
    stub st = {.azure = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AZURE);
    tw_imds_result r = marked();
    char err[TW_ERRLEN] = "stale";
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_AZURE);
    assert_string_equal(r.zone, "eastus-2");
    assert_string_equal(r.region, "eastus");
    assert_string_equal(r.zone_id, "");
    assert_string_equal(err, "");
    /* The stand-in answers 400 without "Metadata: true" and the api-version. */
    assert_int_equal(atomic_load(&st.azure_gets), 1);
    assert_int_equal(atomic_load(&st.azure_header_ok), 1);
    tw_testserver_stop(s);
}

static void azure_regional_vm_is_not_found(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"compute\":{\"location\":\"westeurope\",\"zone\":\"\"}}",
        "{\"compute\":{\"location\":\"westeurope\"}}",
        "{\"compute\":{\"location\":\"westeurope\",\"zone\":null}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        stub st = {.azure = true, .azure_body = bodies[i]};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AZURE);
        tw_imds_result r = marked();
        char err[TW_ERRLEN];
        assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_ENOTFOUND);
        assert_non_null(strstr(err, "regional"));
        assert_untouched(&r);
        tw_testserver_stop(s);
    }
}

static void azure_malformed_answers(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"{\"compute\": {\"location\": \"eastus\"", TW_EPARSE},
        {"not json", TW_EPARSE},
        {"[]", TW_EPARSE},
        {"{}", TW_EPARSE},
        {"{\"compute\":\"eastus\"}", TW_EPARSE},
        {"{\"compute\":{\"zone\":\"2\"}}", TW_EPARSE},
        {"{\"compute\":{\"location\":5,\"zone\":\"2\"}}", TW_EPARSE},
        {"{\"compute\":{\"location\":\"eastus\",\"zone\":2}}", TW_EPARSE},
        {"{\"compute\":{\"location\":\"east us\",\"zone\":\"2\"}}", TW_EBADVALUE},
        {"{\"compute\":{\"location\":\"eastus\",\"zone\":\"2;x\"}}", TW_EBADVALUE},
        {"{\"compute\":{\"location\":\"eastuseastuseastuseastuseastuseastuseastuseastuseastuseas"
         "tuseastus\",\"zone\":\"2\"}}",
         TW_EBADVALUE},
        /* An escaped NUL once cut the value short and "2\u0000junk" passed as "2". */
        {"{\"compute\":{\"location\":\"eastus\",\"zone\":\"2\\u0000junk\"}}", TW_EBADVALUE},
        {"{\"compute\":{\"location\":\"eastus\",\"zone\":\"2\\u0000\"}}", TW_EBADVALUE},
        {"{\"compute\":{\"location\":\"eastus\\u0000x\",\"zone\":\"2\"}}", TW_EBADVALUE},
        {"{\"compute\":{\"location\":\"eastus\",\"zone\":\"\\u0000\"}}", TW_EBADVALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stub st = {.azure = true, .azure_body = cases[i].body};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AZURE);
        tw_imds_result r = marked();
        char err[TW_ERRLEN];
        int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: got %d, want %d (%s)", i, rc, cases[i].rc, err);
        assert_untouched(&r);
        tw_testserver_stop(s);
    }
}

static void azure_status_error(void **state)
{
    (void)state;
    stub st = {.azure = true, .azure_status = 500};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AZURE);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_ERETRY);
    assert_non_null(strstr(err, "500"));
    assert_untouched(&r);
    tw_testserver_stop(s);
}

/* ---- DMI and auto-detection --------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Makes a fake DMI directory from "name=value" pairs; caller removes it with rm_dir. */
static void make_dmi(char dir[64], const char *const *pairs)
{
    snprintf(dir, 64, "/tmp/tw-dmi-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; pairs[i] != NULL; i++) {
        char name[64];
        const char *eq = strchr(pairs[i], '=');
        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - pairs[i]), pairs[i]);
        char value[256];
        snprintf(value, sizeof(value), "%s\n", eq + 1); /* the kernel ends each with a newline */
        write_file(dir, name, value);
    }
}

static void rm_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static const char *const dmi_aws_nitro[] = {"sys_vendor=Amazon EC2", "product_name=m5.large",
                                            "board_vendor=Amazon EC2", "bios_vendor=Amazon EC2",
                                            NULL};
static const char *const dmi_aws_xen[] = {
    "sys_vendor=Xen",  "product_name=HVM domU",    "product_version=4.11.amazon",
    "bios_vendor=Xen", "bios_version=4.11.amazon", NULL};
static const char *const dmi_gcp[] = {"sys_vendor=Google", "product_name=Google Compute Engine",
                                      "board_vendor=Google", "bios_vendor=Google", NULL};
static const char *const dmi_azure[] = {
    "sys_vendor=Microsoft Corporation", "product_name=Virtual Machine",
    "board_vendor=Microsoft Corporation", "bios_vendor=Microsoft Corporation", NULL};
static const char *const dmi_qemu[] = {
    "sys_vendor=QEMU", "product_name=Standard PC (Q35 + ICH9, 2009)", "bios_vendor=SeaBIOS", NULL};
static const char *const dmi_surface[] = {"sys_vendor=Microsoft Corporation",
                                          "product_name=Surface Laptop 5", NULL};
static const char *const dmi_empty[] = {NULL};

static void dmi_detection(void **state)
{
    (void)state;
    static const struct {
        const char *const *pairs;
        tw_cloud want;
    } cases[] = {
        {dmi_aws_nitro, TW_CLOUD_AWS}, {dmi_aws_xen, TW_CLOUD_AWS}, {dmi_gcp, TW_CLOUD_GCP},
        {dmi_azure, TW_CLOUD_AZURE},   {dmi_qemu, TW_CLOUD_AUTO},   {dmi_surface, TW_CLOUD_AUTO},
        {dmi_empty, TW_CLOUD_AUTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[64];
        make_dmi(dir, cases[i].pairs);
        tw_cloud got = tw__imds_detect(dir);
        rm_dir(dir);
        if (got != cases[i].want)
            fail_msg("case %zu: detected %s, want %s", i, cloud_str(got), cloud_str(cases[i].want));
    }
    assert_int_equal(tw__imds_detect(NO_DMI), TW_CLOUD_AUTO);
}

static void auto_follows_dmi(void **state)
{
    (void)state;
    static const struct {
        const char *const *pairs;
        tw_cloud want;
        const char *zone;
    } cases[] = {
        {dmi_aws_nitro, TW_CLOUD_AWS, "us-east-1b"},
        {dmi_gcp, TW_CLOUD_GCP, "europe-west1-d"},
        {dmi_azure, TW_CLOUD_AZURE, "eastus-2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[64];
        make_dmi(dir, cases[i].pairs);
        stub st = {.aws = true, .gcp = true, .azure = true};
        tw_testserver *s = start(&st);
        tw_imds_options o = options(s, TW_CLOUD_AUTO);
        o.dmi_dir = dir;
        tw_imds_result r;
        assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
        rm_dir(dir);
        assert_int_equal(r.cloud, cases[i].want);
        assert_string_equal(r.zone, cases[i].zone);
        /* Only the cloud DMI names is asked. */
        assert_int_equal(atomic_load(&st.puts) > 0, cases[i].want == TW_CLOUD_AWS);
        assert_int_equal(atomic_load(&st.gcp_gets) > 0, cases[i].want == TW_CLOUD_GCP);
        assert_int_equal(atomic_load(&st.azure_gets) > 0, cases[i].want == TW_CLOUD_AZURE);
        tw_testserver_stop(s);
    }
}

static void auto_aws_dmi_but_disabled(void **state)
{
    (void)state;
    char dir[64];
    make_dmi(dir, dmi_aws_xen);
    stub st = {.aws = true, .gcp = true, .azure = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    o.dmi_dir = dir;
    o.aws_disabled = 1;
    tw_imds_result r = marked();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_EDISABLED);
    rm_dir(dir);
    assert_int_equal(tw_testserver_requests(s), 0);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void auto_without_dmi_probes_to_gcp(void **state)
{
    (void)state;
    stub st = {.gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    tw_imds_result r;
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_GCP);
    assert_string_equal(r.zone, "europe-west1-d");
    assert_string_equal(r.region, "europe-west1");
    assert_string_equal(err, "");
    /* AWS was asked first (token PUT, then an IMDSv1 GET), Azure never. */
    assert_int_equal(tw_testserver_requests(s), 3);
    assert_int_equal(atomic_load(&st.gcp_gets), 1);
    tw_testserver_stop(s);
}

static void auto_unknown_dmi_probes_to_azure(void **state)
{
    (void)state;
    char dir[64];
    make_dmi(dir, dmi_qemu);
    stub st = {.azure = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    o.dmi_dir = dir;
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    rm_dir(dir);
    assert_int_equal(r.cloud, TW_CLOUD_AZURE);
    assert_string_equal(r.zone, "eastus-2");
    assert_int_equal(tw_testserver_requests(s), 4); /* PUT, v1 GET, GCP, Azure */
    tw_testserver_stop(s);
}

static void auto_probe_finds_aws_v1(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_status = 404, .gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_AWS);
    assert_int_equal(r.imds_v1, 1);
    assert_string_equal(r.zone_id, "use1-az4");
    assert_int_equal(atomic_load(&st.gcp_gets), 0);
    tw_testserver_stop(s);
}

static void auto_probe_reports_aws_v2_required(void **state)
{
    (void)state;
    stub st = {.aws = true, .put_stall = true, .v2_only = true, .gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_EUNAUTH);
    assert_non_null(strstr(err, "hop limit"));
    assert_int_equal(atomic_load(&st.gcp_gets), 0);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void auto_probe_skips_disabled_aws(void **state)
{
    (void)state;
    stub st = {.aws = true, .gcp = true};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    o.aws_disabled = 1;
    tw_imds_result r;
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL), TW_OK);
    assert_int_equal(r.cloud, TW_CLOUD_GCP);
    assert_int_equal(atomic_load(&st.puts), 0);
    assert_int_equal(atomic_load(&st.aws_gets), 0);
    tw_testserver_stop(s);
}

static void auto_nothing_answers_is_not_found(void **state)
{
    (void)state;
    stub st = {0};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, err), TW_ENOTFOUND);
    assert_non_null(strstr(err, "no cloud"));
    assert_int_equal(tw_testserver_requests(s), 4);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

static void auto_probing_stays_inside_deadline(void **state)
{
    (void)state;
    /* Everything hangs: each cloud gets a share, the whole stays within the deadline. */
    stub st = {.aws = true, .put_stall = true, .gcp = true, .azure = true, .all_delay_ms = 1500};
    tw_testserver *s = start(&st);
    tw_imds_options o = options(s, TW_CLOUD_AUTO);
    o.token_timeout_ms = 2000;
    tw_imds_result r = marked();
    char err[TW_ERRLEN];
    uint64_t t0 = tw_now_ms();
    assert_int_equal(tw_imds_query(&o, tw_deadline_in(900), &r, err), TW_ENOTFOUND);
    uint64_t took = tw_now_ms() - t0;
    assert_true(took < 900 + MARGIN);
    /* Every cloud was given its turn. */
    assert_int_equal(atomic_load(&st.puts), 1);
    assert_int_equal(atomic_load(&st.gcp_gets), 1);
    assert_int_equal(atomic_load(&st.azure_gets), 1);
    assert_untouched(&r);
    tw_testserver_stop(s);
}

/* ---- pure functions ----------------------------------------------------- */

/* Copies n bytes into a buffer of exactly n bytes, so that ASan sees any read past the answer. */
static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

/* The answer parsers alone, as fuzz_imds drives them: lengths are honoured, nothing is assumed NUL.
 */
static void answers_parsed_without_http(void **state)
{
    (void)state;
    char out[64] = "keep", zone[64] = "keep", region[64] = "keep", err[TW_ERRLEN];
    char token[TW__IMDS_TOKEN_MAX] = "keep";
    bool spoke = false;
    char *p = exact("us-east-1b\r\n", 12);
    assert_true(tw__imds_take_value(p, 12, out));
    assert_string_equal(out, "us-east-1b");
    assert_false(tw__imds_take_value(p, 3, out)); /* "us-" */
    assert_string_equal(out, "us-east-1b");
    free(p);
    p = exact("tok en", 6);
    assert_false(tw__imds_take_token(p, 6, token));
    assert_true(tw__imds_take_token(p, 3, token));
    assert_string_equal(token, "tok");
    free(p);
    /* Shorter than "projects/": no read past the end. */
    static const char *const short_gcp[] = {"p", "proj", "projects", "/zones/a"};
    for (size_t i = 0; i < sizeof(short_gcp) / sizeof(short_gcp[0]); i++) {
        size_t n = strlen(short_gcp[i]);
        p = exact(short_gcp[i], n);
        assert_int_equal(tw__imds_parse_gcp_zone(p, n, zone, region, &spoke, err), TW_EPARSE);
        free(p);
    }
    assert_false(spoke);
    assert_string_equal(zone, "keep");
    p = exact("projects/1/zones/us-central1-f\n", 31);
    assert_int_equal(tw__imds_parse_gcp_zone(p, 31, zone, region, &spoke, err), TW_OK);
    assert_true(spoke);
    assert_string_equal(zone, "us-central1-f");
    assert_string_equal(region, "us-central1");
    free(p);
    spoke = false;
    p = exact("projects/1/zones/x;y", 20);
    assert_int_equal(tw__imds_parse_gcp_zone(p, 20, zone, region, &spoke, err), TW_EBADVALUE);
    assert_true(spoke);
    free(p);
    const char *az = "{\"compute\":{\"location\":\"westeurope\",\"zone\":\"3\"}}";
    p = exact(az, strlen(az));
    spoke = false;
    assert_int_equal(tw__imds_parse_azure(p, strlen(az), zone, region, &spoke, err), TW_OK);
    assert_true(spoke);
    assert_string_equal(zone, "westeurope-3");
    assert_string_equal(region, "westeurope");
    /* Cut short, it is not JSON. */
    spoke = false;
    assert_int_equal(tw__imds_parse_azure(p, strlen(az) - 2, zone, region, &spoke, err), TW_EPARSE);
    assert_false(spoke);
    free(p);
}

static void region_from_zone_table(void **state)
{
    (void)state;
    static const struct {
        tw_cloud cloud;
        const char *zone;
        const char *region; /* NULL: TW_EPARSE */
    } cases[] = {
        {TW_CLOUD_AWS, "us-east-1b", "us-east-1"},
        {TW_CLOUD_AWS, "eu-central-1a", "eu-central-1"},
        {TW_CLOUD_AWS, "ap-southeast-2c", "ap-southeast-2"},
        {TW_CLOUD_AWS, "us-gov-west-1a", "us-gov-west-1"},
        {TW_CLOUD_AWS, "cn-north-1a", "cn-north-1"},
        {TW_CLOUD_AWS, "us-isob-east-1a", "us-isob-east-1"},
        {TW_CLOUD_AWS, "us-east-1-bos-1a", "us-east-1"},
        {TW_CLOUD_AWS, "us-west-2-lax-1b", "us-west-2"},
        {TW_CLOUD_AWS, "us-east-1-wl1-bos-wlz-1", "us-east-1"},
        {TW_CLOUD_AWS, "ap-northeast-1-wl1-nrt-wlz-1", "ap-northeast-1"},
        {TW_CLOUD_AWS, "us-east-1", NULL},
        {TW_CLOUD_AWS, "us-east-1bb", NULL},
        {TW_CLOUD_AWS, "us-east-1B", NULL},
        {TW_CLOUD_AWS, "use1-az4", NULL},
        {TW_CLOUD_AWS, "us-1a", NULL},
        {TW_CLOUD_AWS, "us-east-1-bos", NULL},
        {TW_CLOUD_AWS, "us-east-1-bos-1a-x", NULL},
        {TW_CLOUD_AWS, "us-east-1-wl1-bos-xyz-1", NULL},
        {TW_CLOUD_AWS, "us--east-1a", NULL},
        {TW_CLOUD_AWS, "europe-west1-d", NULL},
        {TW_CLOUD_AWS, "eastus-2", NULL},
        {TW_CLOUD_GCP, "europe-west1-d", "europe-west1"},
        {TW_CLOUD_GCP, "us-central1-a", "us-central1"},
        {TW_CLOUD_GCP, "northamerica-northeast2-b", "northamerica-northeast2"},
        {TW_CLOUD_GCP, "europe-west1", NULL},
        {TW_CLOUD_GCP, "europe-west-d", NULL},
        {TW_CLOUD_GCP, "europe-west1-dd", NULL},
        {TW_CLOUD_GCP, "us-east-1b", NULL},
        {TW_CLOUD_AZURE, "eastus-2", "eastus"},
        {TW_CLOUD_AZURE, "eastus2-1", "eastus2"},
        {TW_CLOUD_AZURE, "westeurope-3", "westeurope"},
        {TW_CLOUD_AZURE, "eastus", NULL},
        {TW_CLOUD_AZURE, "eastus-", NULL},
        {TW_CLOUD_AZURE, "eastus-x", NULL},
        {TW_CLOUD_AZURE, "2eastus-1", NULL},
        {TW_CLOUD_AZURE, "us-east-1b", NULL},
        {TW_CLOUD_AUTO, "us-east-1b", "us-east-1"},
        {TW_CLOUD_AUTO, "europe-west1-d", "europe-west1"},
        {TW_CLOUD_AUTO, "eastus-2", "eastus"},
        {TW_CLOUD_AUTO, "", NULL},
        {TW_CLOUD_AUTO, "-", NULL},
        {TW_CLOUD_AUTO, "us-east-1b; rm -rf /", NULL},
        {TW_CLOUD_AUTO, "aaaaaaaaaa-aaaaaaaaaa-aaaaaaaaaa-aaaaaaaaaa-aaaaaaaaaa-aaaaaaaaa-1a",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64] = "untouched";
        int rc = tw__imds_region_from_zone(cases[i].cloud, cases[i].zone, out);
        if (cases[i].region == NULL) {
            if (rc != TW_EPARSE || strcmp(out, "untouched") != 0)
                fail_msg("%s %s: got %d \"%s\", want TW_EPARSE", cloud_str(cases[i].cloud),
                         cases[i].zone, rc, out);
        } else if (rc != TW_OK || strcmp(out, cases[i].region) != 0) {
            fail_msg("%s %s: got %d \"%s\", want %s", cloud_str(cases[i].cloud), cases[i].zone, rc,
                     out, cases[i].region);
        }
    }
    char out[64];
    assert_int_equal(tw__imds_region_from_zone(TW_CLOUD_AWS, NULL, out), TW_EPARSE);
}

static void cloud_names(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        tw_cloud c;
    } cases[] = {
        {"auto", TW_OK, TW_CLOUD_AUTO}, {"aws", TW_OK, TW_CLOUD_AWS},
        {"gcp", TW_OK, TW_CLOUD_GCP},   {"azure", TW_OK, TW_CLOUD_AZURE},
        {"AWS", TW_OK, TW_CLOUD_AWS},   {"ec2", TW_EINVAL, TW_CLOUD_AUTO},
        {"", TW_EINVAL, TW_CLOUD_AUTO}, {"aws ", TW_EINVAL, TW_CLOUD_AUTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_cloud c = (tw_cloud)99;
        assert_int_equal(tw_cloud_parse(cases[i].s, &c), cases[i].rc);
        assert_int_equal(c, cases[i].rc == TW_OK ? cases[i].c : (tw_cloud)99);
    }
    tw_cloud c;
    assert_int_equal(tw_cloud_parse(NULL, &c), TW_EINVAL);
}

static void options_from_environment(void **state)
{
    (void)state;
    static const struct {
        const char *disabled;
        const char *endpoint;
        const char *preset; /* endpoint already in the options */
        int want_disabled;
        const char *want_endpoint;
    } cases[] = {
        {NULL, NULL, NULL, 0, NULL},
        {"true", NULL, NULL, 1, NULL},
        {"TRUE", NULL, NULL, 1, NULL},
        {"True", NULL, NULL, 1, NULL},
        {"false", NULL, NULL, 0, NULL},
        {"1", NULL, NULL, 0, NULL},
        {"", NULL, NULL, 0, NULL},
        {NULL, "http://[fd00:ec2::254]", NULL, 0, "http://[fd00:ec2::254]"},
        {NULL, "", NULL, 0, NULL},
        {NULL, "http://[fd00:ec2::254]", "http://10.0.0.1", 0, "http://10.0.0.1"},
        {"true", "http://127.0.0.1:8080", NULL, 1, "http://127.0.0.1:8080"},
    };
    char *saved_d, *saved_e;
    swap_env("AWS_EC2_METADATA_DISABLED", NULL, &saved_d);
    swap_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL, &saved_e);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].disabled)
            setenv("AWS_EC2_METADATA_DISABLED", cases[i].disabled, 1);
        else
            unsetenv("AWS_EC2_METADATA_DISABLED");
        if (cases[i].endpoint)
            setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", cases[i].endpoint, 1);
        else
            unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        tw_imds_options o = {.endpoint = cases[i].preset, .token_timeout_ms = 123};
        tw_imds_options_from_env(&o);
        assert_int_equal(o.aws_disabled, cases[i].want_disabled);
        if (cases[i].want_endpoint)
            assert_string_equal(o.endpoint, cases[i].want_endpoint);
        else
            assert_null(o.endpoint);
        assert_int_equal(o.token_timeout_ms, 123);
        assert_int_equal(o.cloud, TW_CLOUD_AUTO);
    }
    restore_env("AWS_EC2_METADATA_DISABLED", saved_d);
    restore_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", saved_e);
}

static void env_endpoint_reaches_the_stand_in(void **state)
{
    (void)state;
    stub st = {.aws = true};
    tw_testserver *s = start(&st);
    char *saved;
    swap_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", tw_testserver_url(s), &saved);
    tw_imds_options o = {.cloud = TW_CLOUD_AWS, .dmi_dir = NO_DMI};
    tw_imds_options_from_env(&o);
    tw_imds_result r;
    int rc = tw_imds_query(&o, tw_deadline_in(LONG_WAIT), &r, NULL);
    restore_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", saved);
    assert_int_equal(rc, TW_OK);
    assert_string_equal(r.zone, "us-east-1b");
    tw_testserver_stop(s);
}

static char *fixture(const char *rel)
{
    char *s = tw_test_read_file(tw_fixture_path(rel), NULL);
    assert_non_null(s);
    return s;
}

static int setup(void **state)
{
    (void)state;
    if (tw_http_global_init() != TW_OK)
        return -1;
    fx_zone = fixture("imds/aws/placement/availability-zone");
    fx_zone_id = fixture("imds/aws/placement/availability-zone-id");
    fx_region = fixture("imds/aws/placement/region");
    fx_gcp_zone = fixture("imds/gcp/instance/zone");
    fx_azure = fixture("imds/azure/instance.json");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(fx_zone);
    free(fx_zone_id);
    free(fx_region);
    free(fx_gcp_zone);
    free(fx_azure);
    tw_http_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aws_v2_happy_path),
        cmocka_unit_test(aws_custom_user_agent),
        cmocka_unit_test(aws_put_refused_falls_back_to_v1),
        cmocka_unit_test(aws_put_other_status_is_an_error),
        cmocka_unit_test(aws_put_stall_falls_back_within_token_timeout),
        cmocka_unit_test(aws_put_delay_falls_back_within_token_timeout),
        cmocka_unit_test(aws_default_token_timeout_is_500ms),
        cmocka_unit_test(aws_v2_required_and_put_hangs_is_clear_error),
        cmocka_unit_test(aws_token_rejected_is_unauthorized),
        cmocka_unit_test(aws_unusable_token_falls_back_to_v1),
        cmocka_unit_test(aws_zone_id_404_is_empty_and_success),
        cmocka_unit_test(aws_region_404_is_derived),
        cmocka_unit_test(aws_trailing_newline_trimmed),
        cmocka_unit_test(aws_hostile_zone_is_bad_value),
        cmocka_unit_test(aws_hostile_zone_id_and_region_dropped),
        cmocka_unit_test(aws_zone_id_server_error_is_noted),
        cmocka_unit_test(aws_zone_status_errors),
        cmocka_unit_test(aws_slow_server_times_out_at_deadline),
        cmocka_unit_test(aws_deadline_shorter_than_token_wait),
        cmocka_unit_test(aws_disabled_sends_nothing),
        cmocka_unit_test(never_through_a_proxy),
        cmocka_unit_test(connection_refused_is_net_error),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(gcp_happy_path),
        cmocka_unit_test(gcp_sends_metadata_flavor),
        cmocka_unit_test(gcp_status_errors),
        cmocka_unit_test(gcp_malformed_answers),
        cmocka_unit_test(gcp_zone_with_newline),
        cmocka_unit_test(azure_happy_path),
        cmocka_unit_test(azure_regional_vm_is_not_found),
        cmocka_unit_test(azure_malformed_answers),
        cmocka_unit_test(azure_status_error),
        cmocka_unit_test(dmi_detection),
        cmocka_unit_test(auto_follows_dmi),
        cmocka_unit_test(auto_aws_dmi_but_disabled),
        cmocka_unit_test(auto_without_dmi_probes_to_gcp),
        cmocka_unit_test(auto_unknown_dmi_probes_to_azure),
        cmocka_unit_test(auto_probe_finds_aws_v1),
        cmocka_unit_test(auto_probe_reports_aws_v2_required),
        cmocka_unit_test(auto_probe_skips_disabled_aws),
        cmocka_unit_test(auto_nothing_answers_is_not_found),
        cmocka_unit_test(auto_probing_stays_inside_deadline),
        cmocka_unit_test(answers_parsed_without_http),
        cmocka_unit_test(region_from_zone_table),
        cmocka_unit_test(cloud_names),
        cmocka_unit_test(options_from_environment),
        cmocka_unit_test(env_endpoint_reaches_the_stand_in),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
