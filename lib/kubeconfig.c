/* kubeconfig.c - how to reach the Kubernetes API: in-cluster config, kubeconfig files, credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "topowire/base64.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/files.h"
#include "topowire/kubeconfig.h"
#include "topowire/text.h"

#include "kubeconfig_int.h"

#define SA_DIR           "/var/run/secrets/kubernetes.io/serviceaccount"
#define TOKEN_MAX        (64 * 1024)
#define KUBECONFIG_MAX   (4 * 1024 * 1024)
#define YAML_DEPTH_MAX   64
#define YAML_NODES_MAX   100000
#define EXEC_OUT_MAX     (1024 * 1024)
#define EXEC_ERR_MAX     4096
#define EXEC_API_V1      "client.authentication.k8s.io/v1"
#define EXEC_API_V1BETA1 "client.authentication.k8s.io/v1beta1"
/* A cached exec credential is renewed this many seconds before it expires. */
#define EXPIRY_SKEW_S 10

/*
 * tw_file_read(), with trailing whitespace removed when trim is set. O_CLOEXEC
 * matters here: no descriptor may leak into a credential plugin spawned by
 * another thread.
 */
static int read_file(const char *path, size_t max, int trim, char **out, char *err)
{
    size_t n = 0;
    int rc = tw_file_read(path, max, out, &n, err);
    while (rc == TW_OK && trim && n > 0 &&
           ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r' || (*out)[n - 1] == ' ' ||
            (*out)[n - 1] == '\t'))
        (*out)[--n] = '\0';
    return rc;
}

/* A bearer token goes into an HTTP header: non-empty, no control characters. */
static int token_ok(const char *t)
{
    if (t == NULL || *t == '\0')
        return 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int tw_kube_config_incluster(const char *token_file, const char *ca_file, tw_kube_config **out,
                             char *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || *host == '\0' || port == NULL || *port == '\0')
        return tw_seterr(err, TW_ENOCONFIG,
                         "not in a cluster: KUBERNETES_SERVICE_HOST/_PORT are not set");
    tw_kube_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return TW_ENOMEM;
    int rc = TW_ENOMEM;
    tw_buf server;
    tw_buf_init(&server, 512);
    /* An IPv6 service address needs brackets in a URL. */
    int v6 = strchr(host, ':') != NULL;
    if (tw_buf_printf(&server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) !=
        TW_OK) {
        rc = tw_seterr(err, TW_EINVAL, "KUBERNETES_SERVICE_HOST/_PORT are too long");
        goto out;
    }
    cfg->server = tw_buf_detach(&server);
    cfg->token_file = strdup(token_file ? token_file : SA_DIR "/token");
    cfg->ca_file = strdup(ca_file ? ca_file : SA_DIR "/ca.crt");
    if (cfg->server == NULL || cfg->token_file == NULL || cfg->ca_file == NULL)
        goto out;
    *out = cfg;
    cfg = NULL;
    rc = TW_OK;
out:
    tw_buf_free(&server);
    tw_kube_config_free(cfg);
    return rc;
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void exec_free(tw_kube_exec *e)
{
    if (e == NULL)
        return;
    free(e->command);
    free_strv(e->args);
    free_strv(e->env);
    free(e->api_version);
    free(e->cached_token);
    for (size_t i = 0; i < e->n_retired; i++)
        free(e->retired[i]);
    free(e->retired);
    pthread_cond_destroy(&e->done);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* Sets up e's lock; TW_ENOMEM when it cannot (e is then freed with free(), not exec_free). */
static int exec_lock_init(tw_kube_exec *e)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return TW_ENOMEM;
    int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&e->done, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok)
        return TW_ENOMEM;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        pthread_cond_destroy(&e->done);
        return TW_ENOMEM;
    }
    return TW_OK;
}

void tw_kube_config_free(tw_kube_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->server);
    free(cfg->ca_file);
    free(cfg->ca_pem);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->client_cert_pem);
    free(cfg->client_key_pem);
    exec_free(cfg->exec);
    free(cfg);
}

/* ---- kubeconfig files ---------------------------------------------------------------------- */

/* One kubeconfig file being loaded: its name, its directory, its YAML tree and the err buffer. */
typedef struct loader {
    const char *path;
    char *dir;
    yaml_node_t *root; /* the top-level map; NULL for an empty file */
    char *err;
    yaml_document_t doc;
    int have_doc;
    int no_files; /* TW__KUBECONFIG_NO_FILES: never open a file the config names */
} loader;

static unsigned long line_of(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

/* Plain null, ~ or nothing: the field is treated as absent. */
static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* The value under key in map (map may be NULL), or NULL when absent or null. */
static yaml_node_t *map_get(loader *ld, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&ld->doc, p->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE ||
            strcmp((const char *)k->data.scalar.value, key) != 0)
            continue;
        yaml_node_t *v = yaml_document_get_node(&ld->doc, p->value);
        return v == NULL || is_null(v) ? NULL : v;
    }
    return NULL;
}

static int type_error(loader *ld, const yaml_node_t *n, const char *where, const char *field,
                      const char *type)
{
    return tw_seterr(ld->err, TW_EPARSE, "kubeconfig %s line %lu: %s%s must be a %s", ld->path,
                     line_of(n), where, field, type);
}

/* Checks that n (not NULL) is of type t; where and field name it in the error. */
static int want(loader *ld, const yaml_node_t *n, yaml_node_type_t t, const char *where,
                const char *field)
{
    if (n->type == t)
        return TW_OK;
    return type_error(ld, n, where, field,
                      t == YAML_MAPPING_NODE    ? "map"
                      : t == YAML_SEQUENCE_NODE ? "list"
                                                : "string");
}

/* A string field: *out borrows the scalar, NULL when absent. */
static int get_str(loader *ld, yaml_node_t *map, const char *key, const char *where,
                   const char **out)
{
    yaml_node_t *n = map_get(ld, map, key);
    *out = NULL;
    if (n == NULL)
        return TW_OK;
    int rc = want(ld, n, YAML_SCALAR_NODE, where, key);
    if (rc != TW_OK)
        return rc;
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return tw_seterr(ld->err, TW_EPARSE, "kubeconfig %s line %lu: %s%s holds a NUL byte",
                         ld->path, line_of(n), where, key);
    *out = (const char *)n->data.scalar.value;
    return TW_OK;
}

/* A boolean field, absent = 0. A quoted "true" is a string, as in Kubernetes. */
static int get_bool(loader *ld, yaml_node_t *map, const char *key, const char *where, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    yaml_node_t *n = map_get(ld, map, key);
    *out = 0;
    if (n == NULL)
        return TW_OK;
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *v = (const char *)n->data.scalar.value;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
            if (strcmp(v, yes[i]) == 0) {
                *out = 1;
                return TW_OK;
            }
            if (strcmp(v, no[i]) == 0)
                return TW_OK;
        }
    }
    return type_error(ld, n, where, key, "boolean");
}

/*
 * Finds the entry called name in the top-level list list_key ("clusters") and
 * returns its inner map item_key ("cluster") in *out, NULL when that is empty.
 * TW_ENOTFOUND when no entry has that name.
 */
static int find_named(loader *ld, yaml_node_t *root, const char *list_key, const char *item_key,
                      const char *name, yaml_node_t **out)
{
    yaml_node_t *list = map_get(ld, root, list_key);
    if (list == NULL)
        return TW_ENOTFOUND;
    int rc = want(ld, list, YAML_SEQUENCE_NODE, "", list_key);
    if (rc != TW_OK)
        return rc;
    size_t i = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *entry = yaml_document_get_node(&ld->doc, *it);
        char item[48], where[64];
        snprintf(item, sizeof(item), "%s[%zu]", list_key, i);
        snprintf(where, sizeof(where), "%s.", item);
        if (entry == NULL || is_null(entry))
            continue;
        rc = want(ld, entry, YAML_MAPPING_NODE, "", item);
        if (rc != TW_OK)
            return rc;
        const char *n;
        rc = get_str(ld, entry, "name", where, &n);
        if (rc != TW_OK)
            return rc;
        if (n == NULL || strcmp(n, name) != 0)
            continue;
        yaml_node_t *inner = map_get(ld, entry, item_key);
        if (inner != NULL) {
            rc = want(ld, inner, YAML_MAPPING_NODE, where, item_key);
            if (rc != TW_OK)
                return rc;
        }
        *out = inner;
        return TW_OK;
    }
    return TW_ENOTFOUND;
}

/* Resolves p against the kubeconfig's directory into a new string. */
static int resolve_path(loader *ld, const char *p, char **out)
{
    if (p[0] == '/' || ld->dir == NULL) {
        *out = strdup(p);
        return *out ? TW_OK : TW_ENOMEM;
    }
    tw_buf b;
    tw_buf_init(&b, PATH_MAX);
    int rc = tw_buf_printf(&b, "%s/%s", ld->dir, p);
    if (rc == TW_OK) {
        *out = tw_buf_detach(&b);
        rc = *out ? TW_OK : TW_ENOMEM;
    } else if (rc == TW_ETOOBIG) {
        rc = tw_seterr(ld->err, TW_EINVAL, "kubeconfig %s: path %s is too long", ld->path, p);
    }
    tw_buf_free(&b);
    return rc;
}

/* Decodes the base64 field (line breaks allowed, as client-go allows them) into new PEM text. */
static int decode_pem(loader *ld, const char *b64, const char *where, const char *field, char **out)
{
    unsigned char *pem = NULL;
    size_t n = 0;
    int rc = tw_base64_decode(b64, strlen(b64), &pem, &n);
    if (rc == TW_ENOMEM)
        return rc;
    if (rc != TW_OK || memchr(pem, '\0', n) != NULL || strstr((char *)pem, "-----BEGIN ") == NULL) {
        if (pem != NULL) {
            OPENSSL_cleanse(pem, n);
            free(pem);
        }
        return tw_seterr(ld->err, TW_EPARSE, "kubeconfig %s: %s%s is not base64-encoded PEM",
                         ld->path, where, field);
    }
    *out = (char *)pem;
    return TW_OK;
}

/* Reads a PEM file named by a kubeconfig field (relative to the kubeconfig). */
static int read_pem_file(loader *ld, const char *p, const char *where, const char *field,
                         char **out)
{
    char *path = NULL;
    int rc = resolve_path(ld, p, &path);
    if (rc != TW_OK)
        return rc;
    if (ld->no_files) {
        free(path);
        return tw_seterr(ld->err, TW_EIO,
                         "kubeconfig %s: %s%s names a file, and files are not read", ld->path,
                         where, field);
    }
    char why[TW_ERRLEN];
    rc = read_file(path, TW_FILE_PEM_MAX, 0, out, why);
    if (rc != TW_OK && rc != TW_ENOMEM)
        rc = tw_seterr(ld->err, rc == TW_ETOOBIG ? TW_ETOOBIG : TW_EIO, "kubeconfig %s: %s%s: %s",
                       ld->path, where, field, why);
    free(path);
    return rc;
}

static int load_cluster(loader *ld, yaml_node_t *cl, const char *where, const char *name,
                        tw_kube_config *cfg)
{
    const char *server, *ca, *ca_data;
    int rc;
    if ((rc = get_str(ld, cl, "server", where, &server)) != TW_OK ||
        (rc = get_str(ld, cl, "certificate-authority", where, &ca)) != TW_OK ||
        (rc = get_str(ld, cl, "certificate-authority-data", where, &ca_data)) != TW_OK ||
        (rc = get_bool(ld, cl, "insecure-skip-tls-verify", where, &cfg->insecure_skip_verify)) !=
            TW_OK)
        return rc;
    if (server == NULL || *server == '\0')
        return tw_seterr(ld->err, TW_EINVAL, "kubeconfig %s: cluster \"%s\" has no server",
                         ld->path, name);
    if (cfg->insecure_skip_verify && (ca != NULL || ca_data != NULL))
        return tw_seterr(ld->err, TW_EINVAL,
                         "kubeconfig %s: cluster \"%s\" sets both a certificate authority and "
                         "insecure-skip-tls-verify",
                         ld->path, name);
    tw_buf b;
    tw_buf_init(&b, 8192);
    /* A bare host:port means https, as for kubectl. */
    rc = tw_buf_printf(&b, "%s%s", strstr(server, "://") ? "" : "https://", server);
    if (rc == TW_ETOOBIG)
        rc = tw_seterr(ld->err, TW_EINVAL,
                       "kubeconfig %s: the server of cluster \"%s\" is too long", ld->path, name);
    while (rc == TW_OK && b.len > 0 && b.data[b.len - 1] == '/')
        tw_buf_truncate(&b, b.len - 1);
    /* "https://" alone (or "://k") would load and fail only at the first request. */
    const char *sep = rc == TW_OK ? strstr(tw_buf_cstr(&b), "://") : NULL;
    if (rc == TW_OK && (sep == NULL || sep == b.data || sep[3] == '\0'))
        rc = tw_seterr(ld->err, TW_EINVAL,
                       "kubeconfig %s: the server of cluster \"%s\" names no host", ld->path, name);
    if (rc == TW_OK && (cfg->server = tw_buf_detach(&b)) == NULL)
        rc = TW_ENOMEM;
    tw_buf_free(&b);
    if (rc != TW_OK)
        return rc;
    /* The -data form wins over the file, as in kubectl. */
    if (ca_data != NULL)
        return decode_pem(ld, ca_data, where, "certificate-authority-data", &cfg->ca_pem);
    if (ca != NULL)
        return resolve_path(ld, ca, &cfg->ca_file);
    return TW_OK;
}

/* Copies a list of strings into a new NULL-terminated vector. */
static int load_args(loader *ld, yaml_node_t *list, const char *where, char ***out)
{
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    char **v = calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return TW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *a = yaml_document_get_node(&ld->doc, list->data.sequence.items.start[i]);
        char field[32];
        snprintf(field, sizeof(field), "exec.args[%zu]", i);
        int rc = a == NULL ? TW_EPARSE : want(ld, a, YAML_SCALAR_NODE, where, field);
        if (rc != TW_OK) {
            free_strv(v);
            return rc;
        }
        if ((v[i] = strdup(is_null(a) ? "" : (const char *)a->data.scalar.value)) == NULL) {
            free_strv(v);
            return TW_ENOMEM;
        }
    }
    *out = v;
    return TW_OK;
}

/* Copies a list of {name, value} into a new NULL-terminated "NAME=value" vector. */
static int load_env(loader *ld, yaml_node_t *list, const char *where, char ***out)
{
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    char **v = calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return TW_ENOMEM;
    int rc = TW_OK;
    for (size_t i = 0; i < n && rc == TW_OK; i++) {
        yaml_node_t *e = yaml_document_get_node(&ld->doc, list->data.sequence.items.start[i]);
        char field[48];
        snprintf(field, sizeof(field), "exec.env[%zu]", i);
        if (e == NULL || (rc = want(ld, e, YAML_MAPPING_NODE, where, field)) != TW_OK)
            break;
        char w[192];
        snprintf(w, sizeof(w), "%s%s.", where, field);
        const char *name, *value;
        if ((rc = get_str(ld, e, "name", w, &name)) != TW_OK ||
            (rc = get_str(ld, e, "value", w, &value)) != TW_OK)
            break;
        if (name == NULL || *name == '\0' || strchr(name, '=') != NULL) {
            rc = tw_seterr(ld->err, TW_EINVAL, "kubeconfig %s line %lu: %s%s needs a valid name",
                           ld->path, line_of(e), where, field);
            break;
        }
        tw_buf b;
        tw_buf_init(&b, SIZE_MAX / 2);
        rc = tw_buf_printf(&b, "%s=%s", name, value ? value : "");
        if (rc == TW_OK && (v[i] = tw_buf_detach(&b)) == NULL)
            rc = TW_ENOMEM;
        tw_buf_free(&b);
    }
    if (rc != TW_OK) {
        free_strv(v);
        return rc == TW_EPARSE || rc == TW_EINVAL ? rc : TW_ENOMEM;
    }
    *out = v;
    return TW_OK;
}

static int load_exec(loader *ld, yaml_node_t *ex, const char *where, const char *name,
                     tw_kube_exec **out)
{
    const char *command, *api_version;
    int rc;
    if ((rc = want(ld, ex, YAML_MAPPING_NODE, where, "exec")) != TW_OK)
        return rc;
    char w[160];
    snprintf(w, sizeof(w), "%sexec.", where);
    if ((rc = get_str(ld, ex, "command", w, &command)) != TW_OK ||
        (rc = get_str(ld, ex, "apiVersion", w, &api_version)) != TW_OK)
        return rc;
    if (command == NULL || *command == '\0')
        return tw_seterr(ld->err, TW_EINVAL,
                         "kubeconfig %s: user \"%s\" has exec without a command", ld->path, name);
    if (api_version == NULL || *api_version == '\0')
        return tw_seterr(ld->err, TW_EINVAL,
                         "kubeconfig %s: user \"%s\" has exec without an apiVersion", ld->path,
                         name);
    yaml_node_t *args = map_get(ld, ex, "args");
    yaml_node_t *env = map_get(ld, ex, "env");
    if ((args != NULL && (rc = want(ld, args, YAML_SEQUENCE_NODE, w, "args")) != TW_OK) ||
        (env != NULL && (rc = want(ld, env, YAML_SEQUENCE_NODE, w, "env")) != TW_OK))
        return rc;
    tw_kube_exec *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return TW_ENOMEM;
    if (exec_lock_init(e) != TW_OK) {
        free(e);
        return TW_ENOMEM;
    }
    rc = TW_ENOMEM;
    /* A command with a '/' in it is a path, relative to the kubeconfig; else PATH finds it. */
    if (strchr(command, '/') != NULL) {
        if ((rc = resolve_path(ld, command, &e->command)) != TW_OK)
            goto out;
    } else if ((e->command = strdup(command)) == NULL) {
        goto out;
    }
    if ((e->api_version = strdup(api_version)) == NULL)
        goto out;
    if (args != NULL)
        rc = load_args(ld, args, where, &e->args);
    else
        rc = (e->args = calloc(1, sizeof(char *))) ? TW_OK : TW_ENOMEM;
    if (rc != TW_OK)
        goto out;
    if (env != NULL)
        rc = load_env(ld, env, where, &e->env);
    else
        rc = (e->env = calloc(1, sizeof(char *))) ? TW_OK : TW_ENOMEM;
    if (rc != TW_OK)
        goto out;
    /* kubectl dropped v1alpha1 in 1.24: run only what it still runs. */
    if (strcmp(api_version, EXEC_API_V1) != 0 && strcmp(api_version, EXEC_API_V1BETA1) != 0) {
        rc = tw_seterr(ld->err, TW_EINVAL,
                       "kubeconfig %s: user \"%s\": exec apiVersion %.80s is not supported; use "
                       "%s or %s",
                       ld->path, name, api_version, EXEC_API_V1, EXEC_API_V1BETA1);
        goto out;
    }
    *out = e;
    e = NULL;
out:
    exec_free(e);
    return rc;
}

static int load_user(loader *ld, yaml_node_t *u, const char *where, const char *name,
                     tw_kube_config *cfg)
{
    const char *token, *token_file, *cert, *cert_data, *key, *key_data, *username, *password;
    int rc;
    yaml_node_t *ap = map_get(ld, u, "auth-provider");
    if (ap != NULL) {
        yaml_node_t *apn = ap->type == YAML_MAPPING_NODE ? map_get(ld, ap, "name") : NULL;
        return tw_seterr(
            ld->err, TW_EINVAL,
            "kubeconfig %s: user \"%s\" uses auth-provider%s%s%s, which topowire does "
            "not support; use an exec plugin such as kubelogin or gke-gcloud-auth-plugin instead",
            ld->path, name, apn && apn->type == YAML_SCALAR_NODE ? " \"" : "",
            apn && apn->type == YAML_SCALAR_NODE ? (char *)apn->data.scalar.value : "",
            apn && apn->type == YAML_SCALAR_NODE ? "\"" : "");
    }
    if ((rc = get_str(ld, u, "token", where, &token)) != TW_OK ||
        (rc = get_str(ld, u, "tokenFile", where, &token_file)) != TW_OK ||
        (rc = get_str(ld, u, "client-certificate", where, &cert)) != TW_OK ||
        (rc = get_str(ld, u, "client-certificate-data", where, &cert_data)) != TW_OK ||
        (rc = get_str(ld, u, "client-key", where, &key)) != TW_OK ||
        (rc = get_str(ld, u, "client-key-data", where, &key_data)) != TW_OK ||
        (rc = get_str(ld, u, "username", where, &username)) != TW_OK ||
        (rc = get_str(ld, u, "password", where, &password)) != TW_OK)
        return rc;
    if (username != NULL || password != NULL)
        return tw_seterr(
            ld->err, TW_EINVAL,
            "kubeconfig %s: user \"%s\" uses basic authentication (username/password), "
            "which topowire does not support",
            ld->path, name);
    if ((cert || cert_data) && !(key || key_data))
        return tw_seterr(ld->err, TW_EINVAL,
                         "kubeconfig %s: user \"%s\" has a client certificate but no client key",
                         ld->path, name);
    if ((key || key_data) && !(cert || cert_data))
        return tw_seterr(ld->err, TW_EINVAL,
                         "kubeconfig %s: user \"%s\" has a client key but no client certificate",
                         ld->path, name);
    /* A token wins over tokenFile, as in kubectl. */
    if (token != NULL) {
        if (!token_ok(token))
            return tw_seterr(ld->err, TW_EPARSE,
                             "kubeconfig %s: the token of user \"%s\" is empty or holds control "
                             "characters",
                             ld->path, name);
        if ((cfg->token = strdup(token)) == NULL)
            return TW_ENOMEM;
    } else if (token_file != NULL) {
        if ((rc = resolve_path(ld, token_file, &cfg->token_file)) != TW_OK)
            return rc;
    }
    if (cert_data != NULL)
        rc = decode_pem(ld, cert_data, where, "client-certificate-data", &cfg->client_cert_pem);
    else if (cert != NULL)
        rc = read_pem_file(ld, cert, where, "client-certificate", &cfg->client_cert_pem);
    if (rc != TW_OK)
        return rc;
    if (key_data != NULL)
        rc = decode_pem(ld, key_data, where, "client-key-data", &cfg->client_key_pem);
    else if (key != NULL)
        rc = read_pem_file(ld, key, where, "client-key", &cfg->client_key_pem);
    if (rc != TW_OK)
        return rc;
    yaml_node_t *ex = map_get(ld, u, "exec");
    if (ex != NULL)
        return load_exec(ld, ex, where, name, &cfg->exec);
    return TW_OK;
}

static int yaml_syntax_error(loader *ld, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return TW_ENOMEM;
    return tw_seterr(ld->err, TW_EPARSE, "kubeconfig %s line %lu: YAML error: %s%s%s", ld->path,
                     (unsigned long)p->problem_mark.line + 1, p->problem ? p->problem : "invalid",
                     p->context ? " " : "", p->context ? p->context : "");
}

/*
 * libyaml's scanner slows quadratically with nesting depth and its tree grows
 * with the node count, so a first pass over the events bounds both before the
 * tree is built. It also reports syntax errors.
 */
static int yaml_precheck(loader *ld, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return TW_ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = TW_OK, depth = 0;
    size_t nodes = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_syntax_error(ld, &p);
            break;
        }
        yaml_event_type_t t = ev.type;
        unsigned long line = (unsigned long)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT)
            break; /* only the first document counts */
        if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT)
            depth--;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > YAML_DEPTH_MAX) {
                rc = tw_seterr(ld->err, TW_EPARSE,
                               "kubeconfig %s line %lu: nested deeper than %d levels", ld->path,
                               line, YAML_DEPTH_MAX);
                break;
            }
        }
        if ((t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
             t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) &&
            ++nodes > YAML_NODES_MAX) {
            rc = tw_seterr(ld->err, TW_ETOOBIG, "kubeconfig %s has more than %d YAML nodes",
                           ld->path, YAML_NODES_MAX);
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

/*
 * Finds the entry called name in list_key of the first file that has one (a
 * list of files merges as kubectl merges it: the first file to set a name
 * wins). *which is the file it came from: its paths resolve against that
 * file's directory.
 */
static int find_first(loader *lds, size_t n, const char *list_key, const char *item_key,
                      const char *name, loader **which, yaml_node_t **out)
{
    for (size_t i = 0; i < n; i++) {
        int rc = find_named(&lds[i], lds[i].root, list_key, item_key, name, out);
        if (rc == TW_OK)
            *which = &lds[i];
        if (rc != TW_ENOTFOUND)
            return rc;
    }
    return TW_ENOTFOUND;
}

/* The merged files' current-context: the first file that sets one wins. */
static int current_context(loader *lds, size_t n, const char **out)
{
    *out = NULL;
    for (size_t i = 0; i < n && (*out == NULL || **out == '\0'); i++) {
        int rc = get_str(&lds[i], lds[i].root, "current-context", "", out);
        if (rc != TW_OK)
            return rc;
    }
    return TW_OK;
}

/* Builds cfg from the context (or current-context) of the files lds, named names in errors. */
static int load_merged(loader *lds, size_t n, const char *names, const char *context,
                       tw_kube_config *cfg)
{
    char *err = lds[0].err;
    const char *ctx_name = context;
    int rc;
    if (ctx_name == NULL && (rc = current_context(lds, n, &ctx_name)) != TW_OK)
        return rc;
    if (ctx_name == NULL || *ctx_name == '\0')
        return tw_seterr(err, TW_EINVAL,
                         "kubeconfig %s has no current-context and no context was named", names);
    loader *ld = NULL;
    yaml_node_t *ctx = NULL;
    rc = find_first(lds, n, "contexts", "context", ctx_name, &ld, &ctx);
    if (rc == TW_ENOTFOUND)
        return tw_seterr(err, TW_EINVAL, "kubeconfig %s has no context \"%s\"", names, ctx_name);
    if (rc != TW_OK)
        return rc;
    char where[128];
    snprintf(where, sizeof(where), "context \"%s\": ", ctx_name);
    const char *cluster_name, *user_name;
    if ((rc = get_str(ld, ctx, "cluster", where, &cluster_name)) != TW_OK ||
        (rc = get_str(ld, ctx, "user", where, &user_name)) != TW_OK)
        return rc;
    if (cluster_name == NULL || *cluster_name == '\0')
        return tw_seterr(err, TW_EINVAL, "kubeconfig %s: context \"%s\" names no cluster", ld->path,
                         ctx_name);
    yaml_node_t *cl = NULL;
    loader *cl_ld = NULL;
    rc = find_first(lds, n, "clusters", "cluster", cluster_name, &cl_ld, &cl);
    if (rc == TW_ENOTFOUND)
        return tw_seterr(err, TW_EINVAL,
                         "kubeconfig %s: context \"%s\" names cluster \"%s\", which is not in "
                         "clusters",
                         names, ctx_name, cluster_name);
    if (rc != TW_OK)
        return rc;
    snprintf(where, sizeof(where), "cluster \"%s\": ", cluster_name);
    if ((rc = load_cluster(cl_ld, cl, where, cluster_name, cfg)) != TW_OK)
        return rc;
    /* A context without a user talks to the server anonymously. */
    if (user_name == NULL || *user_name == '\0')
        return TW_OK;
    yaml_node_t *u = NULL;
    loader *u_ld = NULL;
    rc = find_first(lds, n, "users", "user", user_name, &u_ld, &u);
    if (rc == TW_ENOTFOUND)
        return tw_seterr(err, TW_EINVAL,
                         "kubeconfig %s: context \"%s\" names user \"%s\", which is not in users",
                         names, ctx_name, user_name);
    if (rc != TW_OK)
        return rc;
    snprintf(where, sizeof(where), "user \"%s\": ", user_name);
    return load_user(u_ld, u, where, user_name, cfg);
}

/* Parses text (len bytes) into ld's tree; ld's path, dir, err and no_files are set. */
static int loader_parse(loader *ld, const char *text, size_t len)
{
    if (len > KUBECONFIG_MAX)
        return tw_seterr(ld->err, TW_ETOOBIG, "kubeconfig %s is larger than %d bytes", ld->path,
                         KUBECONFIG_MAX);
    int rc = yaml_precheck(ld, text, len);
    if (rc != TW_OK)
        return rc;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return TW_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ld->doc)) {
        rc = yaml_syntax_error(ld, &parser);
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_parser_delete(&parser);
    ld->have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&ld->doc);
    ld->root = root && !is_null(root) ? root : NULL;
    if (ld->root != NULL)
        return want(ld, ld->root, YAML_MAPPING_NODE, "", "the top level");
    return TW_OK;
}

static void loader_free(loader *ld)
{
    if (ld->have_doc)
        yaml_document_delete(&ld->doc);
    free(ld->dir);
}

/* Builds a config from parsed files; *out is written only on success. */
static int build_config(loader *lds, size_t n, const char *names, const char *context,
                        tw_kube_config **out)
{
    tw_kube_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return TW_ENOMEM;
    int rc = load_merged(lds, n, names, context, cfg);
    if (rc != TW_OK) {
        tw_kube_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return TW_OK;
}

int tw__kube_config_parse(const char *text, size_t len, const char *name, const char *dir,
                          const char *context, unsigned flags, tw_kube_config **out, char *err)
{
    loader ld = {.path = name, .err = err, .no_files = (flags & TW__KUBECONFIG_NO_FILES) != 0};
    if (dir != NULL && (ld.dir = strdup(dir)) == NULL)
        return TW_ENOMEM;
    int rc = loader_parse(&ld, text, len);
    if (rc == TW_OK)
        rc = build_config(&ld, 1, name, context, out);
    loader_free(&ld);
    return rc;
}

/* Reads and parses the file ld->path; TW_ENOTFOUND (err untouched) when it does not exist. */
static int loader_read(loader *ld)
{
    char *text = NULL;
    char why[TW_ERRLEN];
    int rc = read_file(ld->path, KUBECONFIG_MAX, 0, &text, why);
    if (rc == TW_ENOTFOUND || rc == TW_ENOMEM)
        return rc;
    if (rc != TW_OK)
        return tw_seterr(ld->err, rc, "kubeconfig %s", why);
    const char *slash = strrchr(ld->path, '/');
    if (slash != NULL &&
        (ld->dir = strndup(ld->path, slash == ld->path ? 1 : (size_t)(slash - ld->path))) == NULL) {
        free(text);
        return TW_ENOMEM;
    }
    /* The text ends at its first NUL byte, as it always has. */
    rc = loader_parse(ld, text, strlen(text));
    free(text);
    return rc;
}

int tw_kube_config_load_list(const char *const *paths, size_t n, const char *context,
                             tw_kube_config **out, char *err)
{
    if (n == 0 || n > TW_KUBECONFIG_FILES_MAX)
        return tw_seterr(err, TW_EINVAL, "a kubeconfig list holds 1 to %d files, not %zu",
                         TW_KUBECONFIG_FILES_MAX, n);
    loader lds[TW_KUBECONFIG_FILES_MAX];
    memset(lds, 0, sizeof(lds));
    tw_buf names;
    tw_buf_init(&names, PATH_MAX);
    size_t used = 0;
    int rc = TW_OK;
    for (size_t i = 0; i < n && rc == TW_OK; i++) {
        loader *ld = &lds[used];
        ld->path = paths[i];
        ld->err = err;
        rc = loader_read(ld);
        if (rc == TW_ENOTFOUND) { /* a missing file in a list is skipped, as kubectl does */
            loader_free(ld);
            memset(ld, 0, sizeof(*ld));
            rc = TW_OK;
            continue;
        }
        used++;
        /* For messages only: past the cap the later names are left out. */
        if (rc == TW_OK)
            tw_buf_printf(&names, "%s%s", names.len ? ":" : "", paths[i]);
    }
    if (rc == TW_OK && used == 0)
        rc = n == 1 ? tw_seterr(err, TW_ENOCONFIG, "kubeconfig %s does not exist", paths[0])
                    : tw_seterr(err, TW_ENOCONFIG, "none of the %zu kubeconfig files exists", n);
    if (rc == TW_OK)
        rc = build_config(lds, used, tw_buf_cstr(&names), context, out);
    for (size_t i = 0; i < used; i++)
        loader_free(&lds[i]);
    tw_buf_free(&names);
    return rc;
}

int tw_kube_config_load(const char *path, const char *context, tw_kube_config **out, char *err)
{
    return tw_kube_config_load_list(&path, 1, context, out, err);
}

/* ~/.kube/config: $HOME, or the password database when HOME is unset. 0 when neither says. */
static int home_config(char *path, size_t len)
{
    const char *home = getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[1024];
    if ((home == NULL || *home == '\0') && getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 &&
        res != NULL)
        home = res->pw_dir;
    if (home == NULL || *home == '\0')
        return 0;
    return (size_t)snprintf(path, len, "%s/.kube/config", home) < len;
}

/* Splits $KUBECONFIG (a ':' list; empty items skipped) and loads the files that exist. */
static int load_env_list(const char *env, const char *context, tw_kube_config **out, char *err)
{
    char *copy = strdup(env), *save = NULL;
    const char *paths[TW_KUBECONFIG_FILES_MAX];
    size_t n = 0;
    if (copy == NULL)
        return TW_ENOMEM;
    for (char *p = strtok_r(copy, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
        if (n == TW_KUBECONFIG_FILES_MAX) {
            free(copy);
            return tw_seterr(err, TW_EINVAL, "$KUBECONFIG lists more than %d files",
                             TW_KUBECONFIG_FILES_MAX);
        }
        paths[n++] = p;
    }
    int rc = n == 0 ? TW_ENOCONFIG : tw_kube_config_load_list(paths, n, context, out, err);
    free(copy);
    return rc;
}

int tw_kube_config_find(const tw_kube_config_query *q, tw_kube_config **out, char *origin,
                        size_t origin_len, char *err)
{
    char why[TW_ERRLEN] = "";
    int rc;
    if (q->kubeconfig != NULL) {
        rc = tw_kube_config_load(q->kubeconfig, q->context, out, err);
        if (rc == TW_ENOCONFIG) /* a file named on the command line must be there */
            return tw_seterr(err, TW_EINVAL, "--kubeconfig %s does not exist", q->kubeconfig);
        snprintf(origin, origin_len, "--kubeconfig %s", q->kubeconfig);
        return rc;
    }
    const char *env = getenv("KUBECONFIG");
    if (env != NULL && *env != '\0') {
        rc = load_env_list(env, q->context, out, err);
        if (rc != TW_ENOCONFIG) {
            snprintf(origin, origin_len, "$KUBECONFIG %s", env);
            return rc;
        }
        snprintf(why, sizeof(why), "no file in $KUBECONFIG exists; ");
    }
    char detail[TW_ERRLEN];
    rc = tw_kube_config_incluster(q->token_file, q->ca_file, out, detail);
    if (rc != TW_ENOCONFIG) {
        if (rc != TW_OK)
            tw_seterr(err, rc, "%s", detail);
        snprintf(origin, origin_len, "in-cluster");
        return rc;
    }
    char home[PATH_MAX];
    if (home_config(home, sizeof(home))) {
        rc = tw_kube_config_load(home, q->context, out, err);
        if (rc != TW_ENOCONFIG) {
            snprintf(origin, origin_len, "%s", home);
            return rc;
        }
    } else {
        snprintf(home, sizeof(home), "~/.kube/config");
    }
    return tw_seterr(err, TW_ENOCONFIG, "no Kubernetes configuration: %s%s; %s does not exist", why,
                     detail, home);
}

/* ---- exec credential plugins --------------------------------------------------------------- */

/* Builds the child's environment: ours, minus names the config sets, plus those and the info. */
static char **plugin_env(const tw_kube_exec *e, const char *info)
{
    size_t n = 0, extra = 0;
    for (char **p = environ; p && *p; p++)
        n++;
    for (char **p = e->env; p && *p; p++)
        extra++;
    char **envp = calloc(n + extra + 2, sizeof(*envp));
    if (envp == NULL)
        return NULL;
    size_t k = 0;
    for (char **p = environ; p && *p; p++) {
        size_t len = strcspn(*p, "=");
        int replaced =
            len == strlen("KUBERNETES_EXEC_INFO") && strncmp(*p, "KUBERNETES_EXEC_INFO", len) == 0;
        for (char **q = e->env; !replaced && q && *q; q++)
            replaced = strncmp(*p, *q, len + 1) == 0;
        if (!replaced)
            envp[k++] = *p;
    }
    for (char **q = e->env; q && *q; q++)
        envp[k++] = *q;
    envp[k] = (char *)info;
    return envp;
}

/* KUBERNETES_EXEC_INFO=<ExecCredential with spec.interactive false>, as a new string. */
static char *plugin_info(const tw_kube_exec *e)
{
    char *json = NULL, *res = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *spec = NULL;
    if (o == NULL || !cJSON_AddStringToObject(o, "apiVersion", e->api_version) ||
        !cJSON_AddStringToObject(o, "kind", "ExecCredential") ||
        (spec = cJSON_AddObjectToObject(o, "spec")) == NULL ||
        !cJSON_AddFalseToObject(spec, "interactive") || (json = cJSON_PrintUnformatted(o)) == NULL)
        goto out;
    tw_buf b;
    tw_buf_init(&b, SIZE_MAX / 2);
    if (tw_buf_printf(&b, "KUBERNETES_EXEC_INFO=%s", json) == TW_OK)
        res = tw_buf_detach(&b);
    tw_buf_free(&b);
out:
    cJSON_free(json);
    cJSON_Delete(o);
    return res;
}

/* Kills the plugin and everything it started, then reaps it. */
static void kill_and_reap(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Waits for the plugin to exit (it has closed its pipes) until deadline. */
static int wait_exit(pid_t pid, uint64_t deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return TW_OK;
        if (r < 0 && errno != EINTR)
            return TW_EIO;
        if (tw_remaining_ms(deadline) == 0)
            return TW_ETIMEDOUT;
        tw_sleep_ms(2, deadline);
    }
}

/* Copies the first line of the plugin's stderr, made safe to show (tw_text_show). */
static void first_line(const tw_buf *b, char *dst, size_t size)
{
    const char *s = tw_buf_cstr(b);
    while (*s == '\n' || *s == '\r' || *s == ' ')
        s++;
    tw_text_show(dst, size, s, strcspn(s, "\r\n"));
}

/* One run of a plugin: its pipes (read ends in [0]), its pid until reaped, its stderr's start. */
typedef struct plugin_run {
    int outp[2], errp[2];
    pid_t pid;
    tw_buf errb;
} plugin_run;

/* Starts the plugin in its own process group, stdin /dev/null, stdout and stderr to pipes. */
static int spawn_plugin(const tw_kube_exec *e, plugin_run *pr, char *err)
{
    int rc = TW_ENOMEM;
    char **argv = NULL, **envp = NULL;
    char *info = NULL;
    int fa_ok = 0, attr_ok = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    size_t nargs = 0;
    for (char **p = e->args; p && *p; p++)
        nargs++;
    if ((argv = calloc(nargs + 2, sizeof(*argv))) == NULL)
        goto out;
    argv[0] = e->command;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = e->args[i];
    if ((info = plugin_info(e)) == NULL || (envp = plugin_env(e, info)) == NULL)
        goto out;
    if (pipe2(pr->outp, O_CLOEXEC) < 0 || pipe2(pr->errp, O_CLOEXEC) < 0) {
        rc = tw_seterr(err, TW_EIO, "cannot make pipes for exec plugin %s: %s", e->command,
                       strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    fa_ok = 1;
    if (posix_spawnattr_init(&attr) != 0)
        goto out;
    attr_ok = 1;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    /* Signals the program ignores (SIGPIPE, typically) are back to default in the plugin. */
    int dflsigs[] = {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(dflsigs) / sizeof(dflsigs[0]); i++)
        sigaddset(&dfl, dflsigs[i]);
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pr->outp[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pr->errp[1], 2) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 || posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &dfl) != 0)
        goto out;
    int serr = posix_spawnp(&pr->pid, e->command, &fa, &attr, argv, envp);
    if (serr != 0) {
        pr->pid = -1;
        if (serr == ENOENT)
            rc = tw_seterr(err, TW_EEXEC, "exec plugin %s was not found%s", e->command,
                           strchr(e->command, '/') ? "" : " on PATH");
        else
            rc = tw_seterr(err, TW_EEXEC, "cannot run exec plugin %s: %s", e->command,
                           strerror(serr));
        goto out;
    }
    close(pr->outp[1]);
    close(pr->errp[1]);
    pr->outp[1] = pr->errp[1] = -1;
    rc = TW_OK;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    free(envp);
    free(info);
    free(argv);
    return rc;
}

/*
 * Reads the plugin's stdout into out and the start of its stderr into
 * pr->errb until both pipes close or deadline (TW_ETIMEDOUT, err untouched).
 */
static int read_plugin(const tw_kube_exec *e, plugin_run *pr, uint64_t deadline, tw_buf *out,
                       char *err)
{
    struct pollfd pfd[2] = {{.fd = pr->outp[0], .events = POLLIN},
                            {.fd = pr->errp[0], .events = POLLIN}};
    while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
        long left = tw_remaining_ms(deadline);
        if (left <= 0)
            return TW_ETIMEDOUT;
        int n = poll(pfd, 2, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            return tw_seterr(err, TW_EIO, "cannot wait for exec plugin %s: %s", e->command,
                             strerror(errno));
        for (int i = 0; i < 2 && n > 0; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            char chunk[8192];
            ssize_t r = read(pfd[i].fd, chunk, sizeof(chunk));
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r < 0)
                return tw_seterr(err, TW_EIO, "cannot read from exec plugin %s: %s", e->command,
                                 strerror(errno));
            if (r == 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                *(i == 0 ? &pr->outp[0] : &pr->errp[0]) = -1;
                continue;
            }
            int rc = TW_OK;
            if (i == 0) {
                if ((rc = tw_buf_append(out, chunk, (size_t)r)) == TW_ETOOBIG)
                    tw_seterr(err, rc, "exec plugin %s printed more than %d bytes", e->command,
                              EXEC_OUT_MAX);
            } else if (pr->errb.len < pr->errb.max) {
                /* Only the start of stderr is kept; the rest is drained and dropped. */
                size_t room = pr->errb.max - pr->errb.len;
                rc = tw_buf_append(&pr->errb, chunk, (size_t)r < room ? (size_t)r : room);
            }
            if (rc != TW_OK)
                return rc;
        }
    }
    return TW_OK;
}

/* How the plugin ended: TW_OK for exit 0, else TW_EEXEC with the first line of its stderr. */
static int plugin_status(const tw_kube_exec *e, int status, const tw_buf *errb, char *err)
{
    char line[160];
    first_line(errb, line, sizeof(line));
    if (WIFSIGNALED(status))
        return tw_seterr(err, TW_EEXEC, "exec plugin %s was killed by signal %d%s%s", e->command,
                         WTERMSIG(status), *line ? ": " : "", line);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return tw_seterr(err, TW_EEXEC, "exec plugin %s exited with status %d%s%s", e->command,
                         WEXITSTATUS(status), *line ? ": " : "", line);
    return TW_OK;
}

/*
 * Runs the plugin and collects its stdout into out. stdout and stderr are read
 * with poll() so that a plugin filling either pipe cannot stall; the plugin
 * runs in its own process group so that a timeout kills what it started too.
 */
static int run_plugin(const tw_kube_exec *e, uint64_t deadline, tw_buf *out, char *err)
{
    plugin_run pr = {.outp = {-1, -1}, .errp = {-1, -1}, .pid = -1};
    tw_buf_init(&pr.errb, EXEC_ERR_MAX);
    int status = 0;
    int rc = spawn_plugin(e, &pr, err);
    if (rc == TW_OK)
        rc = read_plugin(e, &pr, deadline, out, err);
    if (rc == TW_OK) {
        rc = wait_exit(pr.pid, deadline, &status);
        if (rc == TW_OK) {
            pr.pid = -1; /* reaped */
            rc = plugin_status(e, status, &pr.errb, err);
        } else if (rc != TW_ETIMEDOUT) {
            rc = tw_seterr(err, TW_EIO, "cannot learn how exec plugin %s ended", e->command);
        }
    }
    if (rc == TW_ETIMEDOUT)
        rc = tw_seterr(err, TW_ETIMEDOUT,
                       "exec plugin %s did not finish before the deadline and was killed",
                       e->command);
    if (pr.pid > 0)
        kill_and_reap(pr.pid);
    for (int i = 0; i < 2; i++) {
        if (pr.outp[i] >= 0)
            close(pr.outp[i]);
        if (pr.errp[i] >= 0)
            close(pr.errp[i]);
    }
    tw_buf_free(&pr.errb);
    return rc;
}

/* Parses an RFC 3339 time ("2024-05-01T10:00:00Z", fractions and offsets allowed). */
static int parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        const char *q = p + 1;
        /* Exactly HH:MM. */
        if (!(q[0] >= '0' && q[0] <= '9' && q[1] >= '0' && q[1] <= '9' && q[2] == ':' &&
              q[3] >= '0' && q[3] <= '9' && q[4] >= '0' && q[4] <= '9'))
            return -1;
        int hh = (q[0] - '0') * 10 + (q[1] - '0');
        int mm = (q[3] - '0') * 10 + (q[4] - '0');
        if (hh > 23 || mm > 59)
            return -1;
        off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
        p += 1 + 5;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t - off;
    return 0;
}

/* A credential a plugin returned. */
typedef struct exec_cred {
    char *token;
    char *cert;
    char *key;
    int64_t expires;
} exec_cred;

static void exec_cred_free(exec_cred *c)
{
    free(c->token);
    free(c->cert);
    free(c->key);
}

/* Copies a PEM string field of status, or fails naming it (never its content). */
static int cred_pem(const tw_kube_exec *e, const cJSON *status, const char *field, char **out,
                    char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(status, field);
    if (v == NULL || cJSON_IsNull(v))
        return TW_OK;
    if (!cJSON_IsString(v) || strstr(v->valuestring, "-----BEGIN ") == NULL)
        return tw_seterr(err, TW_EPARSE, "exec plugin %s: status.%s is not PEM text", e->command,
                         field);
    *out = strdup(v->valuestring);
    return *out ? TW_OK : TW_ENOMEM;
}

/* Parses the ExecCredential the plugin printed. Nothing of its content goes into err. */
static int parse_exec_credential(const tw_kube_exec *e, const tw_buf *b, exec_cred *cred, char *err)
{
    int rc = TW_EPARSE;
    cJSON *root = cJSON_ParseWithLength(tw_buf_cstr(b), b->len);
    if (root == NULL || !cJSON_IsObject(root)) {
        rc = tw_seterr(err, TW_EPARSE, "exec plugin %s did not print an ExecCredential JSON object",
                       e->command);
        goto out;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(root, "apiVersion");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (kind != NULL &&
        (!cJSON_IsString(kind) || strcmp(kind->valuestring, "ExecCredential") != 0)) {
        rc = tw_seterr(err, TW_EPARSE,
                       "exec plugin %s printed something else than an "
                       "ExecCredential",
                       e->command);
        goto out;
    }
    if (api != NULL && (!cJSON_IsString(api) || strcmp(api->valuestring, e->api_version) != 0)) {
        rc = tw_seterr(err, TW_EPARSE, "exec plugin %s answered in another apiVersion than %s",
                       e->command, e->api_version);
        goto out;
    }
    if (!cJSON_IsObject(status)) {
        rc = tw_seterr(err, TW_EPARSE, "exec plugin %s: the ExecCredential has no status object",
                       e->command);
        goto out;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(status, "token");
    if (tok != NULL && !cJSON_IsNull(tok)) {
        if (!cJSON_IsString(tok) || !token_ok(tok->valuestring)) {
            rc = tw_seterr(err, TW_EPARSE,
                           "exec plugin %s: status.token is not a non-empty string without "
                           "control characters",
                           e->command);
            goto out;
        }
        if ((cred->token = strdup(tok->valuestring)) == NULL) {
            rc = TW_ENOMEM;
            goto out;
        }
    }
    if ((rc = cred_pem(e, status, "clientCertificateData", &cred->cert, err)) != TW_OK ||
        (rc = cred_pem(e, status, "clientKeyData", &cred->key, err)) != TW_OK)
        goto out;
    if ((cred->cert == NULL) != (cred->key == NULL)) {
        rc = tw_seterr(err, TW_EPARSE,
                       "exec plugin %s returned only one of clientCertificateData and "
                       "clientKeyData",
                       e->command);
        goto out;
    }
    if (cred->token == NULL && cred->cert == NULL) {
        rc = tw_seterr(err, TW_EPARSE, "exec plugin %s returned neither a token nor a certificate",
                       e->command);
        goto out;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(status, "expirationTimestamp");
    cred->expires = 0;
    if (exp != NULL && !cJSON_IsNull(exp) &&
        (!cJSON_IsString(exp) || parse_rfc3339(exp->valuestring, &cred->expires) != 0)) {
        rc = tw_seterr(err, TW_EPARSE,
                       "exec plugin %s: status.expirationTimestamp is not an RFC 3339 time",
                       e->command);
        goto out;
    }
    rc = TW_OK;
out:
    cJSON_Delete(root);
    return rc;
}

/* Keeps p (may be NULL) until the config is freed; frees it at once when that fails. */
static void retire(tw_kube_exec *e, char *p)
{
    if (p == NULL)
        return;
    char **v = realloc(e->retired, (e->n_retired + 1) * sizeof(*v));
    if (v == NULL) {
        /* Rather a leak-free race than a leak: this only happens out of memory. */
        free(p);
        return;
    }
    e->retired = v;
    e->retired[e->n_retired++] = p;
}

/* True when e (locked) holds a credential that is still good. */
static bool cache_fresh(const tw_kube_exec *e)
{
    return e->cached && (e->expires == 0 || (int64_t)time(NULL) + EXPIRY_SKEW_S < e->expires);
}

/* Copies the cached token (locked) into *out: TW_OK, or TW_ENOMEM. */
static int cached_copy(const tw_kube_exec *e, char **out)
{
    char *ret = NULL;
    if (e->cached_token != NULL && (ret = strdup(e->cached_token)) == NULL)
        return TW_ENOMEM;
    *out = ret;
    return TW_OK;
}

/*
 * The exec-plugin credential: the cached one while it is fresh, else one
 * thread runs the plugin (without the lock held) while the others wait for
 * its answer. A caller that asked for a refresh is satisfied by a run that
 * ended after it arrived.
 */
static int exec_credentials(tw_kube_config *cfg, int refresh, uint64_t deadline, char **out,
                            char *err)
{
    tw_kube_exec *e = cfg->exec;
    exec_cred cred = {0};
    char *ret = NULL;
    int rc;
    pthread_mutex_lock(&e->mu);
    unsigned long seen = e->runs;
    bool waited = false;
    while (e->running) {
        waited = true;
        long left = tw_remaining_ms(deadline);
        if (left <= 0) {
            pthread_mutex_unlock(&e->mu);
            return tw_seterr(err, TW_ETIMEDOUT, "no time left waiting for exec plugin %s",
                             e->command);
        }
        struct timespec ts = tw_monotonic_in(left);
        pthread_cond_timedwait(&e->done, &e->mu, &ts);
    }
    /* Someone else's run that ended while we waited answers a refresh too. */
    if (refresh && !(waited && e->runs != seen)) {
        e->cached = 0;
        free(e->cached_token);
        e->cached_token = NULL;
    }
    if (cache_fresh(e)) {
        rc = cached_copy(e, out);
        pthread_mutex_unlock(&e->mu);
        return rc;
    }
    if (tw_remaining_ms(deadline) == 0) {
        pthread_mutex_unlock(&e->mu);
        return tw_seterr(err, TW_ETIMEDOUT, "no time left to run exec plugin %s", e->command);
    }
    e->running = 1;
    pthread_mutex_unlock(&e->mu);

    tw_buf b;
    tw_buf_init(&b, EXEC_OUT_MAX);
    rc = run_plugin(e, deadline, &b, err);
    if (rc == TW_OK)
        rc = parse_exec_credential(e, &b, &cred, err);
    if (rc == TW_OK && cred.token != NULL && (ret = strdup(cred.token)) == NULL)
        rc = TW_ENOMEM;

    pthread_mutex_lock(&e->mu);
    if (rc == TW_OK) {
        if (cred.cert != NULL) {
            retire(e, cfg->client_cert_pem);
            retire(e, cfg->client_key_pem);
            cfg->client_cert_pem = cred.cert;
            cfg->client_key_pem = cred.key;
            cred.cert = cred.key = NULL;
        }
        free(e->cached_token);
        e->cached_token = cred.token;
        cred.token = NULL;
        e->expires = cred.expires;
        e->cached = 1;
        e->runs++;
        *out = ret;
        ret = NULL;
    }
    e->running = 0;
    pthread_cond_broadcast(&e->done);
    pthread_mutex_unlock(&e->mu);
    free(ret);
    exec_cred_free(&cred);
    tw_buf_free(&b);
    return rc;
}

int tw_kube_config_credentials(tw_kube_config *cfg, int refresh, uint64_t deadline, char **out,
                               char *err)
{
    /* A static token wins over a token file, as in kubectl; the loader keeps only one. */
    if (cfg->token != NULL) {
        *out = strdup(cfg->token);
        return *out ? TW_OK : TW_ENOMEM;
    }
    if (cfg->token_file != NULL) {
        /* Read afresh every time, refresh or not: projected tokens rotate. */
        char *tok = NULL;
        char why[TW_ERRLEN];
        int rc = read_file(cfg->token_file, TOKEN_MAX, 1, &tok, why);
        if (rc == TW_ENOMEM)
            return rc;
        if (rc != TW_OK)
            return tw_seterr(err, TW_EIO, "token file: %s", why);
        if (!token_ok(tok)) {
            free(tok);
            return tw_seterr(err, TW_EPARSE, "token file %s is empty or holds control characters",
                             cfg->token_file);
        }
        *out = tok;
        return TW_OK;
    }
    if (cfg->exec != NULL)
        return exec_credentials(cfg, refresh, deadline, out, err);
    *out = NULL;
    return TW_OK;
}

int tw_kube_config_client_pair(tw_kube_config *cfg, char **cert, char **key)
{
    char *c = NULL, *k = NULL;
    int rc = TW_OK;
    if (cfg->exec != NULL)
        pthread_mutex_lock(&cfg->exec->mu);
    if (cfg->client_cert_pem != NULL && cfg->client_key_pem != NULL &&
        ((c = strdup(cfg->client_cert_pem)) == NULL || (k = strdup(cfg->client_key_pem)) == NULL))
        rc = TW_ENOMEM;
    if (cfg->exec != NULL)
        pthread_mutex_unlock(&cfg->exec->mu);
    if (rc != TW_OK) {
        free(c);
        return rc;
    }
    *cert = c;
    *key = k;
    return TW_OK;
}
