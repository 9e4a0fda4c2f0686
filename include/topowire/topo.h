/* topo.h - the topology value: a node's zone, zone ID, region and rack, and where they came from.
 *
 * A leaf: the rack-file writer and anything else that only carries a
 * topology include this, not the resolver (topology.h) and its clients.
 */
#ifndef TOPOWIRE_TOPO_H
#define TOPOWIRE_TOPO_H

#include "topowire/dnsname.h"
#include "topowire/label.h"

typedef enum tw_source {
    TW_SOURCE_NONE = 0,
    TW_SOURCE_DOWNWARD,
    TW_SOURCE_KUBERNETES,
    TW_SOURCE_IMDS,
} tw_source;

const char *tw_source_name(tw_source s);

typedef enum tw_rack_kind {
    TW_RACK_ZONE = 0,
    TW_RACK_ZONE_ID,
    TW_RACK_REGION,
    TW_RACK_LABEL,
} tw_rack_kind;

/* What the node turned out to be. Empty strings mean unknown. */
typedef struct tw_topology {
    char node[TW_DNS_SUBDOMAIN_MAX + 1];
    char zone[TW_LABEL_VALUE_SIZE];
    char zone_id[TW_LABEL_VALUE_SIZE];
    char region[TW_LABEL_VALUE_SIZE];
    char rack[TW_LABEL_VALUE_SIZE];
    char label[TW_LABEL_VALUE_SIZE]; /* the value of the --rack label:KEY label, when asked */
    tw_source source;                /* which source yielded the rack */
} tw_topology;

/* "zone", "zone-id", "region" or "label:KEY" (key borrowed into *label_key). Return 0 or TW_EINVAL.
 */
int tw_rack_parse(const char *s, tw_rack_kind *kind, const char **label_key);

/* "downward", "kubernetes", "imds". Return 0 or TW_EINVAL. */
int tw_source_parse(const char *s, tw_source *out);

#endif
