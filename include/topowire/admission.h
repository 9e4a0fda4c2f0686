/* admission.h - AdmissionReview (admission.k8s.io/v1 and v1beta1): decode a request, encode a
 * reply. */
#ifndef TOPOWIRE_ADMISSION_H
#define TOPOWIRE_ADMISSION_H

#include <stddef.h>

/* cJSON values are passed by pointer; callers that build or read them include <cjson/cJSON.h>. */
typedef struct cJSON cJSON;

/* Most warnings one reply carries, and the longest one (bytes) before it is cut. */
#define TW_ADMISSION_MAX_WARNINGS 16
#define TW_ADMISSION_WARNING_MAX  256

/* Which apiVersion a review used; the reply is written in the same one. */
typedef enum tw_admission_version {
    TW_ADMISSION_V1 = 1,      /* admission.k8s.io/v1 */
    TW_ADMISSION_V1BETA1 = 2, /* admission.k8s.io/v1beta1 */
} tw_admission_version;

/*
 * A decoded review request. Every string and JSON pointer borrows from the
 * parsed document the request owns, so all of it lives until
 * tw_admission_request_free(). Strings are "" when the field is absent; uid is
 * never empty. object and old_object are NULL when absent or JSON null; the
 * handler may read them but must not modify or free them.
 */
typedef struct tw_admission_request {
    tw_admission_version version;
    const char *uid;
    const char *kind_group; /* request.kind: the object's GroupVersionKind */
    const char *kind_version;
    const char *kind;
    const char *resource_group; /* request.resource */
    const char *resource_version;
    const char *resource;
    const char *sub_resource; /* "binding", "status", ... */
    const char *operation;    /* CREATE, UPDATE, DELETE, CONNECT */
    const char *name;         /* "" for generateName pods at CREATE */
    const char *namespace;
    int dry_run; /* 1 true, 0 false, -1 absent */
    const cJSON *object;
    const cJSON *old_object;
    cJSON *root; /* the whole parsed review (private) */
} tw_admission_request;

/*
 * Parses an AdmissionReview from body (len bytes, need not be NUL-terminated)
 * and checks its shape: a JSON object with apiVersion admission.k8s.io/v1 or
 * v1beta1, kind AdmissionReview, a request object whose uid is a non-empty
 * string of valid UTF-8 without control characters or NUL (the reply must
 * echo it exactly), and every other field it reads of the type the API
 * defines (a field that is present with the wrong type is an error, an
 * absent one is not). An escaped NUL ("\u0000") in any string reads as
 * U+0001, never as the end of the string, so no value is silently cut. Returns 0 and a new request
 * in *out (free with tw_admission_request_free), or: TW_EPARSE when the body is not one JSON value,
 * TW_EINVAL when it is JSON but not a review (err names the field), TW_ENOMEM.
 */
int tw_admission_decode(const char *body, size_t len, tw_admission_request **out, char *err);

/* Frees a request and the document it borrows from. NULL-safe. */
void tw_admission_request_free(tw_admission_request *r);

/*
 * What to answer. Every pointer is borrowed for the duration of the encode
 * call. patch is a JSON Patch document (a JSON array text) of patch_len
 * bytes, or NULL (or patch_len 0) when nothing changes. Warnings are copied
 * made safe with tw_text_show() (control characters and bytes that are not
 * UTF-8 become '?'), each cut on a UTF-8 boundary to end with "..." within
 * TW_ADMISSION_WARNING_MAX bytes, at most TW_ADMISSION_MAX_WARNINGS of them.
 */
typedef struct tw_admission_reply {
    const char *uid;
    const char *patch;
    size_t patch_len;
    const char *const *warnings;
    size_t n_warnings;
} tw_admission_reply;

/*
 * Encodes the response review in the given version: apiVersion, kind, and a
 * response with the uid echoed and "allowed": true written explicitly
 * (topowire never denies), "patchType": "JSONPatch" and the base64 patch only
 * when there is one, and "warnings" only when there are any. Returns 0 and a
 * new NUL-terminated string in *out with its length in *out_len (caller frees
 * with cJSON_free()), or TW_EINVAL (no uid, unknown version, a patch over
 * 64 MiB) or TW_ENOMEM.
 */
int tw_admission_encode(tw_admission_version version, const tw_admission_reply *reply, char **out,
                        size_t *out_len, char *err);

/* Returns "admission.k8s.io/v1" or "admission.k8s.io/v1beta1" (never NULL). */
const char *tw_admission_api_version(tw_admission_version version);

#endif
