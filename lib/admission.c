/* admission.c - decode AdmissionReview requests and encode their responses. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/admission.h"
#include "topowire/assert.h"
#include "topowire/base64.h"
#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/json.h"
#include "topowire/text.h"

#define API_V1      "admission.k8s.io/v1"
#define API_V1BETA1 "admission.k8s.io/v1beta1"
/* No patch comes near the base64 coder's limit. */
#define PATCH_MAX ((int)TW_BASE64_MAX)

const char *tw_admission_api_version(tw_admission_version version)
{
    return version == TW_ADMISSION_V1BETA1 ? API_V1BETA1 : API_V1;
}

/*
 * Reads an optional string member: absent or null gives "", a string gives
 * its text (borrowed from the tree), anything else is an error naming where.
 */
static int opt_string(const cJSON *obj, const char *name, const char *where, const char **out,
                      char *err)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    if (v == NULL || cJSON_IsNull(v)) {
        *out = "";
        return TW_OK;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: %s.%s is not a string", where,
                         name);
    *out = v->valuestring;
    return TW_OK;
}

/* Reads an optional object member: absent or null gives NULL. */
static int opt_object(const cJSON *obj, const char *name, const char *where, const cJSON **out,
                      char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (v == NULL || cJSON_IsNull(v)) {
        *out = NULL;
        return TW_OK;
    }
    if (!cJSON_IsObject(v))
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: %s.%s is not an object", where,
                         name);
    *out = v;
    return TW_OK;
}

/* Reads a GroupVersionKind or GroupVersionResource object's three strings. */
static int opt_gvx(const cJSON *req, const char *name, const char *last, const char **group,
                   const char **version, const char **what, char *err)
{
    const cJSON *o = NULL;
    char where[64];
    int rc = opt_object(req, name, "request", &o, err);
    if (rc != TW_OK)
        return rc;
    /* name is one of ours ("kind", "resource"): it always fits. */
    TW_ASSERT(strlen("request.") + strlen(name) < sizeof(where));
    snprintf(where, sizeof(where), "request.%s", name);
    if ((rc = opt_string(o, "group", where, group, err)) != TW_OK ||
        (rc = opt_string(o, "version", where, version, err)) != TW_OK ||
        (rc = opt_string(o, last, where, what, err)) != TW_OK)
        return rc;
    return TW_OK;
}

/* True when s is valid UTF-8 without control characters (C0, DEL). */
static bool uid_text_valid(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return tw_utf8_valid(s, n);
}

/* Checks the review's apiVersion and kind; sets *version. */
static int read_envelope(const cJSON *root, tw_admission_version *version, char *err)
{
    const char *api = "", *kind = "";
    int rc;
    if ((rc = opt_string(root, "apiVersion", "review", &api, err)) != TW_OK ||
        (rc = opt_string(root, "kind", "review", &kind, err)) != TW_OK)
        return rc;
    if (strcmp(api, API_V1) == 0) {
        *version = TW_ADMISSION_V1;
    } else if (strcmp(api, API_V1BETA1) == 0) {
        *version = TW_ADMISSION_V1BETA1;
    } else {
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: apiVersion is %s",
                         *api ? "not admission.k8s.io/v1 or v1beta1" : "missing");
    }
    if (strcmp(kind, "AdmissionReview") != 0)
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: kind is %s",
                         *kind ? "not AdmissionReview" : "missing");
    return TW_OK;
}

/* Reads request.uid, which must be non-empty text; *uid is borrowed from the tree. */
static int read_uid(const cJSON *req, const char **uid, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "uid");
    if (!cJSON_IsString(v) || v->valuestring == NULL || v->valuestring[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: request.uid is %s",
                         v == NULL ? "missing" : "not a non-empty string");
    if (!uid_text_valid(v->valuestring))
        return tw_seterr(err, TW_EINVAL,
                         "not an AdmissionReview: request.uid is not valid UTF-8 text (a NUL, a "
                         "control character or a malformed byte sequence)");
    *uid = v->valuestring;
    return TW_OK;
}

/* Reads the request's optional members into r (borrowed from the tree) and its dryRun. */
static int read_request(const cJSON *req, tw_admission_request *r, char *err)
{
    int rc;
    if ((rc = opt_gvx(req, "kind", "kind", &r->kind_group, &r->kind_version, &r->kind, err)) !=
            TW_OK ||
        (rc = opt_gvx(req, "resource", "resource", &r->resource_group, &r->resource_version,
                      &r->resource, err)) != TW_OK ||
        (rc = opt_string(req, "subResource", "request", &r->sub_resource, err)) != TW_OK ||
        (rc = opt_string(req, "operation", "request", &r->operation, err)) != TW_OK ||
        (rc = opt_string(req, "name", "request", &r->name, err)) != TW_OK ||
        (rc = opt_string(req, "namespace", "request", &r->namespace, err)) != TW_OK ||
        (rc = opt_object(req, "object", "request", &r->object, err)) != TW_OK ||
        (rc = opt_object(req, "oldObject", "request", &r->old_object, err)) != TW_OK)
        return rc;
    const cJSON *dry = cJSON_GetObjectItemCaseSensitive(req, "dryRun");
    if (dry == NULL || cJSON_IsNull(dry))
        r->dry_run = -1;
    else if (cJSON_IsBool(dry))
        r->dry_run = cJSON_IsTrue(dry) ? 1 : 0;
    else
        return tw_seterr(err, TW_EINVAL, "not an AdmissionReview: request.dryRun is not a boolean");
    return TW_OK;
}

int tw_admission_decode(const char *body, size_t len, tw_admission_request **out, char *err)
{
    tw_admission_request *r = NULL;
    cJSON *root = NULL;
    char why[TW_ERRLEN] = "";
    int rc = tw_json_parse(body, len, &root, why);
    if (rc == TW_EPARSE) {
        rc = tw_seterr(err, rc, "the body is %s", why);
        goto out;
    }
    if (rc != TW_OK) {
        rc = tw_seterr(err, rc, "out of memory reading the review");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = tw_seterr(err, TW_EINVAL, "not an AdmissionReview: the body is not a JSON object");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    if ((rc = read_envelope(root, &r->version, err)) != TW_OK)
        goto out;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(root, "request");
    if (!cJSON_IsObject(req)) {
        rc = tw_seterr(err, TW_EINVAL, "not an AdmissionReview: request is %s",
                       req == NULL ? "missing" : "not an object");
        goto out;
    }
    if ((rc = read_uid(req, &r->uid, err)) != TW_OK || (rc = read_request(req, r, err)) != TW_OK)
        goto out;
    r->root = root;
    root = NULL;
    *out = r;
    r = NULL;
out:
    free(r);
    cJSON_Delete(root);
    return rc;
}

void tw_admission_request_free(tw_admission_request *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->root);
    free(r);
}

/* Copies one warning made safe to show (tw_text_show) and cut to the cap. */
static cJSON *clean_warning(const char *w)
{
    char s[TW_ADMISSION_WARNING_MAX + 1];
    return cJSON_CreateString(tw_text_show(s, sizeof(s), w, strlen(w)));
}

int tw_admission_encode(tw_admission_version version, const tw_admission_reply *reply, char **out,
                        size_t *out_len, char *err)
{
    int rc = TW_ENOMEM;
    cJSON *root = NULL;
    char *b64 = NULL, *text = NULL;
    if (reply == NULL || reply->uid == NULL || reply->uid[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "a review response needs the request's uid");
    if (version != TW_ADMISSION_V1 && version != TW_ADMISSION_V1BETA1)
        return tw_seterr(err, TW_EINVAL, "unknown AdmissionReview version");
    if (reply->patch != NULL && reply->patch_len > (size_t)PATCH_MAX)
        return tw_seterr(err, TW_EINVAL, "the patch is over %d bytes", PATCH_MAX);

    root = cJSON_CreateObject();
    if (root == NULL ||
        !cJSON_AddStringToObject(root, "apiVersion", tw_admission_api_version(version)) ||
        !cJSON_AddStringToObject(root, "kind", "AdmissionReview"))
        goto out;
    cJSON *resp = cJSON_AddObjectToObject(root, "response");
    if (resp == NULL || !cJSON_AddStringToObject(resp, "uid", reply->uid) ||
        !cJSON_AddTrueToObject(resp, "allowed"))
        goto out;
    /* Room for the output: the patch as base64, the uid and warnings escaped at worst. */
    size_t room = 512 + 6 * strlen(reply->uid);
    if (reply->patch != NULL && reply->patch_len > 0) {
        /* Base64 needs no escaping: it goes in as a raw JSON string, not scanned again. */
        size_t n64 = tw_base64_encoded_len(reply->patch_len);
        b64 = malloc(n64 + 3);
        if (b64 == NULL)
            goto out;
        b64[0] = '"';
        tw_base64_encode_to(b64 + 1, reply->patch, reply->patch_len);
        b64[n64 + 1] = '"';
        b64[n64 + 2] = '\0';
        room += n64;
        if (!cJSON_AddStringToObject(resp, "patchType", "JSONPatch") ||
            !cJSON_AddRawToObject(resp, "patch", b64))
            goto out;
    }
    size_t nw = reply->n_warnings;
    if (nw > TW_ADMISSION_MAX_WARNINGS)
        nw = TW_ADMISSION_MAX_WARNINGS;
    if (reply->warnings != NULL && nw > 0) {
        cJSON *arr = cJSON_AddArrayToObject(resp, "warnings");
        if (arr == NULL)
            goto out;
        for (size_t i = 0; i < nw; i++) {
            if (reply->warnings[i] == NULL)
                continue;
            room += 6 * TW_ADMISSION_WARNING_MAX + 4;
            cJSON *w = clean_warning(reply->warnings[i]);
            if (w == NULL || !cJSON_AddItemToArray(arr, w)) {
                cJSON_Delete(w);
                goto out;
            }
        }
    }
    /* One buffer of the right size instead of the printer's doubling. */
    text = cJSON_malloc(room);
    if (text == NULL)
        goto out;
    bool printed = cJSON_PrintPreallocated(root, text, (int)room, 0);
    TW_ASSERT(printed); /* room is enough for any reply: the sums above are the worst case */
    if (!printed)
        goto out;
    *out_len = strlen(text);
    *out = text;
    text = NULL;
    rc = TW_OK;
out:
    if (rc == TW_ENOMEM)
        tw_seterr(err, rc, "out of memory encoding the review response");
    cJSON_free(text);
    free(b64);
    cJSON_Delete(root);
    return rc;
}
