/* list.c - split a comma-separated list. */
#include <string.h>

#include "topowire/error.h"
#include "topowire/list.h"

int tw_list_split(const char *list, tw_list_item *items, size_t max, size_t *n, char *err)
{
    if (list == NULL || list[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the list is empty");
    /* Checked before anything is written, so that items are left alone on failure. */
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    if (count > max)
        return tw_seterr(err, TW_EINVAL, "more than %zu items", max);
    size_t i = 0;
    for (const char *p = list;; i++) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            return tw_seterr(err, TW_EINVAL, "item %zu is empty", i + 1);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    i = 0;
    for (const char *p = list;; i++) {
        size_t len = strcspn(p, ",");
        items[i] = (tw_list_item){p, len};
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *n = count;
    return TW_OK;
}
