/* text.h - untrusted text made safe to show; UTF-8 checks. */
#ifndef TOPOWIRE_TEXT_H
#define TOPOWIRE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How much of an untrusted value (a node name, a label key or value, a
 * pod's annotation) a log line or an error message quotes: TW_TEXT_SHOWN
 * bytes, then "..." when there is more. Declare the buffer as
 * `char shown[TW_TEXT_SHOWN_SIZE]`.
 */
#define TW_TEXT_SHOWN      64
#define TW_TEXT_SHOWN_SIZE (TW_TEXT_SHOWN + 4)

/* What every byte unsafe to show becomes. */
#define TW_TEXT_REPLACEMENT '?'

/*
 * Copies len bytes of untrusted text at src into dst (size bytes, always
 * NUL-terminated when size > 0) so that it is safe in a log line, an error
 * message or a JSON string: each control character (C0, DEL, a NUL inside
 * src included) and each byte that is not part of a valid UTF-8 sequence
 * becomes TW_TEXT_REPLACEMENT; valid UTF-8 is kept. Text that does not fit
 * in size - 1 bytes is cut at a character boundary to at most size - 4
 * bytes and ends with "...". dst may be src itself (the text is then made
 * safe in place). Returns dst. Cannot fail.
 */
char *tw_text_show(char *dst, size_t size, const char *src, size_t len);

/*
 * Decodes one UTF-8 sequence at s[0..n) (n > 0) strictly: no overlong
 * forms, no surrogates, nothing past U+10FFFF. Returns its length (1 to 4)
 * and sets *cp, or returns 0 when the bytes are not valid UTF-8.
 */
size_t tw_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when the n bytes at s are valid UTF-8 as tw_utf8_decode() reads it. */
bool tw_utf8_valid(const char *s, size_t n);

#endif
