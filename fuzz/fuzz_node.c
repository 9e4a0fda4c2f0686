/* fuzz_node.c - libFuzzer target: Node / PartialObjectMetadata labels and Status messages. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/json.h"
#include "topowire/kube.h"
#include "topowire/kv.h"

#include "../lib/kube_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* err is a C string within TW_ERRLEN bytes, with no control characters. */
static void check_err(const char *err)
{
    const char *nul = memchr(err, '\0', TW_ERRLEN);
    if (nul == NULL)
        __builtin_trap();
    for (const char *p = err; p < nul; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            __builtin_trap();
}

/*
 * An independent reading of the same document with cJSON (through tw_json_parse): every
 * string-valued label must be in the list with the value of its last occurrence (a later duplicate
 * key overwrites), and the list holds nothing else. Quadratic, so only for documents of at most a
 * thousand labels.
 */
static void check_against_cjson(const char *json, size_t len, const tw_kvlist *l)
{
    cJSON *root = NULL;
    /* Read as the library does: an escaped NUL is U+0001, not the end of a string. */
    if (tw_json_parse(json, len, &root, NULL) != TW_OK)
        __builtin_trap(); /* the library parsed it */
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    size_t distinct = 0;
    if (cJSON_GetArraySize(lab) > 1000) {
        cJSON_Delete(root);
        return;
    }
    const cJSON *it, *obj = cJSON_IsObject(lab) ? lab : NULL;
    cJSON_ArrayForEach(it, obj)
    {
        if (!cJSON_IsString(it) || it->string == NULL)
            continue;
        const cJSON *later = it->next, *last = it;
        int seen_before = 0;
        for (const cJSON *o = lab->child; o != it; o = o->next)
            if (cJSON_IsString(o) && o->string && strcmp(o->string, it->string) == 0)
                seen_before = 1;
        for (; later != NULL; later = later->next)
            if (cJSON_IsString(later) && later->string && strcmp(later->string, it->string) == 0)
                last = later;
        if (!seen_before)
            distinct++;
        const char *got = tw_kvlist_get(l, it->string);
        if (got == NULL || strcmp(got, last->valuestring) != 0)
            __builtin_trap();
    }
    if (distinct != l->n)
        __builtin_trap();
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    char err[TW_ERRLEN];
    memset(err, 0xA5, sizeof(err));

    /* A failure leaves the list exactly as it was. */
    tw_kv marker;
    tw_kvlist l = {.items = &marker, .n = 7, .cap = 9};
    int rc = tw__kube_parse_node_labels(json, size, &l, err);
    if (rc == TW_OK) {
        for (size_t i = 0; i < l.n; i++) {
            /* Keys are unique, and every key and value is a C string. */
            if (tw_kvlist_get(&l, l.items[i].key) != l.items[i].value ||
                strlen(l.items[i].value) > size)
                __builtin_trap();
        }
        check_against_cjson(json, size, &l);
        tw_kvlist_free(&l);
    } else {
        if (rc != TW_EPARSE && rc != TW_ENOMEM)
            __builtin_trap();
        if (l.items != &marker || l.n != 7 || l.cap != 9)
            __builtin_trap();
        check_err(err);
        if (rc == TW_EPARSE && err[0] == '\0')
            __builtin_trap();
    }

    /* The Status sentence: never fails, always a bounded line naming the HTTP status. */
    static const long statuses[] = {401, 403, 404, 409, 410, 422, 429, 500, 503, 0, -1};
    long status = statuses[size % (sizeof(statuses) / sizeof(statuses[0]))];
    memset(err, 0xA5, sizeof(err));
    tw__kube_status_message(json, size, status, err);
    check_err(err);
    char num[32];
    int k = snprintf(num, sizeof(num), "%ld", status);
    if (k <= 0 || strstr(err, num) == NULL)
        __builtin_trap();
    tw__kube_status_message(json, size, status, NULL); /* NULL err does nothing */
    return 0;
}
