/* podinfo.h - the kubelet's Downward-API volume files (`key="value"` lines). */
#ifndef TOPOWIRE_PODINFO_H
#define TOPOWIRE_PODINFO_H

#include "topowire/kv.h"

/*
 * Reads and parses the Downward-API `labels` or `annotations` file at path,
 * following symlinks (the kubelet swaps these files through a `..data`
 * symlink).
 *
 * The format: one `key="value"` a line, the value quoted as Go's %q does and
 * unquoted as strconv.Unquote does (\a \b \f \n \r \t \v \\ \" \xHH, octal
 * \NNN, \uHHHH, \UHHHHHHHH; raw bytes pass through), lines separated by '\n',
 * the last one possibly followed by one '\n'. The key is everything before
 * the first '='. Refused with TW_EPARSE and the line number in err: a line
 * without '=', an empty key, an unquoted value, text after the closing quote,
 * an unknown escape, a surrogate or a code point past U+10FFFF, a decoded
 * NUL, an empty line, a repeated key, and a '\r' before the '\n' (the kubelet
 * never writes one, so it is reported rather than stripped). An empty file is
 * zero pairs.
 *
 * Adds every pair to *out (copies; the caller frees the list); a key already
 * in *out takes the file's value. Returns 0, TW_ENOTFOUND when the file or a
 * directory on its path does not exist, TW_EIO (unreadable, or not a regular
 * file), TW_ETOOBIG over 1 MiB, TW_EPARSE or TW_ENOMEM; err names the path.
 * On failure *out is left exactly as it was.
 */
int tw_podinfo_read(const char *path, tw_kvlist *out, char *err);

#endif
