/* test_podpatch_util.c - the helpers the two pod patch builders share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/kubepatch.h"
#include "topowire/error.h"

#include "../../lib/podpatch_util.h"

static void quoted_cuts_and_masks(void **state)
{
    (void)state;
    char q[TW_TEXT_SHOWN_SIZE];
    assert_string_equal(tw__podpatch_quoted(NULL, q), "");
    assert_string_equal(tw__podpatch_quoted("plain", q), "plain");
    assert_string_equal(tw__podpatch_quoted("a\"b\nc\x7f", q), "a?b?c?");
    char long_value[TW_TEXT_SHOWN + 10];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    const char *out = tw__podpatch_quoted(long_value, q);
    assert_int_equal(strlen(out), TW_TEXT_SHOWN + 3);
    assert_string_equal(out + TW_TEXT_SHOWN, "...");
    long_value[TW_TEXT_SHOWN] = '\0'; /* exactly the cut: no dots */
    assert_int_equal(strlen(tw__podpatch_quoted(long_value, q)), TW_TEXT_SHOWN);
}

static void members_and_names(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"a\":[{\"name\":\"x\"},{\"name\":\"y\"}],\"n\":null,\"s\":\"str\","
                           "\"o\":{},\"empty\":[{\"name\":\"\"}],\"noname\":[{}],\"num\":[1]}");
    assert_non_null(o);
    bool bad = false;
    assert_non_null(tw__podpatch_member(o, "a", cJSON_Array, &bad));
    assert_non_null(tw__podpatch_member(o, "o", cJSON_Object, &bad));
    assert_null(tw__podpatch_member(o, "n", cJSON_Array, &bad));
    assert_null(tw__podpatch_member(o, "absent", cJSON_Object, &bad));
    assert_null(tw__podpatch_member(NULL, "a", cJSON_Array, &bad));
    assert_false(bad);
    assert_null(tw__podpatch_member(o, "s", cJSON_Object, &bad));
    assert_true(bad);
    assert_string_equal(tw__podpatch_member_string(o, "s"), "str");
    assert_null(tw__podpatch_member_string(o, "o"));
    assert_null(tw__podpatch_member_string(cJSON_GetObjectItem(o, "a"), "s"));

    const cJSON *a = cJSON_GetObjectItem(o, "a");
    assert_true(tw__podpatch_has_name(a, "y"));
    assert_false(tw__podpatch_has_name(a, "z"));
    assert_false(tw__podpatch_has_name(NULL, "x"));
    assert_true(tw__podpatch_named_objects(a));
    assert_true(tw__podpatch_named_objects(NULL));
    /* The API server requires a name: an empty one is as bad as none. */
    assert_false(tw__podpatch_named_objects(cJSON_GetObjectItem(o, "empty")));
    assert_false(tw__podpatch_named_objects(cJSON_GetObjectItem(o, "noname")));
    assert_false(tw__podpatch_named_objects(cJSON_GetObjectItem(o, "num")));
    cJSON_Delete(o);
}

static void paths_compare_without_trailing_slashes(void **state)
{
    (void)state;
    assert_true(tw__podpatch_same_path("/etc/topowire", "/etc/topowire/"));
    assert_true(tw__podpatch_same_path("/etc/topowire//", "/etc/topowire"));
    assert_true(tw__podpatch_same_path("/", "/"));
    assert_false(tw__podpatch_same_path("/etc/topowire", "/etc/topowire2"));
    assert_false(tw__podpatch_same_path("/etc", "/etc/topowire"));
}

static void rack_annotation_overrides_or_warns(void **state)
{
    (void)state;
    tw_podpatch_result r = {0};
    const char *rack = NULL;
    cJSON *anns = cJSON_Parse("{\"topowire.io/rack\":\"region\"}");
    assert_int_equal(tw__podpatch_rack(anns, "zone", &r, &rack), TW_OK);
    assert_string_equal(rack, "region");
    assert_int_equal(r.n_warnings, 0);
    assert_int_equal(tw__podpatch_rack(NULL, "zone", &r, &rack), TW_OK);
    assert_string_equal(rack, "zone");
    cJSON_Delete(anns);
    anns = cJSON_Parse("{\"topowire.io/rack\":\"label:\\\"bad\"}");
    assert_int_equal(tw__podpatch_rack(anns, "zone", &r, &rack), TW_OK);
    assert_string_equal(rack, "zone");
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "\"label:?bad\""));
    cJSON_Delete(anns);
    anns = cJSON_Parse("{\"topowire.io/rack\":7}");
    assert_int_equal(tw__podpatch_rack(anns, "zone-id", &r, &rack), TW_OK);
    assert_string_equal(rack, "zone-id");
    assert_int_equal(r.n_warnings, 2);
    cJSON_Delete(anns);
    /* Warnings stop at the cap without failing. */
    for (int i = 0; i < TW_PODPATCH_MAX_WARNINGS + 2; i++)
        assert_int_equal(tw__podpatch_warn(&r, "w %d", i), TW_OK);
    assert_int_equal(r.n_warnings, TW_PODPATCH_MAX_WARNINGS);
    tw_podpatch_result_free(&r);
}

static void read_meta_refuses_unexpected_types(void **state)
{
    (void)state;
    static const char *const pods[] = {
        "[]",
        "{\"metadata\":[]}",
        "{\"metadata\":{\"labels\":\"x\"}}",
        "{\"metadata\":{\"annotations\":[]}}",
        "{\"spec\":1}",
    };
    const cJSON *meta, *labels, *anns, *spec;
    for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
        cJSON *pod = cJSON_Parse(pods[i]);
        tw_podpatch_result r = {0};
        bool done = false;
        assert_int_equal(tw__podpatch_read_meta(pod, &meta, &labels, &anns, &spec, &r, &done),
                         TW_OK);
        assert_true(done);
        assert_int_equal(r.outcome, TW_PODPATCH_INVALID);
        assert_int_equal(r.n_warnings, 1);
        tw_podpatch_result_free(&r);
        cJSON_Delete(pod);
    }
    cJSON *pod = cJSON_Parse("{\"metadata\":{\"labels\":null,\"annotations\":{}},\"spec\":{}}");
    tw_podpatch_result r = {0};
    bool done = false;
    assert_int_equal(tw__podpatch_read_meta(pod, &meta, &labels, &anns, &spec, &r, &done), TW_OK);
    assert_false(done);
    assert_null(labels);
    assert_non_null(anns);
    assert_non_null(spec);
    assert_int_equal(r.n_warnings, 0);
    cJSON_Delete(pod);
}

/* The mark sets topowire.io/injected whether the pod has annotations, metadata, or neither. */
static void mark_applies_with_kubectl(void **state)
{
    (void)state;
    static const char *const pods[] = {
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
        "\"annotations\":{\"keep\":\"me\"}}}",
    };
    tw__podpatch_mark m;
    assert_int_equal(tw__podpatch_mark_init(&m, "1.2.3\"q"), TW_OK);
    assert_string_equal(m.path, "/metadata/annotations/topowire.io~1injected");
    for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
        cJSON *pod = cJSON_Parse(pods[i]);
        tw_jsonpatch p;
        tw_jsonpatch_init(&p);
        assert_int_equal(tw__podpatch_mark_add(&m, &p, pod), TW_OK);
        assert_int_equal(tw_jsonpatch_count(&p), 1);
        cJSON *out = tw_test_kubectl_patch(pod, tw_jsonpatch_text(&p));
        assert_non_null(out);
        const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "metadata"), "annotations");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, TW_POD_ANN_INJECTED)),
                            "1.2.3\"q");
        assert_int_equal(cJSON_GetArraySize(a), i == 2 ? 2 : 1);
        cJSON_Delete(out);
        tw_jsonpatch_free(&p);
        cJSON_Delete(pod);
    }
    tw__podpatch_mark_free(&m);
    tw__podpatch_mark_free(&m);
    tw__podpatch_mark_free(NULL);
}

static void mount_renders(void **state)
{
    (void)state;
    char *ro = tw__podpatch_render(tw__podpatch_mount_json("v", "/d", true));
    char *rw = tw__podpatch_render(tw__podpatch_mount_json("v", "/d", false));
    assert_string_equal(ro, "{\"name\":\"v\",\"mountPath\":\"/d\",\"readOnly\":true}");
    assert_string_equal(rw, "{\"name\":\"v\",\"mountPath\":\"/d\"}");
    assert_null(tw__podpatch_render(NULL));
    free(ro);
    free(rw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_cuts_and_masks),
        cmocka_unit_test(members_and_names),
        cmocka_unit_test(paths_compare_without_trailing_slashes),
        cmocka_unit_test(rack_annotation_overrides_or_warns),
        cmocka_unit_test(read_meta_refuses_unexpected_types),
        cmocka_unit_test(mark_applies_with_kubectl),
        cmocka_unit_test(mount_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
