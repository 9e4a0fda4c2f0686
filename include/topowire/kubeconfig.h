/* kubeconfig.h - how to reach the Kubernetes API: in-cluster or from a kubeconfig. */
#ifndef TOPOWIRE_KUBECONFIG_H
#define TOPOWIRE_KUBECONFIG_H

#include <stdint.h>

/*
 * Where and how to reach the API server. Every string is owned by the config.
 * Credentials are re-read on demand: token_file is read again (it rotates) and
 * an exec plugin is run again when a 401 says the token went stale.
 */
typedef struct tw_kube_exec {
    char *command;
    char **args;    /* NULL-terminated */
    char **env;     /* NULL-terminated "NAME=value" added to the environment */
    char *api_version; /* client.authentication.k8s.io/v1 or v1beta1 */
} tw_kube_exec;

typedef struct tw_kube_config {
    char *server;           /* https://host:port, no trailing slash */
    char *ca_file;          /* CA bundle file, or */
    char *ca_pem;           /* CA bundle PEM text */
    char *token;            /* a static token, or */
    char *token_file;       /* a file holding the token (re-read on 401) */
    char *client_cert_pem;  /* client certificate and key (PEM text) */
    char *client_key_pem;
    tw_kube_exec *exec;     /* credential plugin, or NULL */
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
 * Loads a kubeconfig file (YAML or JSON): the named context, or current-context
 * when context is NULL. Supports server, certificate-authority(-data),
 * insecure-skip-tls-verify, token, tokenFile, client-certificate(-data),
 * client-key(-data) and exec plugins. Relative paths are resolved against the
 * file's directory. Returns 0 and a new config, or TW_ENOCONFIG/TW_EPARSE/
 * TW_EIO/TW_EINVAL/TW_ENOMEM.
 */
int tw_kube_config_load(const char *path, const char *context, tw_kube_config **out, char *err);

/* Frees a config. NULL-safe. */
void tw_kube_config_free(tw_kube_config *cfg);

/*
 * Returns the bearer token to use now, as a new string the caller frees (NULL
 * in *out when the config authenticates by client certificate only). With
 * refresh set, the token file is re-read and an exec plugin re-run. An exec
 * plugin may instead return a client certificate: then cfg's client_cert_pem
 * and client_key_pem are replaced. Returns 0, TW_EIO, TW_EEXEC, TW_ETIMEDOUT,
 * TW_EPARSE or TW_ENOMEM.
 */
int tw_kube_config_credentials(tw_kube_config *cfg, int refresh, uint64_t deadline, char **out,
                               char *err);

#endif
