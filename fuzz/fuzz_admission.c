/* fuzz_admission.c - libFuzzer target: AdmissionReview decoding, the pod patch, the reply. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/admission.h"
#include "topowire/error.h"
#include "topowire/jsonpatch.h"
#include "topowire/kv.h"
#include "topowire/podpatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tw_podpatch *prepared;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (prepared == NULL) {
        tw_podpatch_config cfg;
        tw_podpatch_config_defaults(&cfg);
        if (tw_podpatch_prepare(&cfg, &prepared, NULL) != TW_OK)
            __builtin_trap();
    }
    tw_admission_request *req = NULL;
    char err[TW_ERRLEN];
    if (tw_admission_decode((const char *)data, size, &req, err) != TW_OK) {
        if (req != NULL || memchr(err, '\0', sizeof(err)) == NULL)
            __builtin_trap();
        return 0;
    }
    if (req->uid == NULL || req->uid[0] == '\0')
        __builtin_trap(); /* a decoded review always has a uid */

    tw_podpatch_result r;
    memset(&r, 0, sizeof(r));
    const char *patch = NULL;
    size_t patch_len = 0;
    if (req->object != NULL &&
        tw_podpatch_build_prepared(prepared, req->object, &r, err) == TW_OK &&
        tw_jsonpatch_count(&r.patch) > 0) {
        /* The patch is a JSON array of operations. */
        cJSON *ops = cJSON_ParseWithLength(tw_jsonpatch_text(&r.patch), tw_jsonpatch_len(&r.patch));
        if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) == 0)
            __builtin_trap();
        cJSON_Delete(ops);
        patch = tw_jsonpatch_text(&r.patch);
        patch_len = tw_jsonpatch_len(&r.patch);
    }

    /* Binding-style annotations on whatever metadata the object has. */
    tw_jsonpatch jp;
    if (tw_jsonpatch_init(&jp) == TW_OK) {
        tw_kvlist kv = {0};
        tw_kvlist_set(&kv, "topology.kubernetes.io/zone", "us-east-1b");
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(req->object, "metadata");
        tw_jsonpatch_add_strings(&jp, "/metadata/annotations",
                                 cJSON_GetObjectItemCaseSensitive(meta, "annotations"), &kv);
        char *text = NULL;
        size_t len = 0;
        if (tw_jsonpatch_render(&jp, &text, &len) == TW_OK) {
            cJSON *ops = cJSON_ParseWithLength(text, len);
            if (!cJSON_IsArray(ops))
                __builtin_trap();
            cJSON_Delete(ops);
            cJSON_free(text);
        }
        tw_kvlist_free(&kv);
        tw_jsonpatch_free(&jp);
    }

    /* The reply always parses, echoes the uid and says allowed: true. */
    const char *warnings[TW_ADMISSION_MAX_WARNINGS];
    size_t nw = 0;
    for (size_t i = 0; i < r.n_warnings && nw < TW_ADMISSION_MAX_WARNINGS; i++)
        warnings[nw++] = r.warnings[i];
    tw_admission_reply reply = {req->uid, patch, patch_len, warnings, nw};
    char *out = NULL;
    size_t out_len = 0;
    if (tw_admission_encode(req->version, &reply, &out, &out_len, err) == TW_OK) {
        cJSON *o = cJSON_ParseWithLength(out, out_len);
        cJSON *resp = cJSON_GetObjectItemCaseSensitive(o, "response");
        cJSON *uid = cJSON_GetObjectItemCaseSensitive(resp, "uid");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "allowed")) ||
            !cJSON_IsString(uid) || strcmp(uid->valuestring, req->uid) != 0)
            __builtin_trap();
        cJSON_Delete(o);
        cJSON_free(out);
    }
    tw_podpatch_result_free(&r);
    tw_admission_request_free(req);
    return 0;
}
