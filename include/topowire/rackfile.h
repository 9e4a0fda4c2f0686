/* rackfile.h - render and atomically write the rack files. */
#ifndef TOPOWIRE_RACKFILE_H
#define TOPOWIRE_RACKFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "topowire/buf.h"
#include "topowire/topo.h"

/* File names inside the output directory. */
#define TW_FILE_ENV        "topology.env"
#define TW_FILE_PROPERTIES "rack.properties"
#define TW_FILE_RACK       "client.rack"
#define TW_FILE_JSON       "topology.json"

/*
 * Renderers append to out (which keeps its cap): all of the text or, on
 * failure, nothing. Each returns 0, TW_ETOOBIG or TW_ENOMEM. Unknown values
 * are empty strings; t is borrowed. See docs/files.md for the formats.
 *  env:        TOPOLOGY_NODE, TOPOLOGY_ZONE, TOPOLOGY_ZONE_ID, TOPOLOGY_REGION,
 *              TOPOLOGY_SOURCE, CLIENT_RACK: one KEY='value' a line, ' written
 *              as '\'', safe to `source` from sh whatever the value holds.
 *  properties: exactly "client.rack=VALUE\n" (java.util.Properties escaping;
 *              bytes that are not UTF-8 become \uFFFD).
 *  rack:       the bare value, no newline.
 *  json:       one JSON object with node, zone, zoneId, region, rack, source
 *              (always strings, "" when unknown, never null), then '\n'.
 */
int tw_rackfile_render_env(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_properties(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_rack(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_json(const tw_topology *t, tw_buf *out);

/*
 * Renders all four files into dir (which must exist), then writes each
 * atomically, mode 0644, in the order client.rack, rack.properties,
 * topology.json, topology.env: a reader that waits for topology.env finds
 * the others in place. Returns 0 or the first error; a rendering error writes
 * nothing, a write error leaves the files before it written.
 */
int tw_rackfile_write_all(const char *dir, const tw_topology *t, char *err);

#endif
