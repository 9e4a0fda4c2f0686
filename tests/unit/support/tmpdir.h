/* tmpdir.h - throw-away directories for the unit tests that write files. */
#ifndef TOPOWIRE_TEST_TMPDIR_H
#define TOPOWIRE_TEST_TMPDIR_H

#include <stddef.h>
#include <sys/types.h>

/* A new empty directory /tmp/tw-<name>-XXXXXX (caller frees the path); fails the test if it cannot.
 */
char *tw_test_mkdtemp(const char *name);

/* Removes dir and everything under it, read-only parts included. */
void tw_test_rm_rf(const char *dir);

/* Number of entries of dir (not . or ..) whose name starts with prefix. */
int tw_test_count_entries(const char *dir, const char *prefix);

/* The contents of dir/name as a new string (tw_test_read_file), or NULL. */
char *tw_test_slurp(const char *dir, const char *name, size_t *len);

/* The permission bits of dir/name; fails the test when it does not exist. */
mode_t tw_test_mode_of(const char *dir, const char *name);

#endif
