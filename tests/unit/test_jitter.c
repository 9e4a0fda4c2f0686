/* test_jitter.c - retry jitter: bounds, spread, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "topowire/jitter.h"

static void bounds_and_spread(void **state)
{
    (void)state;
    assert_int_equal(tw_jitter(0), 0);
    assert_int_equal(tw_jitter(-5), 0);
    int seen[11];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 11000; i++) {
        long v = tw_jitter(10);
        assert_true(v >= 0 && v <= 10);
        seen[v]++;
    }
    /* Every value, both ends included, comes up about 1000 times. */
    for (int v = 0; v <= 10; v++)
        if (seen[v] < 700 || seen[v] > 1300)
            fail_msg("value %d came %d times in 11000", v, seen[v]);
    long big = 0;
    for (int i = 0; i < 1000; i++) {
        long v = tw_jitter(2000);
        assert_true(v >= 0 && v <= 2000);
        if (v > big)
            big = v;
    }
    assert_true(big > 1900);
}

static void *draw(void *arg)
{
    long *out = arg;
    for (int i = 0; i < 64; i++)
        out[i] = tw_jitter(1L << 40);
    return NULL;
}

/* Threads draw from their own generators, seeded apart: no two sequences alike. */
static void threads_differ(void **state)
{
    (void)state;
    enum { N = 8 };
    static long got[N][64];
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, draw, got[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_memory_not_equal(got[i], got[j], sizeof(got[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounds_and_spread),
        cmocka_unit_test(threads_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
