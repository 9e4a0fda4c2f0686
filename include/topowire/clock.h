/* clock.h - monotonic time and absolute deadlines in milliseconds. */
#ifndef TOPOWIRE_CLOCK_H
#define TOPOWIRE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock. Cannot fail. */
uint64_t tw_now_ms(void);

/* Returns an absolute deadline timeout_ms from now. */
uint64_t tw_deadline_in(long timeout_ms);

/* Milliseconds left until deadline, 0 once it has passed. */
long tw_remaining_ms(uint64_t deadline);

/* Sleeps ms milliseconds, but never past deadline. */
void tw_sleep_ms(long ms, uint64_t deadline);

/*
 * The CLOCK_MONOTONIC time ms milliseconds from now, as a timespec for
 * pthread_cond_timedwait on a condition variable set to that clock.
 */
struct timespec tw_monotonic_in(long ms);

/*
 * Parses a duration such as "10s", "500ms", "2m", "1.5s" or a bare number of
 * seconds into milliseconds. Returns 0, or TW_EINVAL for anything else
 * (negative, empty, trailing junk, over a day).
 */
int tw_duration_parse(const char *s, long *ms);

#endif
