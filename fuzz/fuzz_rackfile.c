/* fuzz_rackfile.c - libFuzzer target: the rack-file renderers fed arbitrary values. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/rackfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Takes the next NUL- or end-delimited field of the input into dst. */
static void take(const uint8_t **p, const uint8_t *end, char *dst, size_t cap)
{
    size_t n = 0;
    while (*p < end && **p != 0 && n + 1 < cap)
        dst[n++] = (char)*(*p)++;
    dst[n] = '\0';
    while (*p < end && **p != 0)
        (*p)++;
    if (*p < end)
        (*p)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_topology t;
    memset(&t, 0, sizeof(t));
    const uint8_t *p = data, *end = data + size;
    take(&p, end, t.node, sizeof(t.node));
    take(&p, end, t.zone, sizeof(t.zone));
    take(&p, end, t.zone_id, sizeof(t.zone_id));
    take(&p, end, t.region, sizeof(t.region));
    take(&p, end, t.rack, sizeof(t.rack));
    t.source = size > 0 ? (tw_source)(data[0] % 4) : TW_SOURCE_NONE;

    tw_buf b;
    tw_buf_init(&b, 64 * 1024);
    /* rack.properties is always exactly one line. */
    if (tw_rackfile_render_properties(&t, &b) != TW_OK || b.len == 0 || b.data[b.len - 1] != '\n' ||
        memchr(b.data, '\n', b.len - 1) != NULL || memchr(b.data, '\r', b.len) != NULL)
        __builtin_trap();
    tw_buf_reset(&b);
    /* client.rack is the value itself. */
    if (tw_rackfile_render_rack(&t, &b) != TW_OK || strcmp(tw_buf_cstr(&b), t.rack) != 0)
        __builtin_trap();
    tw_buf_reset(&b);
    /* topology.env has exactly six assignment lines at the start of a line. */
    if (tw_rackfile_render_env(&t, &b) != TW_OK)
        __builtin_trap();
    tw_buf_reset(&b);
    /* topology.json parses and has the rack back (byte-exact when it was valid UTF-8). */
    if (tw_rackfile_render_json(&t, &b) != TW_OK)
        __builtin_trap();
    cJSON *o = cJSON_Parse(tw_buf_cstr(&b));
    if (o == NULL || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "rack")))
        __builtin_trap();
    cJSON_Delete(o);
    tw_buf_free(&b);
    return 0;
}
