/* cabundle.c - set caBundle in a MutatingWebhookConfiguration through the Kubernetes API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "topowire/base64.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/jsonpatch.h"
#include "topowire/kube.h"

#include "webhook.h"

#define MWC_PATH "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
#define ATTEMPTS 5

static X509 *first_cert(const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

/*
 * The caBundle one webhook should get: the new CA first, then the CA that
 * was first in its bundle when that is another certificate still valid, so
 * that serving certificates of both verify while the new one reaches every
 * webhook pod. Sets *same when the current bundle already starts with the
 * new CA. Returns a new base64 string, or NULL on out-of-memory.
 */
static char *bundle_for(const char *cur_b64, const char *new_pem, const X509 *new_ca, int *same)
{
    char *out = NULL;
    unsigned char *old_pem = NULL;
    size_t old_len = 0;
    X509 *old = NULL;
    BIO *b = NULL;
    *same = 0;
    /* A bundle that is not strict base64 holds nothing worth keeping. */
    if (cur_b64 != NULL && cur_b64[0] != '\0' &&
        tw_base64_decode(cur_b64, strlen(cur_b64), &old_pem, &old_len) == TW_OK)
        old = first_cert((const char *)old_pem, old_len);
    if (old != NULL && X509_cmp(old, new_ca) == 0) {
        *same = 1;
        out = strdup(cur_b64);
        goto out;
    }
    b = BIO_new(BIO_s_mem());
    size_t nl = strlen(new_pem);
    if (b == NULL || BIO_write(b, new_pem, (int)nl) != (int)nl ||
        (nl > 0 && new_pem[nl - 1] != '\n' && BIO_write(b, "\n", 1) != 1))
        goto out;
    if (old != NULL && X509_cmp_current_time(X509_get0_notAfter(old)) > 0 &&
        !PEM_write_bio_X509(b, old))
        goto out;
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n > 0 && tw_base64_encode(data, (size_t)n, &out) != TW_OK)
        out = NULL;
out:
    BIO_free(b);
    X509_free(old);
    free(old_pem);
    return out;
}

/*
 * Builds the patch for the configuration doc: a test of its resourceVersion
 * and of each webhook's name (so a concurrent edit fails the patch instead of
 * landing on the wrong webhook), then caBundle for every webhook. Sets *same
 * when every webhook's bundle already starts with this CA. Returns 0,
 * TW_EPARSE or TW_ENOMEM.
 */
static int build_patch(const cJSON *doc, const char *ca_pem, const X509 *ca, char **out,
                       size_t *len, int *same, char *err)
{
    tw_jsonpatch p = {0};
    char *b64 = NULL;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const char *rv =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion"));
    const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(doc, "webhooks");
    if (!cJSON_IsArray(hooks) || cJSON_GetArraySize(hooks) == 0)
        return tw_seterr(err, TW_EPARSE, "the configuration has no webhooks");
    int rc = tw_jsonpatch_init(&p);
    if (rc != TW_OK)
        return rc;
    if (rv != NULL &&
        (rc = tw_jsonpatch_test(&p, "/metadata/resourceVersion", cJSON_CreateString(rv))) != TW_OK)
        goto out;
    *same = 1;
    int i = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hooks)
    {
        char path[96];
        int this_same = 0;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "name"));
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(h, "clientConfig");
        const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cc, "caBundle"));
        if (name == NULL) {
            rc = tw_seterr(err, TW_EPARSE, "webhook %d has no name", i);
            goto out;
        }
        free(b64);
        if ((b64 = bundle_for(cur, ca_pem, ca, &this_same)) == NULL) {
            rc = TW_ENOMEM;
            goto out;
        }
        *same = *same && this_same;
        snprintf(path, sizeof(path), "/webhooks/%d/name", i);
        if ((rc = tw_jsonpatch_test(&p, path, cJSON_CreateString(name))) != TW_OK)
            goto out;
        if (cJSON_IsObject(cc)) {
            snprintf(path, sizeof(path), "/webhooks/%d/clientConfig/caBundle", i);
            rc = tw_jsonpatch_add(&p, path, cJSON_CreateString(b64));
        } else {
            cJSON *v = cJSON_CreateObject();
            if (v && !cJSON_AddStringToObject(v, "caBundle", b64)) {
                cJSON_Delete(v);
                v = NULL;
            }
            snprintf(path, sizeof(path), "/webhooks/%d/clientConfig", i);
            rc = v ? tw_jsonpatch_add(&p, path, v) : TW_ENOMEM;
        }
        if (rc != TW_OK)
            goto out;
        i++;
    }
    rc = tw_jsonpatch_render(&p, out, len);
out:
    free(b64);
    tw_jsonpatch_free(&p);
    return rc;
}

int hook_patch_ca_bundle(tw_kube_client *c, const char *name, const char *ca_pem, uint64_t deadline,
                         char *err)
{
    char path[sizeof(MWC_PATH) + 256];
    char *patch = NULL;
    size_t patch_len = 0;
    cJSON *doc = NULL;
    X509 *ca = NULL;
    tw_http_response resp;
    tw_http_response_init(&resp);
    int rc = TW_OK;
    if (!tw_dns_subdomain_valid(name))
        return tw_seterr(err, TW_EINVAL, "\"%s\" is not a valid object name", name);
    size_t pem_len = strlen(ca_pem);
    if (pem_len == 0 || pem_len > 1024 * 1024 || (ca = first_cert(ca_pem, pem_len)) == NULL)
        return tw_seterr(err, TW_EINVAL, "the CA bundle is not a PEM certificate");
    snprintf(path, sizeof(path), "%s%s", MWC_PATH, name);

    for (int attempt = 1;; attempt++) {
        tw_kube_request get = {
            .method = "GET", .path = path, .accept = "application/json", .deadline = deadline};
        rc = tw_kube_do(c, &get, &resp, err);
        if (rc != TW_OK)
            goto out;
        cJSON_Delete(doc);
        doc = cJSON_ParseWithLength(tw_buf_cstr(&resp.body), resp.body.len);
        if (!cJSON_IsObject(doc)) {
            rc = tw_seterr(err, TW_EPARSE, "the API server's answer is not a JSON object");
            goto out;
        }
        int same = 0;
        cJSON_free(patch);
        patch = NULL;
        if ((rc = build_patch(doc, ca_pem, ca, &patch, &patch_len, &same, err)) != TW_OK)
            goto out;
        if (same)
            goto out; /* nothing to change */
        tw_kube_request patch_rq = {.method = "PATCH",
                                    .path = path,
                                    .accept = "application/json",
                                    .content_type = "application/json-patch+json",
                                    .body = patch,
                                    .body_len = patch_len,
                                    .deadline = deadline};
        rc = tw_kube_do(c, &patch_rq, &resp, err);
        /* 409/422: the object changed under us (a test op failed); read it again. */
        if (rc == TW_EHTTP && (resp.status == 409 || resp.status == 422) && attempt < ATTEMPTS)
            continue;
        goto out;
    }
out:
    tw_http_response_free(&resp);
    cJSON_Delete(doc);
    cJSON_free(patch);
    X509_free(ca);
    return rc;
}
