/* podpatch.h - the JSON Patch that injects topowire-init, its volumes and mounts into a Pod. */
#ifndef TOPOWIRE_PODPATCH_H
#define TOPOWIRE_PODPATCH_H

#include <stdbool.h>
#include <stddef.h>

/* cJSON values are passed by pointer; callers that build or read them include <cjson/cJSON.h>. */
typedef struct cJSON cJSON;

#include "topowire/jsonpatch.h"

/* Names and keys the patch uses. */
#define TW_POD_LABEL_INJECT   "topowire.io/inject"
#define TW_POD_ANN_INJECTED   "topowire.io/injected"
#define TW_POD_ANN_RACK       "topowire.io/rack"
#define TW_POD_ANN_CONTAINERS "topowire.io/containers"
#define TW_POD_VOLUME         "topowire"
#define TW_POD_PODINFO_VOLUME "topowire-podinfo"
#define TW_POD_INIT_CONTAINER "topowire-init"
#define TW_POD_RUN_AS         65532

/* Most warnings one build reports. */
#define TW_PODPATCH_MAX_WARNINGS 8

/*
 * The largest patch a build produces, in bytes. A real pod's patch is a few
 * KiB (about 130 bytes per mounted container with the default --out-dir, so
 * this allows some 8,000); a pod whose patch would be larger is left alone
 * as TW_PODPATCH_INVALID with a warning. The API server could not store it
 * anyway (etcd's default object limit is 1.5 MiB), and the cap keeps the
 * answer, base64 and all, well inside one review's memory.
 */
#define TW_PODPATCH_PATCH_MAX (1024 * 1024)

/*
 * What to inject. Every string is borrowed and must outlive the build call.
 * tw_podpatch_config_defaults() fills every field; the program then
 * overrides what its flags set.
 */
typedef struct tw_podpatch_config {
    const char *init_image;        /* the topowire-init image */
    const char *image_pull_policy; /* "IfNotPresent" ...; NULL or "" leaves it to the cluster */
    const char *rack;              /* default rack: zone, zone-id, region or label:KEY */
    const char *out_dir;           /* where the rack files appear: "/etc/topowire" */
    const char *podinfo_dir;       /* where the init container reads the Downward API */
    const char *size_limit;        /* the emptyDir's sizeLimit: "1Mi" */
    const char *cpu_request;       /* the init container's resources */
    const char *cpu_limit;
    const char *memory_request;
    const char *memory_limit;
    const char *version; /* the value of the topowire.io/injected annotation */
} tw_podpatch_config;

/* Fills cfg with the defaults (static strings). Cannot fail. */
void tw_podpatch_config_defaults(tw_podpatch_config *cfg);

/*
 * Checks a configuration before serving: an image, absolute directories that
 * differ, a valid rack, Kubernetes quantities for the size limit and
 * resources (a limit may be ""), a pull policy Kubernetes knows. Returns 0 or
 * TW_EINVAL with the offending setting in err.
 */
int tw_podpatch_config_check(const tw_podpatch_config *cfg, char *err);

/* True when s is zone, zone-id, region, or label:KEY with a valid label key. */
bool tw_podpatch_rack_valid(const char *s);

/*
 * True when s is a Kubernetes resource quantity as topowire accepts it: a
 * non-negative decimal number with an optional suffix (m, k, M, G, T, P, E,
 * Ki, Mi, Gi, Ti, Pi, Ei) or exponent (e3, E-2), at most 63 characters.
 */
bool tw_podpatch_quantity_valid(const char *s);

/* What a build decided. */
typedef enum tw_podpatch_outcome {
    TW_PODPATCH_INJECTED = 0,     /* a patch was produced */
    TW_PODPATCH_ALREADY = 1,      /* topowire.io/injected is set: nothing to do */
    TW_PODPATCH_NOT_SELECTED = 2, /* no topowire.io/inject=true label */
    TW_PODPATCH_OPTED_OUT = 3,    /* topowire.io/inject=false */
    TW_PODPATCH_CONFLICT = 4,     /* a volume, container or mount path of ours is taken */
    TW_PODPATCH_INVALID = 5,      /* not a pod shape that can be patched safely, or too big */
} tw_podpatch_outcome;
#define TW_PODPATCH_OUTCOMES 6

/* Returns "injected", "already_injected", ... (never NULL). */
const char *tw_podpatch_outcome_name(tw_podpatch_outcome o);

/*
 * The result of a build. patch holds the JSON Patch (its operations and
 * text: tw_jsonpatch_count, tw_jsonpatch_text) only for TW_PODPATCH_INJECTED;
 * for any other outcome it is empty. warnings are sentences for the
 * AdmissionReview's warnings and the log (they never name anything but the
 * pod's own fields). Owned by the result; free with tw_podpatch_result_free.
 */
typedef struct tw_podpatch_result {
    tw_podpatch_outcome outcome;
    tw_jsonpatch patch;
    char *warnings[TW_PODPATCH_MAX_WARNINGS];
    size_t n_warnings;
} tw_podpatch_result;

/*
 * Decides what the pod (the AdmissionReview's request.object, borrowed) gets
 * and builds the patch, which:
 *  - sets the annotation topowire.io/injected to cfg->version (creating
 *    metadata.annotations when absent);
 *  - adds the volumes "topowire" (emptyDir, medium Memory, sizeLimit) and
 *    "topowire-podinfo" (Downward API: the pod's annotations and labels),
 *    creating spec.volumes when absent;
 *  - puts the "topowire-init" init container first (at /spec/initContainers/0,
 *    or creating the array): args --rack and --out-dir, NODE_NAME from
 *    spec.nodeName, requests and limits, and a security context that meets the
 *    restricted Pod Security Standard; it mounts "topowire" read-write at
 *    out_dir and "topowire-podinfo" read-only at podinfo_dir;
 *  - mounts "topowire" read-only at out_dir in the chosen app containers (the
 *    topowire.io/containers annotation, a comma list; default all).
 * The annotation topowire.io/rack overrides cfg->rack for this pod. An invalid
 * annotation falls back to the default with a warning. A pod already injected,
 * not opted in, opted out, with a name or mount-path clash, or of a shape
 * that cannot be patched safely, or whose patch would pass
 * TW_PODPATCH_PATCH_MAX, gets no patch (the last three with a warning).
 * The work is O(n log n) in the pod's size: every array is walked a fixed
 * number of times and each topowire.io/containers item is a binary search.
 * Returns 0 with *out filled (free it with tw_podpatch_result_free even when
 * no patch was made), TW_EINVAL (NULL pod or cfg, or a cfg that
 * tw_podpatch_config_check refuses) or TW_ENOMEM; on failure *out is left
 * zeroed. This prepares cfg for the one call; a server builds with
 * tw_podpatch_build_prepared instead.
 */
int tw_podpatch_build(const cJSON *pod, const tw_podpatch_config *cfg, tw_podpatch_result *out,
                      char *err);

/*
 * A configuration made ready for many builds: checked, and the parts of the
 * patch that depend only on it (init container, volumes, mount, version)
 * rendered once. Read-only after tw_podpatch_prepare, so one may serve many
 * threads. It keeps a copy of the config struct; the strings the config
 * points to are borrowed and must outlive it.
 */
typedef struct tw_podpatch tw_podpatch;

/*
 * Checks cfg (tw_podpatch_config_check) and prepares it. Returns 0 and a new
 * prepared config in *out (free with tw_podpatch_free), TW_EINVAL with the
 * setting in err, or TW_ENOMEM.
 */
int tw_podpatch_prepare(const tw_podpatch_config *cfg, tw_podpatch **out, char *err);

/* Frees a prepared config. NULL-safe. */
void tw_podpatch_free(tw_podpatch *pp);

/*
 * tw_podpatch_build with a prepared config: the same decisions and the same
 * patch text, without rendering the configured parts again. Returns 0,
 * TW_EINVAL (NULL pod or pp) or TW_ENOMEM.
 */
int tw_podpatch_build_prepared(const tw_podpatch *pp, const cJSON *pod, tw_podpatch_result *out,
                               char *err);

/* Frees a result's patch and warnings. NULL-safe. */
void tw_podpatch_result_free(tw_podpatch_result *r);

#endif
