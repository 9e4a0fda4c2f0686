/* test_dnsname.c - RFC 1123 labels and subdomains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "topowire/dnsname.h"

/* Subdomains: node, Secret and webhook configuration names, label key prefixes. */
static void subdomains(void **state)
{
    (void)state;
    static const char *const good[] = {"ip-10-0-41-17.ec2.internal",        "a",    "0", "node-1",
                                       "aks-nodepool1-12345678-vmss000000", "a.b.c"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(tw_dns_subdomain_valid(good[i]));
    char long_ok[254], too_long[255];
    /* 253 characters: four labels of 63 and a dot between each, then one more "a" label. */
    memset(long_ok, 'a', 253);
    long_ok[63] = long_ok[127] = long_ok[191] = '.';
    long_ok[253] = '\0';
    assert_true(tw_dns_subdomain_valid(long_ok));
    memcpy(too_long, long_ok, 253);
    too_long[253] = 'a';
    too_long[254] = '\0';
    assert_false(tw_dns_subdomain_valid(too_long));
    static const char *const bad[] = {
        "",
        "Node",
        "node_1",
        "-node",
        "node-",
        "a..b",
        ".a",
        "a.",
        "node\nCLIENT_RACK=x",
        "node 1",
        "n\x01",
        "a/b",
        "a.-b",
        "a-.b",
        "Example.com",
        "a.B",
        "-",
        "caf\xc3\xa9",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tw_dns_subdomain_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(tw_dns_subdomain_valid(NULL));
}

static void labels(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "0", "kube-system", "topowire", "svc-1", "a1b2"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!tw_dns_label_valid(good[i]))
            fail_msg("\"%s\" refused", good[i]);
    char max[64];
    memset(max, 'z', 63);
    max[63] = '\0';
    assert_true(tw_dns_label_valid(max));
    static const char *const bad[] = {
        "",
        "a.b",
        "Svc",
        "svc_1",
        "-a",
        "a-",
        "a b",
        "\x7f",
        "\xc3\xa9",
        "a\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tw_dns_label_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(tw_dns_label_valid(NULL));
}

static void subdomain_prefixes(void **state)
{
    (void)state;
    /* Only the first n bytes count; a NUL inside them is refused. */
    assert_true(tw_dns_subdomain_valid_n("example.com/zone", 11));
    assert_false(tw_dns_subdomain_valid_n("example.com/zone", 12));
    assert_false(tw_dns_subdomain_valid_n("example.", 8));
    assert_true(tw_dns_subdomain_valid_n("example.", 7));
    assert_false(tw_dns_subdomain_valid_n("a\0b", 3));
    assert_false(tw_dns_subdomain_valid_n("a", 0));
    assert_false(tw_dns_subdomain_valid_n(NULL, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(subdomains),
        cmocka_unit_test(labels),
        cmocka_unit_test(subdomain_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
