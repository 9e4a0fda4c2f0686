/* test_certgen.c - the CA and serving certificate, checked with OpenSSL's own verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "support/testserver.h"
#include "topowire/certgen.h"
#include "topowire/files.h"
#include "topowire/error.h"

static X509 *cert_of(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *key_of(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}

static void assert_p256(EVP_PKEY *k)
{
    char group[64] = "";
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &len), 1);
    assert_string_equal(group, "prime256v1");
}

/* Verifies leaf against ca for TLS server use, checking host when not NULL. */
static int verify(X509 *ca, X509 *leaf, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (host)
        X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void generate_ok(const tw_certgen_config *cfg, tw_certgen_pems *p)
{
    char err[TW_ERRLEN] = "";
    int rc = tw_certgen_generate(cfg, p, err);
    if (rc != TW_OK)
        fail_msg("generate: %s", err);
    assert_non_null(p->ca_cert);
    assert_non_null(p->ca_key);
    assert_non_null(p->cert);
    assert_non_null(p->key);
}

static void serving_certificate_for_the_service(void **state)
{
    (void)state;
    tw_certgen_config cfg = {.service = "topowire-webhook", .namespace = "topowire-system"};
    tw_certgen_pems p;
    generate_ok(&cfg, &p);
    X509 *ca = cert_of(p.ca_cert), *leaf = cert_of(p.cert);
    EVP_PKEY *ca_key = key_of(p.ca_key), *key = key_of(p.key);
    assert_p256(ca_key);
    assert_p256(key);
    assert_int_equal(X509_check_private_key(leaf, key), 1);
    assert_int_equal(X509_check_private_key(ca, ca_key), 1);
    assert_int_equal(X509_check_private_key(leaf, ca_key), 0);

    static const char *const names[] = {"topowire-webhook", "topowire-webhook.topowire-system",
                                        "topowire-webhook.topowire-system.svc",
                                        "topowire-webhook.topowire-system.svc.cluster.local"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(verify(ca, leaf, names[i]), 1);
        assert_int_equal(X509_check_host(leaf, names[i], 0, 0, NULL), 1);
    }
    assert_int_equal(verify(ca, leaf, "other.topowire-system.svc"), 0);
    assert_int_equal(verify(ca, leaf, "localhost"), 0);
    /* Exactly the four DNS names. */
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 4);
    GENERAL_NAMES_free(sans);

    /* CA:FALSE, serverAuth, digitalSignature; the CA is a CA with pathlen 0. */
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
    assert_false(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
    assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    assert_false(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN);
    assert_int_not_equal(X509_check_ca(ca), 0);
    assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_get_pathlen(ca), 0);
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    assert_non_null(X509_get0_subject_key_id(leaf));
    assert_non_null(X509_get0_authority_key_id(leaf));

    /* Valid now (with skew allowance) for about a year; the CA for ten. */
    time_t now = time(NULL);
    int days = 0, secs = 0;
    assert_true(X509_cmp_time(X509_get0_notBefore(leaf), &now) < 0);
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf));
    assert_int_equal(days, 365);
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca));
    assert_int_equal(days, 3650);

    /* A random, positive serial that differs between runs. */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    assert_false(BN_is_zero(bn));
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) <= 159);
    tw_certgen_pems q;
    generate_ok(&cfg, &q);
    X509 *leaf2 = cert_of(q.cert);
    assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf2)), 0);
    /* A new run makes a new CA: the old one does not verify the new leaf. */
    assert_int_equal(verify(ca, leaf2, NULL), 0);

    BN_free(bn);
    X509_free(leaf2);
    tw_certgen_free(&q);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    tw_certgen_free(&p);
    assert_null(p.cert);
    tw_certgen_free(NULL);
}

static void extra_names_domain_and_days(void **state)
{
    (void)state;
    const char *extra[] = {"localhost", "127.0.0.1", "::1", "webhook.example.com"};
    tw_certgen_config cfg = {.service = "hook",
                             .namespace = "ns",
                             .cluster_domain = "corp.internal",
                             .extra_sans = extra,
                             .n_extra_sans = 4,
                             .days = 7,
                             .ca_days = 30};
    tw_certgen_pems p;
    generate_ok(&cfg, &p);
    X509 *ca = cert_of(p.ca_cert), *leaf = cert_of(p.cert);
    assert_int_equal(verify(ca, leaf, "hook.ns.svc.corp.internal"), 1);
    assert_int_equal(verify(ca, leaf, "hook.ns.svc.cluster.local"), 0);
    assert_int_equal(verify(ca, leaf, "webhook.example.com"), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "10.0.0.1", 0), 0);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf));
    assert_int_equal(days, 7);
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca), X509_get0_notAfter(ca));
    assert_int_equal(days, 30);
    X509_free(ca);
    X509_free(leaf);
    tw_certgen_free(&p);
}

/* A 63-character service in a 40-character namespace: the CN is cut to X.509's 64, the SANs are
 * whole. */
static void long_names_fit(void **state)
{
    (void)state;
    char service[64], ns[41], host[200];
    memset(service, 's', 63);
    service[63] = '\0';
    memset(ns, 'n', 40);
    ns[40] = '\0';
    tw_certgen_config cfg = {.service = service, .namespace = ns};
    tw_certgen_pems p;
    generate_ok(&cfg, &p);
    X509 *ca = cert_of(p.ca_cert), *leaf = cert_of(p.cert);
    snprintf(host, sizeof(host), "%s.%s.svc", service, ns);
    assert_int_equal(verify(ca, leaf, host), 1);
    char cn[128] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    assert_int_equal(strlen(cn), 64);
    assert_memory_equal(cn, host, 64);
    X509_free(ca);
    X509_free(leaf);
    tw_certgen_free(&p);
}

static void reusing_a_ca_keeps_the_bundle(void **state)
{
    (void)state;
    tw_certgen_config cfg = {.service = "hook", .namespace = "ns"};
    tw_certgen_pems first, second;
    generate_ok(&cfg, &first);
    cfg.ca_cert_pem = first.ca_cert;
    cfg.ca_key_pem = first.ca_key;
    generate_ok(&cfg, &second);
    assert_string_equal(second.ca_cert, first.ca_cert);
    assert_string_equal(second.ca_key, first.ca_key);
    assert_string_not_equal(second.cert, first.cert);
    assert_string_not_equal(second.key, first.key);
    X509 *ca = cert_of(first.ca_cert), *leaf = cert_of(second.cert);
    assert_int_equal(verify(ca, leaf, "hook.ns.svc"), 1);
    X509_free(ca);
    X509_free(leaf);

    /* Refused: half a CA, a key that does not match, a CA that is not one, junk. */
    char err[TW_ERRLEN] = "";
    tw_certgen_pems out = {0};
    cfg.ca_key_pem = NULL;
    assert_int_equal(tw_certgen_generate(&cfg, &out, err), TW_EINVAL);
    assert_non_null(strstr(err, "both"));
    cfg.ca_key_pem = second.key;
    assert_int_equal(tw_certgen_generate(&cfg, &out, err), TW_EINVAL);
    assert_non_null(strstr(err, "does not match"));
    cfg.ca_cert_pem = second.cert;
    cfg.ca_key_pem = second.key;
    assert_int_equal(tw_certgen_generate(&cfg, &out, err), TW_EINVAL);
    assert_non_null(strstr(err, "not a CA"));
    cfg.ca_cert_pem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n";
    assert_int_equal(tw_certgen_generate(&cfg, &out, err), TW_EINVAL);
    assert_non_null(strstr(err, "not valid PEM"));
    assert_null(out.cert);
    tw_certgen_free(&first);
    tw_certgen_free(&second);
}

static void invalid_requests(void **state)
{
    (void)state;
    static const struct {
        const char *service, *ns, *domain;
        int days, ca_days;
        const char *extra;
        const char *err;
    } cases[] = {
        {NULL, "ns", NULL, 0, 0, NULL, "required"},
        {"svc", NULL, NULL, 0, 0, NULL, "required"},
        {"", "ns", NULL, 0, 0, NULL, "DNS"},
        {"svc_1", "ns", NULL, 0, 0, NULL, "DNS"},
        {"svc", "ns.", NULL, 0, 0, NULL, "DNS"},
        {"svc", "a..b", NULL, 0, 0, NULL, "DNS"},
        {"-svc", "ns", NULL, 0, 0, NULL, "DNS"},
        {"svc", "ns", "bad domain", 0, 0, NULL, "DNS"},
        /* Names Kubernetes never gives: upper case, a dotted Service or namespace. */
        {"Svc", "ns", NULL, 0, 0, NULL, "DNS"},
        {"svc", "NS", NULL, 0, 0, NULL, "DNS"},
        {"svc.x", "ns", NULL, 0, 0, NULL, "DNS"},
        {"svc", "ns.x", NULL, 0, 0, NULL, "DNS"},
        {"svc", "ns", "Cluster.Local", 0, 0, NULL, "DNS"},
        {"svc", "ns", NULL, 0, 0, "Hook.Example.com", "neither"},
        {"svc", "ns", NULL, 0, 0, "a.-b", "neither"},
        {"svc", "ns", NULL, -1, 0, NULL, "between"},
        {"svc", "ns", NULL, 0, 100000, NULL, "between"},
        {"svc", "ns", NULL, 0, 0, "not a name!", "neither"},
        {"svc", "ns", NULL, 0, 0, "", "neither"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *extra[] = {cases[i].extra};
        tw_certgen_config cfg = {.service = cases[i].service,
                                 .namespace = cases[i].ns,
                                 .cluster_domain = cases[i].domain,
                                 .days = cases[i].days,
                                 .ca_days = cases[i].ca_days,
                                 .extra_sans = extra,
                                 .n_extra_sans = cases[i].extra ? 1 : 0};
        tw_certgen_pems out = {0};
        char err[TW_ERRLEN] = "";
        assert_int_equal(tw_certgen_generate(&cfg, &out, err), TW_EINVAL);
        if (strstr(err, cases[i].err) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].err);
        assert_null(out.cert);
    }
    const char *many[TW_CERTGEN_MAX_EXTRA_SANS + 1];
    for (int i = 0; i <= TW_CERTGEN_MAX_EXTRA_SANS; i++)
        many[i] = "localhost";
    tw_certgen_config cfg = {.service = "s",
                             .namespace = "n",
                             .extra_sans = many,
                             .n_extra_sans = TW_CERTGEN_MAX_EXTRA_SANS + 1};
    tw_certgen_pems out = {0};
    assert_int_equal(tw_certgen_generate(&cfg, &out, NULL), TW_EINVAL);
    assert_int_equal(tw_certgen_generate(NULL, &out, NULL), TW_EINVAL);
}

static void files_are_written_with_safe_modes(void **state)
{
    (void)state;
    char dir[] = "/tmp/tw-certgen-XXXXXX";
    assert_non_null(mkdtemp(dir));
    tw_certgen_config cfg = {.service = "hook", .namespace = "ns"};
    tw_certgen_pems p;
    generate_ok(&cfg, &p);
    char err[TW_ERRLEN] = "";
    assert_int_equal(tw_certgen_write(dir, &p, err), TW_OK);
    static const struct {
        const char *name;
        mode_t mode;
    } files[] = {{"ca.crt", 0644}, {"ca.key", 0600}, {"tls.crt", 0644}, {"tls.key", 0600}};
    const char *want[] = {p.ca_cert, p.ca_key, p.cert, p.key};
    for (int i = 0; i < 4; i++) {
        char path[256];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, files[i].mode);
        char *text = NULL;
        assert_int_equal(tw_file_read(path, 1 << 20, &text, NULL, err), TW_OK);
        assert_string_equal(text, want[i]);
        free(text);
        assert_int_equal(tw_file_read(path, 10, &text, NULL, err), TW_ETOOBIG);
        unlink(path);
    }
    /* Without the CA key, ca.key is not written. */
    char *ca_key = p.ca_key;
    p.ca_key = NULL;
    assert_int_equal(tw_certgen_write(dir, &p, err), TW_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/ca.key", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    char *text = (char *)0x1;
    assert_int_equal(tw_file_read(path, 1 << 20, &text, NULL, err), TW_ENOTFOUND);
    assert_ptr_equal(text, (char *)0x1);
    p.ca_key = ca_key;
    static const char *const names[] = {"ca.crt", "tls.crt", "tls.key"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
    /* A directory that is not there. */
    assert_int_equal(tw_certgen_write(dir, &p, err), TW_EIO);
    assert_non_null(strstr(err, dir));
    assert_int_equal(tw_certgen_write(dir, NULL, err), TW_EINVAL);
    tw_certgen_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serving_certificate_for_the_service),
        cmocka_unit_test(extra_names_domain_and_days),
        cmocka_unit_test(long_names_fit),
        cmocka_unit_test(reusing_a_ca_keeps_the_bundle),
        cmocka_unit_test(invalid_requests),
        cmocka_unit_test(files_are_written_with_safe_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
