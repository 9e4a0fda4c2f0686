/* test_files.c - whole-file reads and atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testserver.h"
#include "support/tmpdir.h"
#include "topowire/error.h"
#include "topowire/files.h"

static void atomic_write_creates_and_replaces(void **state)
{
    (void)state;
    char *dir = tw_test_mkdtemp("files");
    char err[TW_ERRLEN] = "";
    size_t len;

    assert_int_equal(tw_file_write_atomic(dir, "f", "first", 5, 0644, 0, err), TW_OK);
    char *s = tw_test_slurp(dir, "f", &len);
    assert_non_null(s);
    assert_int_equal(len, 5);
    assert_memory_equal(s, "first", 5);
    free(s);
    assert_int_equal(tw_test_mode_of(dir, "f"), 0644);

    /* A reader holding the old file keeps the old bytes: the new file is a new inode. */
    char path[512];
    snprintf(path, sizeof(path), "%s/f", dir);
    int old = open(path, O_RDONLY);
    assert_true(old >= 0);
    assert_int_equal(chmod(path, 0600), 0);
    /* The umask does not narrow the mode asked for, and binary data is kept. */
    mode_t um = umask(077);
    assert_int_equal(tw_file_write_atomic(dir, "f", "se\0cond!", 8, 0640, 0, err), TW_OK);
    umask(um);
    s = tw_test_slurp(dir, "f", &len);
    assert_int_equal(len, 8);
    assert_memory_equal(s, "se\0cond!", 8);
    free(s);
    assert_int_equal(tw_test_mode_of(dir, "f"), 0640);
    char got[16] = "";
    assert_int_equal(read(old, got, sizeof(got)), 5);
    assert_memory_equal(got, "first", 5);
    close(old);

    /* Empty content is a valid file. */
    assert_int_equal(tw_file_write_atomic(dir, "empty", NULL, 0, 0644, 0, err), TW_OK);
    s = tw_test_slurp(dir, "empty", &len);
    assert_int_equal(len, 0);
    free(s);

    /* Large content goes through whole. */
    size_t big = 3u << 20;
    char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    assert_int_equal(tw_file_write_atomic(dir, "big", data, big, 0644, 0, err), TW_OK);
    s = tw_test_slurp(dir, "big", &len);
    assert_int_equal(len, big);
    assert_memory_equal(s, data, big);
    free(s);
    free(data);

    assert_int_equal(tw_test_count_entries(dir, "."), 0);
    assert_int_equal(tw_test_count_entries(dir, ""), 3);
    tw_test_rm_rf(dir);
    free(dir);
}

static void atomic_write_bad_arguments(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    assert_int_equal(tw_file_write_atomic(dir, "a/b", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(dir, "", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(dir, ".", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(dir, "..", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(dir, NULL, "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(NULL, "f", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic("", "f", "x", 1, 0644, 0, err), TW_EINVAL);
    assert_int_equal(tw_file_write_atomic(dir, "f", NULL, 1, 0644, 0, NULL), TW_EINVAL);
    char *longname = malloc(5000);
    assert_non_null(longname);
    memset(longname, 'n', 4999);
    longname[4999] = '\0';
    assert_int_equal(tw_file_write_atomic(dir, longname, "x", 1, 0644, 0, err), TW_EINVAL);
    assert_non_null(strstr(err, "too long"));
    free(longname);
    assert_int_equal(tw_test_count_entries(dir, ""), 0);
    tw_test_rm_rf(dir);
    free(dir);
}

static void atomic_write_failures_leave_nothing(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    char missing[512];

    /* The directory does not exist. */
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    assert_int_equal(tw_file_write_atomic(missing, "topology.env", "x", 1, 0644, 0, err), TW_EIO);
    assert_non_null(strstr(err, "cannot create a temporary file in"));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(tw_test_count_entries(dir, ""), 0);

    /* A directory nobody may create files in, even root. */
    assert_int_equal(tw_file_write_atomic("/proc", "topology.env", "x", 1, 0644, 0, err), TW_EIO);
    assert_non_null(strstr(err, "/proc"));
    assert_int_equal(tw_test_count_entries("/proc", ".topology.env."), 0);

    /* The rename fails: the name is taken by a non-empty directory. */
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/%s", dir, "topology.env");
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(missing, sizeof(missing), "%s/inside", sub);
    assert_int_equal(mkdir(missing, 0755), 0);
    assert_int_equal(tw_file_write_atomic(dir, "topology.env", "x", 1, 0644, 0, err), TW_EIO);
    assert_non_null(strstr(err, "cannot rename"));
    assert_int_equal(tw_test_count_entries(dir, ".topology.env."), 0);
    assert_int_equal(tw_test_count_entries(dir, ""), 1);
    tw_test_rm_rf(dir);
    free(dir);
}

static void atomic_write_short_write_fails_cleanly(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    assert_int_equal(tw_file_write_atomic(dir, "topology.env", "old", 3, 0644, 0, err), TW_OK);

    /* A file size limit makes write() stop part-way, then fail with EFBIG. */
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    small = saved;
    small.rlim_cur = 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char data[4096];
    memset(data, 'n', sizeof(data));
    int rc = tw_file_write_atomic(dir, "topology.env", data, sizeof(data), 0644, 0, err);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);

    assert_int_equal(rc, TW_EIO);
    assert_non_null(strstr(err, "cannot write"));
    assert_non_null(strstr(err, "File too large"));
    size_t len;
    char *s = tw_test_slurp(dir, "topology.env", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "old", 3);
    free(s);
    assert_int_equal(tw_test_count_entries(dir, ".topology.env."), 0);
    assert_int_equal(tw_test_count_entries(dir, ""), 1);
    tw_test_rm_rf(dir);
    free(dir);
}

/* Tries a write into the read-only dir; true when it failed as it should. */
static bool read_only_write_fails(const char *dir)
{
    char err[TW_ERRLEN] = "";
    return tw_file_write_atomic(dir, "topology.env", "x", 1, 0644, 0, err) == TW_EIO &&
           strstr(err, "Permission denied") != NULL;
}

static void atomic_write_read_only_directory(void **state)
{
    (void)state;
    char *dir = tw_test_mkdtemp("files");
    assert_int_equal(chmod(dir, 0555), 0);
    if (geteuid() != 0) {
        assert_true(read_only_write_fails(dir));
    } else {
        /* Root ignores permissions: try it as nobody in a child. */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(2);
            _exit(read_only_write_fails(dir) ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(tw_test_count_entries(dir, ""), 0);
    tw_test_rm_rf(dir);
    free(dir);
}

/* ---- reads ---- */

static char *put(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = malloc(512);
    assert_non_null(path);
    snprintf(path, 512, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void read_whole_files(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    char *text = NULL;
    size_t len = 99;

    /* Content, with a NUL inside kept and counted, and a terminator after it. */
    char *p = put(dir, "a", "ab\0cd\n", 6);
    assert_int_equal(tw_file_read(p, 6, &text, &len, err), TW_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(text, "ab\0cd\n\0", 7);
    free(text);
    text = NULL;
    /* One byte over the cap fails; len may be NULL. */
    assert_int_equal(tw_file_read(p, 5, &text, NULL, err), TW_ETOOBIG);
    assert_null(text);
    assert_non_null(strstr(err, "larger than 5 bytes"));
    free(p);

    /* An empty file is an empty string. */
    p = put(dir, "empty", "", 0);
    assert_int_equal(tw_file_read(p, 0, &text, &len, err), TW_OK);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    text = NULL;
    free(p);

    /* Larger than the first allocation, and exactly at the cap. */
    size_t big = 100000;
    char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    p = put(dir, "big", data, big);
    assert_int_equal(tw_file_read(p, big, &text, &len, err), TW_OK);
    assert_int_equal(len, big);
    assert_memory_equal(text, data, big);
    free(text);
    text = NULL;
    assert_int_equal(tw_file_read(p, big - 1, &text, &len, err), TW_ETOOBIG);
    free(p);
    free(data);

    /* A file the size hint does not describe (procfs says 0). */
    assert_int_equal(tw_file_read("/proc/self/status", 1 << 20, &text, &len, err), TW_OK);
    assert_true(len > 0);
    assert_non_null(strstr(text, "Name:"));
    free(text);
    text = NULL;
    tw_test_rm_rf(dir);
    free(dir);
}

static void read_refusals(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    char *text = NULL;
    char path[512];

    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(tw_file_read(path, 10, &text, NULL, err), TW_ENOTFOUND);
    assert_non_null(strstr(err, "does not exist"));
    /* A component that is not a directory: nothing is there either. */
    char *f = put(dir, "file", "x", 1);
    snprintf(path, sizeof(path), "%s/file/below", dir);
    assert_int_equal(tw_file_read(path, 10, &text, NULL, err), TW_ENOTFOUND);
    free(f);

    /* A directory, a FIFO with no writer (which must not block) and a device. */
    assert_int_equal(tw_file_read(dir, 10, &text, NULL, err), TW_EIO);
    assert_non_null(strstr(err, "not a regular file"));
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(tw_file_read(path, 10, &text, NULL, err), TW_EIO);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(tw_file_read("/dev/zero", 10, &text, NULL, err), TW_EIO);

    /* No path at all. */
    assert_int_equal(tw_file_read(NULL, 10, &text, NULL, err), TW_EINVAL);
    assert_int_equal(tw_file_read("", 10, &text, NULL, NULL), TW_EINVAL);
    assert_null(text);
    tw_test_rm_rf(dir);
    free(dir);
}

static void read_leaves_no_descriptor(void **state)
{
    (void)state;
    char *text = NULL;
    int before = open("/dev/null", O_RDONLY);
    assert_true(before >= 0);
    close(before);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(tw_file_read("/proc/self/status", 1 << 20, &text, NULL, NULL), TW_OK);
        free(text);
        assert_int_equal(tw_file_read("/dev/zero", 10, &text, NULL, NULL), TW_EIO);
    }
    int after = open("/dev/null", O_RDONLY);
    assert_int_equal(after, before);
    close(after);
}

static void sync_dir(void **state)
{
    (void)state;
    char err[TW_ERRLEN] = "";
    char *dir = tw_test_mkdtemp("files");
    assert_int_equal(tw_file_sync_dir(dir, err), TW_OK);
    char path[512];
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(tw_file_sync_dir(path, err), TW_EIO);
    assert_non_null(strstr(err, "cannot open the directory"));
    /* With the directory's fsync left out, the file is still written whole. */
    assert_int_equal(tw_file_write_atomic(dir, "f", "x", 1, 0600, TW_FILE_NO_DIRSYNC, err), TW_OK);
    assert_int_equal(tw_test_mode_of(dir, "f"), 0600);
    tw_test_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_whole_files),
        cmocka_unit_test(read_refusals),
        cmocka_unit_test(read_leaves_no_descriptor),
        cmocka_unit_test(atomic_write_creates_and_replaces),
        cmocka_unit_test(atomic_write_bad_arguments),
        cmocka_unit_test(atomic_write_failures_leave_nothing),
        cmocka_unit_test(atomic_write_short_write_fails_cleanly),
        cmocka_unit_test(atomic_write_read_only_directory),
        cmocka_unit_test(sync_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
