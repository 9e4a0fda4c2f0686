/* json.h - parse untrusted JSON text with cJSON without letting "\u0000" cut a string. */
#ifndef TOPOWIRE_JSON_H
#define TOPOWIRE_JSON_H

#include <stddef.h>

/* cJSON values are passed by pointer; callers that build or read them include <cjson/cJSON.h>. */
typedef struct cJSON cJSON;

/*
 * Parses text (len bytes, need not be NUL-terminated) as exactly one JSON
 * value, optionally surrounded by whitespace. cJSON ends a string at an
 * escaped NUL, so "zone\u0000junk" would read as "zone" and pass every check
 * made on it; here each "\u0000" reads as U+0001 instead, a control character
 * that every validator refuses, and no string is silently cut. Returns 0 and
 * a new tree in *out (free with cJSON_Delete; it comes from cJSON's
 * allocator), TW_EPARSE ("not valid JSON" or "more than one JSON value" in
 * err) or TW_ENOMEM. The text is copied only when it holds such an escape.
 */
int tw_json_parse(const char *text, size_t len, cJSON **out, char *err);

#endif
