/* test_cabundle.c - certgen --patch-webhook's caBundle patch against a loopback API server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cjson/cJSON.h>

#include "support/kubepatch.h"
#include "support/testserver.h"
#include "topowire/base64.h"
#include "topowire/certgen.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/kube.h"
#include "topowire/kubeconfig.h"

#include "../../webhook/webhook.h"

#define PATH    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/topowire"
#define SECRETS "/api/v1/namespaces/topowire-system/secrets"

/* CA certificates made once by setup: the new one and an older one. */
static char *CA, *OLD_CA;

static const char *const two_webhooks =
    "{\"apiVersion\":\"admissionregistration.k8s.io/v1\",\"kind\":\"MutatingWebhookConfiguration\","
    "\"metadata\":{\"name\":\"topowire\",\"resourceVersion\":\"7\"},\"webhooks\":["
    "{\"name\":\"inject.topowire.io\",\"clientConfig\":{\"service\":{\"name\":\"topowire-webhook\","
    "\"namespace\":\"topowire-system\",\"path\":\"/mutate/pods\"},\"caBundle\":\"b2xk\"},"
    "\"admissionReviewVersions\":[\"v1\"],\"sideEffects\":\"None\"},"
    "{\"name\":\"binding.topowire.io\",\"clientConfig\":{\"service\":{\"name\":\"topowire-"
    "webhook\","
    "\"namespace\":\"topowire-system\",\"path\":\"/mutate/binding\"}},"
    "\"admissionReviewVersions\":[\"v1\"],\"sideEffects\":\"None\"}]}";

/* The stand-in API server's state. */
typedef struct apiserver {
    pthread_mutex_t lock;
    cJSON *obj; /* the stored configuration, NULL = 404 */
    int gets, patches;
    int conflict_once; /* bump resourceVersion before the first PATCH is applied */
    int forbid;
    char last_content_type[128];
    char last_auth[128];
    char *out;     /* the last body answered (the server copies it after the handler returns) */
    cJSON *secret; /* the stored Secret, NULL = none */
    int secret_posts, secret_patches;
    char secret_patch_type[128];
    char status_body[256];
} apiserver;

static void status(apiserver *a, tw_testresp *resp, int code, const char *reason)
{
    char *body = a->status_body;
    snprintf(body, sizeof(a->status_body),
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
             "\"reason\":\"%s\",\"code\":%d,\"message\":\"%s\"}",
             reason, code, reason);
    resp->status = code;
    resp->body = body;
    resp->content_type = "application/json";
}

static void handler(void *ud, const tw_testreq *req, tw_testresp *resp)
{
    apiserver *a = ud;
    pthread_mutex_lock(&a->lock);
    cJSON_free(a->out);
    a->out = NULL;
    const char *auth = tw_testreq_header(req, "Authorization");
    snprintf(a->last_auth, sizeof(a->last_auth), "%s", auth ? auth : "");
    if (strcmp(req->url, SECRETS) == 0 && strcmp(req->method, "POST") == 0) {
        a->secret_posts++;
        if (a->secret != NULL) {
            status(a, resp, 409, "AlreadyExists");
            goto done;
        }
        a->secret = cJSON_Parse(req->body);
        a->out = cJSON_PrintUnformatted(a->secret);
        resp->status = 201;
        resp->body = a->out;
        resp->content_type = "application/json";
        goto done;
    }
    if (strcmp(req->url, SECRETS "/topowire-webhook-tls") == 0 &&
        strcmp(req->method, "PATCH") == 0 && a->secret != NULL) {
        /* A merge patch of data: each key replaces the stored one. */
        a->secret_patches++;
        const char *ct = tw_testreq_header(req, "Content-Type");
        snprintf(a->secret_patch_type, sizeof(a->secret_patch_type), "%s", ct ? ct : "");
        cJSON *patch = cJSON_Parse(req->body);
        cJSON *data = cJSON_GetObjectItem(a->secret, "data");
        const cJSON *kv;
        cJSON_ArrayForEach(kv, cJSON_GetObjectItem(patch, "data"))
        {
            cJSON_DeleteItemFromObject(data, kv->string);
            cJSON_AddStringToObject(data, kv->string, kv->valuestring);
        }
        cJSON_Delete(patch);
        a->out = cJSON_PrintUnformatted(a->secret);
        resp->body = a->out;
        resp->content_type = "application/json";
        goto done;
    }
    if (strcmp(req->url, PATH) != 0 || a->obj == NULL) {
        status(a, resp, 404, "NotFound");
        goto done;
    }
    if (a->forbid) {
        status(a, resp, 403, "Forbidden");
        goto done;
    }
    if (strcmp(req->method, "GET") == 0) {
        a->gets++;
    } else if (strcmp(req->method, "PATCH") == 0) {
        a->patches++;
        const char *ct = tw_testreq_header(req, "Content-Type");
        snprintf(a->last_content_type, sizeof(a->last_content_type), "%s", ct ? ct : "");
        if (a->conflict_once) {
            a->conflict_once = 0;
            cJSON_ReplaceItemInObject(cJSON_GetObjectItem(a->obj, "metadata"), "resourceVersion",
                                      cJSON_CreateString("8"));
        }
        cJSON *patched = tw_test_kubectl_patch(a->obj, req->body);
        if (patched == NULL) {
            status(a, resp, 422, "Invalid");
            goto done;
        }
        cJSON_Delete(a->obj);
        a->obj = patched;
    } else {
        status(a, resp, 405, "MethodNotAllowed");
        goto done;
    }
    a->out = cJSON_PrintUnformatted(a->obj);
    resp->body = a->out;
    resp->content_type = "application/json";
done:
    pthread_mutex_unlock(&a->lock);
}

typedef struct fixture {
    char dir[64];
    tw_testserver *srv;
    tw_kube_config *cfg;
    tw_kube_client *client;
    apiserver api;
} fixture;

static int teardown(void **state)
{
    fixture *f = *state;
    free(CA);
    free(OLD_CA);
    CA = OLD_CA = NULL;
    if (f == NULL)
        return 0;
    tw_kube_client_free(f->client);
    tw_kube_config_free(f->cfg);
    tw_testserver_stop(f->srv);
    cJSON_Delete(f->api.obj);
    cJSON_Delete(f->api.secret);
    cJSON_free(f->api.out);
    int rc = 0;
    if (f->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        rc = system(cmd) == 0 ? 0 : -1;
    }
    free(f);
    *state = NULL;
    return rc;
}

static int setup(void **state)
{
    tw_certgen_config cc = {.service = "topowire-webhook", .namespace = "topowire-system"};
    tw_certgen_pems a = {0}, b = {0};
    char path[128], token[128], port[16];
    char *cert = NULL, *key = NULL;
    int rc = -1;
    fixture *f = calloc(1, sizeof(*f));
    *state = f;
    if (f == NULL)
        return -1;
    pthread_mutex_init(&f->api.lock, NULL);
    if (tw_certgen_generate(&cc, &a, NULL) != TW_OK || tw_certgen_generate(&cc, &b, NULL) != TW_OK)
        goto out;
    CA = strdup(a.ca_cert);
    OLD_CA = strdup(b.ca_cert);
    snprintf(f->dir, sizeof(f->dir), "/tmp/tw-cabundle-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        f->dir[0] = '\0';
        goto out;
    }
    if (tw_testserver_make_certs(f->dir) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/server.pem", f->dir);
    cert = tw_test_read_file(path, NULL);
    snprintf(path, sizeof(path), "%s/server-key.pem", f->dir);
    key = tw_test_read_file(path, NULL);
    if (cert == NULL || key == NULL ||
        (f->srv = tw_testserver_start(handler, &f->api, cert, key)) == NULL)
        goto out;
    snprintf(token, sizeof(token), "%s/token", f->dir);
    FILE *t = fopen(token, "w");
    if (t == NULL)
        goto out;
    fputs("cabundle-test-token\n", t);
    fclose(t);
    snprintf(port, sizeof(port), "%d", tw_testserver_port(f->srv));
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    snprintf(path, sizeof(path), "%s/ca.pem", f->dir);
    if (tw_kube_config_incluster(token, path, &f->cfg, NULL) != TW_OK ||
        (f->client = tw_kube_client_new(f->cfg, "test")) == NULL)
        goto out;
    rc = 0;
out:
    free(cert);
    free(key);
    tw_certgen_free(&a);
    tw_certgen_free(&b);
    if (rc != 0)
        teardown(state);
    return rc;
}

static void reset(fixture *f, const char *obj)
{
    cJSON_Delete(f->api.obj);
    f->api.obj = obj ? cJSON_Parse(obj) : NULL;
    f->api.gets = f->api.patches = 0;
    f->api.conflict_once = f->api.forbid = 0;
}

static const char *bundle_of(const fixture *f, int i)
{
    const cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(f->api.obj, "webhooks"), i);
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(h, "clientConfig"), "caBundle"));
}

static char *b64(const char *s)
{
    char *out = malloc(4 * ((strlen(s) + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)strlen(s));
    return out;
}

static void sets_every_webhook(void **state)
{
    fixture *f = *state;
    reset(f, two_webhooks);
    char err[TW_ERRLEN] = "";
    int rc = hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err);
    if (rc != TW_OK)
        fail_msg("patch: %s", err);
    char *want = b64(CA);
    assert_string_equal(bundle_of(f, 0), want);
    assert_string_equal(bundle_of(f, 1), want);
    assert_int_equal(f->api.gets, 1);
    assert_int_equal(f->api.patches, 1);
    assert_string_equal(f->api.last_content_type, "application/json-patch+json");
    assert_string_equal(f->api.last_auth, "Bearer cabundle-test-token");
    /* The rest of each webhook is untouched. */
    const cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(f->api.obj, "webhooks"), 1);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(h, "clientConfig"), "service"), "path")),
        "/mutate/binding");

    /* Running again changes nothing and sends no PATCH. */
    f->api.gets = f->api.patches = 0;
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_OK);
    assert_int_equal(f->api.gets, 1);
    assert_int_equal(f->api.patches, 0);
    free(want);
}

static void retries_when_the_object_changed(void **state)
{
    fixture *f = *state;
    reset(f, two_webhooks);
    f->api.conflict_once = 1;
    char err[TW_ERRLEN] = "";
    int rc = hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err);
    if (rc != TW_OK)
        fail_msg("patch: %s", err);
    assert_int_equal(f->api.gets, 2);
    assert_int_equal(f->api.patches, 2);
    char *want = b64(CA);
    assert_string_equal(bundle_of(f, 1), want);
    free(want);
}

static void creates_a_missing_client_config(void **state)
{
    fixture *f = *state;
    reset(f, "{\"apiVersion\":\"admissionregistration.k8s.io/v1\","
             "\"kind\":\"MutatingWebhookConfiguration\",\"metadata\":{\"name\":\"topowire\"},"
             "\"webhooks\":[{\"name\":\"a.topowire.io\"}]}");
    char err[TW_ERRLEN] = "";
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_OK);
    char *want = b64(CA);
    assert_string_equal(bundle_of(f, 0), want);
    free(want);
}

static void failures(void **state)
{
    fixture *f = *state;
    char err[TW_ERRLEN] = "";
    reset(f, NULL);
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_ENOTFOUND);
    reset(f, two_webhooks);
    f->api.forbid = 1;
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_EFORBIDDEN);
    assert_non_null(strstr(err, "Forbidden"));
    reset(f, "{\"apiVersion\":\"admissionregistration.k8s.io/v1\","
             "\"kind\":\"MutatingWebhookConfiguration\",\"metadata\":{\"name\":\"topowire\"}}");
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_EPARSE);
    assert_non_null(strstr(err, "no webhooks"));
    assert_int_equal(f->api.patches, 0);
    reset(f, two_webhooks);
    static const char *const bad[] = {"", "Topowire", "a/b", "-x", "x..", "a b", "a..b", "a.-b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(hook_patch_ca_bundle(f->client, bad[i], CA, tw_deadline_in(20000), err),
                         TW_EINVAL);
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", "", tw_deadline_in(20000), err),
                     TW_EINVAL);
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire",
                                          "-----BEGIN CERTIFICATE-----\nno\n-----END "
                                          "CERTIFICATE-----\n",
                                          tw_deadline_in(20000), err),
                     TW_EINVAL);
    assert_non_null(strstr(err, "not a PEM certificate"));
    assert_int_equal(f->api.gets, 0);
}

/* Decodes a caBundle and returns how many certificates it holds; *pem_out gets the one at index. */
static int certs_at(const char *b64, int index, char **pem_out)
{
    size_t n = strlen(b64);
    unsigned char *pem = malloc(n + 1);
    int len = EVP_DecodeBlock(pem, (const unsigned char *)b64, (int)n);
    assert_true(len > 0);
    BIO *bio = BIO_new_mem_buf(pem, len);
    X509 *x;
    int count = 0;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (count == index && pem_out) {
            BIO *o = BIO_new(BIO_s_mem());
            PEM_write_bio_X509(o, x);
            char *d;
            long l = BIO_get_mem_data(o, &d);
            *pem_out = strndup(d, (size_t)l);
            BIO_free(o);
        }
        X509_free(x);
        count++;
    }
    BIO_free(bio);
    free(pem);
    return count;
}

/* A self-signed certificate whose validity ended yesterday, as PEM (caller frees). */
static char *expired_ca(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), -86400);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"old", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    BIO *o = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(o, x);
    char *d;
    long l = BIO_get_mem_data(o, &d);
    char *pem = strndup(d, (size_t)l);
    BIO_free(o);
    X509_free(x);
    EVP_PKEY_free(k);
    return pem;
}

static void a_rotation_keeps_the_previous_ca(void **state)
{
    fixture *f = *state;
    reset(f, two_webhooks);
    char err[TW_ERRLEN] = "";
    /* The old CA first. */
    assert_int_equal(
        hook_patch_ca_bundle(f->client, "topowire", OLD_CA, tw_deadline_in(20000), err), TW_OK);
    assert_int_equal(certs_at(bundle_of(f, 0), 0, NULL), 1);
    /* Then the new one: both webhooks trust new and old. */
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_OK);
    for (int i = 0; i < 2; i++) {
        char *first = NULL;
        assert_int_equal(certs_at(bundle_of(f, i), 0, &first), 2);
        assert_string_equal(first, CA);
        free(first);
        char *second = NULL;
        assert_int_equal(certs_at(bundle_of(f, i), 1, &second), 2);
        assert_string_equal(second, OLD_CA);
        free(second);
    }
    /* A third time with the same CA: nothing to do. */
    f->api.patches = 0;
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_OK);
    assert_int_equal(f->api.patches, 0);
    /* The next rotation drops the oldest: new + previous only. */
    assert_int_equal(
        hook_patch_ca_bundle(f->client, "topowire", OLD_CA, tw_deadline_in(20000), err), TW_OK);
    char *first = NULL;
    assert_int_equal(certs_at(bundle_of(f, 1), 0, &first), 2);
    assert_string_equal(first, OLD_CA);
    free(first);
}

static void an_expired_previous_ca_is_dropped(void **state)
{
    fixture *f = *state;
    reset(f, two_webhooks);
    char err[TW_ERRLEN] = "";
    char *expired = expired_ca();
    assert_int_equal(
        hook_patch_ca_bundle(f->client, "topowire", expired, tw_deadline_in(20000), err), TW_OK);
    assert_int_equal(hook_patch_ca_bundle(f->client, "topowire", CA, tw_deadline_in(20000), err),
                     TW_OK);
    assert_int_equal(certs_at(bundle_of(f, 0), 0, NULL), 1);
    free(expired);
}

static const char *secret_data(const fixture *f, const char *key)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(f->api.secret, "data"), key));
}

static void tls_secret_created_then_updated(void **state)
{
    fixture *f = *state;
    reset(f, NULL);
    cJSON_Delete(f->api.secret);
    f->api.secret = NULL;
    f->api.secret_posts = f->api.secret_patches = 0;
    tw_certgen_config cc = {.service = "topowire-webhook", .namespace = "topowire-system"};
    tw_certgen_pems p1, p2;
    assert_int_equal(tw_certgen_generate(&cc, &p1, NULL), TW_OK);
    assert_int_equal(tw_certgen_generate(&cc, &p2, NULL), TW_OK);
    char err[TW_ERRLEN] = "";
    assert_int_equal(hook_write_tls_secret(f->client, "topowire-system", "topowire-webhook-tls",
                                           &p1, tw_deadline_in(20000), err),
                     TW_OK);
    assert_int_equal(f->api.secret_posts, 1);
    assert_int_equal(f->api.secret_patches, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(f->api.secret, "type")),
                        "kubernetes.io/tls");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(f->api.secret, "metadata"), "name")),
                        "topowire-webhook-tls");
    static const char *const keys[] = {"tls.crt", "tls.key", "ca.crt"};
    const char *want1[] = {p1.cert, p1.key, p1.ca_cert};
    for (int i = 0; i < 3; i++) {
        char *b = NULL;
        assert_int_equal(tw_base64_encode(want1[i], strlen(want1[i]), &b), TW_OK);
        assert_string_equal(secret_data(f, keys[i]), b);
        free(b);
    }
    /* It exists now: the keys are replaced with a merge patch; other keys stay. */
    cJSON_AddStringToObject(cJSON_GetObjectItem(f->api.secret, "data"), "extra", "eA==");
    assert_int_equal(hook_write_tls_secret(f->client, "topowire-system", "topowire-webhook-tls",
                                           &p2, tw_deadline_in(20000), err),
                     TW_OK);
    assert_int_equal(f->api.secret_posts, 2);
    assert_int_equal(f->api.secret_patches, 1);
    assert_string_equal(f->api.secret_patch_type, "application/merge-patch+json");
    const char *want2[] = {p2.cert, p2.key, p2.ca_cert};
    for (int i = 0; i < 3; i++) {
        char *b = NULL;
        assert_int_equal(tw_base64_encode(want2[i], strlen(want2[i]), &b), TW_OK);
        assert_string_equal(secret_data(f, keys[i]), b);
        free(b);
    }
    assert_string_equal(secret_data(f, "extra"), "eA==");
    /* Refused before any request. */
    assert_int_equal(
        hook_write_tls_secret(f->client, "Bad_NS", "x", &p2, tw_deadline_in(2000), err), TW_EINVAL);
    assert_int_equal(hook_write_tls_secret(f->client, "ns", "a/b", &p2, tw_deadline_in(2000), err),
                     TW_EINVAL);
    assert_int_equal(hook_write_tls_secret(f->client, "ns", "a..b", &p2, tw_deadline_in(2000), err),
                     TW_EINVAL);
    assert_int_equal(hook_write_tls_secret(f->client, "ns", "a.-b", &p2, tw_deadline_in(2000), err),
                     TW_EINVAL);
    assert_int_equal(hook_write_tls_secret(f->client, "n.s", "x", &p2, tw_deadline_in(2000), err),
                     TW_EINVAL);
    assert_int_equal(hook_write_tls_secret(f->client, "ns", "x", NULL, tw_deadline_in(2000), err),
                     TW_EINVAL);
    assert_int_equal(f->api.secret_posts, 2);
    tw_certgen_free(&p1);
    tw_certgen_free(&p2);
}

int main(void)
{
    tw_http_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sets_every_webhook),
        cmocka_unit_test(retries_when_the_object_changed),
        cmocka_unit_test(creates_a_missing_client_config),
        cmocka_unit_test(failures),
        cmocka_unit_test(a_rotation_keeps_the_previous_ca),
        cmocka_unit_test(an_expired_previous_ca_is_dropped),
        cmocka_unit_test(tls_secret_created_then_updated),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    tw_http_global_cleanup();
    return rc;
}
