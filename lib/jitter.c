/* jitter.c - per-thread xorshift64 for retry jitter. */
#include <stdint.h>
#include <sys/random.h>
#include <unistd.h>

#include "topowire/clock.h"
#include "topowire/jitter.h"

static _Thread_local uint64_t state;

static uint64_t seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        s = tw_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)gettid() ^
            (uint64_t)(uintptr_t)&state;
    }
    /* xorshift never leaves zero. */
    return s != 0 ? s : 0x9e3779b97f4a7c15u;
}

long tw_jitter(long max)
{
    if (state == 0)
        state = seed();
    uint64_t x = state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state = x;
    return max > 0 ? (long)(x % ((uint64_t)max + 1)) : 0;
}
