/* list.h - split a comma-separated list, as flags and settings give them. */
#ifndef TOPOWIRE_LIST_H
#define TOPOWIRE_LIST_H

#include <stddef.h>

/* One item of a list: len bytes at p, borrowed from the list (not NUL-terminated). */
typedef struct tw_list_item {
    const char *p;
    size_t len;
} tw_list_item;

/*
 * Splits list at every ',' into at most max items, in order. Nothing is
 * trimmed: a space belongs to its item, and the caller's check of the item
 * refuses it. An empty list, an empty item ("a,,b", a leading or trailing
 * comma) and more than max items are errors, so that a typo never silently
 * drops a value.
 *
 * Returns 0 with items[0..*n) filled (pointing into list) and *n set, or
 * TW_EINVAL with err saying which rule was broken (the empty list, the
 * number of the empty item, or the limit); items and *n are written only on
 * success. Borrows list.
 */
int tw_list_split(const char *list, tw_list_item *items, size_t max, size_t *n, char *err);

#endif
