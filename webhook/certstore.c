/* certstore.c - the serving certificate, reloaded from its files when they change (GnuTLS). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "topowire/files.h"
#include "topowire/clock.h"
#include "topowire/error.h"

#include "webhook.h"

#define CHAIN_MAX 16

/* What identifies one version of a file. */
typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int exists;
} stamp;

/* One loaded certificate chain and key, as DER, copied into every handshake. */
typedef struct pair {
    gnutls_datum_t certs[CHAIN_MAX];
    unsigned n_certs;
    gnutls_datum_t key;
    char serial[80];
    int64_t not_before;
    int64_t not_after;
} pair;

struct hook_certstore {
    char *cert_file;
    char *key_file;
    pthread_rwlock_t rw; /* guards cur against a reload while a handshake copies it */
    pair *cur;
    pthread_mutex_t check_lock;    /* one check at a time; guards the fields below */
    stamp cert_st, key_st;         /* of the loaded pair */
    stamp bad_cert_st, bad_key_st; /* of the last change that failed to load */
    int64_t bad_retry_at;          /* that change was not yet valid: try it again from then */
    uint64_t last_check_ms;
};

static _Atomic(hook_certstore *) current_store;

static void pair_free(pair *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->n_certs; i++)
        gnutls_free(p->certs[i].data);
    if (p->key.data) {
        gnutls_memset(p->key.data, 0, p->key.size);
        gnutls_free(p->key.data);
    }
    free(p);
}

static stamp stamp_of(const char *path)
{
    stamp s = {0};
    struct stat st;
    if (stat(path, &st) == 0) {
        s.dev = st.st_dev;
        s.ino = st.st_ino;
        s.size = st.st_size;
        s.mtime = st.st_mtim;
        s.exists = 1;
    }
    return s;
}

static int stamp_eq(const stamp *a, const stamp *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads and checks both files into a new pair. */
static int pair_load(const char *cert_file, const char *key_file, pair **out, char *err)
{
    int rc = TW_OK, g;
    char *cert_pem = NULL, *key_pem = NULL;
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    gnutls_x509_privkey_t key = NULL;
    pair *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return TW_ENOMEM;
    if ((rc = tw_file_read(cert_file, TW_FILE_PEM_MAX, &cert_pem, NULL, err)) != TW_OK ||
        (rc = tw_file_read(key_file, TW_FILE_PEM_MAX, &key_pem, NULL, err)) != TW_OK)
        goto out;
    gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    g = gnutls_x509_crt_list_import2(&crts, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0 || n == 0) {
        rc = tw_seterr(err, TW_EPARSE, "%s holds no valid PEM certificate: %s", cert_file,
                       g < 0 ? gnutls_strerror(g) : "empty");
        goto out;
    }
    if (n > CHAIN_MAX) {
        rc = tw_seterr(err, TW_EINVAL, "%s holds more than %d certificates", cert_file, CHAIN_MAX);
        goto out;
    }
    if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
        (g = gnutls_x509_privkey_import2(key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        rc = tw_seterr(err, TW_EPARSE, "%s holds no valid unencrypted PEM private key: %s",
                       key_file, gnutls_strerror(g));
        goto out;
    }
    unsigned char id1[64], id2[64];
    size_t l1 = sizeof(id1), l2 = sizeof(id2);
    if (gnutls_x509_crt_get_key_id(crts[0], GNUTLS_KEYID_USE_SHA256, id1, &l1) < 0 ||
        gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, id2, &l2) < 0 || l1 != l2 ||
        memcmp(id1, id2, l1) != 0) {
        rc = tw_seterr(err, TW_EINVAL, "the key in %s does not match the certificate in %s",
                       key_file, cert_file);
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        if ((g = gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &p->certs[i])) < 0) {
            rc = tw_seterr(err, TW_ENOMEM, "cannot export certificate: %s", gnutls_strerror(g));
            goto out;
        }
        p->n_certs = i + 1;
    }
    /* PKCS#8: what gnutls_privkey_import_x509_raw reads back as DER for every key type. */
    if ((g = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN,
                                               &p->key)) < 0) {
        rc = tw_seterr(err, TW_ENOMEM, "cannot export the key: %s", gnutls_strerror(g));
        goto out;
    }
    unsigned char serial[40];
    size_t sl = sizeof(serial);
    if (gnutls_x509_crt_get_serial(crts[0], serial, &sl) == 0) {
        for (size_t i = 0; i < sl && 2 * i + 2 < sizeof(p->serial); i++)
            snprintf(p->serial + 2 * i, 3, "%02X", serial[i]);
    }
    p->not_before = (int64_t)gnutls_x509_crt_get_activation_time(crts[0]);
    p->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crts[0]);
    *out = p;
    p = NULL;
out:
    pair_free(p);
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    gnutls_x509_privkey_deinit(key);
    free(cert_pem);
    if (key_pem) {
        gnutls_memset(key_pem, 0, strlen(key_pem));
        free(key_pem);
    }
    return rc;
}

int hook_certstore_open(const char *cert_file, const char *key_file, hook_certstore **out,
                        char *err)
{
    hook_certstore *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return TW_ENOMEM;
    pthread_rwlock_init(&s->rw, NULL);
    pthread_mutex_init(&s->check_lock, NULL);
    s->cert_file = strdup(cert_file);
    s->key_file = strdup(key_file);
    int rc = TW_ENOMEM;
    if (s->cert_file == NULL || s->key_file == NULL)
        goto fail;
    s->cert_st = stamp_of(cert_file);
    s->key_st = stamp_of(key_file);
    rc = pair_load(cert_file, key_file, &s->cur, err);
    if (rc != TW_OK)
        goto fail;
    s->last_check_ms = tw_now_ms();
    *out = s;
    return TW_OK;
fail:
    hook_certstore_free(s);
    return rc;
}

void hook_certstore_free(hook_certstore *s)
{
    if (s == NULL)
        return;
    hook_certstore *expected = s;
    atomic_compare_exchange_strong(&current_store, &expected, NULL);
    pair_free(s->cur);
    pthread_rwlock_destroy(&s->rw);
    pthread_mutex_destroy(&s->check_lock);
    free(s->cert_file);
    free(s->key_file);
    free(s);
}

/* "2026-11-22T03:42:29Z" */
static void format_time(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)t);
}

/*
 * A pair the API server would reject is no replacement for the one in use:
 * returns TW_EINVAL (err says why) when the leaf certificate has expired or
 * is not valid yet at now, and sets *retry_at to when it will be (or 0).
 */
static int pair_valid_at(const pair *p, const char *cert_file, int64_t now, int64_t *retry_at,
                         char *err)
{
    char when[40];
    *retry_at = 0;
    if (p->not_after <= now) {
        format_time(p->not_after, when, sizeof(when));
        return tw_seterr(err, TW_EINVAL, "the certificate in %s expired at %s", cert_file, when);
    }
    if (p->not_before > now) {
        format_time(p->not_before, when, sizeof(when));
        *retry_at = p->not_before;
        return tw_seterr(err, TW_EINVAL, "the certificate in %s is not valid until %s", cert_file,
                         when);
    }
    return TW_OK;
}

int hook_certstore_check(hook_certstore *s, long min_interval_ms, char *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->check_lock);
    uint64_t now = tw_now_ms();
    if (min_interval_ms > 0 && now - s->last_check_ms < (uint64_t)min_interval_ms)
        goto out;
    s->last_check_ms = now;
    stamp c = stamp_of(s->cert_file), k = stamp_of(s->key_file);
    if (stamp_eq(&c, &s->cert_st) && stamp_eq(&k, &s->key_st))
        goto out;
    int64_t wall = (int64_t)time(NULL);
    if (stamp_eq(&c, &s->bad_cert_st) && stamp_eq(&k, &s->bad_key_st) &&
        (s->bad_retry_at == 0 || wall < s->bad_retry_at))
        goto out; /* this change was reported already */
    pair *p = NULL;
    int64_t retry_at = 0;
    rc = pair_load(s->cert_file, s->key_file, &p, err);
    if (rc == TW_OK && p != NULL &&
        (rc = pair_valid_at(p, s->cert_file, wall, &retry_at, err)) != TW_OK) {
        pair_free(p);
        p = NULL;
    }
    if (rc != TW_OK) {
        s->bad_cert_st = c;
        s->bad_key_st = k;
        s->bad_retry_at = retry_at;
        goto out;
    }
    pthread_rwlock_wrlock(&s->rw);
    pair *old = s->cur;
    s->cur = p;
    pthread_rwlock_unlock(&s->rw);
    pair_free(old);
    s->cert_st = c;
    s->key_st = k;
    memset(&s->bad_cert_st, 0, sizeof(s->bad_cert_st));
    memset(&s->bad_key_st, 0, sizeof(s->bad_key_st));
    s->bad_retry_at = 0;
    rc = 1;
out:
    pthread_mutex_unlock(&s->check_lock);
    return rc;
}

void hook_certstore_info(hook_certstore *s, char *serial, size_t serial_len, int64_t *not_after)
{
    pthread_rwlock_rdlock(&s->rw);
    snprintf(serial, serial_len, "%s", s->cur->serial);
    *not_after = s->cur->not_after;
    pthread_rwlock_unlock(&s->rw);
}

void hook_certstore_set_current(hook_certstore *s)
{
    atomic_store(&current_store, s);
}

/*
 * Hands GnuTLS fresh copies of the current chain and key for this handshake;
 * with GNUTLS_CERT_RETR_DEINIT_ALL GnuTLS frees them with the session, so a
 * reload never frees what a session still points at.
 */
int hook_certstore_retrieve(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                            gnutls_pcert_st **certs, unsigned int *n_certs,
                            gnutls_ocsp_data_st **ocsp, unsigned int *n_ocsp,
                            gnutls_privkey_t *pkey, unsigned int *flags)
{
    (void)session;
    (void)info;
    hook_certstore *s = atomic_load(&current_store);
    if (s == NULL)
        return -1;
    int rc = -1;
    unsigned done = 0;
    gnutls_privkey_t key = NULL;
    pthread_rwlock_rdlock(&s->rw);
    const pair *p = s->cur;
    gnutls_pcert_st *list = gnutls_malloc(p->n_certs * sizeof(*list));
    if (list == NULL)
        goto out;
    for (; done < p->n_certs; done++)
        if (gnutls_pcert_import_x509_raw(&list[done], &p->certs[done], GNUTLS_X509_FMT_DER, 0) < 0)
            goto out;
    if (gnutls_privkey_init(&key) < 0 ||
        gnutls_privkey_import_x509_raw(key, &p->key, GNUTLS_X509_FMT_DER, NULL, 0) < 0)
        goto out;
    *certs = list;
    *n_certs = p->n_certs;
    *pkey = key;
    *ocsp = NULL;
    *n_ocsp = 0;
    *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    list = NULL;
    key = NULL;
    done = 0;
    rc = 0;
out:
    pthread_rwlock_unlock(&s->rw);
    for (unsigned i = 0; i < done; i++)
        gnutls_pcert_deinit(&list[i]);
    gnutls_free(list);
    if (key)
        gnutls_privkey_deinit(key);
    return rc;
}
