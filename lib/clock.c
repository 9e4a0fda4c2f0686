/* clock.c - monotonic milliseconds and deadlines. */
#include <errno.h>
#include <time.h>

#include "topowire/clock.h"

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
