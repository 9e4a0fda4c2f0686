/* buf.h - a bounded, growable byte buffer for untrusted input. */
#ifndef TOPOWIRE_BUF_H
#define TOPOWIRE_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A tw_buf grows on demand up to `max` bytes of content; an append that would
 * pass the cap fails with TW_ETOOBIG and leaves the buffer as it was. When
 * data is not NULL it is always NUL-terminated (the terminator is not counted
 * in len and not in max). Fields are read-only for users.
 */
typedef struct tw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} tw_buf;

/* Initialises an empty buffer with the given content cap. Cannot fail. */
void tw_buf_init(tw_buf *b, size_t max);

/* Appends n bytes. Returns 0, TW_ETOOBIG past the cap, or TW_ENOMEM. */
int tw_buf_append(tw_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same errors as tw_buf_append. */
int tw_buf_puts(tw_buf *b, const char *s);

/* Appends printf-formatted text. Same errors as tw_buf_append. */
int tw_buf_printf(tw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tw_buf_vprintf(tw_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Returns the content as a C string; "" for an empty buffer (never NULL). */
const char *tw_buf_cstr(const tw_buf *b);

/* Empties the buffer but keeps its memory. */
void tw_buf_reset(tw_buf *b);

/*
 * Shortens the content to its first n bytes (keeping the memory and the
 * terminator); n at or past len leaves the buffer as it is. Cannot fail.
 */
void tw_buf_truncate(tw_buf *b, size_t n);

/*
 * Changes the content cap for the appends to come; content already held is
 * kept even when it is longer than max. Cannot fail.
 */
void tw_buf_set_max(tw_buf *b, size_t max);

/*
 * Returns the content as a malloc'd NUL-terminated string (caller frees) and
 * leaves the buffer empty; NULL only on out-of-memory.
 */
char *tw_buf_detach(tw_buf *b);

/* Frees the memory; the buffer may be used again after tw_buf_init. NULL-safe. */
void tw_buf_free(tw_buf *b);

#endif
