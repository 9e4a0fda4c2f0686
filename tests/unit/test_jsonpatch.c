/* test_jsonpatch.c - JSON Patch building and JSON Pointer escaping, applied by kubectl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pointer_escaping),
        cmocka_unit_test(map_entries_with_awkward_keys),
        cmocka_unit_test(add_takes_ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
