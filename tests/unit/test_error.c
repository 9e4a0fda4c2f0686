/* test_error.c - error sentences, the err buffer and TW_ASSERT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "topowire/assert.h"
#include "topowire/error.h"

static void every_code_has_its_own_sentence(void **state)
{
    (void)state;
    for (int a = TW_OK; a >= TW_ELAST; a--) {
        assert_string_not_equal(tw_strerror(a), "unknown error");
        for (int b = a - 1; b >= TW_ELAST; b--)
            if (strcmp(tw_strerror(a), tw_strerror(b)) == 0)
                fail_msg("codes %d and %d share \"%s\"", a, b, tw_strerror(a));
    }
    assert_string_equal(tw_strerror(TW_ELAST - 1), "unknown error");
    assert_string_equal(tw_strerror(1), "unknown error");
    assert_string_equal(tw_strerror(-1000000), "unknown error");
}

static void seterr_fills_and_returns(void **state)
{
    (void)state;
    char err[TW_ERRLEN];
    assert_int_equal(tw_seterr(err, TW_EIO, "read %s: %d", "x", 5), TW_EIO);
    assert_string_equal(err, "read x: 5");
    assert_int_equal(tw_seterr(NULL, TW_EPARSE, "ignored"), TW_EPARSE);
    char big[TW_ERRLEN * 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tw_seterr(err, TW_EINVAL, "%s", big);
    assert_int_equal(strlen(err), TW_ERRLEN - 1);
}

static int held(int i)
{
    TW_ASSERT(i < 3);
    return i;
}

/* In the sanitizer builds a broken invariant aborts with where it broke; in release it is free. */
static void assertion(void **state)
{
    (void)state;
    assert_int_equal(held(1), 1);
    if (!TW_ASSERT_ON) {
        assert_int_equal(held(7), 7);
        return;
    }
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        held(7);
        _exit(0);
    }
    close(pipefd[1]);
    char out[512] = "";
    ssize_t n = read(pipefd[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(out, "assertion failed: i < 3"));
    assert_non_null(strstr(out, "held"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_its_own_sentence),
        cmocka_unit_test(seterr_fills_and_returns),
        cmocka_unit_test(assertion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
