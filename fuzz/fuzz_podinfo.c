/* fuzz_podinfo.c - libFuzzer target: the Downward-API file parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/kv.h"
#include "topowire/label.h"
#include "topowire/podinfo.h"

#include "../lib/podinfo_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_kvlist l = {0};
    char err[TW_ERRLEN];
    int rc = tw__podinfo_parse((const char *)data, size, &l, err);
    if (rc == TW_OK) {
        /* Every parsed pair is a C string; looking each one up finds it. */
        for (size_t i = 0; i < l.n; i++) {
            if (tw_kvlist_get(&l, l.items[i].key) == NULL)
                __builtin_trap();
            (void)tw_label_value_valid(l.items[i].value);
        }
    } else if (l.n != 0) {
        __builtin_trap(); /* a failure must leave the list as it was */
    } else if (memchr(err, '\0', TW_ERRLEN) == NULL) {
        __builtin_trap();
    }
    tw_kvlist_free(&l);
    return 0;
}
