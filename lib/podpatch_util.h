/*
 * podpatch_util.h - what the two pod patch builders (podpatch.c for the init
 * container, downward.c for the Downward-API injection) share. Internal to
 * the library and its unit tests: not installed, not API.
 */
#ifndef TOPOWIRE_PODPATCH_UTIL_H
#define TOPOWIRE_PODPATCH_UTIL_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "topowire/text.h"
#include "topowire/jsonpatch.h"
#include "topowire/podpatch.h"

/*
 * Adds a warning sentence to r (past TW_PODPATCH_MAX_WARNINGS it is
 * dropped). Returns 0, or TW_ENOMEM when the copy fails.
 */
__attribute__((format(printf, 2, 3))) int tw__podpatch_warn(tw_podpatch_result *r, const char *fmt,
                                                            ...);

/*
 * Quotes a value from the pod (NULL reads as "") for a warning, into out:
 * cut after TW_TEXT_SHOWN bytes with "...", control bytes and '"' as '?'.
 * Returns out. Cannot fail.
 */
const char *tw__podpatch_quoted(const char *v, char out[TW_TEXT_SHOWN_SIZE]);

/*
 * Member name of o when it has the cJSON type want (cJSON_Object,
 * cJSON_Array); NULL when o is not an object or the member is absent or
 * null. Sets *bad when the member is there with another type.
 */
const cJSON *tw__podpatch_member(const cJSON *o, const char *name, int want, bool *bad);

/* The string member name of o, or NULL (absent, not a string, o not an object). */
const char *tw__podpatch_member_string(const cJSON *o, const char *name);

/* True when some element of a (an array, or NULL) has the string "name" name. */
bool tw__podpatch_has_name(const cJSON *a, const char *name);

/*
 * True when every element of a (NULL: none) is an object with a non-empty
 * string "name", as the API server requires of containers, volumes and env.
 */
bool tw__podpatch_named_objects(const cJSON *a);

/* Compares two paths ignoring trailing slashes. */
bool tw__podpatch_same_path(const char *a, const char *b);

/*
 * A new volume mount {"name":name,"mountPath":path} with "readOnly":true
 * when ro; NULL when out of memory. Caller frees with cJSON_Delete.
 */
cJSON *tw__podpatch_mount_json(const char *name, const char *path, bool ro);

/*
 * Renders item as compact JSON text in malloc'd storage (caller frees with
 * free()). Takes item, even on failure; NULL item or out of memory: NULL.
 */
char *tw__podpatch_render(cJSON *item);

/* Settles r's outcome as o and sets *done: a builder's checks stop there. Cannot fail. */
void tw__podpatch_settle(tw_podpatch_result *r, tw_podpatch_outcome o, bool *done);

/*
 * Reads the pod's metadata, its labels and annotations, and its spec into
 * the out-parameters (NULL when absent or null). When one has an unexpected
 * type, or pod is not an object, settles r as TW_PODPATCH_INVALID with a
 * warning and sets *done. Returns 0 or TW_ENOMEM.
 */
int tw__podpatch_read_meta(const cJSON *pod, const cJSON **meta, const cJSON **labels,
                           const cJSON **anns, const cJSON **spec, tw_podpatch_result *r,
                           bool *done);

/*
 * The rack for this pod: the topowire.io/rack annotation of anns (borrowed)
 * when it is valid, else dflt; an invalid annotation adds a warning. Sets
 * *rack (pointing into anns or at dflt). Returns 0 or TW_ENOMEM.
 */
int tw__podpatch_rack(const cJSON *anns, const char *dflt, tw_podpatch_result *r,
                      const char **rack);

/* The topowire.io/injected mark, rendered once for many builds. */
typedef struct tw__podpatch_mark {
    char *version; /* the annotation's value as a JSON string */
    char *path;    /* /metadata/annotations/ + the key as a pointer token */
} tw__podpatch_mark;

/* Renders the mark for version (borrowed). Returns 0 or TW_ENOMEM; free with _mark_free. */
int tw__podpatch_mark_init(tw__podpatch_mark *m, const char *version);

/* Frees the mark's texts. NULL-safe. */
void tw__podpatch_mark_free(tw__podpatch_mark *m);

/*
 * Adds to p the operation that sets the annotation topowire.io/injected on
 * pod (borrowed), creating metadata.annotations, or metadata, when the pod
 * has none. Returns 0 or the errors of tw_jsonpatch_add_json.
 */
int tw__podpatch_mark_add(const tw__podpatch_mark *m, tw_jsonpatch *p, const cJSON *pod);

#endif
