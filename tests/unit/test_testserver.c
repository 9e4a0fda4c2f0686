/* test_testserver.c - the unit-test server itself answers as told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testserver.h"

static void handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    (void)ud;
    resp->status = 201;
    resp->body = strcmp(req->query, "a=1&b=2") == 0 ? "query ok" : req->query;
    resp->content_type = "text/plain";
}

static void serves_plain_http(void **state)
{
    (void)state;
    tw_testserver *s = tw_testserver_start(handler, NULL, NULL, NULL);
    assert_non_null(s);
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null -w '%%{http_code}' '%s/x?a=1&b=2' | grep -q 201",
             tw_testserver_url(s));
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "curl -s '%s/x?a=1&b=2' | grep -q 'query ok'", tw_testserver_url(s));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tw_testserver_requests(s), 2);
    tw_testserver_stop(s);
}

static void serves_tls_with_generated_certs(void **state)
{
    (void)state;
    char dir[] = "/tmp/tw-ts-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(tw_testserver_make_certs(dir), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/server.pem", dir);
    char *cert = tw_test_read_file(path, NULL);
    snprintf(path, sizeof(path), "%s/server-key.pem", dir);
    char *key = tw_test_read_file(path, NULL);
    assert_non_null(cert);
    assert_non_null(key);
    tw_testserver *s = tw_testserver_start(handler, NULL, cert, key);
    assert_non_null(s);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "curl -s --cacert %s/ca.pem -o /dev/null -w '%%{http_code}' '%s/' | grep -q 201", dir,
             tw_testserver_url(s));
    assert_int_equal(system(cmd), 0);
    tw_testserver_stop(s);
    free(cert);
    free(key);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves_plain_http),
        cmocka_unit_test(serves_tls_with_generated_certs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
