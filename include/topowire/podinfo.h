/* podinfo.h - the kubelet's Downward-API volume files (`key="value"` lines). */
#ifndef TOPOWIRE_PODINFO_H
#define TOPOWIRE_PODINFO_H

#include <stddef.h>

#include "topowire/kv.h"

/*
 * Parses the text of a Downward-API `labels` or `annotations` file: one
 * `key="value"` a line, the value quoted as Go's %q does (\" \\ \n \t \xHH
 * \uHHHH \UHHHHHHHH and octal escapes), lines separated by '\n', the last
 * one possibly without a newline. Adds every pair to *out (caller frees).
 * Returns 0, TW_EPARSE with the line number in err, TW_ETOOBIG (over 1 MiB),
 * or TW_ENOMEM; on failure *out is left as it was.
 */
int tw_podinfo_parse(const char *text, size_t len, tw_kvlist *out, char *err);

/*
 * Reads and parses the file at path. Returns 0, TW_ENOTFOUND when the file
 * does not exist, TW_EIO, or the errors of tw_podinfo_parse.
 */
int tw_podinfo_read(const char *path, tw_kvlist *out, char *err);

#endif
