/* kubepatch.h - apply a JSON Patch to an object with `kubectl patch --local` (tests only). */
#ifndef TW_KUBEPATCH_H
#define TW_KUBEPATCH_H

#include <cjson/cJSON.h>

/*
 * Writes obj to a temporary file and runs
 *   kubectl patch --local --type=json -f FILE -p PATCH -o json
 * which applies the patch with the API server's own JSON Patch code. Returns
 * the patched object (caller frees with cJSON_Delete), or NULL when kubectl
 * fails (its stderr is printed) or prints no JSON object.
 */
cJSON *tw_test_kubectl_patch(const cJSON *obj, const char *patch);

#endif
