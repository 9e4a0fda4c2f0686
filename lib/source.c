/* source.c - names of the topology sources, as written to the rack files and logs. */
#include "topowire/topo.h"

/*
 * Returns the lower-case name of s: "none", "downward", "kubernetes" or
 * "imds"; "unknown" for a value outside the enum. The string is static and
 * never NULL.
 */
const char *tw_source_name(tw_source s)
{
    switch (s) {
    case TW_SOURCE_NONE:
        return "none";
    case TW_SOURCE_DOWNWARD:
        return "downward";
    case TW_SOURCE_KUBERNETES:
        return "kubernetes";
    case TW_SOURCE_IMDS:
        return "imds";
    }
    return "unknown";
}
