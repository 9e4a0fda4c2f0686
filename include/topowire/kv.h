/* kv.h - a small ordered list of string key/value pairs (labels, annotations). */
#ifndef TOPOWIRE_KV_H
#define TOPOWIRE_KV_H

#include <stddef.h>

typedef struct tw_kv {
    char *key;
    char *value;
} tw_kv;

/* Zero-initialise ({0}) before use. The list owns every string in it. */
typedef struct tw_kvlist {
    tw_kv *items;
    size_t n;
    size_t cap;
} tw_kvlist;

/*
 * Sets key to value, copying both; an existing key is overwritten in place.
 * Returns 0 or TW_ENOMEM (the list is unchanged on failure).
 */
int tw_kvlist_set(tw_kvlist *l, const char *key, const char *value);

/* Returns the value of key (borrowed from the list), or NULL when absent. */
const char *tw_kvlist_get(const tw_kvlist *l, const char *key);

/* Frees every string and the array; the list is empty afterwards. NULL-safe. */
void tw_kvlist_free(tw_kvlist *l);

#endif
