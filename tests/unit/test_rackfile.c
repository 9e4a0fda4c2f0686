/* test_rackfile.c - rendering the rack files and writing them atomically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/testserver.h"
#include "support/tmpdir.h"
#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/rackfile.h"
#include "topowire/topology.h"

/* Copies s into a fixed-size topology field, failing the test when it does not fit. */
#define SETF(t, f, s)                                                                              \
    do {                                                                                           \
        assert_true(strlen(s) < sizeof((t)->f));                                                   \
        memcpy((t)->f, (s), strlen(s) + 1);                                                        \
    } while (0)

static void eks(tw_topology *t)
{
    memset(t, 0, sizeof(*t));
    SETF(t, node, "ip-10-0-41-17.ec2.internal");
    SETF(t, zone, "us-east-1b");
    SETF(t, zone_id, "use1-az4");
    SETF(t, region, "us-east-1");
    SETF(t, rack, "us-east-1b");
    t->source = TW_SOURCE_DOWNWARD;
}

typedef int (*render_fn)(const tw_topology *, tw_buf *);

/* Renders t with fn into a fresh buffer and compares with want (want_len bytes, 0: strlen). */
static void assert_render(render_fn fn, const tw_topology *t, const char *want, size_t want_len)
{
    if (want_len == 0)
        want_len = strlen(want);
    tw_buf b;
    tw_buf_init(&b, 65536);
    assert_int_equal(fn(t, &b), TW_OK);
    if (b.len != want_len || memcmp(tw_buf_cstr(&b), want, want_len) != 0)
        fail_msg("rendered [%s] (%zu bytes), want [%s] (%zu bytes)", tw_buf_cstr(&b), b.len, want,
                 want_len);
    tw_buf_free(&b);
}

static void source_names(void **state)
{
    (void)state;
    assert_string_equal(tw_source_name(TW_SOURCE_NONE), "none");
    assert_string_equal(tw_source_name(TW_SOURCE_DOWNWARD), "downward");
    assert_string_equal(tw_source_name(TW_SOURCE_KUBERNETES), "kubernetes");
    assert_string_equal(tw_source_name(TW_SOURCE_IMDS), "imds");
    assert_string_equal(tw_source_name((tw_source)42), "unknown");
}

static void eks_example(void **state)
{
    (void)state;
    tw_topology t;
    eks(&t);
    assert_render(tw_rackfile_render_env, &t,
                  "TOPOLOGY_NODE='ip-10-0-41-17.ec2.internal'\n"
                  "TOPOLOGY_ZONE='us-east-1b'\n"
                  "TOPOLOGY_ZONE_ID='use1-az4'\n"
                  "TOPOLOGY_REGION='us-east-1'\n"
                  "TOPOLOGY_SOURCE='downward'\n"
                  "CLIENT_RACK='us-east-1b'\n",
                  0);
    assert_render(tw_rackfile_render_properties, &t, "client.rack=us-east-1b\n", 0);
    assert_render(tw_rackfile_render_rack, &t, "us-east-1b", 0);
    assert_render(tw_rackfile_render_json, &t,
                  "{\"node\":\"ip-10-0-41-17.ec2.internal\",\"zone\":\"us-east-1b\","
                  "\"zoneId\":\"use1-az4\",\"region\":\"us-east-1\",\"rack\":\"us-east-1b\","
                  "\"source\":\"downward\"}\n",
                  0);
}

static void empty_topology(void **state)
{
    (void)state;
    tw_topology t;
    memset(&t, 0, sizeof(t));
    assert_render(tw_rackfile_render_env, &t,
                  "TOPOLOGY_NODE=''\n"
                  "TOPOLOGY_ZONE=''\n"
                  "TOPOLOGY_ZONE_ID=''\n"
                  "TOPOLOGY_REGION=''\n"
                  "TOPOLOGY_SOURCE='none'\n"
                  "CLIENT_RACK=''\n",
                  0);
    assert_render(tw_rackfile_render_properties, &t, "client.rack=\n", 0);
    tw_buf b;
    tw_buf_init(&b, 64);
    assert_int_equal(tw_rackfile_render_rack(&t, &b), TW_OK);
    assert_int_equal(b.len, 0);
    tw_buf_free(&b);
    assert_render(tw_rackfile_render_json, &t,
                  "{\"node\":\"\",\"zone\":\"\",\"zoneId\":\"\",\"region\":\"\",\"rack\":\"\","
                  "\"source\":\"none\"}\n",
                  0);
}

static void env_escapes_single_quotes(void **state)
{
    (void)state;
    tw_topology t;
    memset(&t, 0, sizeof(t));
    SETF(&t, rack, "it's");
    SETF(&t, zone, "''");
    SETF(&t, node, "a\nb $x \\");
    assert_render(tw_rackfile_render_env, &t,
                  "TOPOLOGY_NODE='a\nb $x \\'\n"
                  "TOPOLOGY_ZONE=''\\'''\\'''\n"
                  "TOPOLOGY_ZONE_ID=''\n"
                  "TOPOLOGY_REGION=''\n"
                  "TOPOLOGY_SOURCE='none'\n"
                  "CLIENT_RACK='it'\\''s'\n",
                  0);
}

static void properties_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *rack;
        const char *want;
    } cases[] = {
        {"a=b:c#d!e", "client.rack=a\\=b\\:c\\#d\\!e\n"},
        {"back\\slash", "client.rack=back\\\\slash\n"},
        {"t\tn\nr\rf\f", "client.rack=t\\tn\\nr\\rf\\f\n"},
        {" lead and trail ", "client.rack=\\ lead and trail \n"},
        {"  two", "client.rack=\\  two\n"},
        {"\x01\x1f\x7f~", "client.rack=\\u0001\\u001F\\u007F~\n"},
        {"caf\xc3\xa9", "client.rack=caf\\u00E9\n"},
        {"\xe2\x82\xac", "client.rack=\\u20AC\n"},
        {"\xf0\x9f\x98\x80", "client.rack=\\uD83D\\uDE00\n"},
        {"\xf4\x8f\xbf\xbf", "client.rack=\\uDBFF\\uDFFF\n"},
        /* not UTF-8: a lone byte, a truncated sequence, an overlong '/', a surrogate */
        {"a\xff"
         "b",
         "client.rack=a\\uFFFDb\n"},
        {"\xe2\x82", "client.rack=\\uFFFD\\uFFFD\n"},
        {"\xc0\xaf", "client.rack=\\uFFFD\\uFFFD\n"},
        {"\xed\xa0\x80", "client.rack=\\uFFFD\\uFFFD\\uFFFD\n"},
        {"'\"`$()", "client.rack='\"`$()\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_topology t;
        memset(&t, 0, sizeof(t));
        SETF(&t, rack, cases[i].rack);
        assert_render(tw_rackfile_render_properties, &t, cases[i].want, 0);
        /* client.rack keeps the bytes as they are. */
        assert_render(tw_rackfile_render_rack, &t, cases[i].rack, 0);
    }
}

/* Values chosen to break a careless quoting: command substitution, quotes, newlines. */
static void hostile(tw_topology *t, const char *mark)
{
    char v[254];
    memset(t, 0, sizeof(*t));
    snprintf(v, sizeof(v), "$(touch %s)`touch %s`", mark, mark);
    SETF(t, node, v);
    snprintf(v, sizeof(v), "'; touch %s; echo '", mark);
    SETF(t, zone, v);
    SETF(t, zone_id, "a\nb\n\n");
    SETF(t, region, "\"dq\" \\ \\' \\\\ ${HOME} $HOME !x");
    SETF(t, rack, "it's `id` \t\r\x01 caf\xc3\xa9 '\\''");
    t->source = TW_SOURCE_IMDS;
}

static void json_round_trip(void **state)
{
    (void)state;
    tw_topology t;
    hostile(&t, "/nonexistent/mark");
    tw_buf b;
    tw_buf_init(&b, 65536);
    assert_int_equal(tw_rackfile_render_json(&t, &b), TW_OK);
    assert_int_equal(b.data[b.len - 1], '\n');
    assert_null(memchr(b.data, '\n', b.len - 1));
    cJSON *j = cJSON_Parse(tw_buf_cstr(&b));
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 6);
    static const char *const names[] = {"node", "zone", "zoneId", "region", "rack"};
    const char *values[] = {t.node, t.zone, t.zone_id, t.region, t.rack};
    for (size_t i = 0; i < 5; i++) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(j, names[i]);
        assert_true(cJSON_IsString(f));
        assert_string_equal(f->valuestring, values[i]);
    }
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "source")->valuestring, "imds");
    cJSON_Delete(j);

    /* Bytes that are not UTF-8 become U+FFFD, so the document stays valid JSON. */
    tw_buf_reset(&b);
    memset(&t, 0, sizeof(t));
    SETF(&t, rack,
         "a\xff"
         "b\xc3");
    assert_int_equal(tw_rackfile_render_json(&t, &b), TW_OK);
    j = cJSON_Parse(tw_buf_cstr(&b));
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "rack")->valuestring, "a\xef\xbf\xbd"
                                                                                  "b\xef\xbf\xbd");
    cJSON_Delete(j);
    tw_buf_free(&b);
}

static void render_appends_within_cap(void **state)
{
    (void)state;
    tw_topology t;
    eks(&t);
    render_fn fns[] = {tw_rackfile_render_env, tw_rackfile_render_properties,
                       tw_rackfile_render_rack, tw_rackfile_render_json};
    for (size_t i = 0; i < 4; i++) {
        tw_buf b;
        tw_buf_init(&b, 4096);
        assert_int_equal(tw_buf_puts(&b, "X"), TW_OK);
        assert_int_equal(fns[i](&t, &b), TW_OK);
        assert_true(b.len > 1);
        assert_int_equal(b.data[0], 'X');
        tw_buf_free(&b);

        /* Too small a cap: TW_ETOOBIG and the buffer keeps what it had. */
        tw_buf_init(&b, 8);
        assert_int_equal(tw_buf_puts(&b, "X"), TW_OK);
        assert_int_equal(fns[i](&t, &b), TW_ETOOBIG);
        assert_string_equal(tw_buf_cstr(&b), "X");
        assert_int_equal(b.len, 1);
        tw_buf_free(&b);
    }
}

static void fields_without_terminator(void **state)
{
    (void)state;
    tw_topology t;
    memset(&t, 0, sizeof(t));
    memset(t.rack, 'r', sizeof(t.rack));
    t.label[0] = 'L'; /* the byte after rack must not leak in */
    char want[sizeof(t.rack) + 1];
    memset(want, 'r', sizeof(t.rack));
    want[sizeof(t.rack)] = '\0';
    assert_render(tw_rackfile_render_rack, &t, want, 0);
    tw_buf b;
    tw_buf_init(&b, 4096);
    assert_int_equal(tw_rackfile_render_properties(&t, &b), TW_OK);
    assert_int_equal(b.len, strlen("client.rack=\n") + sizeof(t.rack));
    tw_buf_free(&b);
}

/* ---- files ---- */

static void write_all_files(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("rackfile");
    tw_topology t;
    eks(&t);
    assert_int_equal(tw_rackfile_write_all(dir, &t, err), TW_OK);

    static const struct {
        const char *name;
        render_fn fn;
    } files[] = {
        {TW_FILE_ENV, tw_rackfile_render_env},
        {TW_FILE_PROPERTIES, tw_rackfile_render_properties},
        {TW_FILE_RACK, tw_rackfile_render_rack},
        {TW_FILE_JSON, tw_rackfile_render_json},
    };
    for (size_t i = 0; i < 4; i++) {
        tw_buf b;
        tw_buf_init(&b, 65536);
        assert_int_equal(files[i].fn(&t, &b), TW_OK);
        size_t len;
        char *s = tw_test_slurp(dir, files[i].name, &len);
        assert_non_null(s);
        assert_int_equal(len, b.len);
        assert_memory_equal(s, tw_buf_cstr(&b), len);
        free(s);
        tw_buf_free(&b);
        assert_int_equal(tw_test_mode_of(dir, files[i].name), 0644);
    }
    size_t len;
    char *s = tw_test_slurp(dir, TW_FILE_RACK, &len);
    assert_int_equal(len, strlen("us-east-1b"));
    free(s);
    assert_int_equal(tw_test_count_entries(dir, "."), 0);
    assert_int_equal(tw_test_count_entries(dir, ""), 4);

    /* Again with an empty topology: every file is replaced. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(tw_rackfile_write_all(dir, &t, err), TW_OK);
    s = tw_test_slurp(dir, TW_FILE_RACK, &len);
    assert_int_equal(len, 0);
    free(s);
    s = tw_test_slurp(dir, TW_FILE_PROPERTIES, &len);
    assert_string_equal(s, "client.rack=\n");
    free(s);
    assert_int_equal(tw_test_count_entries(dir, ""), 4);
    tw_test_rm_rf(dir);
    free(dir);
}

static void write_all_order_and_failures(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("rackfile");
    char path[600];
    tw_topology t;
    eks(&t);

    snprintf(path, sizeof(path), "%s/nope", dir);
    assert_int_equal(tw_rackfile_write_all(path, &t, err), TW_EIO);
    assert_int_equal(tw_test_count_entries(dir, ""), 0);

    /* topology.json cannot be written: the two before it are, topology.env (last) is not. */
    snprintf(path, sizeof(path), "%s/%s", dir, TW_FILE_JSON);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%s/x", dir, TW_FILE_JSON);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(tw_rackfile_write_all(dir, &t, err), TW_EIO);
    assert_non_null(strstr(err, TW_FILE_JSON));
    size_t len;
    char *s = tw_test_slurp(dir, TW_FILE_RACK, &len);
    assert_non_null(s);
    free(s);
    s = tw_test_slurp(dir, TW_FILE_PROPERTIES, &len);
    assert_non_null(s);
    free(s);
    assert_null(tw_test_slurp(dir, TW_FILE_ENV, &len));
    assert_int_equal(tw_test_count_entries(dir, "."), 0);
    assert_int_equal(tw_test_count_entries(dir, ""), 3);
    tw_test_rm_rf(dir);
    free(dir);
}

/* Runs `SHELL -c '. FILE; printf ...'` and compares every variable byte for byte. */
static void source_with(const char *shell, const char *dir, const tw_topology *t, const char *mark)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s -c '. \"$1\" && printf \"%%s\\0\" \"$TOPOLOGY_NODE\" \"$TOPOLOGY_ZONE\" "
             "\"$TOPOLOGY_ZONE_ID\" \"$TOPOLOGY_REGION\" \"$TOPOLOGY_SOURCE\" \"$CLIENT_RACK\"' "
             "sh %s/%s",
             shell, dir, TW_FILE_ENV);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof(out), p);
    assert_int_equal(pclose(p), 0);
    const char *want[] = {t->node, t->zone, t->zone_id, t->region, tw_source_name(t->source),
                          t->rack};
    size_t off = 0;
    for (size_t i = 0; i < 6; i++) {
        size_t wl = strlen(want[i]);
        if (off + wl + 1 > n || memcmp(out + off, want[i], wl) != 0 || out[off + wl] != '\0')
            fail_msg("%s: variable %zu differs from [%s]", shell, i, want[i]);
        off += wl + 1;
    }
    assert_int_equal(off, n);
    assert_int_equal(access(mark, F_OK), -1);
}

static void env_file_sources_safely(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("rackfile");
    char mark[600];
    snprintf(mark, sizeof(mark), "%s/ran", dir);
    tw_topology t;
    hostile(&t, mark);
    assert_int_equal(tw_rackfile_write_all(dir, &t, err), TW_OK);

    int shells = 0;
    static const char *const candidates[][2] = {
        {"/bin/sh", "/bin/sh"},
        {"/bin/dash", "/bin/dash"},
        {"/bin/bash", "/bin/bash"},
        {"/bin/bash", "/bin/bash --posix"},
        {"/bin/busybox", "/bin/busybox ash"},
        {"/usr/bin/busybox", "/usr/bin/busybox ash"},
    };
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (access(candidates[i][0], X_OK) != 0)
            continue;
        source_with(candidates[i][1], dir, &t, mark);
        shells++;
    }
    assert_true(shells >= 1);
    tw_test_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(source_names),
        cmocka_unit_test(eks_example),
        cmocka_unit_test(empty_topology),
        cmocka_unit_test(env_escapes_single_quotes),
        cmocka_unit_test(properties_escapes),
        cmocka_unit_test(json_round_trip),
        cmocka_unit_test(render_appends_within_cap),
        cmocka_unit_test(fields_without_terminator),
        cmocka_unit_test(write_all_files),
        cmocka_unit_test(write_all_order_and_failures),
        cmocka_unit_test(env_file_sources_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
