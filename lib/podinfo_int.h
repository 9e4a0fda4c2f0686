/* podinfo_int.h - podinfo.c's tw__ hooks for its unit tests and fuzzer; not public API. */
#ifndef TOPOWIRE_PODINFO_INT_H
#define TOPOWIRE_PODINFO_INT_H

#include <stddef.h>

#include "topowire/kv.h"

/*
 * Parses the text of a Downward-API `labels` or `annotations` file: one
 * `key="value"` a line, the value quoted as Go's %q does and unquoted as
 * strconv.Unquote does (\a \b \f \n \r \t \v \\ \" \xHH, octal \NNN, \uHHHH,
 * \UHHHHHHHH; raw bytes pass through), lines separated by '\n', the last one
 * possibly followed by one '\n'. The key is everything before the first '='.
 * Refused with TW_EPARSE and the line number in err: a line without '=', an
 * empty key, an unquoted value, text after the closing quote, an unknown
 * escape, a surrogate or a code point past U+10FFFF, a decoded NUL, an empty
 * line, a repeated key, and a '\r' before the '\n' (the kubelet never writes
 * one, so it is reported rather than stripped). An empty text is zero pairs.
 * text may be NULL when len is 0.
 *
 * Adds every pair to *out (copies; the caller frees the list); a key already
 * in *out takes the file's value. Returns 0, TW_EPARSE, TW_ETOOBIG (over
 * 1 MiB), or TW_ENOMEM; on failure *out is left exactly as it was.
 * tw_podinfo_read() is this on a file's text.
 */
int tw__podinfo_parse(const char *text, size_t len, tw_kvlist *out, char *err);

#endif
