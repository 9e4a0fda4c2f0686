/* clock.c - monotonic milliseconds and deadlines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topowire/clock.h"
#include "topowire/error.h"

uint64_t tw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tw_deadline_in(long timeout_ms)
{
    return tw_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
}

long tw_remaining_ms(uint64_t deadline)
{
    uint64_t now = tw_now_ms();
    return deadline > now ? (long)(deadline - now) : 0;
}

struct timespec tw_monotonic_in(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void tw_sleep_ms(long ms, uint64_t deadline)
{
    long left = tw_remaining_ms(deadline);
    if (ms > left)
        ms = left;
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int tw_duration_parse(const char *s, long *ms)
{
    /* Decimal only: strtod() alone would take white space, hex, "inf" and "nan". */
    if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '.'))
        return TW_EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0 || (size_t)(end - s) > strspn(s, "0123456789.eE+-"))
        return TW_EINVAL;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000.0;
    else if (strcmp(end, "ms") == 0)
        scale = 1.0;
    else if (strcmp(end, "m") == 0)
        scale = 60000.0;
    else
        return TW_EINVAL;
    double r = v * scale;
    if (!(r <= 86400000.0))
        return TW_EINVAL;
    *ms = (long)(r + 0.5);
    return TW_OK;
}
