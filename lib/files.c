/* files.c - read a whole small file; write a file atomically. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "topowire/error.h"
#include "topowire/files.h"

/* First allocation when the file's size says nothing (procfs, sysfs report 0 or 4096). */
#define READ_FIRST 4096

/* Grows *buf from *cap to at least want bytes, wiping the old block. */
static int grow(char **buf, size_t *cap, size_t want)
{
    size_t ncap = *cap ? *cap : READ_FIRST;
    while (ncap < want)
        ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
    char *n = malloc(ncap);
    if (n == NULL)
        return TW_ENOMEM;
    if (*buf != NULL) {
        memcpy(n, *buf, *cap);
        explicit_bzero(*buf, *cap);
        free(*buf);
    }
    *buf = n;
    *cap = ncap;
    return TW_OK;
}

int tw_file_read(const char *path, size_t max, char **out, size_t *len, char *err)
{
    if (path == NULL || path[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "no file to read");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return tw_seterr(err, TW_ENOTFOUND, "%s does not exist", path);
        return tw_seterr(err, TW_EIO, "cannot open %s: %s", path, strerror(e));
    }
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = TW_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = tw_seterr(err, TW_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = tw_seterr(err, TW_EIO, "%s is not a regular file", path);
        goto out;
    }
    /* One byte past the cap is read to tell "exactly max" from "more". */
    size_t hint = st.st_size > 0 && (size_t)st.st_size <= max ? (size_t)st.st_size + 2 : 0;
    if (hint > 0 && (rc = grow(&buf, &cap, hint)) != TW_OK)
        goto out;
    for (;;) {
        if (n + 2 > cap && (rc = grow(&buf, &cap, n + 2)) != TW_OK)
            goto out;
        size_t room = cap - n - 1;
        if (max - n < room)
            room = max - n + 1;
        ssize_t got = read(fd, buf + n, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = tw_seterr(err, TW_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            rc = tw_seterr(err, TW_ETOOBIG, "%s is larger than %zu bytes", path, max);
            goto out;
        }
    }
    if (buf == NULL && (rc = grow(&buf, &cap, 1)) != TW_OK)
        goto out;
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len != NULL)
        *len = n;
out:
    if (buf != NULL) {
        explicit_bzero(buf, cap);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Fills err with "cannot STEP PATH: errno text" and returns TW_EIO. */
static int io_fail(char *err, const char *step, const char *path, int e)
{
    return tw_seterr(err, TW_EIO, "cannot %s %s: %s", step, path, strerror(e));
}

static int write_full(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len > SSIZE_MAX ? SSIZE_MAX : len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            /* A regular file that takes nothing has no room. */
            errno = ENOSPC;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int tw_file_sync_dir(const char *dir, char *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return io_fail(err, "open the directory", dir, errno);
    int rc = TW_OK;
    if (fsync(dfd) != 0 && errno != EINVAL)
        rc = io_fail(err, "fsync the directory", dir, errno);
    close(dfd);
    return rc;
}

int tw_file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                         mode_t mode, unsigned flags, char *err)
{
    if (dir == NULL || dir[0] == '\0' || name == NULL || name[0] == '\0' ||
        strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        (data == NULL && len > 0))
        return tw_seterr(err, TW_EINVAL, "atomic write needs a directory and a plain file name");

    char tmp[PATH_MAX];
    char path[PATH_MAX];
    int n1 = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
    int n2 = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(tmp) || (size_t)n2 >= sizeof(path))
        return tw_seterr(err, TW_EINVAL, "path too long for %.64s in %.128s", name, dir);

    int rc = TW_OK;
    bool created = false;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = io_fail(err, "create a temporary file in", dir, errno);
        goto out;
    }
    created = true;
    if (write_full(fd, data, len) != 0) {
        rc = io_fail(err, "write", tmp, errno);
        goto out;
    }
    if (fchmod(fd, mode & 07777) != 0) {
        rc = io_fail(err, "set the mode of", tmp, errno);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = io_fail(err, "fsync", tmp, errno);
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0) {
        rc = io_fail(err, "close", tmp, errno);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = io_fail(err, "rename a temporary file to", path, errno);
        goto out;
    }
    created = false;
    if ((flags & TW_FILE_NO_DIRSYNC) == 0)
        rc = tw_file_sync_dir(dir, err);
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    return rc;
}
