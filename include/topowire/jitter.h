/* jitter.h - random spread for retry backoff. */
#ifndef TOPOWIRE_JITTER_H
#define TOPOWIRE_JITTER_H

/*
 * A uniform-enough random number in [0, max] (0 when max <= 0), for
 * spreading retries so that many clients do not retry in step. Not for
 * anything secret. Each thread has its own generator (xorshift64), seeded
 * once on first use from getrandom(), or from the clock, the process and
 * thread ids when that fails; so the call is thread-safe without a lock.
 * Cannot fail.
 */
long tw_jitter(long max);

#endif
