/* certgen.c - make a CA and a serving certificate for the webhook with OpenSSL 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/certgen.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/files.h"

#define SKEW_SECONDS (5 * 60)
#define MAX_DAYS     (100 * 366)

void tw_certgen_free(tw_certgen_pems *p)
{
    if (p == NULL)
        return;
    if (p->ca_key)
        OPENSSL_cleanse(p->ca_key, strlen(p->ca_key));
    if (p->key)
        OPENSSL_cleanse(p->key, strlen(p->key));
    free(p->ca_cert);
    free(p->ca_key);
    free(p->cert);
    free(p->key);
    memset(p, 0, sizeof(*p));
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static char *pem_of(int (*writer)(BIO *, const void *), const void *obj)
{
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return NULL;
    if (writer(bio, obj)) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static int write_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

/* Adds one extension given in OpenSSL's config syntax. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* ub-common-name (RFC 5280): the longest CN a certificate may carry. */
#define CN_MAX 64

/*
 * Makes a certificate for key with the given subject CN, signed by
 * issuer_key (issuer NULL: self-signed). The extensions are nids[i] with
 * values[i] in OpenSSL's config syntax, nids ending in 0. X.509 allows a CN
 * of at most 64 characters: a longer one (a long service and namespace) is
 * cut; clients check the subject alternative names, which hold every name
 * in full.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int days,
                       const int *nids, const char *const *values)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    X509_NAME *name = X509_NAME_new();
    int ok = x && bn && name && X509_set_version(x, X509_VERSION_3) &&
             BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -SKEW_SECONDS) &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                        (int)(strlen(cn) > CN_MAX ? CN_MAX : strlen(cn)), -1, 0) &&
             X509_set_subject_name(x, name) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
             X509_set_pubkey(x, key);
    /* A serial of zero is not allowed; BN_rand can give it once in 2^159. */
    if (ok && BN_is_zero(bn))
        ok = BN_one(bn) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    for (int i = 0; ok && nids[i] != 0; i++) {
        TW_ASSERT(values[i] != NULL);
        ok = add_ext(x, issuer ? issuer : x, nids[i], values[i]);
    }
    if (ok)
        ok = X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int load_ca(const tw_certgen_config *cfg, X509 **ca, EVP_PKEY **ca_key, char *err)
{
    BIO *b1 = BIO_new_mem_buf(cfg->ca_cert_pem, -1);
    BIO *b2 = BIO_new_mem_buf(cfg->ca_key_pem, -1);
    int rc = TW_OK;
    if (b1 == NULL || b2 == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    *ca = PEM_read_bio_X509(b1, NULL, NULL, NULL);
    *ca_key = PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL);
    if (*ca == NULL || *ca_key == NULL) {
        rc = tw_seterr(err, TW_EINVAL, "the CA %s is not valid PEM",
                       *ca == NULL ? "certificate" : "key");
        goto out;
    }
    if (X509_check_private_key(*ca, *ca_key) != 1) {
        rc = tw_seterr(err, TW_EINVAL, "the CA key does not match the CA certificate");
        goto out;
    }
    if (X509_check_ca(*ca) == 0) {
        rc = tw_seterr(err, TW_EINVAL, "the CA certificate is not a CA");
        goto out;
    }
out:
    BIO_free(b1);
    BIO_free(b2);
    return rc;
}

/* The config with its defaults filled in and every value checked. */
typedef struct certgen_plan {
    const char *domain; /* the cluster domain */
    int ca_days;        /* a new CA's validity */
    int days;           /* the serving certificate's validity */
} certgen_plan;

static int check_config(const tw_certgen_config *cfg, certgen_plan *plan, char *err)
{
    if (cfg == NULL || cfg->service == NULL || cfg->namespace == NULL)
        return tw_seterr(err, TW_EINVAL, "a service and a namespace are required");
    plan->domain = cfg->cluster_domain ? cfg->cluster_domain : "cluster.local";
    plan->ca_days = cfg->ca_days ? cfg->ca_days : 3650;
    plan->days = cfg->days ? cfg->days : 365;
    if (!tw_dns_label_valid(cfg->service) || !tw_dns_label_valid(cfg->namespace) ||
        !tw_dns_subdomain_valid(plan->domain))
        return tw_seterr(err, TW_EINVAL,
                         "the service and namespace must be DNS labels and the cluster domain a "
                         "DNS name (lower case)");
    if (plan->ca_days < 1 || plan->ca_days > MAX_DAYS || plan->days < 1 || plan->days > MAX_DAYS)
        return tw_seterr(err, TW_EINVAL, "validity must be between 1 and %d days", MAX_DAYS);
    if (cfg->n_extra_sans > TW_CERTGEN_MAX_EXTRA_SANS)
        return tw_seterr(err, TW_EINVAL, "at most %d extra names", TW_CERTGEN_MAX_EXTRA_SANS);
    if ((cfg->ca_cert_pem == NULL) != (cfg->ca_key_pem == NULL))
        return tw_seterr(err, TW_EINVAL, "an existing CA needs both its certificate and its key");
    return TW_OK;
}

/*
 * Writes the serving certificate's subjectAltName value into sans: the
 * Service's four names, then the extra names, each an IP or a DNS entry.
 */
static int serving_sans(const tw_certgen_config *cfg, const char *domain, tw_buf *sans, char *err)
{
    const char *s = cfg->service, *ns = cfg->namespace;
    int rc = tw_buf_printf(sans, "DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.%s", s, s, ns, s, ns,
                           s, ns, domain);
    for (size_t i = 0; rc == TW_OK && i < cfg->n_extra_sans; i++) {
        const char *e = cfg->extra_sans[i];
        if (e == NULL || (!is_ip(e) && !tw_dns_subdomain_valid(e)))
            return tw_seterr(err, TW_EINVAL,
                             "extra name %zu is neither a DNS name nor an IP address", i + 1);
        rc = tw_buf_printf(sans, ",%s:%s", is_ip(e) ? "IP" : "DNS", e);
    }
    if (rc != TW_OK)
        return tw_seterr(err, TW_ENOMEM, "out of memory listing the certificate's names");
    return TW_OK;
}

/* Loads the CA the config names, or makes a new one; *ca and *ca_key are the caller's to free. */
static int get_ca(const tw_certgen_config *cfg, int ca_days, X509 **ca, EVP_PKEY **ca_key,
                  char *err)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                  0};
    static const char *const ca_vals[] = {"critical,CA:TRUE,pathlen:0",
                                          "critical,keyCertSign,cRLSign", "hash"};
    _Static_assert(sizeof(ca_nids) / sizeof(ca_nids[0]) == sizeof(ca_vals) / sizeof(ca_vals[0]) + 1,
                   "one value for each CA extension");
    if (cfg->ca_cert_pem)
        return load_ca(cfg, ca, ca_key, err);
    char cn[300];
    snprintf(cn, sizeof(cn), "topowire-webhook-ca %s.%s", cfg->service, cfg->namespace);
    *ca_key = EVP_EC_gen("P-256");
    *ca = *ca_key ? make_cert(*ca_key, cn, NULL, NULL, ca_days, ca_nids, ca_vals) : NULL;
    if (*ca == NULL)
        return tw_seterr(err, TW_ENOMEM, "could not make the CA key and certificate");
    return TW_OK;
}

/* Makes the serving key and certificate, signed by ca; *cert and *key are the caller's to free. */
static int make_serving(const tw_certgen_config *cfg, int days, const char *sans, X509 *ca,
                        EVP_PKEY *ca_key, X509 **cert, EVP_PKEY **key, char *err)
{
    const int nids[] = {NID_basic_constraints,
                        NID_key_usage,
                        NID_ext_key_usage,
                        NID_subject_alt_name,
                        NID_subject_key_identifier,
                        NID_authority_key_identifier,
                        0};
    const char *const vals[] = {
        "critical,CA:FALSE", "critical,digitalSignature", "serverAuth", sans, "hash",
        "keyid,issuer"};
    _Static_assert(sizeof(nids) / sizeof(nids[0]) == sizeof(vals) / sizeof(vals[0]) + 1,
                   "one value for each serving certificate extension");
    char cn[300];
    snprintf(cn, sizeof(cn), "%s.%s.svc", cfg->service, cfg->namespace);
    *key = EVP_EC_gen("P-256");
    *cert = *key ? make_cert(*key, cn, ca, ca_key, days, nids, vals) : NULL;
    if (*cert == NULL)
        return tw_seterr(err, TW_ENOMEM, "could not make the serving key and certificate");
    return TW_OK;
}

int tw_certgen_generate(const tw_certgen_config *cfg, tw_certgen_pems *out, char *err)
{
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    tw_certgen_pems p = {0};
    certgen_plan plan = {0};
    tw_buf sans;
    tw_buf_init(&sans, 64 * 1024);

    int rc = check_config(cfg, &plan, err);
    if (rc != TW_OK)
        return rc;
    if ((rc = serving_sans(cfg, plan.domain, &sans, err)) != TW_OK ||
        (rc = get_ca(cfg, plan.ca_days, &ca, &ca_key, err)) != TW_OK ||
        (rc = make_serving(cfg, plan.days, tw_buf_cstr(&sans), ca, ca_key, &cert, &key, err)) !=
            TW_OK)
        goto out;
    p.ca_cert = cfg->ca_cert_pem ? strdup(cfg->ca_cert_pem) : pem_of(write_cert, ca);
    p.ca_key = cfg->ca_key_pem ? strdup(cfg->ca_key_pem) : pem_of(write_key, ca_key);
    p.cert = pem_of(write_cert, cert);
    p.key = pem_of(write_key, key);
    if (!p.ca_cert || !p.ca_key || !p.cert || !p.key) {
        rc = tw_seterr(err, TW_ENOMEM, "out of memory writing PEM");
        goto out;
    }
    *out = p;
    memset(&p, 0, sizeof(p));
out:
    tw_certgen_free(&p);
    tw_buf_free(&sans);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

/* Writes one PEM file; the directory is synced once, after all of them. */
static int write_pem(const char *dir, const char *name, const char *data, mode_t mode, char *err)
{
    return tw_file_write_atomic(dir, name, data, strlen(data), mode, TW_FILE_NO_DIRSYNC, err);
}

int tw_certgen_write(const char *dir, const tw_certgen_pems *p, char *err)
{
    int rc;
    if (p == NULL || p->cert == NULL || p->key == NULL || p->ca_cert == NULL)
        return tw_seterr(err, TW_EINVAL, "nothing to write");
    if (p->ca_key && (rc = write_pem(dir, "ca.key", p->ca_key, 0600, err)) != TW_OK)
        return rc;
    if ((rc = write_pem(dir, "ca.crt", p->ca_cert, 0644, err)) != TW_OK ||
        (rc = write_pem(dir, "tls.key", p->key, 0600, err)) != TW_OK ||
        (rc = write_pem(dir, "tls.crt", p->cert, 0644, err)) != TW_OK)
        return rc;
    return tw_file_sync_dir(dir, err);
}
