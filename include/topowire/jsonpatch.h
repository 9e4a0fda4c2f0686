/* jsonpatch.h - build RFC 6902 JSON Patch documents (add operations) with correct pointers. */
#ifndef TOPOWIRE_JSONPATCH_H
#define TOPOWIRE_JSONPATCH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"
#include "topowire/kv.h"

/* A patch under construction: a JSON array of operations. Fields are private. */
typedef struct tw_jsonpatch {
    cJSON *ops;
} tw_jsonpatch;

/* Starts an empty patch. Returns 0 or TW_ENOMEM. Free with tw_jsonpatch_free. */
int tw_jsonpatch_init(tw_jsonpatch *p);

/* Frees the operations. NULL-safe; the patch may be initialised again. */
void tw_jsonpatch_free(tw_jsonpatch *p);

/* Number of operations so far. */
size_t tw_jsonpatch_count(const tw_jsonpatch *p);

/*
 * Appends {"op":"add","path":path,"value":value}. path is copied and must
 * already be an escaped JSON Pointer. Takes ownership of value, even on
 * failure. Returns 0, TW_EINVAL (NULL value) or TW_ENOMEM.
 */
int tw_jsonpatch_add(tw_jsonpatch *p, const char *path, cJSON *value);

/*
 * Adds every pair of kv as a string member of the object at map_path
 * ("/metadata/annotations"). current is that object as the document has it
 * now (borrowed): when it is NULL or not an object (absent, or JSON null) one
 * operation creates the whole map; otherwise one operation per key, at
 * map_path + "/" + the key escaped (tw_json_pointer_append), which also
 * replaces a value already there. An empty kv adds nothing. Returns 0,
 * TW_ETOOBIG (a path over 64 KiB) or TW_ENOMEM; operations added before a
 * failure stay.
 */
int tw_jsonpatch_add_strings(tw_jsonpatch *p, const char *map_path, const cJSON *current,
                             const tw_kvlist *kv);

/*
 * Renders the patch as compact JSON text. Returns 0 and a new string in *out
 * (caller frees with cJSON_free) with its length in *out_len, or TW_ENOMEM.
 */
int tw_jsonpatch_render(const tw_jsonpatch *p, char **out, size_t *out_len);

/*
 * Appends key to out as one JSON Pointer (RFC 6901) reference token: '~'
 * becomes "~0" and '/' becomes "~1". Returns 0 or the errors of
 * tw_buf_append.
 */
int tw_json_pointer_append(tw_buf *out, const char *key);

#endif
