/* files.h - read a whole small file; write a file atomically. */
#ifndef TOPOWIRE_FILES_H
#define TOPOWIRE_FILES_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads the whole file at path into a new NUL-terminated buffer, at most max
 * bytes of content. The file is opened with O_CLOEXEC (no descriptor leaks
 * into a child another thread spawns), O_NONBLOCK and O_NOCTTY, and must be a
 * regular file: a FIFO or a device could block the caller forever, so it is
 * refused before anything is read. Buffers left behind while growing are
 * wiped, so the file may hold a key or a token; the caller wipes the result
 * if it is secret.
 *
 * Returns 0 and stores the text in *out (caller frees) and its length in
 * *len when len is not NULL; a NUL inside the file is kept and counted. Out
 * parameters are written only on success. Errors: TW_ENOTFOUND (the path does
 * not exist, or a component of it is not a directory), TW_ETOOBIG (more than
 * max bytes), TW_EIO (cannot open or read, or not a regular file), TW_EINVAL
 * (no path), TW_ENOMEM. err names the path and the cause.
 */
int tw_file_read(const char *path, size_t max, char **out, size_t *len, char *err);

/* The cap for a PEM file (a certificate bundle or a key) read with tw_file_read. */
#define TW_FILE_PEM_MAX (1024 * 1024)

/* For tw_file_write_atomic: leave the directory's fsync to a later tw_file_sync_dir(). */
#define TW_FILE_NO_DIRSYNC 1u

/*
 * Writes data (len bytes, borrowed) to dir/name atomically: a temporary file
 * `.name.XXXXXX` in dir, created with O_CLOEXEC, written whole (EINTR and
 * short writes retried), fchmod(mode) (the umask does not apply, and the
 * temporary file is 0600 until then), fsync, close checked, rename over name,
 * then an fsync of dir unless flags holds TW_FILE_NO_DIRSYNC. A reader sees
 * the old file or the new one, never a part. On failure the temporary file
 * is removed and dir/name is as it was (a failed directory fsync leaves the
 * new file in place but not known to be durable).
 *
 * Returns 0, TW_EIO (err names the step and the errno text) or TW_EINVAL (no
 * dir, a name that is empty, "." or "..", or holds '/', NULL data with len >
 * 0, or a path over PATH_MAX).
 */
int tw_file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                         mode_t mode, unsigned flags, char *err);

/*
 * fsyncs the directory dir, so that renames into it are durable. A file
 * system that cannot fsync a directory (EINVAL) counts as synced. Returns 0
 * or TW_EIO.
 */
int tw_file_sync_dir(const char *dir, char *err);

#endif
