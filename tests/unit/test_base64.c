/* test_base64.c - encoding, and the strict decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/base64.h"
#include "topowire/error.h"

/* RFC 4648 section 10. */
static const struct {
    const char *plain, *b64;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void encodes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t n = strlen(vectors[i].plain);
        assert_int_equal(tw_base64_encoded_len(n), strlen(vectors[i].b64));
        char *s = NULL;
        assert_int_equal(tw_base64_encode(vectors[i].plain, n, &s), TW_OK);
        assert_string_equal(s, vectors[i].b64);
        free(s);
        char buf[16];
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(tw_base64_encode_to(buf, vectors[i].plain, n), TW_OK);
        assert_string_equal(buf, vectors[i].b64);
    }
    /* Binary data, NULs included. */
    char *s = NULL;
    assert_int_equal(tw_base64_encode("\0\xff\0", 3, &s), TW_OK);
    assert_string_equal(s, "AP8A");
    free(s);
    s = (char *)0x1;
    assert_int_equal(tw_base64_encode("x", (size_t)TW_BASE64_MAX + 1, &s), TW_ETOOBIG);
    assert_ptr_equal(s, (char *)0x1);
}

static void decodes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        unsigned char *out = NULL;
        size_t n = 99;
        const char *t = vectors[i].b64;
        assert_int_equal(tw_base64_decode(t, strlen(t), &out, &n), TW_OK);
        assert_int_equal(n, strlen(vectors[i].plain));
        assert_memory_equal(out, vectors[i].plain, n + 1); /* and the NUL after */
        free(out);
    }
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(tw_base64_decode("AP8A", 4, &out, &n), TW_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\0\xff\0", 3);
    free(out);
    /* Line breaks anywhere are skipped, as a YAML literal block leaves them. */
    const char *wrapped = "Zm9v\nYmFy\r\n";
    assert_int_equal(tw_base64_decode(wrapped, strlen(wrapped), &out, &n), TW_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    free(out);
    const char *split = "Zm\n9vYg=\n=\n";
    assert_int_equal(tw_base64_decode(split, strlen(split), &out, &n), TW_OK);
    assert_memory_equal(out, "foob", 5);
    free(out);
    /* Only len bytes count. */
    assert_int_equal(tw_base64_decode("Zm9vYmFy!!", 8, &out, &n), TW_OK);
    assert_int_equal(n, 6);
    free(out);
}

static void refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zm9v YmFy",  /* a space */
        "Zm9v\tYmFy", /* a tab */
        " Zm9v",
        "Zm9v ",
        "Zm9", /* not a multiple of four */
        "Zm9vY",
        "Zg",
        "Zg=", /* padding missing */
        "Zg===",
        "====",
        "Z===", /* too much padding */
        "Zg==Zm9v",
        "Zm=v",
        "=Zm9", /* padding inside */
        "Zh==",
        "Zm9=",     /* padding bits not zero */
        "Zm9v-_8=", /* the URL alphabet */
        "Zm9v\x80\x80\x80\x80",
        "Zm9v%%%%",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *out = (unsigned char *)0x1;
        size_t n = 77;
        if (tw_base64_decode(bad[i], strlen(bad[i]), &out, &n) != TW_EPARSE)
            fail_msg("\"%s\" was not refused", bad[i]);
        assert_ptr_equal(out, (unsigned char *)0x1);
        assert_int_equal(n, 77);
    }
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(tw_base64_decode("Zm9v", (size_t)TW_BASE64_MAX + 1, &out, &n), TW_ETOOBIG);
}

static void round_trips(void **state)
{
    (void)state;
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 131 + 7);
    for (size_t len = 0; len < sizeof(data); len += 37) {
        char *s = NULL;
        assert_int_equal(tw_base64_encode(data, len, &s), TW_OK);
        unsigned char *back = NULL;
        size_t n = 0;
        assert_int_equal(tw_base64_decode(s, strlen(s), &back, &n), TW_OK);
        assert_int_equal(n, len);
        if (len > 0)
            assert_memory_equal(back, data, len);
        free(back);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes),
        cmocka_unit_test(decodes),
        cmocka_unit_test(refuses),
        cmocka_unit_test(round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
