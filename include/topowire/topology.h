/* topology.h - the node's topology and the resolver that finds it. */
#ifndef TOPOWIRE_TOPOLOGY_H
#define TOPOWIRE_TOPOLOGY_H

#include <stdint.h>

#include "topowire/imds.h"
#include "topowire/kube.h"
#include "topowire/kv.h"
#include "topowire/topo.h"

/* The label keys read by default, most preferred first; NULL-terminated. */
extern const char *const tw_default_zone_keys[];
extern const char *const tw_default_region_keys[];
extern const char *const tw_default_zone_id_keys[];

/*
 * Called after every step of tw_resolve: src is the source tried, rc 0 when it
 * answered (even if it had nothing useful) or the error that stopped it, detail
 * a sentence saying what it found or why it failed, t the topology so far.
 * It also reports each rejected value (rc TW_EBADVALUE). Must not block.
 */
typedef void (*tw_resolve_step_fn)(void *ud, tw_source src, int rc, const char *detail,
                                   const tw_topology *t);

typedef struct tw_resolve_options {
    const tw_source *sources; /* in order of preference */
    size_t n_sources;
    tw_rack_kind rack_kind;
    const char *rack_label;       /* the KEY of label:KEY */
    const char *const *zone_keys; /* NULL-terminated; NULL = defaults */
    const char *const *region_keys;
    const char *const *zone_id_keys;
    const char *node;                /* NODE_NAME; may be NULL (kubernetes is skipped) */
    const char *podinfo_dir;         /* holds `annotations` and `labels` */
    tw_kube_config *kube;            /* NULL: the kubernetes source is skipped */
    const char *kube_missing_reason; /* why kube is NULL, for the step report */
    const tw_imds_options *imds;     /* NULL: the imds source is skipped */
    const char *user_agent;
    uint64_t deadline;          /* tw_now_ms() deadline for everything */
    tw_resolve_step_fn on_step; /* may be NULL */
    void *ud;
} tw_resolve_options;

/*
 * Tries the sources in order. Each source fills only the fields still empty;
 * the first source whose answer completes the rack wins and later sources are
 * not asked. Every value must be a valid label value; invalid ones are
 * reported through on_step and treated as missing. out is always written with
 * everything found (node, zone, zone ID, region, label), even on failure.
 * Returns 0 when the rack was found (out->rack set, out->source the source that
 * completed it), TW_ENOTFOUND when no source yielded it, TW_ETIMEDOUT when the
 * deadline cut the search short.
 */
int tw_resolve(const tw_resolve_options *o, tw_topology *out);

/*
 * Fills the empty fields of t from a label/annotation list using the option's
 * keys; reports rejected values through on_step as src. Returns the number of
 * fields filled.
 */
int tw_topology_fill_from_labels(const tw_resolve_options *o, tw_source src, const tw_kvlist *l,
                                 tw_topology *t);

#endif
