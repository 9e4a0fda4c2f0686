/* fuzz_retry_after.c - libFuzzer target: Retry-After header values. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/http.h"

#include "../lib/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY 86400L

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first 8 bytes are "now" (any epoch second at all), the rest the header value. */
    int64_t now64 = 0;
    if (size >= sizeof(now64)) {
        memcpy(&now64, data, sizeof(now64));
        data += sizeof(now64);
        size -= sizeof(now64);
    }
    long now = (long)now64;
    char *value = malloc(size + 1);
    if (value == NULL)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';

    long s = tw__http_parse_retry_after(value, now);
    if (s != -1 && (s < 0 || s > DAY))
        __builtin_trap();

    /* delta-seconds does not depend on the clock; clamped to a day, exactly. */
    size_t n = strlen(value);
    if (n > 0 && n <= 32 && strspn(value, "0123456789") == n) {
        if (tw__http_parse_retry_after(value, 0) != s)
            __builtin_trap();
        long want = 0;
        for (size_t i = 0; i < n && want <= DAY; i++)
            want = want * 10 + (value[i] - '0');
        if (s != (want > DAY ? DAY : want))
            __builtin_trap();
    }
    /* A date later than now is no shorter a wait than from a second later. */
    if (s > 0 && now < LONG_MAX) {
        long later = tw__http_parse_retry_after(value, now + 1);
        if (later < 0 || later > s)
            __builtin_trap();
    }
    free(value);
    return 0;
}
