/* rackfile.h - render and atomically write the rack files. */
#ifndef TOPOWIRE_RACKFILE_H
#define TOPOWIRE_RACKFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "topowire/buf.h"
#include "topowire/topology.h"

/* File names inside the output directory. */
#define TW_FILE_ENV "topology.env"
#define TW_FILE_PROPERTIES "rack.properties"
#define TW_FILE_RACK "client.rack"
#define TW_FILE_JSON "topology.json"

/*
 * Renderers append to out (which keeps its cap). Each returns 0, TW_ETOOBIG or
 * TW_ENOMEM.
 *  env:        TOPOLOGY_NODE, TOPOLOGY_ZONE, TOPOLOGY_ZONE_ID, TOPOLOGY_REGION,
 *              TOPOLOGY_SOURCE, CLIENT_RACK: one KEY='value' a line, safe to
 *              `source` from sh whatever the value holds.
 *  properties: exactly "client.rack=VALUE\n" (Java properties escaping).
 *  rack:       the bare value, no newline.
 *  json:       one JSON object with node, zone, zoneId, region, rack, source.
 */
int tw_rackfile_render_env(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_properties(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_rack(const tw_topology *t, tw_buf *out);
int tw_rackfile_render_json(const tw_topology *t, tw_buf *out);

/*
 * Writes data to dir/name atomically: a temporary file in dir, write, fsync,
 * fchmod(mode), rename over name, fsync of dir. A reader sees the old file or
 * the new one, never a part. Returns 0, TW_EIO (err names the step and the
 * errno text) or TW_EINVAL.
 */
int tw_atomic_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                    char *err);

/*
 * Renders and writes all four files into dir (which must exist), each
 * atomically, mode 0644. Returns 0 or the first error.
 */
int tw_rackfile_write_all(const char *dir, const tw_topology *t, char *err);

#endif
