/* inject_downward.c - the downward injection's settings, taken from the webhook's flags. */
#include <stdio.h>
#include <string.h>

#include "topowire/downward.h"
#include "topowire/error.h"

#include "webhook.h"

int hook_downward_init(const hook_config *cfg, bool binding, hook_downward *d, char *err)
{
    bool as_annotations = true, as_labels = false;
    int rc;
    memset(d, 0, sizeof(*d));
    if ((rc = hook_topology_parse_keys(cfg->copy_labels, d->keys_text, sizeof(d->keys_text),
                                       d->keys, err)) != TW_OK ||
        (rc = hook_topology_parse_copy_as(cfg->copy_as, &as_annotations, &as_labels, err)) != TW_OK)
        return rc;
    d->unbound = (tw_downward_config){
        .rack = cfg->pod.rack,
        .out_dir = cfg->pod.out_dir,
        .version = cfg->pod.version,
        /* Annotations whenever they are copied: the API server carries them on every version. */
        .from_labels = !as_annotations,
        .copied = NULL,
    };
    d->bound = d->unbound;
    d->bound.copied = binding ? d->keys : NULL;
    return tw_downward_config_check(&d->bound, err);
}

int hook_downward_check(const hook_config *cfg, char *err)
{
    hook_downward d;
    char why[TW_ERRLEN] = "";
    int rc = hook_downward_init(cfg, cfg->binding != 0, &d, why);
    if (rc == TW_OK || strncmp(cfg->pod.rack, "label:", 6) != 0)
        return rc == TW_OK ? TW_OK : tw_seterr(err, rc, "%s", why);
    return tw_seterr(err, TW_EINVAL,
                     "--rack %.200s: binding mode does not copy the node label %.200s, so no pod "
                     "would ever carry it; add it to --copy-labels (now %.300s)",
                     cfg->pod.rack, cfg->pod.rack + 6, cfg->copy_labels);
}
