/* kubeconfig.c - how to reach the Kubernetes API: in-cluster config and credentials. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/kubeconfig.h"

#define SA_DIR    "/var/run/secrets/kubernetes.io/serviceaccount"
#define TOKEN_MAX (64 * 1024)

/* Reads a small file into a new string with trailing whitespace removed. */
static int read_small_file(const char *path, size_t max, char **out, char *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT)
            return tw_seterr(err, TW_ENOTFOUND, "%s does not exist", path);
        return tw_seterr(err, TW_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    tw_buf b;
    tw_buf_init(&b, max);
    char chunk[4096];
    size_t n;
    int rc = TW_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = tw_buf_append(&b, chunk, n);
        if (rc != TW_OK) {
            tw_seterr(err, rc, "%s: %s", path, tw_strerror(rc));
            goto out;
        }
    }
    if (ferror(f)) {
        rc = tw_seterr(err, TW_EIO, "cannot read %s", path);
        goto out;
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                         b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
        b.data[--b.len] = '\0';
    *out = tw_buf_detach(&b);
    if (*out == NULL)
        rc = TW_ENOMEM;
out:
    fclose(f);
    tw_buf_free(&b);
    return rc;
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
    if (cfg->exec) {
        free(cfg->exec->command);
        free_strv(cfg->exec->args);
        free_strv(cfg->exec->env);
        free(cfg->exec->api_version);
        free(cfg->exec);
    }
    free(cfg);
}

int tw_kube_config_credentials(tw_kube_config *cfg, int refresh, uint64_t deadline, char **out,
                               char *err)
{
    (void)refresh; /* files are always read afresh: projected tokens rotate */
    (void)deadline;
    if (cfg->token_file != NULL) {
        char *tok = NULL;
        int rc = read_small_file(cfg->token_file, TOKEN_MAX, &tok, err);
        if (rc != TW_OK)
            return rc == TW_ENOTFOUND ? TW_EIO : rc;
        *out = tok;
        return TW_OK;
    }
    if (cfg->token != NULL) {
        *out = strdup(cfg->token);
        return *out ? TW_OK : TW_ENOMEM;
    }
    if (cfg->exec != NULL)
        return tw_seterr(err, TW_EEXEC, "exec credential plugins are not supported yet");
    *out = NULL;
    return TW_OK;
}

int tw_kube_config_load(const char *path, const char *context, tw_kube_config **out, char *err)
{
    (void)context;
    (void)out;
    return tw_seterr(err, TW_ENOCONFIG,
                     "kubeconfig %s: loading kubeconfig files is not supported yet", path);
}
