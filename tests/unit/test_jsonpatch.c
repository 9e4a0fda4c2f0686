/* test_jsonpatch.c - JSON Patch building and JSON Pointer escaping, applied by kubectl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/kubepatch.h"
#include "topowire/error.h"
#include "topowire/jsonpatch.h"

static void pointer_escaping(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"plain", "plain"},       {"topowire.io/injected", "topowire.io~1injected"},
        {"a~b", "a~0b"},          {"~1", "~01"},
        {"/~", "~1~0"},           {"", ""},
        {"a//b~~", "a~1~1b~0~0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_buf b;
        tw_buf_init(&b, 64);
        assert_int_equal(tw_json_pointer_append(&b, cases[i][0]), TW_OK);
        assert_string_equal(tw_buf_cstr(&b), cases[i][1]);
        tw_buf_free(&b);
    }
    /* The cap of the buffer is respected. */
    tw_buf b;
    tw_buf_init(&b, 4);
    assert_int_equal(tw_json_pointer_append(&b, "a/b/c"), TW_ETOOBIG);
    tw_buf_free(&b);
}

/* Builds the patch for kv onto obj's metadata.annotations and applies it with kubectl. */
static cJSON *apply_strings(const char *obj_text, const tw_kvlist *kv, size_t want_ops)
{
    cJSON *obj = cJSON_Parse(obj_text);
    assert_non_null(obj);
    tw_jsonpatch p;
    assert_int_equal(tw_jsonpatch_init(&p), TW_OK);
    const cJSON *anns = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "annotations");
    assert_int_equal(tw_jsonpatch_add_strings(&p, "/metadata/annotations", anns, kv), TW_OK);
    assert_int_equal(tw_jsonpatch_count(&p), want_ops);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tw_jsonpatch_render(&p, &text, &len), TW_OK);
    assert_int_equal(len, strlen(text));
    cJSON *out = tw_test_kubectl_patch(obj, text);
    assert_non_null(out);
    cJSON_free(text);
    tw_jsonpatch_free(&p);
    cJSON_Delete(obj);
    return out;
}

static void map_entries_with_awkward_keys(void **state)
{
    (void)state;
    tw_kvlist kv = {0};
    assert_int_equal(tw_kvlist_set(&kv, "topology.kubernetes.io/zone", "us-east-1b"), TW_OK);
    assert_int_equal(tw_kvlist_set(&kv, "odd~key/with~1", "v~/"), TW_OK);
    assert_int_equal(tw_kvlist_set(&kv, "existing", "new"), TW_OK);
    static const char *const objs[] = {
        /* map absent, null, empty, with entries */
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
        "\"annotations\":null}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
        "\"annotations\":{}}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
        "\"annotations\":{\"existing\":\"old\",\"keep\":\"me\"}}}",
    };
    static const size_t ops[] = {1, 1, 3, 3};
    for (int i = 0; i < 4; i++) {
        cJSON *out = apply_strings(objs[i], &kv, ops[i]);
        const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "metadata"), "annotations");
        assert_string_equal(
            cJSON_GetStringValue(cJSON_GetObjectItem(a, "topology.kubernetes.io/zone")),
            "us-east-1b");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "odd~key/with~1")), "v~/");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "existing")), "new");
        assert_int_equal(cJSON_GetArraySize(a), i == 3 ? 4 : 3);
        cJSON_Delete(out);
    }
    /* Nothing to add: no operation. */
    tw_kvlist empty = {0};
    tw_jsonpatch p;
    assert_int_equal(tw_jsonpatch_init(&p), TW_OK);
    assert_int_equal(tw_jsonpatch_add_strings(&p, "/metadata/annotations", NULL, &empty), TW_OK);
    assert_int_equal(tw_jsonpatch_count(&p), 0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tw_jsonpatch_render(&p, &text, &len), TW_OK);
    assert_string_equal(text, "[]");
    cJSON_free(text);
    tw_jsonpatch_free(&p);
    tw_jsonpatch_free(&p);
    tw_jsonpatch_free(NULL);
    tw_kvlist_free(&kv);
}

static void add_takes_ownership(void **state)
{
    (void)state;
    tw_jsonpatch p;
    assert_int_equal(tw_jsonpatch_init(&p), TW_OK);
    assert_int_equal(tw_jsonpatch_add(&p, "/a", NULL), TW_EINVAL);
    assert_int_equal(tw_jsonpatch_add(&p, "/a", cJSON_CreateNumber(1)), TW_OK);
    assert_int_equal(tw_jsonpatch_add(&p, "/b/-", cJSON_CreateString("x")), TW_OK);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tw_jsonpatch_render(&p, &text, &len), TW_OK);
    assert_string_equal(text, "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
                              "{\"op\":\"add\",\"path\":\"/b/-\",\"value\":\"x\"}]");
    cJSON_free(text);
    tw_jsonpatch_free(&p);
}

/* Renders p with tw_jsonpatch_render and checks it against its text and want. */
static void assert_renders(const tw_jsonpatch *p, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    assert_string_equal(tw_jsonpatch_text(p), want);
    assert_int_equal(tw_jsonpatch_len(p), strlen(want));
    assert_int_equal(tw_jsonpatch_render(p, &text, &len), TW_OK);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    cJSON_free(text);
}

static void empty_and_zeroed_patches_read_as_empty_arrays(void **state)
{
    (void)state;
    tw_jsonpatch z = {0};
    assert_renders(&z, "[]");
    assert_int_equal(tw_jsonpatch_count(&z), 0);
    /* A zeroed patch takes no operation: its cap is 0. */
    assert_int_equal(tw_jsonpatch_add(&z, "/a", cJSON_CreateTrue()), TW_ETOOBIG);
    assert_renders(&z, "[]");
    tw_jsonpatch_free(&z);

    tw_jsonpatch p;
    assert_int_equal(tw_jsonpatch_init(&p), TW_OK);
    assert_renders(&p, "[]");
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(tw_jsonpatch_finish(&p, &out, &len), TW_OK);
    assert_string_equal(out, "[]");
    assert_int_equal(len, 2);
    free(out);
    tw_jsonpatch_free(&p);
}

static void test_and_json_operations(void **state)
{
    (void)state;
    tw_jsonpatch p;
    tw_jsonpatch_init(&p);
    assert_int_equal(tw_jsonpatch_test(&p, "/metadata/name", cJSON_CreateString("p")), TW_OK);
    assert_int_equal(tw_jsonpatch_test(&p, "/x", NULL), TW_EINVAL);
    const char *value[] = {"[", "{\"name\":\"v\"}", "]"};
    assert_int_equal(tw_jsonpatch_add_json(&p, "/spec/volumes", value, 3), TW_OK);
    /* A path with characters JSON escapes is escaped, not copied. */
    const char *one[] = {"1"};
    assert_int_equal(tw_jsonpatch_add_json(&p, "/a\"b\\c\n", one, 1), TW_OK);
    assert_int_equal(tw_jsonpatch_count(&p), 3);
    assert_renders(&p, "[{\"op\":\"test\",\"path\":\"/metadata/name\",\"value\":\"p\"},"
                       "{\"op\":\"add\",\"path\":\"/spec/volumes\",\"value\":[{\"name\":\"v\"}]},"
                       "{\"op\":\"add\",\"path\":\"/a\\\"b\\\\c\\n\",\"value\":1}]");
    tw_jsonpatch_free(&p);
}

/* add_items creates the array, or appends to it, and kubectl applies both the same way. */
static void items_create_or_append(void **state)
{
    (void)state;
    static const char *const objs[] = {
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}],\"volumes\":null}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}],"
        "\"volumes\":[{\"name\":\"old\",\"emptyDir\":{}}]}}",
    };
    static const size_t want_ops[] = {1, 1, 2};
    const char *items[] = {"{\"name\":\"a\",\"emptyDir\":{}}", "{\"name\":\"b\",\"emptyDir\":{}}"};
    for (int i = 0; i < 3; i++) {
        cJSON *obj = cJSON_Parse(objs[i]);
        assert_non_null(obj);
        tw_jsonpatch p;
        tw_jsonpatch_init(&p);
        const cJSON *cur = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "volumes");
        assert_int_equal(tw_jsonpatch_add_items(&p, "/spec/volumes", cur, items, 0), TW_OK);
        assert_int_equal(tw_jsonpatch_count(&p), 0);
        assert_int_equal(tw_jsonpatch_add_items(&p, "/spec/volumes", cur, items, 2), TW_OK);
        assert_int_equal(tw_jsonpatch_count(&p), want_ops[i]);
        cJSON *out = tw_test_kubectl_patch(obj, tw_jsonpatch_text(&p));
        assert_non_null(out);
        const cJSON *vols = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "spec"), "volumes");
        int n = cJSON_GetArraySize(vols);
        assert_int_equal(n, i == 2 ? 3 : 2);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(vols, n - 2), "name")->valuestring, "a");
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(vols, n - 1), "name")->valuestring, "b");
        cJSON_Delete(out);
        tw_jsonpatch_free(&p);
        cJSON_Delete(obj);
    }
}

/* Past the cap an addition fails whole: the patch is what it was, closed and valid. */
static void cap_failure_leaves_the_patch_as_it_was(void **state)
{
    (void)state;
    const char *first = "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]";
    const char *one[] = {"1"};
    const char *items[] = {"2", "3"};
    cJSON *arr = cJSON_CreateArray();
    for (size_t max = strlen(first); max < strlen(first) + 80; max++) {
        tw_jsonpatch p;
        tw_jsonpatch_init_max(&p, max);
        assert_int_equal(tw_jsonpatch_add_json(&p, "/a", one, 1), TW_OK);
        int rc = tw_jsonpatch_add_items(&p, "/b", arr, items, 2);
        if (rc == TW_OK) {
            /* It fits only once both operations fit. */
            assert_int_equal(tw_jsonpatch_count(&p), 3);
            assert_true(tw_jsonpatch_len(&p) <= max);
            assert_true(max >= strlen(first) + 2 * strlen(",{\"op\":\"add\",\"path\":\"/b/-\","
                                                          "\"value\":2}"));
        } else {
            assert_int_equal(rc, TW_ETOOBIG);
            assert_int_equal(tw_jsonpatch_count(&p), 1);
            assert_renders(&p, first);
        }
        /* And from empty: back to "[]". */
        tw_jsonpatch q;
        tw_jsonpatch_init_max(&q, 10);
        assert_int_equal(tw_jsonpatch_add_json(&q, "/a", one, 1), TW_ETOOBIG);
        assert_int_equal(tw_jsonpatch_count(&q), 0);
        assert_renders(&q, "[]");
        tw_jsonpatch_free(&q);
        tw_jsonpatch_free(&p);
    }
    cJSON_Delete(arr);
}

static void prepend_puts_operations_first(void **state)
{
    (void)state;
    const char *one[] = {"1"}, *two[] = {"2"}, *three[] = {"3"};
    tw_jsonpatch front, back, empty;
    tw_jsonpatch_init(&front);
    tw_jsonpatch_init(&empty);
    tw_jsonpatch_init_max(&back, 40);
    assert_int_equal(tw_jsonpatch_add_json(&front, "/f", one, 1), TW_OK);
    assert_int_equal(tw_jsonpatch_add_json(&front, "/g", two, 1), TW_OK);
    /* Nothing to put in front, or nothing behind. */
    assert_int_equal(tw_jsonpatch_prepend(&back, &empty), TW_OK);
    assert_renders(&back, "[]");
    assert_int_equal(tw_jsonpatch_prepend(&empty, &front), TW_OK);
    assert_int_equal(tw_jsonpatch_count(&empty), 2);
    assert_renders(&empty, tw_jsonpatch_text(&front));
    /* Both: front's operations, then back's; back's cap grew by what came in front. */
    assert_int_equal(tw_jsonpatch_add_json(&back, "/b", three, 1), TW_OK);
    assert_int_equal(tw_jsonpatch_prepend(&back, &front), TW_OK);
    assert_int_equal(tw_jsonpatch_count(&back), 3);
    assert_renders(&back, "[{\"op\":\"add\",\"path\":\"/f\",\"value\":1},"
                          "{\"op\":\"add\",\"path\":\"/g\",\"value\":2},"
                          "{\"op\":\"add\",\"path\":\"/b\",\"value\":3}]");
    assert_int_equal(tw_jsonpatch_count(&front), 2);
    /* Finish hands the text over and leaves an empty patch that still takes operations. */
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(tw_jsonpatch_finish(&back, &out, &len), TW_OK);
    assert_int_equal(len, strlen(out));
    assert_non_null(strstr(out, "\"/b\""));
    free(out);
    assert_renders(&back, "[]");
    assert_int_equal(tw_jsonpatch_count(&back), 0);
    assert_int_equal(tw_jsonpatch_add_json(&back, "/c", one, 1), TW_OK);
    assert_renders(&back, "[{\"op\":\"add\",\"path\":\"/c\",\"value\":1}]");
    tw_jsonpatch_free(&back);
    tw_jsonpatch_free(&front);
    tw_jsonpatch_free(&empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pointer_escaping),
        cmocka_unit_test(map_entries_with_awkward_keys),
        cmocka_unit_test(add_takes_ownership),
        cmocka_unit_test(empty_and_zeroed_patches_read_as_empty_arrays),
        cmocka_unit_test(test_and_json_operations),
        cmocka_unit_test(items_create_or_append),
        cmocka_unit_test(cap_failure_leaves_the_patch_as_it_was),
        cmocka_unit_test(prepend_puts_operations_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
