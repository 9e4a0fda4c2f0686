/* test_podpatch.c - the pod patch builder, its patches applied by kubectl's JSON Patch code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "support/kubepatch.h"
#include "support/testserver.h"
#include "topowire/admission.h"
#include "topowire/error.h"
#include "topowire/podpatch.h"

static const char *const pod_fixtures[] = {
    "pod-create-spark-executor.json",
    "pod-create-generatename-restricted.json",
    "pod-create-dryrun.json",
    "pod-create-with-nodename.json",
};

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

static cJSON *spark(void)
{
    return load_object("pod-create-spark-executor.json");
}

static cJSON *path_get(const cJSON *root, const char *a, const char *b)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, a);
    return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

static void build_ok(const cJSON *pod, const tw_podpatch_config *cfg, tw_podpatch_result *r)
{
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_podpatch_build(pod, cfg, r, err), TW_OK);
    if (r->outcome == TW_PODPATCH_INJECTED) {
        assert_true(tw_jsonpatch_count(&r->patch) > 0);
        assert_int_equal(strlen(tw_jsonpatch_text(&r->patch)), tw_jsonpatch_len(&r->patch));
        assert_true(tw_jsonpatch_count(&r->patch) >= 4);
    } else {
        assert_int_equal(tw_jsonpatch_count(&r->patch), 0);
        assert_string_equal(tw_jsonpatch_text(&r->patch), "[]");
    }
}

/* Builds with cfg and expects no patch with the given outcome and warning count. */
static void expect_no_patch(const cJSON *pod, const tw_podpatch_config *cfg,
                            tw_podpatch_outcome want, size_t warnings, const char *warn_part)
{
    tw_podpatch_result r;
    build_ok(pod, cfg, &r);
    if (r.outcome != want)
        fail_msg("outcome %s, want %s", tw_podpatch_outcome_name(r.outcome),
                 tw_podpatch_outcome_name(want));
    assert_int_equal(r.n_warnings, warnings);
    if (warn_part != NULL && (r.n_warnings == 0 || strstr(r.warnings[0], warn_part) == NULL))
        fail_msg("warning \"%s\" lacks \"%s\"", r.n_warnings ? r.warnings[0] : "", warn_part);
    tw_podpatch_result_free(&r);
}

static bool is_true(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* Our init container, as the applied patch left it. */
static void check_init_container(const cJSON *c, const tw_podpatch_config *cfg, const char *rack)
{
    char want[512];
    assert_string_equal(str(c, "name"), TW_POD_INIT_CONTAINER);
    assert_string_equal(str(c, "image"), cfg->init_image);
    if (cfg->image_pull_policy && cfg->image_pull_policy[0])
        assert_string_equal(str(c, "imagePullPolicy"), cfg->image_pull_policy);
    else
        assert_null(cJSON_GetObjectItem(c, "imagePullPolicy"));
    const cJSON *args = cJSON_GetObjectItem(c, "args");
    assert_int_equal(cJSON_GetArraySize(args), 3);
    snprintf(want, sizeof(want), "--rack=%s", rack);
    assert_string_equal(cJSON_GetArrayItem(args, 0)->valuestring, want);
    snprintf(want, sizeof(want), "--out-dir=%s", cfg->out_dir);
    assert_string_equal(cJSON_GetArrayItem(args, 1)->valuestring, want);
    snprintf(want, sizeof(want), "--podinfo-dir=%s", cfg->podinfo_dir);
    assert_string_equal(cJSON_GetArrayItem(args, 2)->valuestring, want);

    const cJSON *env = cJSON_GetObjectItem(c, "env");
    assert_int_equal(cJSON_GetArraySize(env), 1);
    const cJSON *e = cJSON_GetArrayItem(env, 0);
    assert_string_equal(str(e, "name"), "NODE_NAME");
    assert_string_equal(str(path_get(e, "valueFrom", "fieldRef"), "fieldPath"), "spec.nodeName");

    const cJSON *res = cJSON_GetObjectItem(c, "resources");
    assert_string_equal(str(path_get(res, "requests", NULL), "cpu"), cfg->cpu_request);
    assert_string_equal(str(path_get(res, "requests", NULL), "memory"), cfg->memory_request);
    if (cfg->memory_limit[0])
        assert_string_equal(str(path_get(res, "limits", NULL), "memory"), cfg->memory_limit);
    if (cfg->cpu_limit[0])
        assert_string_equal(str(path_get(res, "limits", NULL), "cpu"), cfg->cpu_limit);
    if (!cfg->cpu_limit[0] && !cfg->memory_limit[0])
        assert_null(cJSON_GetObjectItem(res, "limits"));

    /* The restricted Pod Security Standard, container level. */
    const cJSON *sc = cJSON_GetObjectItem(c, "securityContext");
    assert_true(is_true(sc, "runAsNonRoot"));
    assert_int_equal(cJSON_GetObjectItem(sc, "runAsUser")->valueint, TW_POD_RUN_AS);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(sc, "allowPrivilegeEscalation")));
    assert_true(is_true(sc, "readOnlyRootFilesystem"));
    assert_null(cJSON_GetObjectItem(sc, "privileged"));
    const cJSON *drop = path_get(sc, "capabilities", "drop");
    assert_int_equal(cJSON_GetArraySize(drop), 1);
    assert_string_equal(cJSON_GetArrayItem(drop, 0)->valuestring, "ALL");
    assert_null(path_get(sc, "capabilities", "add"));
    assert_string_equal(str(path_get(sc, "seccompProfile", NULL), "type"), "RuntimeDefault");

    const cJSON *mounts = cJSON_GetObjectItem(c, "volumeMounts");
    assert_int_equal(cJSON_GetArraySize(mounts), 2);
    const cJSON *m0 = cJSON_GetArrayItem(mounts, 0), *m1 = cJSON_GetArrayItem(mounts, 1);
    assert_string_equal(str(m0, "name"), TW_POD_VOLUME);
    assert_string_equal(str(m0, "mountPath"), cfg->out_dir);
    assert_false(is_true(m0, "readOnly"));
    assert_string_equal(str(m1, "name"), TW_POD_PODINFO_VOLUME);
    assert_string_equal(str(m1, "mountPath"), cfg->podinfo_dir);
    assert_true(is_true(m1, "readOnly"));
}

static void check_volumes(const cJSON *vols, int first)
{
    const cJSON *v = cJSON_GetArrayItem(vols, first);
    assert_string_equal(str(v, "name"), TW_POD_VOLUME);
    assert_string_equal(str(path_get(v, "emptyDir", NULL), "medium"), "Memory");
    assert_string_equal(str(path_get(v, "emptyDir", NULL), "sizeLimit"), "1Mi");
    v = cJSON_GetArrayItem(vols, first + 1);
    assert_string_equal(str(v, "name"), TW_POD_PODINFO_VOLUME);
    const cJSON *items = path_get(v, "downwardAPI", "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    assert_string_equal(str(cJSON_GetArrayItem(items, 0), "path"), "annotations");
    assert_string_equal(str(path_get(cJSON_GetArrayItem(items, 0), "fieldRef", NULL), "fieldPath"),
                        "metadata.annotations");
    assert_string_equal(str(cJSON_GetArrayItem(items, 1), "path"), "labels");
    assert_string_equal(str(path_get(cJSON_GetArrayItem(items, 1), "fieldRef", NULL), "fieldPath"),
                        "metadata.labels");
}

/*
 * Applies r's patch to orig with kubectl, checks every addition, then strips
 * them and checks that what is left equals the original pod exactly. mounted
 * says which app containers must have got the mount (NULL: all). Returns the
 * patched pod (caller deletes).
 */
static cJSON *apply_and_check(const cJSON *orig, const tw_podpatch_result *r,
                              const tw_podpatch_config *cfg, const char *rack, const bool *mounted)
{
    assert_int_equal(r->outcome, TW_PODPATCH_INJECTED);
    cJSON *patched = tw_test_kubectl_patch(orig, tw_jsonpatch_text(&r->patch));
    assert_non_null(patched);
    cJSON *strip = cJSON_Duplicate(patched, 1);

    const cJSON *ometa = path_get(orig, "metadata", NULL);
    cJSON *meta = cJSON_GetObjectItem(strip, "metadata");
    cJSON *anns = cJSON_GetObjectItem(meta, "annotations");
    assert_string_equal(str(anns, TW_POD_ANN_INJECTED), cfg->version);
    cJSON_DeleteItemFromObjectCaseSensitive(anns, TW_POD_ANN_INJECTED);
    if (!cJSON_IsObject(cJSON_GetObjectItem(ometa, "annotations")))
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");

    const cJSON *ospec = path_get(orig, "spec", NULL);
    cJSON *spec = cJSON_GetObjectItem(strip, "spec");
    cJSON *inits = cJSON_GetObjectItem(spec, "initContainers");
    const cJSON *oinits = cJSON_GetObjectItem(ospec, "initContainers");
    assert_int_equal(cJSON_GetArraySize(inits), cJSON_GetArraySize(oinits) + 1);
    check_init_container(cJSON_GetArrayItem(inits, 0), cfg, rack);
    cJSON_DeleteItemFromArray(inits, 0);
    if (!cJSON_IsArray(oinits))
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "initContainers");

    cJSON *vols = cJSON_GetObjectItem(spec, "volumes");
    const cJSON *ovols = cJSON_GetObjectItem(ospec, "volumes");
    int nv = cJSON_GetArraySize(ovols);
    assert_int_equal(cJSON_GetArraySize(vols), nv + 2);
    check_volumes(vols, nv);
    cJSON_DeleteItemFromArray(vols, nv + 1);
    cJSON_DeleteItemFromArray(vols, nv);
    if (!cJSON_IsArray(ovols))
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "volumes");

    const cJSON *ocs = cJSON_GetObjectItem(ospec, "containers");
    cJSON *cs = cJSON_GetObjectItem(spec, "containers");
    assert_int_equal(cJSON_GetArraySize(cs), cJSON_GetArraySize(ocs));
    for (int i = 0; i < cJSON_GetArraySize(cs); i++) {
        cJSON *c = cJSON_GetArrayItem(cs, i);
        const cJSON *oc = cJSON_GetArrayItem(ocs, i);
        cJSON *mounts = cJSON_GetObjectItem(c, "volumeMounts");
        const cJSON *omounts = cJSON_GetObjectItem(oc, "volumeMounts");
        if (mounted == NULL || mounted[i]) {
            int n = cJSON_GetArraySize(mounts);
            assert_int_equal(n, cJSON_GetArraySize(omounts) + 1);
            const cJSON *m = cJSON_GetArrayItem(mounts, n - 1);
            assert_string_equal(str(m, "name"), TW_POD_VOLUME);
            assert_string_equal(str(m, "mountPath"), cfg->out_dir);
            assert_true(is_true(m, "readOnly"));
            cJSON_DeleteItemFromArray(mounts, n - 1);
            if (!cJSON_IsArray(omounts))
                cJSON_DeleteItemFromObjectCaseSensitive(c, "volumeMounts");
        }
        assert_true(cJSON_Compare(c, oc, 1));
    }
    /* Nothing else changed anywhere in the pod. */
    if (!cJSON_Compare(strip, orig, 1)) {
        char *a = cJSON_Print(strip), *b = cJSON_Print(orig);
        print_error("stripped:\n%s\noriginal:\n%s\n", a, b);
        cJSON_free(a);
        cJSON_free(b);
        fail_msg("the patch changed more than topowire's additions");
    }
    cJSON_Delete(strip);

    /* Admitting the patched pod again changes nothing. */
    tw_podpatch_result again;
    build_ok(patched, cfg, &again);
    assert_int_equal(again.outcome, TW_PODPATCH_ALREADY);
    assert_int_equal(again.n_warnings, 0);
    tw_podpatch_result_free(&again);
    return patched;
}

/* Builds with cfg, expects an injection, applies and checks it. */
static void inject_and_check(const cJSON *pod, const tw_podpatch_config *cfg, const char *rack,
                             const bool *mounted, size_t warnings)
{
    tw_podpatch_result r;
    build_ok(pod, cfg, &r);
    assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
    assert_int_equal(r.n_warnings, warnings);
    cJSON_Delete(apply_and_check(pod, &r, cfg, rack, mounted));
    tw_podpatch_result_free(&r);
}

static void every_pod_fixture_is_injected(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    for (size_t i = 0; i < sizeof(pod_fixtures) / sizeof(pod_fixtures[0]); i++) {
        cJSON *pod = load_object(pod_fixtures[i]);
        inject_and_check(pod, &cfg, "zone", NULL, 0);
        cJSON_Delete(pod);
    }
}

static void patch_paths_for_the_spark_executor(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *pod = spark();
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    cJSON *ops = cJSON_Parse(tw_jsonpatch_text(&r.patch));
    assert_int_equal(cJSON_GetArraySize(ops), 5);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 5);
    static const char *const paths[] = {
        "/metadata/annotations/topowire.io~1injected", "/spec/volumes/-", "/spec/volumes/-",
        "/spec/initContainers", "/spec/containers/0/volumeMounts/-"};
    for (int i = 0; i < 5; i++) {
        const cJSON *op = cJSON_GetArrayItem(ops, i);
        assert_string_equal(str(op, "op"), "add");
        assert_string_equal(str(op, "path"), paths[i]);
    }
    cJSON_Delete(ops);
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void binding_object_gets_nothing(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *binding = load_object("binding-create.json");
    expect_no_patch(binding, &cfg, TW_PODPATCH_NOT_SELECTED, 0, NULL);
    cJSON_Delete(binding);
}

static void init_container_goes_first(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *pod = spark();
    cJSON *inits = cJSON_Parse("[{\"name\":\"setup\",\"image\":\"busybox:1.36\"},"
                               "{\"name\":\"wait\",\"image\":\"busybox:1.36\"}]");
    cJSON_AddItemToObject(cJSON_GetObjectItem(pod, "spec"), "initContainers", inits);
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "\"/spec/initContainers/0\""));
    cJSON *patched = apply_and_check(pod, &r, &cfg, "zone", NULL);
    const cJSON *pi = path_get(patched, "spec", "initContainers");
    assert_int_equal(cJSON_GetArraySize(pi), 3);
    assert_string_equal(str(cJSON_GetArrayItem(pi, 0), "name"), TW_POD_INIT_CONTAINER);
    assert_string_equal(str(cJSON_GetArrayItem(pi, 1), "name"), "setup");
    assert_string_equal(str(cJSON_GetArrayItem(pi, 2), "name"), "wait");
    cJSON_Delete(patched);
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void missing_and_null_containers_of_ours_are_created(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    /* No volumes, no annotations at all. */
    cJSON *pod = spark();
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(pod, "spec"), "volumes");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(pod, "metadata"), "annotations");
    inject_and_check(pod, &cfg, "zone", NULL, 0);
    cJSON_Delete(pod);
    /* JSON null where arrays and maps may be. */
    pod = spark();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(pod, "spec"), "volumes", cJSON_CreateNull());
    cJSON_AddNullToObject(cJSON_GetObjectItem(pod, "spec"), "initContainers");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(pod, "metadata"), "annotations",
                              cJSON_CreateNull());
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    cJSON *patched = tw_test_kubectl_patch(pod, tw_jsonpatch_text(&r.patch));
    assert_non_null(patched);
    assert_int_equal(cJSON_GetArraySize(path_get(patched, "spec", "volumes")), 2);
    assert_int_equal(cJSON_GetArraySize(path_get(patched, "spec", "initContainers")), 1);
    assert_string_equal(str(path_get(patched, "metadata", "annotations"), TW_POD_ANN_INJECTED),
                        cfg.version);
    cJSON_Delete(patched);
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
    /* An empty volumes array is appended to. */
    pod = load_object("pod-create-with-nodename.json");
    build_ok(pod, &cfg, &r);
    assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "\"/spec/volumes/-\""));
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void annotation_keys_with_slash_and_tilde_survive(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *pod = spark();
    cJSON *anns = path_get(pod, "metadata", "annotations");
    cJSON_AddStringToObject(anns, "example.com/a~b", "1");
    cJSON_AddStringToObject(anns, "~/", "2");
    tw_podpatch_result r;
    build_ok(pod, &cfg, &r);
    cJSON *patched = apply_and_check(pod, &r, &cfg, "zone", NULL);
    const cJSON *pa = path_get(patched, "metadata", "annotations");
    assert_string_equal(str(pa, "example.com/a~b"), "1");
    assert_string_equal(str(pa, "~/"), "2");
    assert_int_equal(cJSON_GetArraySize(pa), 3);
    cJSON_Delete(patched);
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
}

static void rack_annotation(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    static const char *const good[] = {"zone-id", "region", "zone",
                                       "label:topology.k8s.aws/zone-id"};
    for (size_t i = 0; i < 4; i++) {
        cJSON *pod = spark();
        cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_RACK, good[i]);
        inject_and_check(pod, &cfg, good[i], NULL, 0);
        cJSON_Delete(pod);
    }
    static const char *const bad[] = {"moon", "", "label:", "label:-bad", "Zone", "zone "};
    for (size_t i = 0; i < 6; i++) {
        cJSON *pod = spark();
        cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_RACK, bad[i]);
        tw_podpatch_result r;
        build_ok(pod, &cfg, &r);
        assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
        assert_int_equal(r.n_warnings, 1);
        assert_non_null(strstr(r.warnings[0], TW_POD_ANN_RACK));
        assert_non_null(strstr(r.warnings[0], "using \"zone\""));
        assert_non_null(strstr(tw_jsonpatch_text(&r.patch), "\"--rack=zone\""));
        tw_podpatch_result_free(&r);
        cJSON_Delete(pod);
    }
    /* The configured default is what an invalid annotation falls back to. */
    cfg.rack = "zone-id";
    cJSON *pod = spark();
    cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_RACK, "x");
    inject_and_check(pod, &cfg, "zone-id", NULL, 1);
    cJSON_Delete(pod);
}

/* The spark pod with a second app container "log-shipper" (no mounts). */
static cJSON *two_containers(const char *containers_ann)
{
    cJSON *pod = spark();
    cJSON_AddItemToArray(path_get(pod, "spec", "containers"),
                         cJSON_Parse("{\"name\":\"log-shipper\",\"image\":\"fluent-bit:3\"}"));
    if (containers_ann)
        cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_CONTAINERS,
                                containers_ann);
    return pod;
}

static void containers_annotation_chooses_mounts(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    static const struct {
        const char *ann;
        bool mounted[2];
        size_t warnings;
    } cases[] = {
        {NULL, {true, true}, 0},
        {"log-shipper", {false, true}, 0},
        {" spark-kubernetes-executor ", {true, false}, 0},
        {"log-shipper,spark-kubernetes-executor", {true, true}, 0},
        {"spark-kubernetes-executor,,nope", {true, false}, 1},
        {"nope", {true, true}, 2},
        {"", {true, true}, 1},
        {" , ", {true, true}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *pod = two_containers(cases[i].ann);
        inject_and_check(pod, &cfg, "zone", cases[i].mounted, cases[i].warnings);
        cJSON_Delete(pod);
    }
}

static void opt_in_and_out_by_label(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *pod = spark();
    cJSON *labels = path_get(pod, "metadata", "labels");
    cJSON_ReplaceItemInObject(labels, TW_POD_LABEL_INJECT, cJSON_CreateString("false"));
    expect_no_patch(pod, &cfg, TW_PODPATCH_OPTED_OUT, 0, NULL);
    cJSON_ReplaceItemInObject(labels, TW_POD_LABEL_INJECT, cJSON_CreateString("yes"));
    expect_no_patch(pod, &cfg, TW_PODPATCH_NOT_SELECTED, 1, "only \"true\"");
    cJSON_DeleteItemFromObject(labels, TW_POD_LABEL_INJECT);
    expect_no_patch(pod, &cfg, TW_PODPATCH_NOT_SELECTED, 0, NULL);
    cJSON_DeleteItemFromObject(path_get(pod, "metadata", NULL), "labels");
    expect_no_patch(pod, &cfg, TW_PODPATCH_NOT_SELECTED, 0, NULL);
    cJSON_Delete(pod);
}

static void already_injected_is_left_alone(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cJSON *pod = spark();
    /* Any value counts, an older version too: no second init container. */
    cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_INJECTED, "0.0.1");
    expect_no_patch(pod, &cfg, TW_PODPATCH_ALREADY, 0, NULL);
    cJSON_Delete(pod);
}

static void name_and_path_clashes_are_warned(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    static const struct {
        const char *where; /* spec member to append to */
        const char *item;
        const char *warn;
    } cases[] = {
        {"volumes", "{\"name\":\"topowire\",\"emptyDir\":{}}", "volume named \"topowire\""},
        {"volumes", "{\"name\":\"topowire-podinfo\",\"emptyDir\":{}}", "topowire-podinfo"},
        {"initContainers", "{\"name\":\"topowire-init\",\"image\":\"x\"}", "container named"},
        {"containers", "{\"name\":\"topowire-init\",\"image\":\"x\"}", "container named"},
        {"ephemeralContainers", "{\"name\":\"topowire-init\",\"image\":\"x\"}", "container named"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *pod = spark();
        cJSON *spec = path_get(pod, "spec", NULL);
        cJSON *arr = cJSON_GetObjectItem(spec, cases[i].where);
        if (arr == NULL)
            arr = cJSON_AddArrayToObject(spec, cases[i].where);
        cJSON_AddItemToArray(arr, cJSON_Parse(cases[i].item));
        expect_no_patch(pod, &cfg, TW_PODPATCH_CONFLICT, 1, cases[i].warn);
        cJSON_Delete(pod);
    }
    /* A chosen container that already mounts something at the output directory. */
    cJSON *pod = spark();
    cJSON *c0 = cJSON_GetArrayItem(path_get(pod, "spec", "containers"), 0);
    cJSON_AddItemToArray(cJSON_GetObjectItem(c0, "volumeMounts"),
                         cJSON_Parse("{\"name\":\"spark-local-dir-1\","
                                     "\"mountPath\":\"/etc/topowire/\"}"));
    expect_no_patch(pod, &cfg, TW_PODPATCH_CONFLICT, 1, "already mounts something");
    cJSON_Delete(pod);
    /* ... but a container that is not chosen may. */
    pod = two_containers("log-shipper");
    c0 = cJSON_GetArrayItem(path_get(pod, "spec", "containers"), 0);
    cJSON_AddItemToArray(cJSON_GetObjectItem(c0, "volumeMounts"),
                         cJSON_Parse("{\"name\":\"spark-local-dir-1\","
                                     "\"mountPath\":\"/etc/topowire\"}"));
    static const bool only_second[] = {false, true};
    inject_and_check(pod, &cfg, "zone", only_second, 0);
    cJSON_Delete(pod);
}

static void shapes_that_cannot_be_patched(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    static const char *const specs[] = {
        "{}",
        "{\"containers\":[]}",
        "{\"containers\":{}}",
        "{\"containers\":[{\"image\":\"x\"}]}",
        "{\"containers\":[{\"name\":\"\"}]}",
        "{\"containers\":[\"app\"]}",
        "{\"containers\":[{\"name\":\"a\"}],\"volumes\":{}}",
        "{\"containers\":[{\"name\":\"a\"}],\"volumes\":[{\"emptyDir\":{}}]}",
        "{\"containers\":[{\"name\":\"a\"}],\"initContainers\":\"x\"}",
        "{\"containers\":[{\"name\":\"a\",\"volumeMounts\":{}}]}",
        "{\"containers\":[{\"name\":\"a\"}],\"os\":{\"name\":\"windows\"}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        cJSON *pod = spark();
        cJSON_ReplaceItemInObject(pod, "spec", cJSON_Parse(specs[i]));
        expect_no_patch(pod, &cfg, TW_PODPATCH_INVALID, 1, "not injecting");
        cJSON_Delete(pod);
    }
    cJSON *pod = spark();
    cJSON_DeleteItemFromObject(pod, "spec");
    expect_no_patch(pod, &cfg, TW_PODPATCH_INVALID, 1, NULL);
    cJSON_Delete(pod);
    pod = spark();
    cJSON_ReplaceItemInObject(path_get(pod, "metadata", NULL), "annotations",
                              cJSON_CreateString("x"));
    expect_no_patch(pod, &cfg, TW_PODPATCH_INVALID, 1, "unexpected type");
    cJSON_Delete(pod);
    /* A Linux os is fine. */
    pod = spark();
    cJSON_AddItemToObject(path_get(pod, "spec", NULL), "os", cJSON_Parse("{\"name\":\"linux\"}"));
    inject_and_check(pod, &cfg, "zone", NULL, 0);
    cJSON_Delete(pod);
    /* Not an object at all. */
    cJSON *arr = cJSON_CreateArray();
    expect_no_patch(arr, &cfg, TW_PODPATCH_INVALID, 1, NULL);
    cJSON_Delete(arr);
}

static void custom_configuration(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    cfg.init_image = "registry.example.com/topowire-init@sha256:0123";
    cfg.image_pull_policy = "";
    cfg.out_dir = "/opt/rack";
    cfg.podinfo_dir = "/var/podinfo";
    cfg.cpu_limit = "";
    cfg.memory_limit = "";
    cfg.version = "9.9.9";
    cfg.rack = "label:example.com/rack";
    assert_int_equal(tw_podpatch_config_check(&cfg, NULL), TW_OK);
    for (size_t i = 0; i < sizeof(pod_fixtures) / sizeof(pod_fixtures[0]); i++) {
        cJSON *pod = load_object(pod_fixtures[i]);
        inject_and_check(pod, &cfg, cfg.rack, NULL, 0);
        cJSON_Delete(pod);
    }
}

static void configuration_is_checked(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_podpatch_config_check(&cfg, err), TW_OK);
    static const struct {
        size_t off;
        const char *value;
        const char *err;
    } bad[] = {
        {offsetof(tw_podpatch_config, init_image), "", "image"},
        {offsetof(tw_podpatch_config, init_image), "a b", "image"},
        {offsetof(tw_podpatch_config, image_pull_policy), "Sometimes", "pull policy"},
        {offsetof(tw_podpatch_config, rack), "moon", "rack"},
        {offsetof(tw_podpatch_config, out_dir), "etc/topowire", "output directory"},
        {offsetof(tw_podpatch_config, out_dir), "/etc/../x", "output directory"},
        {offsetof(tw_podpatch_config, out_dir), "/etc/podinfo/", "must differ"},
        {offsetof(tw_podpatch_config, podinfo_dir), "", "podinfo"},
        {offsetof(tw_podpatch_config, size_limit), "1MB", "size limit"},
        {offsetof(tw_podpatch_config, cpu_request), "lots", "cpu request"},
        {offsetof(tw_podpatch_config, cpu_request), "1", "above its limit"},
        {offsetof(tw_podpatch_config, memory_limit), "8Mi", "above its limit"},
        {offsetof(tw_podpatch_config, memory_limit), "-1", "memory limit"},
        {offsetof(tw_podpatch_config, version), "", "version"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tw_podpatch_config c;
        tw_podpatch_config_defaults(&c);
        *(const char **)((char *)&c + bad[i].off) = bad[i].value;
        err[0] = '\0';
        assert_int_equal(tw_podpatch_config_check(&c, err), TW_EINVAL);
        if (strstr(err, bad[i].err) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].err);
    }
    assert_int_equal(tw_podpatch_config_check(NULL, NULL), TW_EINVAL);
}

static void quantities_and_racks(void **state)
{
    (void)state;
    static const char *const good[] = {"1",   "10m",  "0.5", "1Mi", "1.5Gi", "100k", "2e3",
                                       "1E6", "+1Ki", "0",   "5Ei", "1e-3",  "3T"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!tw_podpatch_quantity_valid(good[i]))
            fail_msg("%s should be a quantity", good[i]);
    static const char *const bad[] = {"",   "Mi",   "1MB", "1 Mi", "-1", "1.2.3",
                                      "1e", "1ee3", "m",   "1Mii", ".",  "1e99"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tw_podpatch_quantity_valid(bad[i]))
            fail_msg("\"%s\" should not be a quantity", bad[i]);
    assert_false(tw_podpatch_quantity_valid(NULL));
    assert_true(tw_podpatch_rack_valid("label:topology.kubernetes.io/zone"));
    assert_false(tw_podpatch_rack_valid("label:a b"));
    assert_false(tw_podpatch_rack_valid(NULL));
    for (int o = 0; o < TW_PODPATCH_OUTCOMES; o++)
        assert_string_not_equal(tw_podpatch_outcome_name((tw_podpatch_outcome)o), "unknown");
    assert_string_equal(tw_podpatch_outcome_name(TW_PODPATCH_INJECTED), "injected");
}

static void prepared_config_gives_the_same_patch(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    tw_podpatch *pp = NULL;
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_podpatch_prepare(&cfg, &pp, err), TW_OK);
    for (size_t i = 0; i < sizeof(pod_fixtures) / sizeof(pod_fixtures[0]); i++) {
        for (int with_rack = 0; with_rack < 2; with_rack++) {
            cJSON *pod = load_object(pod_fixtures[i]);
            if (with_rack)
                cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_RACK,
                                        "zone-id");
            tw_podpatch_result a, b;
            build_ok(pod, &cfg, &a);
            assert_int_equal(tw_podpatch_build_prepared(pp, pod, &b, err), TW_OK);
            assert_int_equal(a.outcome, b.outcome);
            assert_string_equal(tw_jsonpatch_text(&a.patch), tw_jsonpatch_text(&b.patch));
            assert_int_equal(tw_jsonpatch_count(&a.patch), tw_jsonpatch_count(&b.patch));
            assert_int_equal(tw_jsonpatch_len(&a.patch), tw_jsonpatch_len(&b.patch));
            if (with_rack)
                assert_non_null(strstr(tw_jsonpatch_text(&b.patch), "\"--rack=zone-id\""));
            tw_podpatch_result_free(&a);
            tw_podpatch_result_free(&b);
            cJSON_Delete(pod);
        }
    }
    tw_podpatch_result r;
    assert_int_equal(tw_podpatch_build_prepared(NULL, NULL, &r, NULL), TW_EINVAL);
    assert_int_equal(tw_podpatch_build_prepared(pp, NULL, &r, NULL), TW_EINVAL);
    tw_podpatch_free(pp);
    tw_podpatch_free(NULL);
    /* An invalid configuration is not prepared, and a one-off build refuses it too. */
    cfg.rack = "moon";
    pp = (tw_podpatch *)0x1;
    assert_int_equal(tw_podpatch_prepare(&cfg, &pp, err), TW_EINVAL);
    assert_ptr_equal(pp, (tw_podpatch *)0x1);
    cJSON *pod = spark();
    assert_int_equal(tw_podpatch_build(pod, &cfg, &r, err), TW_EINVAL);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
    cJSON_Delete(pod);
}

static void null_arguments(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    tw_podpatch_result r;
    cJSON *pod = spark();
    assert_int_equal(tw_podpatch_build(NULL, &cfg, &r, NULL), TW_EINVAL);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
    assert_int_equal(tw_podpatch_build(pod, NULL, &r, NULL), TW_EINVAL);
    tw_podpatch_result_free(NULL);
    cJSON_Delete(pod);
}

/*
 * A pod opted in with n app containers c0..c(n-1) and, when every > 0, the
 * topowire.io/containers annotation naming every `every`-th of them, last
 * first (the order that made the old matching walk the whole array per name).
 */
static cJSON *many_containers(size_t n, size_t every)
{
    cJSON *pod = cJSON_Parse("{\"metadata\":{\"name\":\"big\",\"labels\":{\"" TW_POD_LABEL_INJECT
                             "\":\"true\"},\"annotations\":{}},\"spec\":{\"containers\":[]}}");
    assert_non_null(pod);
    cJSON *cs = path_get(pod, "spec", "containers");
    char name[32];
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        snprintf(name, sizeof(name), "c%zu", i);
        assert_non_null(cJSON_AddStringToObject(c, "name", name));
        assert_non_null(cJSON_AddStringToObject(c, "image", "busybox"));
        assert_true(cJSON_AddItemToArray(cs, c));
    }
    if (every > 0) {
        char *ann = malloc(n * 12 + 1);
        assert_non_null(ann);
        size_t len = 0;
        for (size_t i = n; i-- > 0;)
            if (i % every == 0)
                len += (size_t)snprintf(ann + len, 13, "%sc%zu", len ? "," : "", i);
        ann[len] = '\0';
        cJSON_AddStringToObject(path_get(pod, "metadata", "annotations"), TW_POD_ANN_CONTAINERS,
                                ann);
        free(ann);
    }
    return pod;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * 30,000 containers named one by one in the annotation (a ~1 MB pod) once
 * took 17-32 s of CPU; now a few tens of ms. The bound is generous (a loaded
 * machine, a sanitizer build) and counts CPU time, not wall time.
 */
static void many_containers_are_decided_quickly(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    tw_podpatch *pp = NULL;
    assert_int_equal(tw_podpatch_prepare(&cfg, &pp, NULL), TW_OK);
    static const struct {
        size_t every;
        tw_podpatch_outcome want;
        size_t mounts;
    } cases[] = {
        /* every container named: the patch would pass the cap */
        {1, TW_PODPATCH_INVALID, 0},
        /* every 10th: 3,000 mounts, under the cap */
        {10, TW_PODPATCH_INJECTED, 3000},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cJSON *pod = many_containers(30000, cases[k].every);
        tw_podpatch_result r;
        char err[TW_ERRLEN] = "";
        double t0 = cpu_seconds();
        assert_int_equal(tw_podpatch_build_prepared(pp, pod, &r, err), TW_OK);
        double spent = cpu_seconds() - t0;
        if (spent > 3.0)
            fail_msg("30,000 containers took %.1f s of CPU", spent);
        assert_int_equal(r.outcome, cases[k].want);
        if (cases[k].want == TW_PODPATCH_INJECTED) {
            /* the annotation, spec.volumes, the init container, a mount per chosen container */
            assert_int_equal(tw_jsonpatch_count(&r.patch), 3 + cases[k].mounts);
            assert_int_equal(r.n_warnings, 0);
            assert_non_null(
                strstr(tw_jsonpatch_text(&r.patch), "\"/spec/containers/29990/volumeMounts\""));
            assert_non_null(
                strstr(tw_jsonpatch_text(&r.patch), "\"/spec/containers/0/volumeMounts\""));
            assert_null(
                strstr(tw_jsonpatch_text(&r.patch), "\"/spec/containers/29999/volumeMounts\""));
            assert_null(strstr(tw_jsonpatch_text(&r.patch), "\"/spec/containers/1/volumeMounts\""));
        } else {
            assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
            assert_int_equal(r.n_warnings, 1);
            assert_non_null(strstr(r.warnings[0], "30000 containers"));
            assert_non_null(strstr(r.warnings[0], "not injecting"));
        }
        tw_podpatch_result_free(&r);
        cJSON_Delete(pod);
    }
    tw_podpatch_free(pp);
}

/* The patch cap: the largest pod under it is injected, one container more is left alone. */
static void patch_size_cap(void **state)
{
    (void)state;
    tw_podpatch_config cfg;
    tw_podpatch_config_defaults(&cfg);
    tw_podpatch *pp = NULL;
    assert_int_equal(tw_podpatch_prepare(&cfg, &pp, NULL), TW_OK);
    /* Measure one mount operation, then find the container count at the cap. */
    tw_podpatch_result r1, r2;
    cJSON *p1 = many_containers(1000, 0), *p2 = many_containers(2000, 0);
    assert_int_equal(tw_podpatch_build_prepared(pp, p1, &r1, NULL), TW_OK);
    assert_int_equal(tw_podpatch_build_prepared(pp, p2, &r2, NULL), TW_OK);
    assert_int_equal(r1.outcome, TW_PODPATCH_INJECTED);
    assert_int_equal(r2.outcome, TW_PODPATCH_INJECTED);
    /* Indexes 1000-1999 have four digits, as every index near the cap does. */
    size_t per = (tw_jsonpatch_len(&r2.patch) - tw_jsonpatch_len(&r1.patch)) / 1000;
    size_t fixed = tw_jsonpatch_len(&r2.patch) - 2000 * per;
    size_t fit = (TW_PODPATCH_PATCH_MAX - fixed) / per;
    assert_true(fit > 5000 && fit < 10000);
    tw_podpatch_result_free(&r1);
    tw_podpatch_result_free(&r2);
    cJSON_Delete(p1);
    cJSON_Delete(p2);

    tw_podpatch_result r;
    cJSON *pod = many_containers(fit, 0);
    assert_int_equal(tw_podpatch_build_prepared(pp, pod, &r, NULL), TW_OK);
    assert_int_equal(r.outcome, TW_PODPATCH_INJECTED);
    assert_true(tw_jsonpatch_len(&r.patch) <= TW_PODPATCH_PATCH_MAX);
    assert_true(tw_jsonpatch_len(&r.patch) + per > TW_PODPATCH_PATCH_MAX);
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);

    pod = many_containers(fit + 1, 0);
    assert_int_equal(tw_podpatch_build_prepared(pp, pod, &r, NULL), TW_OK);
    assert_int_equal(r.outcome, TW_PODPATCH_INVALID);
    assert_int_equal(tw_jsonpatch_count(&r.patch), 0);
    assert_string_equal(tw_jsonpatch_text(&r.patch), "[]");
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "would pass 1048576 bytes; not injecting"));
    tw_podpatch_result_free(&r);
    cJSON_Delete(pod);
    tw_podpatch_free(pp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pod_fixture_is_injected),
        cmocka_unit_test(patch_paths_for_the_spark_executor),
        cmocka_unit_test(binding_object_gets_nothing),
        cmocka_unit_test(init_container_goes_first),
        cmocka_unit_test(missing_and_null_containers_of_ours_are_created),
        cmocka_unit_test(annotation_keys_with_slash_and_tilde_survive),
        cmocka_unit_test(rack_annotation),
        cmocka_unit_test(containers_annotation_chooses_mounts),
        cmocka_unit_test(opt_in_and_out_by_label),
        cmocka_unit_test(already_injected_is_left_alone),
        cmocka_unit_test(name_and_path_clashes_are_warned),
        cmocka_unit_test(shapes_that_cannot_be_patched),
        cmocka_unit_test(custom_configuration),
        cmocka_unit_test(configuration_is_checked),
        cmocka_unit_test(quantities_and_racks),
        cmocka_unit_test(prepared_config_gives_the_same_patch),
        cmocka_unit_test(null_arguments),
        cmocka_unit_test(many_containers_are_decided_quickly),
        cmocka_unit_test(patch_size_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
