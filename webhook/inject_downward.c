/* inject_downward.c - the downward injection's settings, taken from the webhook's flags. */
#include <stdio.h>
#include <string.h>

#include "topowire/downward.h"
#include "topowire/error.h"

#include "webhook.h"

/* Fills cfg from the flags; keys (borrowed) is what binding mode copies, or NULL. */
static void config_of(const hook_config *hc, bool from_labels, const char *const *keys,
                      tw_downward_config *cfg)
{
    *cfg = (tw_downward_config){
        .rack = hc->pod.rack,
        .out_dir = hc->pod.out_dir,
        .version = hc->pod.version,
        .from_labels = from_labels,
        .copied = keys,
    };
}

int hook_downward_init(const hook_config *cfg, bool binding, hook_downward *d, char *err)
{
    bool as_annotations = true, as_labels = false;
    tw_downward_config bound, unbound;
    int rc;
    memset(d, 0, sizeof(*d));
    if ((rc = hook_topology_parse_keys(cfg->copy_labels, d->keys_text, sizeof(d->keys_text),
                                       d->keys, err)) != TW_OK ||
        (rc = hook_topology_parse_copy_as(cfg->copy_as, &as_annotations, &as_labels, err)) != TW_OK)
        return rc;
    /* Annotations whenever they are copied: the API server carries them on every version. */
    config_of(cfg, !as_annotations, binding ? d->keys : NULL, &bound);
    config_of(cfg, !as_annotations, NULL, &unbound);
    if ((rc = tw_downward_prepare(&bound, &d->bound, err)) != TW_OK ||
        (rc = tw_downward_prepare(&unbound, &d->unbound, err)) != TW_OK)
        return rc;
    return TW_OK;
}

void hook_downward_free(hook_downward *d)
{
    if (d == NULL)
        return;
    tw_downward_free(d->bound);
    tw_downward_free(d->unbound);
    d->bound = d->unbound = NULL;
}

int hook_downward_check(const hook_config *cfg, char *err)
{
    hook_downward d;
    char why[TW_ERRLEN] = "";
    int rc = hook_downward_init(cfg, cfg->binding != 0, &d, why);
    hook_downward_free(&d);
    if (rc == TW_OK)
        return TW_OK;
    if (rc != TW_EINVAL || strncmp(cfg->pod.rack, "label:", 6) != 0)
        return tw_seterr(err, rc, "%s", why);
    return tw_seterr(err, TW_EINVAL,
                     "--rack %.200s: binding mode does not copy the node label %.200s, so no pod "
                     "would ever carry it; add it to --copy-labels (now %.300s)",
                     cfg->pod.rack, cfg->pod.rack + 6, cfg->copy_labels);
}
