/* log.h - one-line-per-event logging to stderr, as text or JSON (programs only). */
#ifndef TOPOWIRE_LOG_H
#define TOPOWIRE_LOG_H

/*
 * The library itself never logs; the programs do, through this module. Every
 * event is one line written with a single write(2), so lines from threads never
 * interleave. Callers must never pass a credential in any argument.
 */
typedef enum tw_log_level {
    TW_LOG_DEBUG = 0,
    TW_LOG_INFO = 1,
    TW_LOG_WARN = 2,
    TW_LOG_ERROR = 3,
} tw_log_level;

typedef enum tw_log_format {
    TW_LOG_TEXT = 0,
    TW_LOG_JSON = 1,
} tw_log_format;

/* Sets the program name, format and lowest level printed. Call once at start. */
void tw_log_setup(const char *prog, tw_log_format format, tw_log_level min_level);

/* Parses "text"/"json" and "debug"/"info"/"warn"/"error". Return 0 or TW_EINVAL. */
int tw_log_parse_format(const char *s, tw_log_format *out);
int tw_log_parse_level(const char *s, tw_log_level *out);

/*
 * Logs msg with key/value string pairs, terminated by NULL:
 *   tw_log_kv(TW_LOG_INFO, "source answered", "source", "imds", "zone", z, NULL);
 * Text:  2026-11-22T03:08:00.123Z info topowire-init: source answered source=imds zone=us-east-1b
 * JSON:  {"time":"...","level":"info","prog":"topowire-init","msg":"source
 * answered","source":"imds",...} A NULL value is printed as an empty string.
 */
void tw_log_kv(tw_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
