/* test_downward.c - the Downward-API injection, its patches applied by kubectl's JSON Patch code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "support/kubepatch.h"
#include "support/testserver.h"
#include "topowire/admission.h"
#include "topowire/downward.h"
#include "topowire/error.h"

static const char *const default_copied[] = {TW_DOWNWARD_KEY_ZONE, TW_DOWNWARD_KEY_REGION,
                                             TW_DOWNWARD_KEY_ZONE_ID, NULL};

static tw_downward_config config(void)
{
    tw_downward_config cfg = {
        .rack = "zone",
        .out_dir = "/etc/topowire",
        .version = "9.9.9-test",
        .from_labels = false,
        .copied = default_copied,
    };
    return cfg;
}

/* Returns a copy of the fixture review's request.object (caller deletes). */
static cJSON *load_object(const char *file)
{
    char rel[256];
    size_t len;
    snprintf(rel, sizeof(rel), "admission/%s", file);
    char *text = tw_test_read_file(tw_fixture_path(rel), &len);
    assert_non_null(text);
    tw_admission_request *r = NULL;
    assert_int_equal(tw_admission_decode(text, len, &r, NULL), TW_OK);
    free(text);
    cJSON *obj = cJSON_Duplicate(r->object, 1);
    tw_admission_request_free(r);
    assert_non_null(obj);
    return obj;
}

/* The downward fixture: a Spark executor and a log shipper that sets TOPOLOGY_ZONE itself. */
static cJSON *executor(void)
{
    return load_object("downward/pod-create.json");
}

/* Any fixture pod, relabelled for the downward injection. */
static cJSON *relabelled(const char *file)
{
    cJSON *pod = load_object(file);
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "labels");
    if (labels == NULL)
        labels = cJSON_AddObjectToObject(cJSON_GetObjectItem(pod, "metadata"), "labels");
    cJSON_DeleteItemFromObjectCaseSensitive(labels, TW_POD_LABEL_INJECT);
    cJSON_AddStringToObject(labels, TW_POD_LABEL_INJECT, TW_POD_INJECT_DOWNWARD);
    return pod;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const cJSON *by_name(const cJSON *array, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, array)
    {
        if (str(e, "name") && strcmp(str(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

static const char *ref_path(const cJSON *holder)
{
    return str(cJSON_GetObjectItem(holder, "fieldRef"), "fieldPath");
}

static void build_ok(const cJSON *pod, const tw_downward_config *cfg, tw_podpatch_result *r)
{
    char err[TW_ERRLEN] = "";
    if (tw_downward_build(pod, cfg, r, err) != TW_OK)
        fail_msg("build failed: %s", err);
    if (r->outcome == TW_PODPATCH_INJECTED) {
        assert_true(tw_jsonpatch_count(&r->patch) > 0);
        assert_int_equal(strlen(tw_jsonpatch_text(&r->patch)), tw_jsonpatch_len(&r->patch));
    } else {
        assert_int_equal(tw_jsonpatch_count(&r->patch), 0);
    }
}

static bool has_warning(const tw_podpatch_result *r, const char *part)
{
    for (size_t i = 0; i < r->n_warnings; i++)
        if (strstr(r->warnings[i], part) != NULL)
            return true;
    return false;
}

static void expect_no_patch(const cJSON *pod, const tw_downward_config *cfg,
                            tw_podpatch_outcome want, const char *warn_part)
{
    tw_podpatch_result r;
    build_ok(pod, cfg, &r);
    if (r.outcome != want)
        fail_msg("outcome %s, want %s", tw_podpatch_outcome_name(r.outcome),
                 tw_podpatch_outcome_name(want));
    if (warn_part == NULL)
        assert_int_equal(r.n_warnings, 0);
    else if (!has_warning(&r, warn_part))
        fail_msg("no warning with \"%s\" (%zu warnings)", warn_part, r.n_warnings);
    tw_podpatch_result_free(&r);
}

/* The fieldPath the keys are read through. */
static void want_ref(const cJSON *holder, const tw_downward_config *cfg, const char *key)
{
    char want[320];
    snprintf(want, sizeof(want), "metadata.%s['%s']", cfg->from_labels ? "labels" : "annotations",
             key);
    const char *got = ref_path(holder);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("fieldPath %s, want %s", got ? got : "(none)", want);
}

/* Puts key of obj back as orig_parent had it when that was not an array or object (absent, null).
 */
static void restore(cJSON *obj, const cJSON *orig_parent, const char *key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(orig_parent, key);
    if (cJSON_IsArray(o) || cJSON_IsObject(o))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (o != NULL)
        cJSON_AddItemToObject(obj, key, cJSON_Duplicate(o, 1));
}

/*
 * Builds for pod, applies the patch with kubectl, checks every addition,
 * strips them and checks that the rest equals the original pod. rack_key is
 * what client.rack must read. Returns the patched pod (caller deletes).
 */
static cJSON *inject_and_check(const cJSON *orig, const tw_downward_config *cfg,
                               const char *rack_key)
{
    tw_podpatch_result r;
    build_ok(orig, cfg, &r);
    assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
    cJSON *patched = tw_test_kubectl_patch(orig, tw_jsonpatch_text(&r.patch));
    assert_non_null(patched);
    tw_podpatch_result_free(&r);
    const char *keys[TW_DOWNWARD_VALUES] = {rack_key, TW_DOWNWARD_KEY_ZONE, TW_DOWNWARD_KEY_ZONE_ID,
                                            TW_DOWNWARD_KEY_REGION};
    cJSON *strip = cJSON_Duplicate(patched, 1);

    cJSON *meta = cJSON_GetObjectItem(strip, "metadata");
    cJSON *anns = cJSON_GetObjectItem(meta, "annotations");
    assert_string_equal(str(anns, TW_POD_ANN_INJECTED), cfg->version);
    cJSON_DeleteItemFromObjectCaseSensitive(anns, TW_POD_ANN_INJECTED);
    const cJSON *ometa = cJSON_GetObjectItem(orig, "metadata");
    restore(meta, ometa, "annotations");

    /* The volume: one file per value. */
    cJSON *spec = cJSON_GetObjectItem(strip, "spec");
    cJSON *vols = cJSON_GetObjectItem(spec, "volumes");
    const cJSON *v = by_name(vols, TW_POD_VOLUME);
    assert_non_null(v);
    assert_null(cJSON_GetObjectItem(v, "emptyDir"));
    const cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(v, "downwardAPI"), "items");
    assert_int_equal(cJSON_GetArraySize(items), TW_DOWNWARD_VALUES);
    for (int i = 0; i < TW_DOWNWARD_VALUES; i++) {
        const cJSON *item = cJSON_GetArrayItem(items, i);
        assert_string_equal(str(item, "path"), tw_downward_files[i]);
        want_ref(item, cfg, keys[i]);
    }
    cJSON_DeleteItemFromArray(vols, cJSON_GetArraySize(vols) - 1);
    restore(spec, cJSON_GetObjectItem(orig, "spec"), "volumes");

    /* Every app container: the read-only mount and the variables it did not set itself. */
    const cJSON *ocs = cJSON_GetObjectItem(cJSON_GetObjectItem(orig, "spec"), "containers");
    cJSON *cs = cJSON_GetObjectItem(spec, "containers");
    for (int ci = 0; ci < cJSON_GetArraySize(cs); ci++) {
        cJSON *c = cJSON_GetArrayItem(cs, ci);
        const cJSON *oc = cJSON_GetArrayItem(ocs, ci);
        cJSON *mounts = cJSON_GetObjectItem(c, "volumeMounts");
        const cJSON *m = cJSON_GetArrayItem(mounts, cJSON_GetArraySize(mounts) - 1);
        assert_string_equal(str(m, "name"), TW_POD_VOLUME);
        assert_string_equal(str(m, "mountPath"), cfg->out_dir);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "readOnly")));
        cJSON_DeleteItemFromArray(mounts, cJSON_GetArraySize(mounts) - 1);
        restore(c, oc, "volumeMounts");
        cJSON *env = cJSON_GetObjectItem(c, "env");
        const cJSON *oenv = cJSON_GetObjectItem(oc, "env");
        for (int k = 0; k < TW_DOWNWARD_VALUES; k++) {
            const cJSON *mine = by_name(oenv, tw_downward_env[k]);
            const cJSON *e = by_name(env, tw_downward_env[k]);
            assert_non_null(e);
            if (mine != NULL) {
                /* Left as the container set it. */
                assert_true(cJSON_Compare(e, mine, 1));
                continue;
            }
            want_ref(cJSON_GetObjectItem(e, "valueFrom"), cfg, keys[k]);
            for (int j = 0; j < cJSON_GetArraySize(env); j++)
                if (cJSON_GetArrayItem(env, j) == e)
                    cJSON_DeleteItemFromArray(env, j);
        }
        restore(c, oc, "env");
    }
    if (!cJSON_Compare(strip, orig, 1)) {
        char *a = cJSON_Print(strip), *b = cJSON_Print(orig);
        fail_msg("the patch changed more than it adds:\n%s\nvs\n%s", a, b);
    }
    cJSON_Delete(strip);
    return patched;
}

static void every_pod_fixture_is_injected(void **state)
{
    (void)state;
    static const char *const fixtures[] = {
        "downward/pod-create.json",
        "pod-create-spark-executor.json",
        "pod-create-generatename-restricted.json",
        "pod-create-dryrun.json",
        "pod-create-with-nodename.json",
    };
    tw_downward_config cfg = config();
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        cJSON *pod = relabelled(fixtures[i]);
        cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));
        cJSON_Delete(pod);
    }
}

static void no_init_container_and_no_empty_dir(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cJSON *pod = executor();
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    assert_null(strstr(tw_jsonpatch_text(&r.patch), "initContainers"));
    assert_null(strstr(tw_jsonpatch_text(&r.patch), "emptyDir"));
    assert_null(strstr(tw_jsonpatch_text(&r.patch), "image"));
    /* The annotation map is created: the fixture has none. */
    assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "\"path\":\"/metadata/annotations\""));
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void each_rack_kind(void **state)
{
    (void)state;
    static const struct {
        const char *rack, *key;
    } kinds[] = {
        {"zone", TW_DOWNWARD_KEY_ZONE},
        {"zone-id", TW_DOWNWARD_KEY_ZONE_ID},
        {"region", TW_DOWNWARD_KEY_REGION},
        {"label:topology.kubernetes.io/zone", TW_DOWNWARD_KEY_ZONE},
        {"label:rack.example.com/name", "rack.example.com/name"},
    };
    static const char *const copied[] = {TW_DOWNWARD_KEY_ZONE, TW_DOWNWARD_KEY_REGION,
                                         TW_DOWNWARD_KEY_ZONE_ID, "rack.example.com/name", NULL};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        tw_downward_config cfg = config();
        cfg.rack = kinds[i].rack;
        cfg.copied = copied;
        assert_string_equal(tw_downward_rack_key(kinds[i].rack), kinds[i].key);
        cJSON *pod = executor();
        cJSON_Delete(inject_and_check(pod, &cfg, kinds[i].key));
        cJSON_Delete(pod);
        /* The same through the pod's own topowire.io/rack annotation. */
        cfg.rack = "zone";
        pod = executor();
        cJSON *anns = cJSON_AddObjectToObject(cJSON_GetObjectItem(pod, "metadata"), "annotations");
        cJSON_AddStringToObject(anns, TW_POD_ANN_RACK, kinds[i].rack);
        cJSON_Delete(inject_and_check(pod, &cfg, kinds[i].key));
        cJSON_Delete(pod);
    }
    assert_null(tw_downward_rack_key("moon"));
    assert_null(tw_downward_rack_key(NULL));
    assert_null(tw_downward_rack_key("label:"));
}

static void labels_instead_of_annotations(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cfg.from_labels = true;
    cJSON *pod = executor();
    cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    assert_null(strstr(tw_jsonpatch_text(&r.patch), "metadata.annotations['"));
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void variables_a_container_sets_are_left_alone(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cJSON *pod = executor();
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "\"log-shipper\" already sets TOPOLOGY_ZONE"));
    tw_podpatch_result_free(&r);
    /* inject_and_check compares the shipper's own TOPOLOGY_ZONE with the original. */
    cJSON *out = inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE);
    const cJSON *shipper =
        by_name(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "spec"), "containers"), "log-shipper");
    const cJSON *env = cJSON_GetObjectItem(shipper, "env");
    assert_int_equal(cJSON_GetArraySize(env), TW_DOWNWARD_VALUES);
    assert_string_equal(str(by_name(env, "TOPOLOGY_ZONE"), "value"), "unknown");
    cJSON_Delete(out);

    /* A container that sets all four gets the mount and no variable. */
    cJSON *c =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 1);
    cJSON *e = cJSON_GetObjectItem(c, "env");
    for (int k = 1; k < TW_DOWNWARD_VALUES; k++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "name", tw_downward_env[k == 1 ? 0 : k]);
        cJSON_AddStringToObject(v, "value", "mine");
        cJSON_AddItemToArray(e, v);
    }
    build_ok(pod, &cfg, &r);
    assert_null(strstr(tw_jsonpatch_text(&r.patch), "/spec/containers/1/env"));
    assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "/spec/containers/1/volumeMounts"));
    assert_true(has_warning(&r, "CLIENT_RACK, TOPOLOGY_ZONE, TOPOLOGY_ZONE_ID, TOPOLOGY_REGION"));
    tw_podpatch_result_free(&r);
    cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));
    cJSON_Delete(pod);
}

static void second_admission_changes_nothing(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cJSON *pod = executor();
    cJSON *once = inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE);
    expect_no_patch(once, &cfg, TW_PODPATCH_ALREADY, NULL);
    /* An init-injected pod (any value of the annotation) is left alone too. */
    cJSON *anns = cJSON_AddObjectToObject(cJSON_GetObjectItem(pod, "metadata"), "annotations");
    cJSON_AddStringToObject(anns, TW_POD_ANN_INJECTED, "");
    expect_no_patch(pod, &cfg, TW_PODPATCH_ALREADY, NULL);
    cJSON_Delete(once);
    cJSON_Delete(pod);
}

static void only_the_downward_label_selects(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cJSON *pod = executor();
    assert_true(tw_downward_selected(pod));
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "labels");
    static const char *const others[] = {"true", "false", "Downward", "downward ", ""};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        cJSON_ReplaceItemInObjectCaseSensitive(labels, TW_POD_LABEL_INJECT,
                                               cJSON_CreateString(others[i]));
        assert_false(tw_downward_selected(pod));
        expect_no_patch(pod, &cfg, TW_PODPATCH_NOT_SELECTED, NULL);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(labels, TW_POD_LABEL_INJECT);
    assert_false(tw_downward_selected(pod));
    cJSON_AddNumberToObject(labels, TW_POD_LABEL_INJECT, 1);
    assert_false(tw_downward_selected(pod));
    assert_false(tw_downward_selected(NULL));
    cJSON_Delete(pod);
}

static void clashes_are_warned(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cJSON *pod = executor();
    cJSON *vol = cJSON_CreateObject();
    cJSON_AddStringToObject(vol, "name", TW_POD_VOLUME);
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "volumes"), vol);
    expect_no_patch(pod, &cfg, TW_PODPATCH_CONFLICT, "volume named \"topowire\"");
    cJSON_Delete(pod);

    pod = executor();
    cJSON *c =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers"), 1);
    cJSON *mounts = cJSON_AddArrayToObject(c, "volumeMounts");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", "config");
    cJSON_AddStringToObject(m, "mountPath", "/etc/topowire/");
    cJSON_AddItemToArray(mounts, m);
    expect_no_patch(pod, &cfg, TW_PODPATCH_CONFLICT, "\"log-shipper\" already mounts");
    cfg.out_dir = "/etc/rack";
    cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));
    cJSON_Delete(pod);
}

static void shapes_that_cannot_be_patched(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    static const char *const bad[] = {
        "{\"metadata\":[],\"spec\":{}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"},\"annotations\":3}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},\"spec\":{}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":{}}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":{}}]}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\",\"env\":[{\"value\":\"1\"}]}]}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\",\"volumeMounts\":\"x\"}]}}",
        "{\"metadata\":{\"labels\":{\"topowire.io/inject\":\"downward\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\"}],\"volumes\":[7]}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *pod = cJSON_Parse(bad[i]);
        assert_non_null(pod);
        expect_no_patch(pod, &cfg, TW_PODPATCH_INVALID, "unexpected");
        cJSON_Delete(pod);
    }
    /* The smallest pod that can be patched: no metadata.annotations, env, mounts or volumes. */
    cJSON *pod = cJSON_Parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
        "\"p\",\"labels\":{\"topowire.io/"
        "inject\":\"downward\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\",\"env\":"
        "null}],\"volumes\":null}}");
    cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));
    cJSON_Delete(pod);
}

static void namespaces_without_binding_are_warned(void **state)
{
    (void)state;
    tw_downward_config cfg = config();
    cfg.copied = NULL;
    cJSON *pod = relabelled("pod-create-spark-executor.json");
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "topowire.io/binding=enabled"));
    assert_non_null(strstr(r.warnings[0], "/etc/topowire"));
    assert_non_null(strstr(r.warnings[0], "stay empty"));
    tw_podpatch_result_free(&r);
    /* The volume still comes: a later binding-enabled namespace needs no new pod template. */
    cJSON_Delete(inject_and_check(pod, &cfg, TW_DOWNWARD_KEY_ZONE));

    /* With binding, a pod asking for a label the webhook does not copy is told so. */
    cfg = config();
    cJSON *anns = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "annotations");
    cJSON_AddStringToObject(anns, TW_POD_ANN_RACK, "label:rack.example.com/name");
    build_ok(pod, &cfg, &r);
    assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
    assert_true(has_warning(&r, "does not copy the node label rack.example.com/name"));
    tw_podpatch_result_free(&r);
    /* ... and an annotation that is no rack falls back to the default. */
    cJSON_ReplaceItemInObjectCaseSensitive(anns, TW_POD_ANN_RACK, cJSON_CreateString("moon\x01"));
    build_ok(pod, &cfg, &r);
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "is \"moon?\""));
    assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "topology.kubernetes.io/zone']"));
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void configuration_is_checked(void **state)
{
    (void)state;
    char err[TW_ERRLEN];
    tw_downward_config cfg = config();
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_OK);
    cfg.rack = "label:rack.example.com/name";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_EINVAL);
    assert_non_null(strstr(err, "rack.example.com/name is not among the labels"));
    cfg.copied = NULL; /* no binding: nothing to compare with */
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_OK);
    cfg = config();
    cfg.rack = "label:topology.k8s.aws/zone-id";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_OK);
    static const char *const only_zone[] = {TW_DOWNWARD_KEY_ZONE, NULL};
    cfg.copied = only_zone;
    cfg.rack = "zone-id"; /* not refused: pods are warned, and an init injection still works */
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_OK);
    tw_podpatch_result w;
    cJSON *p = executor();
    build_ok(p, &cfg, &w);
    assert_int_equal(w.outcome, TW_PODPATCH_INJECTED);
    assert_true(has_warning(&w, "does not copy the node label topology.k8s.aws/zone-id"));
    tw_podpatch_result_free(&w);
    cJSON_Delete(p);
    cfg.rack = "zone";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_OK);
    cfg.rack = "moon";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_EINVAL);
    cfg = config();
    cfg.out_dir = "etc/topowire";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_EINVAL);
    cfg.out_dir = "/etc/../x";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_EINVAL);
    cfg = config();
    cfg.version = "";
    assert_int_equal(tw_downward_config_check(&cfg, err), TW_EINVAL);
    assert_int_equal(tw_downward_config_check(NULL, err), TW_EINVAL);

    /* A build refuses a bad configuration and NULLs, leaving the result zeroed. */
    tw_podpatch_result r;
    cJSON *pod = executor();
    assert_int_equal(tw_downward_build(pod, &cfg, &r, err), TW_EINVAL);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
    cfg = config();
    assert_int_equal(tw_downward_build(NULL, &cfg, &r, NULL), TW_EINVAL);
    assert_int_equal(tw_downward_build(pod, NULL, &r, NULL), TW_EINVAL);
    cJSON_Delete(pod);
}

static void prepared_config_gives_the_same_patch(void **state)
{
    (void)state;
    char err[TW_ERRLEN];
    tw_downward_config cfg = config();
    tw_downward *d = NULL;
    assert_int_equal(tw_downward_prepare(&cfg, &d, err), TW_OK);
    for (int with_rack = 0; with_rack < 2; with_rack++) {
        cJSON *pod = executor();
        if (with_rack)
            cJSON_AddStringToObject(
                cJSON_AddObjectToObject(cJSON_GetObjectItem(pod, "metadata"), "annotations"),
                TW_POD_ANN_RACK, "region");
        tw_podpatch_result a, b;
        build_ok(pod, &cfg, &a);
        assert_int_equal(tw_downward_build_prepared(d, pod, &b, err), TW_OK);
        assert_string_equal(tw_jsonpatch_text(&a.patch), tw_jsonpatch_text(&b.patch));
        assert_int_equal(tw_jsonpatch_count(&a.patch), tw_jsonpatch_count(&b.patch));
        assert_int_equal(a.n_warnings, b.n_warnings);
        /* The override reaches client.rack only; the prepared texts stay for the next pod. */
        assert_int_equal(strstr(tw_jsonpatch_text(&b.patch),
                                "\"path\":\"client.rack\",\"fieldRef\":{\"apiVersion\":"
                                "\"v1\",\"fieldPath\":\"metadata.annotations['"
                                "topology.kubernetes.io/region']") != NULL,
                         with_rack);
        tw_podpatch_result_free(&a);
        tw_podpatch_result_free(&b);
        cJSON_Delete(pod);
    }
    tw_podpatch_result r;
    assert_int_equal(tw_downward_build_prepared(NULL, NULL, &r, NULL), TW_EINVAL);
    assert_int_equal(tw_downward_build_prepared(d, NULL, &r, NULL), TW_EINVAL);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
    tw_downward_free(d);
    tw_downward_free(NULL);
    cfg.rack = "moon";
    d = (tw_downward *)0x1;
    assert_int_equal(tw_downward_prepare(&cfg, &d, err), TW_EINVAL);
    assert_ptr_equal(d, (tw_downward *)0x1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pod_fixture_is_injected),
        cmocka_unit_test(no_init_container_and_no_empty_dir),
        cmocka_unit_test(each_rack_kind),
        cmocka_unit_test(labels_instead_of_annotations),
        cmocka_unit_test(variables_a_container_sets_are_left_alone),
        cmocka_unit_test(second_admission_changes_nothing),
        cmocka_unit_test(only_the_downward_label_selects),
        cmocka_unit_test(clashes_are_warned),
        cmocka_unit_test(shapes_that_cannot_be_patched),
        cmocka_unit_test(namespaces_without_binding_are_warned),
        cmocka_unit_test(configuration_is_checked),
        cmocka_unit_test(prepared_config_gives_the_same_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
