/* http_int.h - tw__ hooks of http.c for its unit tests and fuzzers. */
#ifndef TOPOWIRE_HTTP_INT_H
#define TOPOWIRE_HTTP_INT_H

/*
 * Parses a Retry-After value: delta-seconds or an HTTP date (relative to
 * now_epoch_s; a date in the past gives 0). Returns seconds (>= 0, at most
 * one day: longer waits are clamped to that) or -1 when unparseable
 * (including negative numbers).
 */
long tw__http_parse_retry_after(const char *value, long now_epoch_s);

#endif
