/* test_podinfo.c - the Downward-API `labels` / `annotations` parser and reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/testserver.h"
#include "topowire/error.h"
#include "topowire/kv.h"
#include "topowire/podinfo.h"

#include "../../lib/podinfo_int.h"

#define MIB (1024 * 1024)

/* Parses a NUL-terminated text into a fresh list, asserting success. */
static void parse_ok(const char *text, tw_kvlist *l)
{
    char err[TW_ERRLEN] = "";
    int rc = tw__podinfo_parse(text, strlen(text), l, err);
    if (rc != TW_OK)
        fail_msg("parse of [%s] failed: %d %s", text, rc, err);
}

/* Parses one line `k="..."` and returns a copy of the value of k (caller frees). */
static char *value_of(const char *line)
{
    tw_kvlist l = {0};
    parse_ok(line, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].key, "k");
    char *v = strdup(l.items[0].value);
    tw_kvlist_free(&l);
    return v;
}

static void assert_value(const char *line, const char *want)
{
    char *v = value_of(line);
    if (strcmp(v, want) != 0)
        fail_msg("[%s] decoded to [%s], want [%s]", line, v, want);
    free(v);
}

static void fixture_annotations(void **state)
{
    (void)state;
    tw_kvlist l = {0};
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_podinfo_read(tw_fixture_path("podinfo/annotations"), &l, err), TW_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/zone"), "us-east-1b");
    assert_string_equal(tw_kvlist_get(&l, "topology.kubernetes.io/region"), "us-east-1");
    assert_string_equal(tw_kvlist_get(&l, "topology.k8s.aws/zone-id"), "use1-az4");
    assert_string_equal(tw_kvlist_get(&l, "kubernetes.io/config.source"), "api");
    assert_string_equal(tw_kvlist_get(&l, "kubernetes.io/config.seen"),
                        "2026-11-22T02:01:44.112930871Z");
    /* The file order (sorted, as the kubelet writes it) is kept. */
    assert_string_equal(l.items[0].key, "kubernetes.io/config.seen");
    assert_string_equal(l.items[4].key, "topology.kubernetes.io/zone");
    tw_kvlist_free(&l);
}

static void fixture_labels(void **state)
{
    (void)state;
    tw_kvlist l = {0};
    assert_int_equal(tw_podinfo_read(tw_fixture_path("podinfo/labels"), &l, NULL), TW_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(tw_kvlist_get(&l, "spark-app-name"), "orders-stream");
    assert_string_equal(tw_kvlist_get(&l, "spark-exec-id"), "7");
    assert_string_equal(tw_kvlist_get(&l, "spark-role"), "executor");
    assert_string_equal(tw_kvlist_get(&l, "topowire.io/inject"), "true");
    tw_kvlist_free(&l);
}

static void every_escape_kind(void **state)
{
    (void)state;
    assert_value("k=\"plain\"", "plain");
    assert_value("k=\"\"", "");
    assert_value("k=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"", "\a\b\f\n\r\t\v\\\"");
    /* \x is one byte each, not a code point: \xc3\xa9 is "é", \xff stays a lone byte. */
    assert_value("k=\"\\x41\\x7f\\xc3\\xa9\\xff\\xFF\"", "A\x7f\xc3\xa9\xff\xff");
    assert_value("k=\"\\101\\060\\177\\377\"", "A0\x7f\xff");
    assert_value("k=\"\\u00e9\\u20AC\\u200b\\uffff\"",
                 "\xc3\xa9\xe2\x82\xac\xe2\x80\x8b\xef\xbf\xbf");
    assert_value("k=\"\\U0001F600\\U0010ffff\\U000e0001\\U00000041\"",
                 "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf3\xa0\x80\x81"
                 "A");
    /* Raw UTF-8 (Go's %q keeps printable runes) and a single quote pass through. */
    assert_value("k=\"caf\xc3\xa9 \xf0\x9f\x98\x80 it's\"", "caf\xc3\xa9 \xf0\x9f\x98\x80 it's");
    /* '=' and spaces inside the value; the key ends at the first '='. */
    assert_value("k=\"a=b c\"", "a=b c");
    /* Raw control bytes other than '\n' are accepted as strconv.Unquote does. */
    assert_value("k=\"a\tb\rc\"", "a\tb\rc");

    tw_kvlist l = {0};
    parse_ok("a/b.c_d-e=\"1\"\n"
             "x=\"\\\"quoted\\\"\"",
             &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(tw_kvlist_get(&l, "a/b.c_d-e"), "1");
    assert_string_equal(tw_kvlist_get(&l, "x"), "\"quoted\"");
    tw_kvlist_free(&l);
}

static void trailing_newline_and_empty(void **state)
{
    (void)state;
    tw_kvlist l = {0};
    parse_ok("a=\"1\"\nb=\"2\"\n", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(tw_kvlist_get(&l, "b"), "2");
    tw_kvlist_free(&l);

    assert_int_equal(tw__podinfo_parse("", 0, &l, NULL), TW_OK);
    assert_int_equal(l.n, 0);
    assert_null(l.items);
    /* A NULL text of length zero is the empty file too. */
    assert_int_equal(tw__podinfo_parse(NULL, 0, &l, NULL), TW_OK);
    assert_int_equal(l.n, 0);
    tw_kvlist_free(&l);
}

/* Each of these is malformed; err must name the line. */
static void malformed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *err_has;
    } cases[] = {
        /* unknown escapes, as strconv.Unquote refuses them */
        {"a=\"1\"\nk=\"\\q\"", 0, "line 2: unknown escape \\q"},
        {"a=\"1\"\nk=\"\\'\"", 0, "line 2: unknown escape \\'"},
        {"a=\"1\"\nk=\"\\ \"", 0, "line 2: unknown escape before byte 0x20"},
        {"a=\"1\"\nk=\"\\\xc3\xa9\"", 0, "line 2: unknown escape before byte 0xC3"},
        {"k=\"\\x4\"", 0, "line 1: \\x needs two hex digits"},
        {"k=\"\\xZZ\"", 0, "line 1: \\x needs two hex digits"},
        {"k=\"\\x4", 0, "line 1: \\x needs two hex digits"},
        {"k=\"\\u12\"", 0, "line 1: \\u needs 4 hex digits"},
        {"k=\"\\u12G4\"", 0, "line 1: \\u needs 4 hex digits"},
        {"k=\"\\U0001F60\"", 0, "line 1: \\U needs 8 hex digits"},
        {"k=\"\\U00110000\"", 0, "U+110000 is not a Unicode scalar value"},
        {"k=\"\\UFFFFFFFF\"", 0, "is not a Unicode scalar value"},
        {"k=\"\\uD800\"", 0, "U+D800 is not a Unicode scalar value"},
        {"k=\"\\udfff\"", 0, "U+DFFF is not a Unicode scalar value"},
        {"k=\"\\U0000DC00\"", 0, "is not a Unicode scalar value"},
        {"k=\"\\400\"", 0, "line 1: octal escape \\400 is over \\377"},
        {"k=\"\\08\"", 0, "line 1: an octal escape needs three digits"},
        {"k=\"\\0\"", 0, "line 1: an octal escape needs three digits"},
        /* a decoded NUL cannot live in a C string */
        {"k=\"\\x00\"", 0, "line 1: the value holds a NUL"},
        {"k=\"\\000\"", 0, "line 1: the value holds a NUL"},
        {"k=\"\\u0000\"", 0, "line 1: the value holds a NUL"},
        {"k=\"\\U00000000\"", 0, "line 1: the value holds a NUL"},
        {"k=\"a\0b\"", 7, "line 1 holds a NUL byte"},
        {"k\0=\"ab\"", 7, "line 1 holds a NUL byte"},
        /* quotes */
        {"a=\"1\"\nk=\"abc", 0, "line 2: the quoted value has no closing quote"},
        {"k=\"abc\\\"", 0, "line 1: the quoted value has no closing quote"},
        {"k=\"abc\\", 0, "line 1 ends inside an escape"},
        {"k=\"", 0, "line 1: the quoted value has no closing quote"},
        {"k=\"a\nb\"", 0, "line 1: the quoted value has no closing quote"},
        {"k=\"a\"b", 0, "line 1 has text after the closing quote"},
        {"k=\"a\" ", 0, "line 1 has text after the closing quote"},
        {"k=\"a\"\"", 0, "line 1 has text after the closing quote"},
        {"k=abc", 0, "line 1: the value does not start with '\"'"},
        {"k='abc'", 0, "line 1: the value does not start with '\"'"},
        {"k=", 0, "line 1: the value does not start with '\"'"},
        {"k= \"a\"", 0, "line 1: the value does not start with '\"'"},
        /* line structure */
        {"a=\"1\"\nnoequals", 0, "line 2 has no '='"},
        {"a=\"1\"\n=\"v\"", 0, "line 2 has an empty key"},
        {"a=\"1\"\n\nb=\"2\"", 0, "line 2 is empty"},
        {"a=\"1\"\n\n", 0, "line 2 is empty"},
        {"\n", 0, "line 1 is empty"},
        {"a=\"1\"\r\nb=\"2\"", 0, "line 1 ends in a carriage return"},
        {"a=\"1\"\r", 0, "line 1 ends in a carriage return"},
        {"a=\"1\"\nb=\"2\"\na=\"3\"", 0, "line 3 repeats the key of line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_kvlist l = {0};
        char err[TW_ERRLEN] = "";
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int rc = tw__podinfo_parse(cases[i].text, len, &l, err);
        if (rc != TW_EPARSE || strstr(err, cases[i].err_has) == NULL)
            fail_msg("case %zu: rc %d err [%s], want TW_EPARSE and [%s]", i, rc, err,
                     cases[i].err_has);
        assert_int_equal(l.n, 0);
        assert_null(l.items);
        /* err is optional. */
        assert_int_equal(tw__podinfo_parse(cases[i].text, len, &l, NULL), TW_EPARSE);
    }
}

static void failure_leaves_list_unchanged(void **state)
{
    (void)state;
    tw_kvlist l = {0};
    assert_int_equal(tw_kvlist_set(&l, "keep", "1"), TW_OK);
    assert_int_equal(tw_kvlist_set(&l, "a", "old"), TW_OK);
    tw_kv *items = l.items;
    char err[TW_ERRLEN];
    const char *bad = "a=\"new\"\nb=\"2\"\nc=\"unterminated";
    assert_int_equal(tw__podinfo_parse(bad, strlen(bad), &l, err), TW_EPARSE);
    assert_non_null(strstr(err, "line 3"));
    assert_ptr_equal(l.items, items);
    assert_int_equal(l.n, 2);
    assert_string_equal(tw_kvlist_get(&l, "a"), "old");
    assert_null(tw_kvlist_get(&l, "b"));

    const char *big = "x";
    assert_int_equal(tw__podinfo_parse(big, (size_t)MIB + 1, &l, err), TW_ETOOBIG);
    assert_int_equal(l.n, 2);

    /* A good parse adds to a non-empty list; the file wins on a shared key. */
    const char *good = "a=\"new\"\nb=\"2\"";
    assert_int_equal(tw__podinfo_parse(good, strlen(good), &l, err), TW_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(tw_kvlist_get(&l, "keep"), "1");
    assert_string_equal(tw_kvlist_get(&l, "a"), "new");
    assert_string_equal(tw_kvlist_get(&l, "b"), "2");
    tw_kvlist_free(&l);
}

static void one_mib_cap(void **state)
{
    (void)state;
    /* k="xxx...x": exactly 1 MiB is accepted, one byte more is not. */
    char *text = malloc((size_t)MIB + 2);
    assert_non_null(text);
    memcpy(text, "k=\"", 3);
    memset(text + 3, 'x', (size_t)MIB - 4);
    text[MIB - 1] = '"';
    text[MIB] = '\n';
    text[MIB + 1] = '\0';
    tw_kvlist l = {0};
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw__podinfo_parse(text, (size_t)MIB, &l, err), TW_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(strlen(l.items[0].value), (size_t)MIB - 4);
    tw_kvlist_free(&l);
    assert_int_equal(tw__podinfo_parse(text, (size_t)MIB + 1, &l, err), TW_ETOOBIG);
    assert_non_null(strstr(err, "1 MiB"));
    assert_int_equal(l.n, 0);

    /* The same through a file. */
    char dir[] = "/tmp/tw-podinfo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/annotations", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, (size_t)MIB + 1, f), (size_t)MIB + 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(tw_podinfo_read(path, &l, err), TW_ETOOBIG);
    assert_non_null(strstr(err, path));
    assert_int_equal(l.n, 0);
    assert_int_equal(truncate(path, MIB), 0);
    assert_int_equal(tw_podinfo_read(path, &l, err), TW_OK);
    assert_int_equal(l.n, 1);
    tw_kvlist_free(&l);
    unlink(path);
    rmdir(dir);
    free(text);
}

static void many_keys(void **state)
{
    (void)state;
    /* 50000 lines, in reverse order: the duplicate check must not be quadratic. */
    enum { N = 50000 };
    char *text = malloc((size_t)N * 24);
    assert_non_null(text);
    size_t len = 0;
    for (int i = N - 1; i >= 0; i--)
        len += (size_t)snprintf(text + len, 24, "%sk%05d=\"%d\"", len ? "\n" : "", i, i);
    tw_kvlist l = {0};
    assert_int_equal(tw__podinfo_parse(text, len, &l, NULL), TW_OK);
    assert_int_equal(l.n, N);
    assert_string_equal(l.items[0].key, "k49999");
    assert_string_equal(l.items[N - 1].value, "0");
    tw_kvlist_free(&l);
    free(text);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void read_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/tw-podinfo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], data[512], real[256], link[512], err[TW_ERRLEN] = "";
    tw_kvlist l = {0};

    /* Missing file and missing directory: not found. */
    snprintf(path, sizeof(path), "%s/labels", dir);
    assert_int_equal(tw_podinfo_read(path, &l, err), TW_ENOTFOUND);
    assert_non_null(strstr(err, path));
    assert_int_equal(tw_podinfo_read("/nonexistent/dir/labels", &l, NULL), TW_ENOTFOUND);

    /* An empty file: zero pairs. */
    write_file(path, "");
    assert_int_equal(tw_podinfo_read(path, &l, err), TW_OK);
    assert_int_equal(l.n, 0);

    /* A path below a regular file: not found. */
    char below[600];
    snprintf(below, sizeof(below), "%s/x", path);
    assert_int_equal(tw_podinfo_read(below, &l, NULL), TW_ENOTFOUND);

    /* A directory is not a Downward-API file. */
    assert_int_equal(tw_podinfo_read(dir, &l, err), TW_EIO);
    assert_non_null(strstr(err, "not a regular file"));

    /* A parse error names the file and the line. */
    write_file(path, "a=\"1\"\nb=2");
    assert_int_equal(tw_podinfo_read(path, &l, err), TW_EPARSE);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 2"));
    assert_int_equal(l.n, 0);
    unlink(path);

    /* The kubelet's layout: labels -> ..data/labels, ..data -> ..2026_11_22_...; followed. */
    snprintf(real, sizeof(real), "%s/..2026_11_22_02_01_44.1234", dir);
    assert_int_equal(mkdir(real, 0755), 0);
    snprintf(path, sizeof(path), "%s/labels", real);
    write_file(path, "zone=\"us-east-1b\"");
    snprintf(data, sizeof(data), "%s/..data", dir);
    assert_int_equal(symlink("..2026_11_22_02_01_44.1234", data), 0);
    snprintf(link, sizeof(link), "%s/labels", dir);
    assert_int_equal(symlink("..data/labels", link), 0);
    assert_int_equal(tw_podinfo_read(link, &l, err), TW_OK);
    assert_string_equal(tw_kvlist_get(&l, "zone"), "us-east-1b");
    tw_kvlist_free(&l);

    unlink(link);
    unlink(data);
    unlink(path);
    rmdir(real);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_annotations), cmocka_unit_test(fixture_labels),
        cmocka_unit_test(every_escape_kind),   cmocka_unit_test(trailing_newline_and_empty),
        cmocka_unit_test(malformed_inputs),    cmocka_unit_test(failure_leaves_list_unchanged),
        cmocka_unit_test(one_mib_cap),         cmocka_unit_test(many_keys),
        cmocka_unit_test(read_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
