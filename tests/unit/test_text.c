/* test_text.c - untrusted text made safe to show; UTF-8 checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "topowire/text.h"

static void shows(void **state)
{
    (void)state;
    char out[TW_TEXT_SHOWN_SIZE];
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"us-east-1b", 10, "us-east-1b"},
        {"", 0, ""},
        {"a\nb\tc\rd\x7f"
         "e",
         9, "a?b?c?d?e"},
        {"nul\0inside", 10, "nul?inside"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82", 0,
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"},
        {"bad \xff \xc3 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80", 0, "bad ? ? ?? ??? ????"},
        {"trunc\xe2\x82", 7, "trunc??"},
        {"quote\"kept", 10, "quote\"kept"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* len 0 stands for strlen, but for the empty case itself */
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        assert_ptr_equal(tw_text_show(out, sizeof(out), cases[i].in, len), out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, out, cases[i].want);
    }
    /* Only len bytes are read. */
    tw_text_show(out, sizeof(out), "abcdef", 3);
    assert_string_equal(out, "abc");
}

static void cuts(void **state)
{
    (void)state;
    char out[TW_TEXT_SHOWN_SIZE];
    char in[200];
    memset(in, 'x', sizeof(in));
    /* What fits is shown whole, up to size - 1 bytes. */
    tw_text_show(out, sizeof(out), in, TW_TEXT_SHOWN_SIZE - 1);
    assert_int_equal(strlen(out), TW_TEXT_SHOWN_SIZE - 1);
    assert_int_equal(strspn(out, "x"), TW_TEXT_SHOWN_SIZE - 1);
    /* One more, and it is cut to TW_TEXT_SHOWN bytes and "...". */
    tw_text_show(out, sizeof(out), in, TW_TEXT_SHOWN_SIZE);
    assert_int_equal(strlen(out), TW_TEXT_SHOWN + 3);
    assert_int_equal(strspn(out, "x"), TW_TEXT_SHOWN);
    assert_string_equal(out + TW_TEXT_SHOWN, "...");
    /* A character straddling the cut is left out whole. */
    in[TW_TEXT_SHOWN - 1] = '\xe2';
    in[TW_TEXT_SHOWN] = '\x82';
    in[TW_TEXT_SHOWN + 1] = '\xac';
    tw_text_show(out, sizeof(out), in, sizeof(in));
    assert_int_equal(strspn(out, "x"), TW_TEXT_SHOWN - 1);
    assert_string_equal(out + TW_TEXT_SHOWN - 1, "...");
    /* Tiny buffers: no room for "..." means a plain cut; size 0 writes nothing. */
    char small[3] = "zz";
    tw_text_show(small, 3, "abcdef", 6);
    assert_string_equal(small, "ab");
    small[0] = 'z';
    tw_text_show(small, 0, "abcdef", 6);
    assert_int_equal(small[0], 'z');
    tw_text_show(small, 1, "abcdef", 6);
    assert_string_equal(small, "");
    char four[4];
    tw_text_show(four, 4, "abcdef", 6);
    assert_string_equal(four, "...");
}

static void in_place(void **state)
{
    (void)state;
    char s[64];
    snprintf(s, sizeof(s), "500 line one\nline two \xff\xc3\xa9");
    size_t n = strlen(s);
    tw_text_show(s, n + 1, s, n);
    assert_string_equal(s, "500 line one?line two ?\xc3\xa9");
    char c[] = "0123456789";
    tw_text_show(c, 8, c, 10);
    assert_string_equal(c, "0123...");
}

static void utf8(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(tw_utf8_decode((const unsigned char *)"A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xc3\xa9", 1, &cp), 0);
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xc0\x80", 2, &cp), 0); /* overlong */
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xe0\x80\xaf", 3, &cp),
                     0); /* overlong */
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp),
                     0); /* surrogate */
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
    assert_int_equal(tw_utf8_decode((const unsigned char *)"\x80", 1, &cp), 0);
    assert_true(tw_utf8_valid("", 0));
    assert_true(tw_utf8_valid("plain \xe2\x82\xac", 9));
    assert_true(tw_utf8_valid("nul\0ok", 6)); /* NUL is valid UTF-8; callers refuse it themselves */
    assert_false(tw_utf8_valid("bad\xff", 4));
    assert_false(tw_utf8_valid("cut\xe2\x82", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shows),
        cmocka_unit_test(cuts),
        cmocka_unit_test(in_place),
        cmocka_unit_test(utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
