/* test_admission.c - AdmissionReview decoding and response encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <cjson/cJSON.h>

#include "support/testserver.h"
#include "topowire/admission.h"
#include "topowire/error.h"

static char *fixture(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "admission/%s", name);
    char *s = tw_test_read_file(tw_fixture_path(rel), len);
    assert_non_null(s);
    return s;
}

/* Decodes text that must fail with want, and checks err says something. */
static void decode_fails(const char *text, int want, const char *err_part)
{
    char err[TW_ERRLEN] = "";
    tw_admission_request *r = (tw_admission_request *)0x1;
    assert_int_equal(tw_admission_decode(text, strlen(text), &r, err), want);
    assert_ptr_equal(r, (tw_admission_request *)0x1);
    if (err_part != NULL && strstr(err, err_part) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, err_part);
}

static void every_fixture_decodes(void **state)
{
    (void)state;
    static const struct {
        const char *file, *uid, *kind, *sub, *name;
        int dry_run;
    } cases[] = {
        {"pod-create-spark-executor.json", "a8f2c6d1-3b4e-4f5a-9c8d-7e6f5a4b3c2d", "Pod", "",
         "orders-stream-3b1f9e8c1a-exec-7", 0},
        {"pod-create-generatename-restricted.json", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "Pod",
         "", "", 0},
        {"pod-create-dryrun.json", "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", "Pod", "",
         "orders-stream-3b1f9e8c1a-exec-8", 1},
        {"pod-create-with-nodename.json", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "Pod", "",
         "stream-probe", 0},
        {"binding-create.json", "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f", "Binding", "binding",
         "orders-stream-3b1f9e8c1a-exec-7", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *text = fixture(cases[i].file, &len);
        tw_admission_request *r = NULL;
        char err[TW_ERRLEN] = "";
        assert_int_equal(tw_admission_decode(text, len, &r, err), TW_OK);
        free(text); /* the request keeps its own parsed copy */
        assert_int_equal(r->version, TW_ADMISSION_V1);
        assert_string_equal(r->uid, cases[i].uid);
        assert_string_equal(r->kind, cases[i].kind);
        assert_string_equal(r->kind_version, "v1");
        assert_string_equal(r->kind_group, "");
        assert_string_equal(r->resource, "pods");
        assert_string_equal(r->sub_resource, cases[i].sub);
        assert_string_equal(r->operation, "CREATE");
        assert_string_equal(r->name, cases[i].name);
        assert_int_equal(r->dry_run, cases[i].dry_run);
        assert_non_null(r->object);
        assert_null(r->old_object); /* "oldObject": null */
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(r->object, "kind");
        assert_string_equal(cJSON_GetStringValue(k), cases[i].kind);
        tw_admission_request_free(r);
    }
    tw_admission_request_free(NULL);
}

static void namespace_and_v1beta1(void **state)
{
    (void)state;
    const char *t = "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
                    "\"request\":{\"uid\":\"u-1\",\"namespace\":\"ns\"}}";
    tw_admission_request *r = NULL;
    assert_int_equal(tw_admission_decode(t, strlen(t), &r, NULL), TW_OK);
    assert_int_equal(r->version, TW_ADMISSION_V1BETA1);
    assert_string_equal(r->namespace, "ns");
    /* Absent fields read as "" and dryRun as absent, not false. */
    assert_string_equal(r->kind, "");
    assert_string_equal(r->operation, "");
    assert_int_equal(r->dry_run, -1);
    assert_null(r->object);
    tw_admission_request_free(r);
}

static void body_need_not_be_terminated(void **state)
{
    (void)state;
    const char *t = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                    "\"request\":{\"uid\":\"u-2\",\"dryRun\":false}}";
    size_t n = strlen(t);
    char *copy = malloc(n + 8);
    assert_non_null(copy);
    memcpy(copy, t, n + 1);
    memcpy(copy + n, "garbage", 8); /* past len: must not be read */
    tw_admission_request *r = NULL;
    assert_int_equal(tw_admission_decode(copy, n, &r, NULL), TW_OK);
    assert_int_equal(r->dry_run, 0);
    tw_admission_request_free(r);
    /* Trailing whitespace is fine, a second value is not. */
    copy[n] = ' ';
    copy[n + 1] = '\n';
    assert_int_equal(tw_admission_decode(copy, n + 2, &r, NULL), TW_OK);
    tw_admission_request_free(r);
    free(copy);
}

static void malformed_json_is_a_parse_error(void **state)
{
    (void)state;
    decode_fails("", TW_EPARSE, "JSON");
    decode_fails("{", TW_EPARSE, "JSON");
    decode_fails("{\"apiVersion\":", TW_EPARSE, NULL);
    decode_fails("not json", TW_EPARSE, NULL);
    decode_fails("{} {}", TW_EPARSE, "more than one");
    decode_fails("{\"a\":1}x", TW_EPARSE, NULL);
}

static void json_that_is_not_a_review(void **state)
{
    (void)state;
#define V1 "\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\""
    decode_fails("[]", TW_EINVAL, "not a JSON object");
    decode_fails("\"AdmissionReview\"", TW_EINVAL, "not a JSON object");
    decode_fails("{}", TW_EINVAL, "apiVersion is missing");
    decode_fails("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}", TW_EINVAL, "apiVersion");
    decode_fails("{\"apiVersion\":\"admission.k8s.io/v2\",\"kind\":\"AdmissionReview\"}", TW_EINVAL,
                 "apiVersion");
    decode_fails("{\"apiVersion\":7,\"kind\":\"AdmissionReview\"}", TW_EINVAL,
                 "apiVersion is not a string");
    decode_fails("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}", TW_EINVAL,
                 "kind is not AdmissionReview");
    decode_fails("{\"apiVersion\":\"admission.k8s.io/v1\"}", TW_EINVAL, "kind is missing");
    decode_fails("{" V1 "}", TW_EINVAL, "request is missing");
    decode_fails("{" V1 ",\"request\":[]}", TW_EINVAL, "request is not an object");
    decode_fails("{" V1 ",\"request\":null}", TW_EINVAL, "request is not an object");
    decode_fails("{" V1 ",\"request\":{}}", TW_EINVAL, "uid is missing");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"\"}}", TW_EINVAL, "uid");
    decode_fails("{" V1 ",\"request\":{\"uid\":42}}", TW_EINVAL, "uid");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"dryRun\":\"true\"}}", TW_EINVAL,
                 "dryRun is not a boolean");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"dryRun\":1}}", TW_EINVAL, "dryRun");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"object\":\"pod\"}}", TW_EINVAL,
                 "request.object is not an object");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"oldObject\":[]}}", TW_EINVAL, "oldObject");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"kind\":\"Pod\"}}", TW_EINVAL,
                 "request.kind is not an object");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"kind\":{\"kind\":1}}}", TW_EINVAL,
                 "request.kind.kind is not a string");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"resource\":{\"resource\":true}}}", TW_EINVAL,
                 "request.resource.resource");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"operation\":[]}}", TW_EINVAL, "operation");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"name\":{}}}", TW_EINVAL, "name");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"namespace\":3}}", TW_EINVAL, "namespace");
    decode_fails("{" V1 ",\"request\":{\"uid\":\"u\",\"subResource\":3}}", TW_EINVAL,
                 "subResource");
    /* null where a string or object may be is the same as absent. */
    const char *ok = "{" V1 ",\"request\":{\"uid\":\"u\",\"name\":null,\"object\":null,"
                     "\"dryRun\":null}}";
    tw_admission_request *r = NULL;
    assert_int_equal(tw_admission_decode(ok, strlen(ok), &r, NULL), TW_OK);
    assert_string_equal(r->name, "");
    assert_null(r->object);
    assert_int_equal(r->dry_run, -1);
    tw_admission_request_free(r);
#undef V1
}

/* Encodes, parses the result, and checks the envelope. Returns the "response" tree root. */
static cJSON *encode_ok(tw_admission_version v, const tw_admission_reply *reply)
{
    char *out = NULL;
    size_t len = 0;
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_admission_encode(v, reply, &out, &len, err), TW_OK);
    assert_int_equal(len, strlen(out));
    cJSON *root = cJSON_Parse(out);
    cJSON_free(out);
    assert_non_null(root);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(root, "apiVersion")),
                        tw_admission_api_version(v));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(root, "kind")), "AdmissionReview");
    const cJSON *resp = cJSON_GetObjectItem(root, "response");
    assert_true(cJSON_IsObject(resp));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "uid")), reply->uid);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(resp, "allowed")));
    return root;
}

static void encode_without_patch(void **state)
{
    (void)state;
    tw_admission_reply reply = {.uid = "uid-7"};
    cJSON *root = encode_ok(TW_ADMISSION_V1, &reply);
    const cJSON *resp = cJSON_GetObjectItem(root, "response");
    assert_null(cJSON_GetObjectItem(resp, "patch"));
    assert_null(cJSON_GetObjectItem(resp, "patchType"));
    assert_null(cJSON_GetObjectItem(resp, "warnings"));
    cJSON_Delete(root);

    /* An empty patch text is "no patch". */
    reply.patch = "";
    reply.patch_len = 0;
    root = encode_ok(TW_ADMISSION_V1BETA1, &reply);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "response"), "patch"));
    cJSON_Delete(root);
}

static void encode_with_patch_in_both_versions(void **state)
{
    (void)state;
    /* Lengths 1, 2, 3 and more exercise every base64 padding case. */
    const char *patches[] = {"[", "[]", "[{}", "[{\"op\":\"add\",\"path\":\"/a~1b\",\"value\":1}]"};
    for (int v = TW_ADMISSION_V1; v <= TW_ADMISSION_V1BETA1; v++) {
        for (size_t i = 0; i < 4; i++) {
            tw_admission_reply reply = {
                .uid = "u", .patch = patches[i], .patch_len = strlen(patches[i])};
            cJSON *root = encode_ok((tw_admission_version)v, &reply);
            const cJSON *resp = cJSON_GetObjectItem(root, "response");
            assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "patchType")),
                                "JSONPatch");
            const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(resp, "patch"));
            assert_non_null(b64);
            unsigned char dec[128];
            int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)strlen(b64));
            size_t pad = strlen(b64) - strcspn(b64, "=");
            assert_int_equal((size_t)n - pad, strlen(patches[i]));
            assert_memory_equal(dec, patches[i], strlen(patches[i]));
            cJSON_Delete(root);
        }
    }
}

static void warnings_are_cleaned_cut_and_capped(void **state)
{
    (void)state;
    char longw[600];
    memset(longw, 'a', sizeof(longw) - 1);
    longw[sizeof(longw) - 1] = '\0';
    /* A 2-byte UTF-8 character straddling the cut goes whole: cut before it, then "...". */
    char utf[300];
    memset(utf, 'b', sizeof(utf));
    memcpy(utf + 255, "\xc3\xa9", 2);
    utf[257] = '\0';
    const char *w[20] = {"line\nbreak\x7f", longw, utf, "bad \xff\xc3 (utf-8) \xc3\xa9"};
    for (int i = 4; i < 20; i++)
        w[i] = "more";
    tw_admission_reply reply = {.uid = "u", .warnings = w, .n_warnings = 20};
    cJSON *root = encode_ok(TW_ADMISSION_V1, &reply);
    const cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "response"), "warnings");
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), TW_ADMISSION_MAX_WARNINGS);
    assert_string_equal(cJSON_GetArrayItem(arr, 0)->valuestring, "line?break?");
    const char *cut = cJSON_GetArrayItem(arr, 1)->valuestring;
    assert_int_equal(strlen(cut), TW_ADMISSION_WARNING_MAX);
    assert_string_equal(cut + TW_ADMISSION_WARNING_MAX - 3, "...");
    cut = cJSON_GetArrayItem(arr, 2)->valuestring;
    assert_int_equal(strlen(cut), TW_ADMISSION_WARNING_MAX);
    assert_int_equal(strspn(cut, "b"), TW_ADMISSION_WARNING_MAX - 3);
    assert_string_equal(cJSON_GetArrayItem(arr, 3)->valuestring, "bad ?? (utf-8) \xc3\xa9");
    cJSON_Delete(root);
}

static void encode_refuses_bad_input(void **state)
{
    (void)state;
    char *out = (char *)0x1;
    size_t len = 99;
    char err[TW_ERRLEN] = "";
    tw_admission_reply none = {0};
    assert_int_equal(tw_admission_encode(TW_ADMISSION_V1, &none, &out, &len, err), TW_EINVAL);
    assert_non_null(strstr(err, "uid"));
    tw_admission_reply empty = {.uid = ""};
    assert_int_equal(tw_admission_encode(TW_ADMISSION_V1, &empty, &out, &len, NULL), TW_EINVAL);
    assert_int_equal(tw_admission_encode(TW_ADMISSION_V1, NULL, &out, &len, NULL), TW_EINVAL);
    tw_admission_reply ok = {.uid = "u"};
    assert_int_equal(tw_admission_encode((tw_admission_version)9, &ok, &out, &len, NULL),
                     TW_EINVAL);
    assert_ptr_equal(out, (char *)0x1);
    assert_int_equal(len, 99);
    assert_string_equal(tw_admission_api_version(TW_ADMISSION_V1), "admission.k8s.io/v1");
    assert_string_equal(tw_admission_api_version(TW_ADMISSION_V1BETA1), "admission.k8s.io/v1beta1");
}

static void round_trip_keeps_uid_and_version(void **state)
{
    (void)state;
    /* The server's path: decode, answer in the request's version. */
    const char *t = "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
                    "\"request\":{\"uid\":\"\\u00e9-\\\"quoted\\\"\"}}";
    tw_admission_request *r = NULL;
    assert_int_equal(tw_admission_decode(t, strlen(t), &r, NULL), TW_OK);
    assert_string_equal(r->uid, "\xc3\xa9-\"quoted\"");
    tw_admission_reply reply = {.uid = r->uid};
    cJSON *root = encode_ok(r->version, &reply);
    cJSON_Delete(root);
    tw_admission_request_free(r);
}

/*
 * The response's uid must equal the request's: a uid that is not valid
 * UTF-8 text, or holds an escaped NUL (which cJSON would cut), is refused
 * instead of being echoed raw or cut.
 */
static void uid_must_be_text(void **state)
{
    (void)state;
#define V1 "\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\""
    static const char *const bad[] = {
        "abc\\u0000def", "\\u0000",          "a\\u0000", "\xff\xfe",   "ab\xc3",  "\xc0\xaf",
        "\xed\xa0\x80",  "\xf4\x90\x80\x80", "a\\nb",    "tab\\there", "del\x7f",
    };
    char text[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{" V1 ",\"request\":{\"uid\":\"%s\"}}", bad[i]);
        decode_fails(text, TW_EINVAL, "request.uid is not valid UTF-8 text");
    }
    /* Valid UTF-8, an escaped backslash before "u0000", and a NUL elsewhere are fine. */
    static const struct {
        const char *json, *uid;
    } good[] = {
        {"\"uid\":\"7c1f3b9e-a34c-4a2e-9d1c-8df309bcf846\"",
         "7c1f3b9e-a34c-4a2e-9d1c-8df309bcf846"},
        {"\"uid\":\"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80\"",
         "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80"},
        {"\"uid\":\"a\\\\u0000\"", "a\\u0000"},
        {"\"uid\":\"u\",\"name\":\"x\\u0000y\"", "u"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        tw_admission_request *r = NULL;
        snprintf(text, sizeof(text), "{" V1 ",\"request\":{%s}}", good[i].json);
        assert_int_equal(tw_admission_decode(text, strlen(text), &r, NULL), TW_OK);
        assert_string_equal(r->uid, good[i].uid);
        tw_admission_request_free(r);
    }
    /* A NUL in another field is not cut either: it reads as a control character. */
    tw_admission_request *r = NULL;
    const char *nul = "{" V1 ",\"request\":{\"uid\":\"u\",\"name\":\"x\\u0000y\"}}";
    assert_int_equal(tw_admission_decode(nul, strlen(nul), &r, NULL), TW_OK);
    assert_string_equal(r->name, "x\x01y");
    tw_admission_request_free(r);
#undef V1
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uid_must_be_text),
        cmocka_unit_test(every_fixture_decodes),
        cmocka_unit_test(namespace_and_v1beta1),
        cmocka_unit_test(body_need_not_be_terminated),
        cmocka_unit_test(malformed_json_is_a_parse_error),
        cmocka_unit_test(json_that_is_not_a_review),
        cmocka_unit_test(encode_without_patch),
        cmocka_unit_test(encode_with_patch_in_both_versions),
        cmocka_unit_test(warnings_are_cleaned_cut_and_capped),
        cmocka_unit_test(encode_refuses_bad_input),
        cmocka_unit_test(round_trip_keeps_uid_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
