/* jsonpatch.h - build RFC 6902 JSON Patch documents with correct pointers. */
#ifndef TOPOWIRE_JSONPATCH_H
#define TOPOWIRE_JSONPATCH_H

#include <stddef.h>

/* cJSON values are passed by pointer; callers that build or read them include <cjson/cJSON.h>. */
typedef struct cJSON cJSON;

#include "topowire/buf.h"
#include "topowire/kv.h"

/* The default cap on a patch's text, in bytes (tw_jsonpatch_init). */
#define TW_JSONPATCH_MAX (16 * 1024 * 1024)

/*
 * A patch under construction, kept as its compact JSON text: always one
 * complete document ("[]" while empty), so it can be read at any time.
 * An operation is rendered once, when it is added; a value already rendered
 * (tw_jsonpatch_add_json) is copied in as text, so a patch built from
 * prepared fragments never goes through cJSON. Every call that adds leaves
 * the patch as it was when it fails. A zeroed tw_jsonpatch is an empty patch
 * that may be read and freed but takes no operation before an init. Fields
 * are private: use the functions below.
 */
typedef struct tw_jsonpatch {
    tw_buf text; /* "[op,op...]"; empty while there is no operation */
    size_t n;    /* operations */
} tw_jsonpatch;

/*
 * Starts an empty patch whose text may grow to TW_JSONPATCH_MAX bytes.
 * Allocates nothing and cannot fail: returns 0. Free with tw_jsonpatch_free.
 */
int tw_jsonpatch_init(tw_jsonpatch *p);

/* Starts an empty patch whose text may grow to max bytes. Cannot fail. */
void tw_jsonpatch_init_max(tw_jsonpatch *p, size_t max);

/* Frees the operations. NULL-safe; the patch may be initialised again. */
void tw_jsonpatch_free(tw_jsonpatch *p);

/* Number of operations so far. */
size_t tw_jsonpatch_count(const tw_jsonpatch *p);

/*
 * The patch as JSON text ("[]" when empty), borrowed from p: valid until p
 * next changes or is freed. Its length is tw_jsonpatch_len. Cannot fail.
 */
const char *tw_jsonpatch_text(const tw_jsonpatch *p);
size_t tw_jsonpatch_len(const tw_jsonpatch *p);

/*
 * Appends {"op":"add","path":path,"value":value}. path is copied and must
 * already be an escaped JSON Pointer (tw_json_pointer_append). Takes
 * ownership of value, even on failure. Returns 0, TW_EINVAL (NULL value),
 * TW_ETOOBIG (past the patch's cap) or TW_ENOMEM.
 */
int tw_jsonpatch_add(tw_jsonpatch *p, const char *path, cJSON *value);

/* As tw_jsonpatch_add, for {"op":"test","path":path,"value":value}. */
int tw_jsonpatch_test(tw_jsonpatch *p, const char *path, cJSON *value);

/*
 * Appends an add operation whose value is the n texts of value[] joined
 * (borrowed; say "[", a rendered object, "]"). The texts are copied as they
 * are: together they must be one JSON value, such as cJSON renders. Returns
 * 0, TW_ETOOBIG or TW_ENOMEM.
 */
int tw_jsonpatch_add_json(tw_jsonpatch *p, const char *path, const char *const value[], size_t n);

/*
 * Adds the n rendered JSON values of items[] (borrowed, as for
 * tw_jsonpatch_add_json) to the end of the array at array_path. current is
 * that array as the document has it now (borrowed): when it is not an array
 * (absent, or JSON null) one operation creates it with every item;
 * otherwise one operation per item, at array_path + "/-". n == 0 adds
 * nothing. Returns 0, TW_ETOOBIG or TW_ENOMEM.
 */
int tw_jsonpatch_add_items(tw_jsonpatch *p, const char *array_path, const cJSON *current,
                           const char *const items[], size_t n);

/*
 * Adds every pair of kv as a string member of the object at map_path
 * ("/metadata/annotations"). current is that object as the document has it
 * now (borrowed): when it is NULL or not an object (absent, or JSON null) one
 * operation creates the whole map; otherwise one operation per key, at
 * map_path + "/" + the key escaped (tw_json_pointer_append), which also
 * replaces a value already there. An empty kv adds nothing. Returns 0,
 * TW_ETOOBIG (a path over 64 KiB, or past the patch's cap) or TW_ENOMEM.
 */
int tw_jsonpatch_add_strings(tw_jsonpatch *p, const char *map_path, const cJSON *current,
                             const tw_kvlist *kv);

/*
 * Puts the operations of front (borrowed, unchanged) before those of p, in
 * their order. They do not count against p's cap, which grows by their
 * size. Returns 0 or TW_ENOMEM.
 */
int tw_jsonpatch_prepend(tw_jsonpatch *p, const tw_jsonpatch *front);

/*
 * Renders the patch as compact JSON text. Returns 0 and a new string in *out
 * (caller frees with cJSON_free) with its length in *out_len, or TW_ENOMEM.
 */
int tw_jsonpatch_render(const tw_jsonpatch *p, char **out, size_t *out_len);

/*
 * Hands the patch's text over without copying it: returns 0 and the
 * document in *out (malloc'd; caller frees with free()) with its length in
 * *out_len, or TW_ENOMEM. p is left empty, as after tw_jsonpatch_init with
 * its cap.
 */
int tw_jsonpatch_finish(tw_jsonpatch *p, char **out, size_t *out_len);

/*
 * Appends key to out as one JSON Pointer (RFC 6901) reference token: '~'
 * becomes "~0" and '/' becomes "~1". Returns 0 or the errors of
 * tw_buf_append.
 */
int tw_json_pointer_append(tw_buf *out, const char *key);

#endif
