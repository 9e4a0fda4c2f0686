/* kubeconfig.h - how to reach the Kubernetes API: in-cluster or from a kubeconfig. */
#ifndef TOPOWIRE_KUBECONFIG_H
#define TOPOWIRE_KUBECONFIG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where and how to reach the API server. Every string is owned by the config.
 * Credentials are re-read on demand: token_file is read again (it rotates) and
 * an exec plugin is run again when a 401 says the token went stale.
 */
typedef struct tw_kube_exec {
    char *command;     /* looked up on PATH unless it holds a '/' */
    char **args;       /* NULL-terminated */
    char **env;        /* NULL-terminated "NAME=value" added to the environment */
    char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
    /* Private, guarded by mu: the plugin's last answer, kept until it expires or a refresh. */
    pthread_mutex_t mu;
    pthread_cond_t done; /* broadcast when a run of the plugin ends */
    int running;         /* a thread is running the plugin; the others wait for it */
    unsigned long runs;  /* runs that ended with a credential */
    int cached;          /* a credential is cached */
    char *cached_token;  /* NULL when the plugin answered with a certificate */
    int64_t expires;     /* Unix seconds; 0 = no expiry, kept until a refresh */
    char **retired;      /* client certificates and keys replaced, freed with the config */
    size_t n_retired;
} tw_kube_exec;

typedef struct tw_kube_config {
    char *server;          /* https://host:port, no trailing slash */
    char *ca_file;         /* CA bundle file, or */
    char *ca_pem;          /* CA bundle PEM text */
    char *token;           /* a static token, or */
    char *token_file;      /* a file holding the token (read on every call) */
    char *client_cert_pem; /* client certificate and key (PEM text) */
    char *client_key_pem;
    tw_kube_exec *exec; /* credential plugin, or NULL */
    int insecure_skip_verify;
} tw_kube_config;

/*
 * In-cluster configuration from KUBERNETES_SERVICE_HOST/_PORT and the service
 * account token and CA (token_file/ca_file override the default paths under
 * /var/run/secrets/kubernetes.io/serviceaccount when not NULL). Returns 0 and a
 * new config (free with tw_kube_config_free), TW_ENOCONFIG when not in a
 * cluster, or TW_EINVAL/TW_EIO/TW_ENOMEM.
 */
int tw_kube_config_incluster(const char *token_file, const char *ca_file, tw_kube_config **out,
                             char *err);

/*
 * Loads a kubeconfig file (YAML or JSON, at most 4 MiB): the named context, or
 * current-context when context is NULL. Supports server,
 * certificate-authority(-data), insecure-skip-tls-verify, token, tokenFile,
 * client-certificate(-data), client-key(-data) (files are read now, into the
 * PEM fields) and exec plugins. Relative paths (and an exec command holding a
 * '/') are resolved against the file's directory; unknown fields are ignored.
 * Returns 0 and a new config (free with tw_kube_config_free), or:
 * TW_ENOCONFIG (no such file), TW_EPARSE (YAML syntax error, with its line; a
 * field of the wrong type, named; bad base64), TW_ETOOBIG (file too big or too
 * many nodes), TW_EINVAL (unknown context, cluster or user, named; missing
 * server; auth-provider or basic auth, which are not supported; an exec
 * plugin whose apiVersion is not client.authentication.k8s.io/v1 or v1beta1),
 * TW_EIO (not a regular file: a FIFO is refused rather than waited on) or
 * TW_ENOMEM.
 */
int tw_kube_config_load(const char *path, const char *context, tw_kube_config **out, char *err);

/* At most this many files in a kubeconfig list ($KUBECONFIG). */
#define TW_KUBECONFIG_FILES_MAX 16

/*
 * Loads a list of kubeconfig files merged as kubectl merges $KUBECONFIG: the
 * first file to set current-context, or to define a context, cluster or user
 * of a given name, wins (entries are taken whole, never field by field); a
 * file's relative paths resolve against its own directory; missing files are
 * skipped. Errors as tw_kube_config_load; TW_ENOCONFIG when no file exists,
 * TW_EINVAL for an empty list or one of more than TW_KUBECONFIG_FILES_MAX.
 */
int tw_kube_config_load_list(const char *const *paths, size_t n, const char *context,
                             tw_kube_config **out, char *err);

/* What tw_kube_config_find is told; every field may be NULL. Borrowed. */
typedef struct tw_kube_config_query {
    const char *kubeconfig; /* --kubeconfig FILE */
    const char *context;    /* --context NAME, for kubeconfig files */
    const char *token_file; /* in-cluster token and CA paths; NULL = the service-account mount */
    const char *ca_file;
} tw_kube_config_query;

/*
 * Finds the Kubernetes configuration in the order controller-runtime uses,
 * one function for every program:
 *   1. q->kubeconfig, when set (a missing file is then TW_EINVAL);
 *   2. $KUBECONFIG, a ':'-separated list merged by tw_kube_config_load_list
 *      (when none of its files exists, the search goes on);
 *   3. in-cluster (tw_kube_config_incluster);
 *   4. ~/.kube/config ($HOME, else the password database).
 * A source that exists but is broken stops the search with its error. Returns
 * 0 with a new config and, in origin, where it came from ("--kubeconfig F",
 * "$KUBECONFIG F:G", "in-cluster" or the file); TW_ENOCONFIG when no source
 * exists (err says what was tried); or the codes of the loaders.
 */
int tw_kube_config_find(const tw_kube_config_query *q, tw_kube_config **out, char *origin,
                        size_t origin_len, char *err);

/* Frees a config. NULL-safe. */
void tw_kube_config_free(tw_kube_config *cfg);

/*
 * Returns the bearer token to use now, as a new string the caller frees (NULL
 * in *out when the config authenticates by client certificate only). A token
 * file is read afresh on every call (it rotates); a static token wins over it,
 * as in kubectl. An exec plugin is run with stdin from /dev/null, the config's
 * args and env plus KUBERNETES_EXEC_INFO, and is killed (with its process
 * group) when deadline (tw_now_ms() time) passes; its answer is cached in cfg
 * until status.expirationTimestamp, or until a call with refresh set. A plugin
 * may instead return a client certificate: then cfg's client_cert_pem and
 * client_key_pem are replaced (the old strings stay allocated until
 * tw_kube_config_free, so a request still holding them is safe).
 * Thread-safe: one config may serve many threads. The cache is guarded by a
 * mutex and a refresh is single-flight: while one thread runs the plugin, the
 * others (refresh or not) wait for its answer, up to their own deadline,
 * instead of running it again. Other fields of the config are read-only after
 * loading. err never holds a token.
 * Returns 0, TW_EIO, TW_EEXEC (the plugin could not run or exited non-zero;
 * the first line of its stderr is in err), TW_ETIMEDOUT, TW_EPARSE (not an
 * ExecCredential, or a token with control characters), TW_ETOOBIG (output
 * over 1 MiB) or TW_ENOMEM.
 */
int tw_kube_config_credentials(tw_kube_config *cfg, int refresh, uint64_t deadline, char **out,
                               char *err);

/*
 * Copies the client certificate and key to use now into *cert and *key (new
 * strings the caller frees; both NULL when the config has none). An exec
 * plugin may replace the pair from another thread at any time; this reads
 * it under the plugin's lock, so a request built from the copies never
 * races with that. Returns 0 or TW_ENOMEM (nothing written).
 */
int tw_kube_config_client_pair(tw_kube_config *cfg, char **cert, char **key);

#endif
