/* test_clock.c - deadlines and duration parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "topowire/clock.h"
#include "topowire/error.h"

static void durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        long ms;
    } cases[] = {
        {"10s", TW_OK, 10000},
        {"10", TW_OK, 10000},
        {"500ms", TW_OK, 500},
        {"1.5s", TW_OK, 1500},
        {"2m", TW_OK, 120000},
        {"0", TW_OK, 0},
        {"", TW_EINVAL, 0},
        {"-1s", TW_EINVAL, 0},
        {"10x", TW_EINVAL, 0},
        {"s", TW_EINVAL, 0},
        {"1e9", TW_EINVAL, 0},
        {"nan", TW_EINVAL, 0},
        {" 5", TW_EINVAL, 0},
        {"5 s", TW_EINVAL, 0},
        {"+5", TW_EINVAL, 0},
        /* Found by fuzz_duration: strtod() also reads hex, infinity and leading white space. */
        {"0x1", TW_EINVAL, 0},
        {"0x1p3s", TW_EINVAL, 0},
        {"\t5", TW_EINVAL, 0},
        {"\n5s", TW_EINVAL, 0},
        {"\v-0", TW_EINVAL, 0},
        {"1e3ms", TW_OK, 1000},
        {".5m", TW_OK, 30000},
        {"1.5e1s", TW_OK, 15000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long ms = -7;
        int rc = tw_duration_parse(cases[i].s, &ms);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == TW_OK && ms != cases[i].ms)
            fail_msg("\"%s\": %ld ms, want %ld", cases[i].s, ms, cases[i].ms);
        if (rc != TW_OK && ms != -7)
            fail_msg("\"%s\": out written on failure", cases[i].s);
    }
}

static void deadlines(void **state)
{
    (void)state;
    uint64_t d = tw_deadline_in(50);
    long left = tw_remaining_ms(d);
    assert_true(left > 0 && left <= 50);
    tw_sleep_ms(1000, d); /* capped by the deadline */
    assert_int_equal(tw_remaining_ms(d), 0);
    assert_true(tw_now_ms() >= d);
    assert_int_equal(tw_remaining_ms(tw_deadline_in(-5)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),
        cmocka_unit_test(deadlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
