/* downward.h - the JSON Patch that hands a pod its node's topology through the Downward API. */
#ifndef TOPOWIRE_DOWNWARD_H
#define TOPOWIRE_DOWNWARD_H

#include <stdbool.h>

/* cJSON values are passed by pointer; callers that build or read them include <cjson/cJSON.h>. */
typedef struct cJSON cJSON;

#include "topowire/podpatch.h"

/* The value of the topowire.io/inject label that asks for this injection. */
#define TW_POD_INJECT_DOWNWARD "downward"

/* The node labels binding mode copies by default, one per file and variable. */
#define TW_DOWNWARD_KEY_ZONE    "topology.kubernetes.io/zone"
#define TW_DOWNWARD_KEY_ZONE_ID "topology.k8s.aws/zone-id"
#define TW_DOWNWARD_KEY_REGION  "topology.kubernetes.io/region"

/* How many files (and environment variables) the volume holds. */
#define TW_DOWNWARD_VALUES 4

/*
 * The file names in the volume and the variable names in the containers, in
 * the same order: client.rack/CLIENT_RACK first, then zone, zone-id, region.
 */
extern const char *const tw_downward_files[TW_DOWNWARD_VALUES];
extern const char *const tw_downward_env[TW_DOWNWARD_VALUES];

/*
 * What to inject. Every string is borrowed and must outlive the build call.
 */
typedef struct tw_downward_config {
    const char *rack;    /* what client.rack holds: zone, zone-id, region or label:KEY */
    const char *out_dir; /* where the volume is mounted: "/etc/topowire" */
    const char *version; /* the value of the topowire.io/injected annotation */
    bool from_labels;    /* read metadata.labels, not metadata.annotations */
    /*
     * The keys binding mode puts on this pod (NULL-terminated), or NULL when
     * binding mode does not serve the pod's namespace: the files then stay
     * empty, and every build says so in a warning.
     */
    const char *const *copied;
} tw_downward_config;

/* True when pod (borrowed) carries the label topowire.io/inject: "downward". */
bool tw_downward_selected(const cJSON *pod);

/*
 * The pod metadata key the value of rack comes from: the zone, zone ID or
 * region key, or KEY of label:KEY (a pointer into rack). NULL when rack is
 * not valid (tw_podpatch_rack_valid).
 */
const char *tw_downward_rack_key(const char *rack);

/*
 * Checks a configuration: a valid rack, an absolute out_dir, a version; and,
 * when copied is set and the rack is label:KEY, that KEY is among the copied
 * keys (else its annotation would never exist; for zone, zone-id and region
 * each build warns instead). Returns 0 or TW_EINVAL with the setting in err.
 */
int tw_downward_config_check(const tw_downward_config *cfg, char *err);

/*
 * Decides what the pod (request.object, borrowed) gets and builds the patch,
 * which, for a pod labelled topowire.io/inject: "downward":
 *  - sets the annotation topowire.io/injected to cfg->version (creating
 *    metadata.annotations when absent);
 *  - adds the volume "topowire": a downwardAPI volume with the files
 *    client.rack, zone, zone-id and region, each a fieldRef to
 *    metadata.annotations['KEY'] (or metadata.labels with from_labels);
 *  - mounts it read-only at out_dir in every app container (spec.containers);
 *  - adds CLIENT_RACK, TOPOLOGY_ZONE, TOPOLOGY_ZONE_ID and TOPOLOGY_REGION
 *    from the same keys to every app container's env, except a variable the
 *    container already sets there, which is left as it is (with a warning).
 * The annotation topowire.io/rack overrides cfg->rack for this pod (an
 * invalid one falls back, with a warning). No patch for a pod already
 * injected (any value of topowire.io/injected), not labelled "downward", with
 * a volume "topowire" or a mount at out_dir already, or of a shape that
 * cannot be patched safely (the last two with a warning). Returns 0 with *out
 * filled (free with tw_podpatch_result_free even without a patch), TW_EINVAL
 * (NULL pod or cfg, or a cfg tw_downward_config_check refuses) or
 * TW_ENOMEM; on failure *out is left zeroed. This prepares cfg for the one
 * call; a server builds with tw_downward_build_prepared instead.
 */
int tw_downward_build(const cJSON *pod, const tw_downward_config *cfg, tw_podpatch_result *out,
                      char *err);

/*
 * A configuration made ready for many builds: checked, and the parts of the
 * patch that depend only on it (volume, mount, variables, version) rendered
 * once. Read-only after tw_downward_prepare, so one may serve many threads.
 * It keeps a copy of the config struct; the strings (and the copied list)
 * it points to are borrowed and must outlive it.
 */
typedef struct tw_downward tw_downward;

/*
 * Checks cfg (tw_downward_config_check) and prepares it. Returns 0 and a new
 * prepared config in *out (free with tw_downward_free), TW_EINVAL with the
 * setting in err, or TW_ENOMEM.
 */
int tw_downward_prepare(const tw_downward_config *cfg, tw_downward **out, char *err);

/* Frees a prepared config. NULL-safe. */
void tw_downward_free(tw_downward *d);

/*
 * tw_downward_build with a prepared config: the same decisions and the same
 * patch text, without rendering the configured parts again. Returns 0,
 * TW_EINVAL (NULL pod or d) or TW_ENOMEM.
 */
int tw_downward_build_prepared(const tw_downward *d, const cJSON *pod, tw_podpatch_result *out,
                               char *err);

#endif
