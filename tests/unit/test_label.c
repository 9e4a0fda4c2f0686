/* test_label.c - label key/value syntax and the key/value list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/kv.h"
#include "topowire/label.h"

static void values(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        bool ok;
    } cases[] = {
        {"us-east-1b", true},
        {"use1-az4", true},
        {"eastus-2", true},
        {"a", true},
        {"A.b_c-9", true},
        {"", false},
        {"-lead", false},
        {"trail.", false},
        {"has space", false},
        {"quote\"", false},
        {"new\nline", false},
        {"semi;colon", false},
        {"$(reboot)", false},
        {"ünïcode", false},
        {"123456789012345678901234567890123456789012345678901234567890123", true},
        {"1234567890123456789012345678901234567890123456789012345678901234", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (tw_label_value_valid(cases[i].v) != cases[i].ok)
            fail_msg("value \"%s\": expected %s", cases[i].v, cases[i].ok ? "valid" : "invalid");
    }
    assert_false(tw_label_value_valid(NULL));
}

static void keys(void **state)
{
    (void)state;
    assert_true(tw_label_key_valid("topology.kubernetes.io/zone"));
    assert_true(tw_label_key_valid("topology.k8s.aws/zone-id"));
    assert_true(tw_label_key_valid("failure-domain.beta.kubernetes.io/region"));
    assert_true(tw_label_key_valid("rack"));
    assert_false(tw_label_key_valid(""));
    assert_false(tw_label_key_valid("/zone"));
    assert_false(tw_label_key_valid("Upper.Case/zone"));
    assert_false(tw_label_key_valid("a/b/c"));
    assert_false(tw_label_key_valid("example.com/"));
    assert_false(tw_label_key_valid("bad..domain/zone"));
    assert_false(tw_label_key_valid(NULL));
}

static void kvlist_set_get_overwrite(void **state)
{
    (void)state;
    tw_kvlist l = {0};
    assert_null(tw_kvlist_get(&l, "a"));
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(tw_kvlist_set(&l, k, "v"), TW_OK);
    }
    assert_int_equal(l.n, 20);
    assert_int_equal(tw_kvlist_set(&l, "k3", "new"), TW_OK);
    assert_int_equal(l.n, 20);
    assert_string_equal(tw_kvlist_get(&l, "k3"), "new");
    assert_string_equal(tw_kvlist_get(&l, "k19"), "v");
    tw_kvlist_free(&l);
    assert_int_equal(l.n, 0);
    tw_kvlist_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values),
        cmocka_unit_test(keys),
        cmocka_unit_test(kvlist_set_get_overwrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
