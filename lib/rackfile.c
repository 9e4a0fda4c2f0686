/* rackfile.c - render the rack files (env, properties, bare value, JSON); write them atomically. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/files.h"
#include "topowire/rackfile.h"
#include "topowire/text.h"

/* Cap of one rendered file; the fields are small, so the worst escaping stays far below. */
#define RENDER_MAX 16384

/* A field of the topology and its length; a full array without terminator is still safe. */
#define FIELD(t, f) (t)->f, strnlen((t)->f, sizeof((t)->f))

/* Renders into a scratch buffer first, so that out gains all of it or nothing. */
static int render_whole(int (*fn)(const tw_topology *, tw_buf *), const tw_topology *t, tw_buf *out)
{
    tw_buf tmp;
    tw_buf_init(&tmp, out->max);
    int rc = fn(t, &tmp);
    if (rc == TW_OK)
        rc = tw_buf_append(out, tw_buf_cstr(&tmp), tmp.len);
    tw_buf_free(&tmp);
    return rc;
}

/* NAME='value' and a newline; a ' inside becomes '\'' (close, escaped quote, reopen). */
static int env_line(tw_buf *b, const char *name, const char *v, size_t n)
{
    int rc = tw_buf_printf(b, "%s='", name);
    size_t start = 0;
    for (size_t i = 0; i < n && rc == TW_OK; i++) {
        if (v[i] != '\'')
            continue;
        rc = tw_buf_append(b, v + start, i - start);
        if (rc == TW_OK)
            rc = tw_buf_puts(b, "'\\''");
        start = i + 1;
    }
    if (rc == TW_OK)
        rc = tw_buf_append(b, v + start, n - start);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, "'\n");
    return rc;
}

static int env_all(const tw_topology *t, tw_buf *b)
{
    const char *src = tw_source_name(t->source);
    int rc = env_line(b, "TOPOLOGY_NODE", FIELD(t, node));
    if (rc == TW_OK)
        rc = env_line(b, "TOPOLOGY_ZONE", FIELD(t, zone));
    if (rc == TW_OK)
        rc = env_line(b, "TOPOLOGY_ZONE_ID", FIELD(t, zone_id));
    if (rc == TW_OK)
        rc = env_line(b, "TOPOLOGY_REGION", FIELD(t, region));
    if (rc == TW_OK)
        rc = env_line(b, "TOPOLOGY_SOURCE", src, strlen(src));
    if (rc == TW_OK)
        rc = env_line(b, "CLIENT_RACK", FIELD(t, rack));
    return rc;
}

/*
 * The topology.env text: six KEY='value' lines. Single quotes make every byte
 * but ' itself literal in POSIX sh, bash, dash and busybox ash, so sourcing
 * the file runs nothing whatever the values hold.
 */
int tw_rackfile_render_env(const tw_topology *t, tw_buf *out)
{
    return render_whole(env_all, t, out);
}

/*
 * Appends v escaped as java.util.Properties.store() escapes a value: \\ \t \n
 * \r \f, a backslash before = : # !, a leading space as "\ ", and every other
 * character outside 0x20..0x7E as \uXXXX (UTF-16, so a supplementary
 * character becomes a surrogate pair). A byte that is not valid UTF-8 becomes
 * \uFFFD, as a UTF-8 decoder would read it.
 */
static int props_escape(tw_buf *b, const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;
    int rc = TW_OK;
    size_t i = 0;
    while (i < n && rc == TW_OK) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            uint32_t cp = 0xFFFD;
            size_t len = tw_utf8_decode(s + i, n - i, &cp);
            if (len == 0) {
                cp = 0xFFFD;
                len = 1;
            }
            if (cp > 0xFFFF) {
                uint32_t u = cp - 0x10000;
                rc = tw_buf_printf(b, "\\u%04X\\u%04X", (unsigned)(0xD800 | u >> 10),
                                   (unsigned)(0xDC00 | (u & 0x3FF)));
            } else {
                rc = tw_buf_printf(b, "\\u%04X", (unsigned)cp);
            }
            i += len;
            continue;
        }
        switch (c) {
        case '\\':
            rc = tw_buf_puts(b, "\\\\");
            break;
        case '\t':
            rc = tw_buf_puts(b, "\\t");
            break;
        case '\n':
            rc = tw_buf_puts(b, "\\n");
            break;
        case '\r':
            rc = tw_buf_puts(b, "\\r");
            break;
        case '\f':
            rc = tw_buf_puts(b, "\\f");
            break;
        case '=':
        case ':':
        case '#':
        case '!':
            rc = tw_buf_printf(b, "\\%c", c);
            break;
        case ' ':
            rc = tw_buf_puts(b, i == 0 ? "\\ " : " ");
            break;
        default:
            if (c < 0x20 || c == 0x7F)
                rc = tw_buf_printf(b, "\\u%04X", (unsigned)c);
            else
                rc = tw_buf_append(b, &c, 1);
        }
        i++;
    }
    return rc;
}

static int props_all(const tw_topology *t, tw_buf *b)
{
    int rc = tw_buf_puts(b, "client.rack=");
    if (rc == TW_OK)
        rc = props_escape(b, FIELD(t, rack));
    if (rc == TW_OK)
        rc = tw_buf_puts(b, "\n");
    return rc;
}

/* The rack.properties text: exactly "client.rack=VALUE\n", VALUE escaped for Java. */
int tw_rackfile_render_properties(const tw_topology *t, tw_buf *out)
{
    return render_whole(props_all, t, out);
}

/* The client.rack text: the rack value's bytes alone, with no newline. */
int tw_rackfile_render_rack(const tw_topology *t, tw_buf *out)
{
    return tw_buf_append(out, FIELD(t, rack));
}

/*
 * Adds name: v to obj as a JSON string. Bytes that are not valid UTF-8 become
 * U+FFFD so that the document is valid JSON; valid text is kept byte for byte.
 */
static int json_add(cJSON *obj, const char *name, const char *v, size_t n)
{
    tw_buf s;
    tw_buf_init(&s, RENDER_MAX);
    const unsigned char *u = (const unsigned char *)v;
    int rc = TW_OK;
    size_t i = 0;
    while (i < n && rc == TW_OK) {
        uint32_t cp;
        size_t len = tw_utf8_decode(u + i, n - i, &cp);
        if (len == 0) {
            rc = tw_buf_puts(&s, "\xEF\xBF\xBD");
            i++;
        } else {
            rc = tw_buf_append(&s, u + i, len);
            i += len;
        }
    }
    if (rc == TW_OK && cJSON_AddStringToObject(obj, name, tw_buf_cstr(&s)) == NULL)
        rc = TW_ENOMEM;
    tw_buf_free(&s);
    return rc;
}

static int json_all(const tw_topology *t, tw_buf *b)
{
    const char *src = tw_source_name(t->source);
    char *text = NULL;
    int rc = TW_ENOMEM;
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL)
        goto out;
    rc = json_add(obj, "node", FIELD(t, node));
    if (rc == TW_OK)
        rc = json_add(obj, "zone", FIELD(t, zone));
    if (rc == TW_OK)
        rc = json_add(obj, "zoneId", FIELD(t, zone_id));
    if (rc == TW_OK)
        rc = json_add(obj, "region", FIELD(t, region));
    if (rc == TW_OK)
        rc = json_add(obj, "rack", FIELD(t, rack));
    if (rc == TW_OK)
        rc = json_add(obj, "source", src, strlen(src));
    if (rc != TW_OK)
        goto out;
    text = cJSON_PrintUnformatted(obj);
    if (text == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    rc = tw_buf_puts(b, text);
    if (rc == TW_OK)
        rc = tw_buf_puts(b, "\n");
out:
    cJSON_free(text);
    cJSON_Delete(obj);
    return rc;
}

/*
 * The topology.json text: one object on one line with node, zone, zoneId,
 * region, rack and source, in that order, then a newline. An unknown field is
 * "" (never null), so `jq -r .zoneId` prints an empty line rather than "null".
 */
int tw_rackfile_render_json(const tw_topology *t, tw_buf *out)
{
    return render_whole(json_all, t, out);
}

/*
 * Renders all four files first (so a rendering failure writes nothing), then
 * writes client.rack, rack.properties, topology.json and topology.env last:
 * a reader that waits for topology.env finds the other three already in
 * place. A write failure stops there; files written before it stay whole.
 */
int tw_rackfile_write_all(const char *dir, const tw_topology *t, char *err)
{
    static const struct {
        const char *name;
        int (*render)(const tw_topology *, tw_buf *);
    } files[] = {
        {TW_FILE_RACK, tw_rackfile_render_rack},
        {TW_FILE_PROPERTIES, tw_rackfile_render_properties},
        {TW_FILE_JSON, tw_rackfile_render_json},
        {TW_FILE_ENV, tw_rackfile_render_env},
    };
    enum { NFILES = sizeof(files) / sizeof(files[0]) };
    tw_buf text[NFILES];
    for (size_t i = 0; i < NFILES; i++)
        tw_buf_init(&text[i], RENDER_MAX);
    int rc = TW_OK;
    for (size_t i = 0; i < NFILES && rc == TW_OK; i++) {
        rc = files[i].render(t, &text[i]);
        if (rc != TW_OK)
            tw_seterr(err, rc, "cannot render %s: %s", files[i].name, tw_strerror(rc));
    }
    /* Each file is fsync'd before its rename; the directory once, after all four. */
    for (size_t i = 0; i < NFILES && rc == TW_OK; i++)
        rc = tw_file_write_atomic(dir, files[i].name, tw_buf_cstr(&text[i]), text[i].len, 0644,
                                  TW_FILE_NO_DIRSYNC, err);
    if (rc == TW_OK)
        rc = tw_file_sync_dir(dir, err);
    for (size_t i = 0; i < NFILES; i++)
        tw_buf_free(&text[i]);
    return rc;
}
