/* test_buf.c - the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/buf.h"
#include "topowire/error.h"

static void empty_buffer_reads_as_empty_string(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 16);
    assert_string_equal(tw_buf_cstr(&b), "");
    assert_int_equal(b.len, 0);
    char *s = tw_buf_detach(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    tw_buf_free(&b);
}

static void append_up_to_cap_then_refuse(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 8);
    assert_int_equal(tw_buf_puts(&b, "abcd"), TW_OK);
    assert_int_equal(tw_buf_puts(&b, "efgh"), TW_OK);
    assert_int_equal(b.len, 8);
    assert_int_equal(tw_buf_puts(&b, "i"), TW_ETOOBIG);
    assert_string_equal(tw_buf_cstr(&b), "abcdefgh");
    assert_int_equal(b.len, 8);
    tw_buf_free(&b);
}

static void printf_respects_cap_and_leaves_content(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 10);
    assert_int_equal(tw_buf_printf(&b, "%s=%d", "n", 42), TW_OK);
    assert_string_equal(tw_buf_cstr(&b), "n=42");
    assert_int_equal(tw_buf_printf(&b, "%s", "0123456789"), TW_ETOOBIG);
    assert_string_equal(tw_buf_cstr(&b), "n=42");
    tw_buf_free(&b);
}

static void grows_across_many_appends(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(tw_buf_append(&b, "xy", 2), TW_OK);
    assert_int_equal(b.len, 20000);
    assert_int_equal(b.data[19999], 'y');
    assert_int_equal(b.data[20000], '\0');
    tw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(tw_buf_cstr(&b), "");
    tw_buf_free(&b);
    tw_buf_free(NULL);
}

static void binary_bytes_kept(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 64);
    assert_int_equal(tw_buf_append(&b, "a\0b", 3), TW_OK);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    char *s = tw_buf_detach(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void size_overflow_is_refused(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, SIZE_MAX);
    assert_int_equal(tw_buf_puts(&b, "x"), TW_OK);
    assert_int_equal(tw_buf_append(&b, "y", SIZE_MAX), TW_ETOOBIG);
    tw_buf_free(&b);
}

static void truncate_shortens_and_frees_room(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 5);
    tw_buf_truncate(&b, 0); /* an empty buffer without memory */
    assert_string_equal(tw_buf_cstr(&b), "");
    assert_int_equal(tw_buf_puts(&b, "hello"), TW_OK);
    assert_int_equal(tw_buf_puts(&b, "!"), TW_ETOOBIG);
    tw_buf_truncate(&b, 9); /* past the end: unchanged */
    assert_string_equal(tw_buf_cstr(&b), "hello");
    assert_int_equal(b.len, 5);
    tw_buf_truncate(&b, 4);
    assert_string_equal(tw_buf_cstr(&b), "hell");
    assert_int_equal(b.len, 4);
    /* The byte given back counts against the cap again. */
    assert_int_equal(tw_buf_puts(&b, "!"), TW_OK);
    assert_string_equal(tw_buf_cstr(&b), "hell!");
    tw_buf_truncate(&b, 0);
    assert_string_equal(tw_buf_cstr(&b), "");
    assert_int_equal(b.len, 0);
    tw_buf_free(&b);
}

static void set_max_applies_to_later_appends(void **state)
{
    (void)state;
    tw_buf b;
    tw_buf_init(&b, 8);
    assert_int_equal(tw_buf_puts(&b, "abcdef"), TW_OK);
    tw_buf_set_max(&b, 4); /* below the content: kept, nothing more fits */
    assert_string_equal(tw_buf_cstr(&b), "abcdef");
    assert_int_equal(tw_buf_puts(&b, "g"), TW_ETOOBIG);
    assert_string_equal(tw_buf_cstr(&b), "abcdef");
    tw_buf_reset(&b);
    assert_int_equal(tw_buf_puts(&b, "abcde"), TW_ETOOBIG);
    assert_int_equal(tw_buf_puts(&b, "abcd"), TW_OK);
    tw_buf_set_max(&b, 1024);
    assert_int_equal(tw_buf_puts(&b, "efghijkl"), TW_OK);
    assert_string_equal(tw_buf_cstr(&b), "abcdefghijkl");
    tw_buf_free(&b);
}

static void errors_have_names(void **state)
{
    (void)state;
    assert_string_equal(tw_strerror(TW_OK), "success");
    assert_string_equal(tw_strerror(TW_ETOOBIG), "too large");
    assert_string_equal(tw_strerror(-999), "unknown error");
    char err[TW_ERRLEN];
    assert_int_equal(tw_seterr(err, TW_EIO, "open %s: %s", "/x", "denied"), TW_EIO);
    assert_string_equal(err, "open /x: denied");
    assert_int_equal(tw_seterr(NULL, TW_EINVAL, "ignored"), TW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_buffer_reads_as_empty_string),
        cmocka_unit_test(append_up_to_cap_then_refuse),
        cmocka_unit_test(printf_respects_cap_and_leaves_content),
        cmocka_unit_test(grows_across_many_appends),
        cmocka_unit_test(binary_bytes_kept),
        cmocka_unit_test(size_overflow_is_refused),
        cmocka_unit_test(truncate_shortens_and_frees_room),
        cmocka_unit_test(set_max_applies_to_later_appends),
        cmocka_unit_test(errors_have_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
