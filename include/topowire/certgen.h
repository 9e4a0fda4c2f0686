/* certgen.h - a CA and a webhook serving certificate (ECDSA P-256) with OpenSSL. */
#ifndef TOPOWIRE_CERTGEN_H
#define TOPOWIRE_CERTGEN_H

#include <stddef.h>

/* Most extra subject alternative names one certificate takes. */
#define TW_CERTGEN_MAX_EXTRA_SANS 16

/*
 * What to issue. Strings are borrowed for the call. The serving certificate
 * names SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc and
 * SERVICE.NAMESPACE.svc.CLUSTER_DOMAIN, plus extra_sans (an IP address
 * literal becomes an IP SAN, anything else a DNS SAN).
 *
 * With ca_cert_pem and ca_key_pem set, the serving certificate is signed by
 * that CA (which is then returned unchanged); otherwise a new CA is made.
 */
typedef struct tw_certgen_config {
    const char *service;        /* required: the webhook's Service name */
    const char *namespace;      /* required */
    const char *cluster_domain; /* NULL = "cluster.local" */
    const char *const *extra_sans;
    size_t n_extra_sans;
    int ca_days;             /* CA validity, 0 = 3650 */
    int days;                /* serving certificate validity, 0 = 365 */
    const char *ca_cert_pem; /* an existing CA to sign with, or NULL */
    const char *ca_key_pem;
} tw_certgen_config;

/* The PEM texts made; owned by the struct, freed with tw_certgen_free. */
typedef struct tw_certgen_pems {
    char *ca_cert; /* the CA certificate: what goes into caBundle */
    char *ca_key;  /* the CA's private key (PKCS#8) */
    char *cert;    /* the serving certificate */
    char *key;     /* its private key (PKCS#8) */
} tw_certgen_pems;

/*
 * Makes the key pairs and certificates. The CA has basicConstraints CA:TRUE
 * with pathlen 0 and keyUsage keyCertSign and cRLSign; the serving
 * certificate has CA:FALSE, keyUsage digitalSignature, extKeyUsage
 * serverAuth, the subject alternative names above, subject and authority key
 * identifiers, a random 159-bit serial, and a validity starting five minutes
 * in the past against clock skew. Returns 0 with *out filled (free with
 * tw_certgen_free), TW_EINVAL (missing or invalid names, days out of range,
 * a CA that does not parse or whose key does not match it) or TW_ENOMEM;
 * err says what failed.
 */
int tw_certgen_generate(const tw_certgen_config *cfg, tw_certgen_pems *out, char *err);

/* Frees the PEM texts and zeroes the struct. NULL-safe. */
void tw_certgen_free(tw_certgen_pems *p);

/*
 * Writes the four files into dir: ca.crt and tls.crt (mode 0644), ca.key and
 * tls.key (mode 0600), each atomically (a temporary file in dir, fsync,
 * rename), keys before certificates so that a watcher of tls.crt never sees
 * a certificate without its key. A NULL ca_key is not written (a CA kept
 * elsewhere). The directory is fsync'd once, after the last rename. Returns 0,
 * TW_EIO with the file and errno text in err, or TW_EINVAL (no dir, or a path
 * over PATH_MAX).
 */
int tw_certgen_write(const char *dir, const tw_certgen_pems *p, char *err);

#endif
