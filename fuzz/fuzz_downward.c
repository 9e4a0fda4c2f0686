/* fuzz_downward.c - libFuzzer target: the downward injection's decisions and patch, on any pod. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/downward.h"
#include "topowire/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const copied[] = {TW_DOWNWARD_KEY_ZONE, TW_DOWNWARD_KEY_REGION,
                                     TW_DOWNWARD_KEY_ZONE_ID, NULL};
static tw_downward *prepared[2]; /* binding, none */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (prepared[0] == NULL) {
        tw_downward_config cfg = {.rack = "zone-id",
                                  .out_dir = "/etc/topowire",
                                  .version = "0.0.0-fuzz",
                                  .copied = copied};
        if (tw_downward_prepare(&cfg, &prepared[0], NULL) != TW_OK)
            __builtin_trap();
        cfg.copied = NULL;
        cfg.from_labels = true;
        if (tw_downward_prepare(&cfg, &prepared[1], NULL) != TW_OK)
            __builtin_trap();
    }
    cJSON *pod = cJSON_ParseWithLength((const char *)data, size);
    if (pod == NULL)
        return 0;
    for (int i = 0; i < 2; i++) {
        tw_podpatch_result r;
        char err[TW_ERRLEN];
        int rc = tw_downward_build_prepared(prepared[i], pod, &r, err);
        if (rc == TW_ENOMEM)
            continue;
        if (rc != TW_OK || r.n_warnings > TW_PODPATCH_MAX_WARNINGS ||
            (r.outcome == TW_PODPATCH_INJECTED) != (tw_jsonpatch_count(&r.patch) > 0))
            __builtin_trap();
        if (tw_jsonpatch_count(&r.patch) > 0) {
            /* A JSON array of exactly n_ops add operations, each with a path and a value. */
            cJSON *ops =
                cJSON_ParseWithLength(tw_jsonpatch_text(&r.patch), tw_jsonpatch_len(&r.patch));
            if (!cJSON_IsArray(ops) ||
                (size_t)cJSON_GetArraySize(ops) != tw_jsonpatch_count(&r.patch) ||
                tw_jsonpatch_len(&r.patch) != strlen(tw_jsonpatch_text(&r.patch)))
                __builtin_trap();
            const cJSON *op;
            cJSON_ArrayForEach(op, ops)
            {
                const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(op, "path"));
                if (path == NULL || path[0] != '/' || cJSON_GetObjectItem(op, "value") == NULL)
                    __builtin_trap();
            }
            cJSON_Delete(ops);
            /* Once injected, never again: the selection and the annotation say so. */
            if (!tw_downward_selected(pod))
                __builtin_trap();
        }
        for (size_t w = 0; w < r.n_warnings; w++)
            if (r.warnings[w] == NULL || strlen(r.warnings[w]) >= 512)
                __builtin_trap();
        tw_podpatch_result_free(&r);
    }
    cJSON_Delete(pod);
    return 0;
}
