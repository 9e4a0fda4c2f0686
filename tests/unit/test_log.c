/* test_log.c - log lines in text and JSON, one write per line, levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/log.h"

/* Runs fn with stderr redirected to a temp file and returns what it wrote. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/tw-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, s, (size_t)n, 0), n);
    close(fd);
    return s;
}

static void text_lines(void)
{
    tw_log_setup("topowire-test", TW_LOG_TEXT, TW_LOG_INFO);
    tw_log_kv(TW_LOG_INFO, "source answered", "source", "imds", "zone", "us-east-1b", NULL);
    tw_log_kv(TW_LOG_DEBUG, "hidden", NULL);
    tw_log_kv(TW_LOG_WARN, "odd value", "value", "a \"b\"\n", "empty", "", "null", NULL, NULL);
    tw_log_kv(TW_LOG_ERROR, "failed with 3", NULL);
}

static void text_format(void **state)
{
    (void)state;
    char *out = capture(text_lines);
    assert_non_null(
        strstr(out, " info topowire-test: source answered source=imds zone=us-east-1b\n"));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(
        out, " warn topowire-test: odd value value=\"a \\\"b\\\"\\x0a\" empty=\"\" null=\"\"\n"));
    assert_non_null(strstr(out, " error topowire-test: failed with 3\n"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    free(out);
}

static void json_lines(void)
{
    tw_log_setup("topowire-test", TW_LOG_JSON, TW_LOG_DEBUG);
    tw_log_kv(TW_LOG_DEBUG, "step", "source", "kubernetes", "why", "quote \" and\nnewline", NULL);
}

static void json_format(void **state)
{
    (void)state;
    char *out = capture(json_lines);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "");
    cJSON *o = cJSON_Parse(out);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "debug");
    assert_string_equal(cJSON_GetObjectItem(o, "prog")->valuestring, "topowire-test");
    assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "step");
    assert_string_equal(cJSON_GetObjectItem(o, "why")->valuestring, "quote \" and\nnewline");
    assert_non_null(cJSON_GetObjectItem(o, "time"));
    cJSON_Delete(o);
    free(out);
}

static void huge_line(void)
{
    tw_log_setup("t", TW_LOG_TEXT, TW_LOG_INFO);
    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    tw_log_kv(TW_LOG_INFO, "big", "v", big, NULL);
    free(big);
}

static void huge_line_stays_one_line(void **state)
{
    (void)state;
    char *out = capture(huge_line);
    assert_non_null(strchr(out, '\n'));
    assert_string_equal(strchr(out, '\n'), "\n");
    assert_true(strlen(out) <= 8192);
    free(out);
}

static void parse_options(void **state)
{
    (void)state;
    tw_log_format f;
    tw_log_level l;
    assert_int_equal(tw_log_parse_format("json", &f), TW_OK);
    assert_int_equal(f, TW_LOG_JSON);
    assert_int_equal(tw_log_parse_format("yaml", &f), TW_EINVAL);
    assert_int_equal(tw_log_parse_level("WARN", &l), TW_OK);
    assert_int_equal(l, TW_LOG_WARN);
    assert_int_equal(tw_log_parse_level("loud", &l), TW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_format),
        cmocka_unit_test(json_format),
        cmocka_unit_test(huge_line_stays_one_line),
        cmocka_unit_test(parse_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
