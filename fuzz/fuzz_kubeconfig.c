/* fuzz_kubeconfig.c - libFuzzer target: kubeconfig YAML/JSON parsed from memory (nothing run). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/kubeconfig.h"

#include "../lib/kubeconfig_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Relative paths are resolved against this (never opened: TW__KUBECONFIG_NO_FILES). */
#define DIR "/nonexistent/topowire-fuzz"

/* Non-empty, no control characters: what may go into an HTTP header. */
static int header_safe(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void check_vector(char **v, int env)
{
    if (v == NULL)
        __builtin_trap();
    for (; *v; v++) {
        const char *eq = strchr(*v, '=');
        if (env && (eq == NULL || eq == *v)) /* NAME=value with a non-empty name */
            __builtin_trap();
    }
}

static void check_config(const tw_kube_config *c)
{
    /* A server URL with a scheme, something after it and no trailing slash. */
    const char *sep = c->server ? strstr(c->server, "://") : NULL;
    if (sep == NULL || sep == c->server || sep[3] == '\0' ||
        c->server[strlen(c->server) - 1] == '/')
        __builtin_trap();
    /* The loader keeps one CA source and one token source; insecure means no CA. */
    if ((c->ca_file && c->ca_pem) || (c->token && c->token_file))
        __builtin_trap();
    if (c->insecure_skip_verify && (c->ca_file || c->ca_pem))
        __builtin_trap();
    if (c->ca_pem && strstr(c->ca_pem, "-----BEGIN ") == NULL)
        __builtin_trap();
    if (c->token && !header_safe(c->token))
        __builtin_trap();
    /* Paths were resolved against DIR, so every one is absolute. */
    if ((c->ca_file && c->ca_file[0] != '/') || (c->token_file && c->token_file[0] != '/'))
        __builtin_trap();
    /* A client certificate comes with its key, both PEM text (files are not read here). */
    if ((c->client_cert_pem == NULL) != (c->client_key_pem == NULL))
        __builtin_trap();
    if (c->client_cert_pem && (strstr(c->client_cert_pem, "-----BEGIN ") == NULL ||
                               strstr(c->client_key_pem, "-----BEGIN ") == NULL))
        __builtin_trap();
    const tw_kube_exec *e = c->exec;
    if (e != NULL) {
        if (e->command == NULL || e->command[0] == '\0' || e->api_version == NULL ||
            e->api_version[0] == '\0' || e->cached || e->cached_token != NULL)
            __builtin_trap();
        if (strchr(e->command, '/') != NULL && e->command[0] != '/')
            __builtin_trap();
        check_vector(e->args, 0);
        check_vector(e->env, 1);
    }
}

static void one(const char *text, size_t size, const char *context)
{
    tw_kube_config marker;
    tw_kube_config *cfg = &marker;
    char err[TW_ERRLEN];
    memset(err, 0xA5, sizeof(err));
    int rc =
        tw__kube_config_parse(text, size, "fuzz", DIR, context, TW__KUBECONFIG_NO_FILES, &cfg, err);
    if (rc == TW_OK) {
        if (cfg == &marker || cfg == NULL)
            __builtin_trap();
        check_config(cfg);
        tw_kube_config_free(cfg);
        return;
    }
    /* A failure writes no config and says why in one bounded sentence. */
    if (cfg != &marker)
        __builtin_trap();
    if (rc != TW_EPARSE && rc != TW_ETOOBIG && rc != TW_EINVAL && rc != TW_EIO && rc != TW_ENOMEM)
        __builtin_trap();
    if (rc != TW_ENOMEM && (memchr(err, '\0', TW_ERRLEN) == NULL || err[0] == '\0'))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* current-context, then a context named explicitly. */
    one((const char *)data, size, NULL);
    one((const char *)data, size, "prod");
    return 0;
}
