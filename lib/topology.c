/* topology.c - the resolver: downward files, then the Kubernetes API, then instance metadata. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/kube.h"
#include "topowire/label.h"
#include "topowire/podinfo.h"
#include "topowire/text.h"
#include "topowire/topology.h"

const char *const tw_default_zone_keys[] = {
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
    NULL,
};
const char *const tw_default_region_keys[] = {
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
    NULL,
};
const char *const tw_default_zone_id_keys[] = {
    "topology.k8s.aws/zone-id",
    NULL,
};

int tw_rack_parse(const char *s, tw_rack_kind *kind, const char **label_key)
{
    if (strcmp(s, "zone") == 0) {
        *kind = TW_RACK_ZONE;
    } else if (strcmp(s, "zone-id") == 0) {
        *kind = TW_RACK_ZONE_ID;
    } else if (strcmp(s, "region") == 0) {
        *kind = TW_RACK_REGION;
    } else if (strncmp(s, "label:", 6) == 0 && tw_label_key_valid(s + 6)) {
        *kind = TW_RACK_LABEL;
        *label_key = s + 6;
    } else {
        return TW_EINVAL;
    }
    return TW_OK;
}

int tw_source_parse(const char *s, tw_source *out)
{
    if (strcmp(s, "downward") == 0)
        *out = TW_SOURCE_DOWNWARD;
    else if (strcmp(s, "kubernetes") == 0)
        *out = TW_SOURCE_KUBERNETES;
    else if (strcmp(s, "imds") == 0)
        *out = TW_SOURCE_IMDS;
    else
        return TW_EINVAL;
    return TW_OK;
}

static void step(const tw_resolve_options *o, tw_source src, int rc, const tw_topology *t,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void step(const tw_resolve_options *o, tw_source src, int rc, const tw_topology *t,
                 const char *fmt, ...)
{
    if (o->on_step == NULL)
        return;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    o->on_step(o->ud, src, rc, detail, t);
}

/* Copies a validated value into an empty field; 1 when filled. */
static int fill(const tw_resolve_options *o, tw_source src, const tw_topology *t,
                char dst[TW_LABEL_VALUE_SIZE], const char *key, const char *value)
{
    if (dst[0] != '\0' || value == NULL)
        return 0;
    if (!tw_label_value_valid(value)) {
        char shown[TW_TEXT_SHOWN_SIZE];
        step(o, src, TW_EBADVALUE, t, "rejected %s=\"%s\": not a valid label value", key,
             tw_text_show(shown, sizeof(shown), value, strlen(value)));
        return 0;
    }
    snprintf(dst, TW_LABEL_VALUE_SIZE, "%s", value);
    return 1;
}

static int fill_first(const tw_resolve_options *o, tw_source src, const tw_kvlist *l,
                      const char *const *keys, char dst[TW_LABEL_VALUE_SIZE], tw_topology *t)
{
    for (const char *const *k = keys; *k; k++)
        if (fill(o, src, t, dst, *k, tw_kvlist_get(l, *k)))
            return 1;
    return 0;
}

int tw_topology_fill_from_labels(const tw_resolve_options *o, tw_source src, const tw_kvlist *l,
                                 tw_topology *t)
{
    int n = 0;
    n += fill_first(o, src, l, o->zone_keys ? o->zone_keys : tw_default_zone_keys, t->zone, t);
    n += fill_first(o, src, l, o->zone_id_keys ? o->zone_id_keys : tw_default_zone_id_keys,
                    t->zone_id, t);
    n += fill_first(o, src, l, o->region_keys ? o->region_keys : tw_default_region_keys, t->region,
                    t);
    if (o->rack_kind == TW_RACK_LABEL && o->rack_label)
        n += fill(o, src, t, t->label, o->rack_label, tw_kvlist_get(l, o->rack_label));
    return n;
}

static const char *rack_value(const tw_resolve_options *o, const tw_topology *t)
{
    switch (o->rack_kind) {
    case TW_RACK_ZONE:
        return t->zone;
    case TW_RACK_ZONE_ID:
        return t->zone_id;
    case TW_RACK_REGION:
        return t->region;
    case TW_RACK_LABEL:
        return t->label;
    }
    return "";
}

/* Summary of what a source contributed, for the step report. */
static void describe(const tw_topology *t, char *out, size_t n)
{
    snprintf(out, n, "zone=%s zone-id=%s region=%s", t->zone[0] ? t->zone : "-",
             t->zone_id[0] ? t->zone_id : "-", t->region[0] ? t->region : "-");
}

static int from_downward(const tw_resolve_options *o, tw_topology *t)
{
    static const char *const files[] = {"annotations", "labels"};
    char err[TW_ERRLEN];
    int found_file = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", o->podinfo_dir, files[i]) >= (int)sizeof(path))
            return TW_EINVAL;
        tw_kvlist l = {0};
        int rc = tw_podinfo_read(path, &l, err);
        if (rc == TW_ENOTFOUND)
            continue;
        if (rc != TW_OK) {
            step(o, TW_SOURCE_DOWNWARD, rc, t, "%s", err);
            continue;
        }
        found_file = 1;
        tw_topology_fill_from_labels(o, TW_SOURCE_DOWNWARD, &l, t);
        tw_kvlist_free(&l);
    }
    if (!found_file) {
        step(o, TW_SOURCE_DOWNWARD, TW_ENOTFOUND, t, "no Downward-API files in %s", o->podinfo_dir);
        return TW_ENOTFOUND;
    }
    return TW_OK;
}

static int from_kubernetes(const tw_resolve_options *o, uint64_t deadline, tw_topology *t)
{
    char err[TW_ERRLEN] = "";
    if (o->kube == NULL) {
        step(o, TW_SOURCE_KUBERNETES, TW_ENOCONFIG, t, "%s",
             o->kube_missing_reason ? o->kube_missing_reason : "no Kubernetes configuration");
        return TW_ENOCONFIG;
    }
    if (o->node == NULL || o->node[0] == '\0') {
        step(o, TW_SOURCE_KUBERNETES, TW_EINVAL, t,
             "NODE_NAME is not set (give the container env NODE_NAME from spec.nodeName)");
        return TW_EINVAL;
    }
    tw_kube_client *c = tw_kube_client_new(o->kube, o->user_agent);
    if (c == NULL)
        return TW_ENOMEM;
    tw_kvlist labels = {0};
    int rc = tw_kube_get_node_labels(c, o->node, deadline, &labels, err);
    tw_kube_client_free(c);
    if (rc != TW_OK) {
        step(o, TW_SOURCE_KUBERNETES, rc, t, "%s", err[0] ? err : tw_strerror(rc));
        return rc;
    }
    tw_topology_fill_from_labels(o, TW_SOURCE_KUBERNETES, &labels, t);
    tw_kvlist_free(&labels);
    return TW_OK;
}

static int from_imds(const tw_resolve_options *o, uint64_t deadline, tw_topology *t)
{
    char err[TW_ERRLEN] = "";
    if (o->imds == NULL) {
        step(o, TW_SOURCE_IMDS, TW_EDISABLED, t, "instance metadata is not configured");
        return TW_EDISABLED;
    }
    tw_imds_result r;
    memset(&r, 0, sizeof(r));
    int rc = tw_imds_query(o->imds, deadline, &r, err);
    if (rc != TW_OK) {
        step(o, TW_SOURCE_IMDS, rc, t, "%s", err[0] ? err : tw_strerror(rc));
        return rc;
    }
    if (err[0])
        step(o, TW_SOURCE_IMDS, TW_EBADVALUE, t, "%s", err);
    /* The imds module has validated every value it returns. */
    fill(o, TW_SOURCE_IMDS, t, t->zone, "zone", r.zone[0] ? r.zone : NULL);
    fill(o, TW_SOURCE_IMDS, t, t->zone_id, "zone-id", r.zone_id[0] ? r.zone_id : NULL);
    fill(o, TW_SOURCE_IMDS, t, t->region, "region", r.region[0] ? r.region : NULL);
    return TW_OK;
}

/*
 * The deadline of source i: a source that keeps failing (an API server
 * answering 503, say) must not eat the time of the sources after it, so each
 * later network source keeps a share back: up to SOURCE_RESERVE_MS, and never
 * more than an equal split of what is left.
 */
#define SOURCE_RESERVE_MS 2000L

static uint64_t source_deadline(const tw_resolve_options *o, size_t i)
{
    long left = tw_remaining_ms(o->deadline);
    long later = 0;
    for (size_t j = i + 1; j < o->n_sources; j++)
        later += o->sources[j] != TW_SOURCE_DOWNWARD;
    if (later == 0)
        return o->deadline;
    long share = left / (later + 1);
    long keep = later * (share < SOURCE_RESERVE_MS ? share : SOURCE_RESERVE_MS);
    return o->deadline - (uint64_t)keep;
}

static int same_fields(const tw_topology *a, const tw_topology *b)
{
    return strcmp(a->zone, b->zone) == 0 && strcmp(a->zone_id, b->zone_id) == 0 &&
           strcmp(a->region, b->region) == 0 && strcmp(a->label, b->label) == 0;
}

int tw_resolve(const tw_resolve_options *o, tw_topology *out)
{
    tw_topology t;
    memset(&t, 0, sizeof(t));
    if (o->node)
        snprintf(t.node, sizeof(t.node), "%s", o->node);
    int timed_out = 0;
    for (size_t i = 0; i < o->n_sources; i++) {
        if (tw_remaining_ms(o->deadline) == 0) {
            timed_out = 1;
            step(o, o->sources[i], TW_ETIMEDOUT, &t, "skipped: the deadline has passed");
            continue;
        }
        tw_topology before = t;
        int rc;
        switch (o->sources[i]) {
        case TW_SOURCE_DOWNWARD:
            rc = from_downward(o, &t);
            break;
        case TW_SOURCE_KUBERNETES:
            rc = from_kubernetes(o, source_deadline(o, i), &t);
            break;
        case TW_SOURCE_IMDS:
            rc = from_imds(o, source_deadline(o, i), &t);
            break;
        default:
            rc = TW_EINVAL;
            break;
        }
        if (rc == TW_ETIMEDOUT)
            timed_out = 1;
        if (rc != TW_OK)
            continue;
        const char *rack = rack_value(o, &t);
        char what[256];
        describe(&t, what, sizeof(what));
        if (rack[0] != '\0') {
            snprintf(t.rack, sizeof(t.rack), "%s", rack);
            t.source = o->sources[i];
            step(o, o->sources[i], TW_OK, &t, "answered: rack=%s %s", rack, what);
            *out = t;
            return TW_OK;
        }
        step(o, o->sources[i], TW_ENOTFOUND, &t,
             same_fields(&before, &t) ? "answered without topology: %s"
                                      : "answered without the rack value: %s",
             what);
    }
    *out = t;
    return timed_out ? TW_ETIMEDOUT : TW_ENOTFOUND;
}
