/* cabundle.c - set caBundle in a MutatingWebhookConfiguration through the Kubernetes API. */
#include "topowire/error.h"

#include "webhook.h"

int hook_patch_ca_bundle(const char *name, const char *ca_pem, const char *kubeconfig,
                         const char *context, char *err)
{
    (void)name;
    (void)ca_pem;
    (void)kubeconfig;
    (void)context;
    return tw_seterr(err, TW_EDISABLED, "this build has no Kubernetes client yet");
}
