/* fuzz_duration.c - libFuzzer target: durations such as "10s", "500ms", "1.5m". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/clock.h"
#include "topowire/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY_MS 86400000L

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 3);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    long ms = -12345;
    int rc = tw_duration_parse(s, &ms);
    if (rc == TW_OK) {
        if (ms < 0 || ms > DAY_MS)
            __builtin_trap();
        /* Only a decimal number, then "", "s", "ms" or "m", is a duration. */
        size_t num = strspn(s, "0123456789.eE+-");
        const char *unit = s + num;
        if (num == 0 || (s[0] != '.' && (s[0] < '0' || s[0] > '9')) ||
            (strcmp(unit, "") != 0 && strcmp(unit, "s") != 0 && strcmp(unit, "ms") != 0 &&
             strcmp(unit, "m") != 0))
            __builtin_trap();
        /* A bare number is seconds: the same as with "s". */
        size_t n = strlen(s);
        if (*unit == '\0') {
            s[n] = 's';
            s[n + 1] = '\0';
            long with_s = -1;
            if (tw_duration_parse(s, &with_s) != TW_OK || with_s != ms)
                __builtin_trap();
        }
    } else if (rc != TW_EINVAL || ms != -12345) {
        __builtin_trap(); /* out is written only on success */
    }
    tw_duration_parse(NULL, &ms);
    free(s);
    return 0;
}
