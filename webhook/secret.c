/* secret.c - store certgen's certificate and key in a kubernetes.io/tls Secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "topowire/base64.h"
#include "topowire/certgen.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/kube.h"

#include "webhook.h"

/* Adds key: base64(value) to the object data; returns 0 or TW_ENOMEM. */
static int add_b64(cJSON *data, const char *key, const char *value)
{
    char *b = NULL;
    int ok = tw_base64_encode(value, strlen(value), &b) == TW_OK &&
             cJSON_AddStringToObject(data, key, b) != NULL;
    free(b);
    return ok ? TW_OK : TW_ENOMEM;
}

/* The Secret (whole = 1) or the merge patch of its data (whole = 0), as JSON text. */
static char *secret_json(const char *namespace, const char *name, const tw_certgen_pems *p,
                         int whole)
{
    char *text = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    if (whole) {
        cJSON *meta = NULL, *labels = NULL;
        if (!cJSON_AddStringToObject(o, "apiVersion", "v1") ||
            !cJSON_AddStringToObject(o, "kind", "Secret") ||
            !cJSON_AddStringToObject(o, "type", "kubernetes.io/tls") ||
            (meta = cJSON_AddObjectToObject(o, "metadata")) == NULL ||
            !cJSON_AddStringToObject(meta, "name", name) ||
            !cJSON_AddStringToObject(meta, "namespace", namespace) ||
            (labels = cJSON_AddObjectToObject(meta, "labels")) == NULL ||
            !cJSON_AddStringToObject(labels, "app.kubernetes.io/name", "topowire") ||
            !cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "topowire-certgen"))
            goto out;
    }
    cJSON *data = cJSON_AddObjectToObject(o, "data");
    if (data == NULL || add_b64(data, "tls.crt", p->cert) != TW_OK ||
        add_b64(data, "tls.key", p->key) != TW_OK || add_b64(data, "ca.crt", p->ca_cert) != TW_OK)
        goto out;
    char *s = cJSON_PrintUnformatted(o);
    if (s != NULL) {
        text = strdup(s);
        cJSON_free(s);
    }
out:
    cJSON_Delete(o);
    return text;
}

int hook_write_tls_secret(tw_kube_client *c, const char *namespace, const char *name,
                          const tw_certgen_pems *pems, uint64_t deadline, char *err)
{
    char path[512];
    char *body = NULL;
    tw_http_response resp;
    tw_http_response_init(&resp);
    if (!tw_dns_label_valid(namespace) || !tw_dns_subdomain_valid(name))
        return tw_seterr(err, TW_EINVAL, "\"%s/%s\" is not a valid Secret name", namespace, name);
    if (pems == NULL || pems->cert == NULL || pems->key == NULL || pems->ca_cert == NULL)
        return tw_seterr(err, TW_EINVAL, "no certificate to store");
    int rc = TW_ENOMEM;
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", namespace);
    if ((body = secret_json(namespace, name, pems, 1)) == NULL)
        goto out;
    tw_kube_request rq = {.method = "POST",
                          .path = path,
                          .accept = "application/json",
                          .content_type = "application/json",
                          .body = body,
                          .body_len = strlen(body),
                          .deadline = deadline};
    rc = tw_kube_do(c, &rq, &resp, err);
    if (rc != TW_EHTTP || resp.status != 409)
        goto out;
    /* It exists: replace the three keys, keep the rest of the object. */
    free(body);
    if ((body = secret_json(namespace, name, pems, 0)) == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", namespace, name);
    rq.method = "PATCH";
    rq.content_type = "application/merge-patch+json";
    rq.body = body;
    rq.body_len = strlen(body);
    rc = tw_kube_do(c, &rq, &resp, err);
out:
    if (body != NULL) {
        OPENSSL_cleanse(body, strlen(body)); /* it holds the private key */
        free(body);
    }
    tw_http_response_free(&resp);
    return rc;
}
