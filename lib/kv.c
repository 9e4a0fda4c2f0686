/* kv.c - ordered string key/value list. */
#include <stdlib.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/kv.h"

int tw_kvlist_set(tw_kvlist *l, const char *key, const char *value)
{
    char *v = strdup(value);
    if (v == NULL)
        return TW_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            free(l->items[i].value);
            l->items[i].value = v;
            return TW_OK;
        }
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(v);
        return TW_ENOMEM;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        tw_kv *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            free(k);
            free(v);
            return TW_ENOMEM;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n].key = k;
    l->items[l->n].value = v;
    l->n++;
    return TW_OK;
}

const char *tw_kvlist_get(const tw_kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

void tw_kvlist_free(tw_kvlist *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
    l->cap = 0;
}
