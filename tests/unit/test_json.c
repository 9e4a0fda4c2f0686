/* test_json.c - tw_json_parse: one JSON value, and no string cut at an escaped NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/json.h"

/* A copy of n bytes of s without a terminator, so a read past n is caught by ASan. */
static char *unterminated(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

/* Parses text (copied without its terminator) and returns the tree. */
static cJSON *parse(const char *text, int want, const char *err_part)
{
    size_t len = strlen(text);
    char *exact = unterminated(text, len);
    cJSON *root = (cJSON *)0x1;
    char err[TW_ERRLEN] = "";
    int rc = tw_json_parse(exact, len, &root, err);
    free(exact);
    if (rc != want)
        fail_msg("\"%s\": got %d, want %d (%s)", text, rc, want, err);
    if (want != TW_OK) {
        assert_ptr_equal(root, (cJSON *)0x1);
        if (err_part != NULL && strstr(err, err_part) == NULL)
            fail_msg("error \"%s\" lacks \"%s\"", err, err_part);
        return NULL;
    }
    return root;
}

static void one_value(void **state)
{
    (void)state;
    cJSON_Delete(parse("{\"a\":1}", TW_OK, NULL));
    cJSON_Delete(parse(" \n[1,2]\r\n\t ", TW_OK, NULL));
    parse("", TW_EPARSE, "not valid JSON");
    parse("{", TW_EPARSE, "not valid JSON");
    parse("{} {}", TW_EPARSE, "more than one JSON value");
    parse("{\"a\":1}x", TW_EPARSE, "more than one JSON value");
    assert_int_equal(tw_json_parse(NULL, 0, &(cJSON *){NULL}, NULL), TW_EPARSE);
}

static void escaped_nul_is_not_an_end(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"z\":\"2\\u0000junk\"}", "2\x01junk"},
        {"{\"z\":\"\\u0000\"}", "\x01"},
        {"{\"z\":\"a\\u0000\\u0000b\"}", "a\x01\x01"
                                         "b"},
        /* An escaped backslash, then the text "u0000": no NUL at all. */
        {"{\"z\":\"a\\\\u0000\"}", "a\\u0000"},
        {"{\"z\":\"a\\\\\\u0000\"}", "a\\\x01"},
        /* Other escapes are left alone. */
        {"{\"z\":\"\\u0041\\u00e9\\n\"}", "A\xc3\xa9\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *root = parse(cases[i].json, TW_OK, NULL);
        const char *z = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "z"));
        assert_non_null(z);
        assert_string_equal(z, cases[i].want);
        cJSON_Delete(root);
    }
    /* A "\u000" cut by the end of the text is not valid JSON, and nothing is read past it. */
    parse("\"\\u000", TW_EPARSE, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_value),
        cmocka_unit_test(escaped_nul_is_not_an_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
