/* topology.h - the node's topology and the resolver that finds it. */
#ifndef TOPOWIRE_TOPOLOGY_H
#define TOPOWIRE_TOPOLOGY_H

#include <stdint.h>

#include "topowire/imds.h"
#include "topowire/kube.h"
#include "topowire/kv.h"

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
    char node[254];
    char zone[64];
    char zone_id[64];
    char region[64];
    char rack[64];
    char label[64];    /* the value of the --rack label:KEY label, when asked */
    tw_source source;  /* which source yielded the rack */
} tw_topology;

#endif
