/* test_logs.c: rotated log files and terminal echo, in a mkdtemp directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "logs.h"
#include "test.h"

static char tmpdir[256];

/* Creates a fresh empty directory for one test. */
static const char *fresh_dir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-logs-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return tmpdir;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Reads dir/name into *out; returns 0, or -1 if the file does not exist. */
static int read_file(const char *dir, const char *name, buf *out)
{
    char path[512];
    char chunk[4096];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    buf_reset(out);
    if (f == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(out, chunk, n);
    }
    fclose(f);
    return 0;
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static long file_size(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void touch(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fputs(content, f);
        fclose(f);
    }
}

static logs_opts opts(const char *dir, int max_files, size_t max_size)
{
    logs_opts o = { dir, "web", max_files, max_size, NULL };
    return o;
}

TEST(streams_go_to_separate_files)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 10, 1 << 20);
    logs *l = NULL;
    buf b = BUF_INIT;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "out 1\n", 6, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDERR, "err 1\n", 6, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDIN, "in", 2, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, " partial", 8, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(read_file(dir, "web.stdout.0", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "out 1\nin partial");
    ASSERT_INT_EQ(read_file(dir, "web.stderr.0", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "err 1\n");
    ASSERT_INT_EQ(count_files(dir), 2);
    buf_free(&b);
    remove_dir(dir);
}

TEST(files_are_created_0644)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 10, 100);
    logs *l = NULL;
    char path[512];
    struct stat st;
    mode_t old = umask(022);
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    logs_close(l);
    umask(old);
    snprintf(path, sizeof path, "%s/web.stdout.0", dir);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 0777, 0644);
    remove_dir(dir);
}

TEST(rotation_keeps_max_files_of_max_size)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 3, 10);
    logs *l = NULL;
    buf all = BUF_INIT, b = BUF_INIT, kept = BUF_INIT;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    /* 45 bytes in 7-byte writes: indexes 0..4 hold 10,10,10,10,5 bytes */
    for (int i = 0; i < 45; i += 7) {
        char chunk[8];
        int n = 45 - i < 7 ? 45 - i : 7;
        for (int j = 0; j < n; j++) {
            chunk[j] = (char)('A' + (i + j) % 26);
        }
        buf_append(&all, chunk, (size_t)n);
        ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, chunk, (size_t)n, NULL), 0);
    }
    logs_close(l);
    ASSERT(!exists(dir, "web.stdout.0"));
    ASSERT(!exists(dir, "web.stdout.1"));
    ASSERT_INT_EQ(file_size(dir, "web.stdout.2"), 10);
    ASSERT_INT_EQ(file_size(dir, "web.stdout.3"), 10);
    ASSERT_INT_EQ(file_size(dir, "web.stdout.4"), 5);
    ASSERT(!exists(dir, "web.stdout.5"));
    ASSERT_INT_EQ(file_size(dir, "web.stderr.0"), 0);
    ASSERT_INT_EQ(count_files(dir), 4);
    for (int i = 2; i <= 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "web.stdout.%d", i);
        ASSERT_INT_EQ(read_file(dir, name, &b), 0);
        buf_append(&kept, b.data, b.len);
    }
    /* the newest 25 bytes survive, in order */
    ASSERT_INT_EQ(kept.len, 25);
    ASSERT_MEM_EQ(kept.data, all.data + 20, 25);
    buf_free(&all);
    buf_free(&b);
    buf_free(&kept);
    remove_dir(dir);
}

TEST(full_file_rotates_only_on_next_byte)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 5, 10);
    logs *l = NULL;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDERR, "0123456789abcdefghij", 20, NULL), 0);
    ASSERT_INT_EQ(file_size(dir, "web.stderr.0"), 10);
    ASSERT_INT_EQ(file_size(dir, "web.stderr.1"), 10);
    ASSERT(!exists(dir, "web.stderr.2"));
    ASSERT_INT_EQ(logs_write(l, FRAME_STDERR, "k", 1, NULL), 0);
    ASSERT_INT_EQ(file_size(dir, "web.stderr.2"), 1);
    logs_close(l);
    remove_dir(dir);
}

TEST(restart_appends_to_highest_index)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 5, 10);
    logs *l = NULL;
    buf b = BUF_INIT;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "first-run-abc", 13, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(file_size(dir, "web.stdout.1"), 3);

    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "second-run", 10, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(read_file(dir, "web.stdout.0", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "first-run-");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.1", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "abcsecond-");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.2", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "run");
    buf_free(&b);
    remove_dir(dir);
}

TEST(open_prunes_indexes_beyond_max_files)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 2, 100);
    logs *l = NULL;
    buf b = BUF_INIT;
    for (int i = 0; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "web.stdout.%d", i);
        touch(dir, name, "old\n");
    }
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "new\n", 4, NULL), 0);
    logs_close(l);
    for (int i = 0; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "web.stdout.%d", i);
        ASSERT(!exists(dir, name));
    }
    ASSERT_INT_EQ(read_file(dir, "web.stdout.4", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "old\n");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.5", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "old\nnew\n");
    buf_free(&b);
    remove_dir(dir);
}

TEST(unrelated_files_are_ignored)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 2, 100);
    logs *l = NULL;
    buf b = BUF_INIT;
    touch(dir, "web2.stdout.7", "x");
    touch(dir, "web.stdout.9.bak", "x");
    touch(dir, "web.stdout.x", "x");
    touch(dir, "web.stdout.", "x");
    touch(dir, "web.stdout.-3", "x");
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "hi", 2, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(read_file(dir, "web.stdout.0", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "hi");
    ASSERT_INT_EQ(count_files(dir), 7);   /* 5 strangers + stdout.0 + stderr.0 */
    buf_free(&b);
    remove_dir(dir);
}

TEST(huge_index_neither_wraps_nor_deletes_the_newest)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 3, 4);
    logs *l = NULL;
    buf b = BUF_INIT;
    /* ULONG_MAX: once taken as the newest index, the next rotation wrapped
     * to 0 and deleted ULONG_MAX - 1 ... and the newest file went away */
    touch(dir, "web.stdout.18446744073709551615", "evil");
    touch(dir, "web.stdout.1000000000", "big");
    touch(dir, "web.stdout.1", "old");
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "abcdefgh", 8, NULL), 0);
    logs_close(l);
    /* writing went on from index 1 (the highest canonical one) */
    ASSERT_INT_EQ(read_file(dir, "web.stdout.1", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "olda");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.2", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "bcde");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.3", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "fgh");
    ASSERT(!exists(dir, "web.stdout.0"));
    /* the strangers are untouched */
    ASSERT_INT_EQ(read_file(dir, "web.stdout.18446744073709551615", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "evil");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.1000000000", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "big");
    buf_free(&b);
    remove_dir(dir);
}

TEST(leading_zero_index_is_not_counted_nor_deleted)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 2, 2);
    logs *l = NULL;
    buf b = BUF_INIT;
    touch(dir, "web.stdout.007", "seven");
    touch(dir, "web.stdout.00", "zero");
    touch(dir, "web.stdout.+3", "plus");
    touch(dir, "web.stdout. 4", "space");
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    /* 12 bytes in 2-byte files: indexes 0..5, of which 4 and 5 are kept */
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "aabbccddeeff", 12, NULL), 0);
    logs_close(l);
    ASSERT(!exists(dir, "web.stdout.0"));
    ASSERT(!exists(dir, "web.stdout.3"));
    ASSERT_INT_EQ(read_file(dir, "web.stdout.4", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "ee");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.5", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "ff");
    ASSERT_INT_EQ(read_file(dir, "web.stdout.007", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "seven");
    ASSERT(exists(dir, "web.stdout.00"));
    ASSERT(exists(dir, "web.stdout.+3"));
    ASSERT(exists(dir, "web.stdout. 4"));
    /* reopening still starts from 5, not 7 */
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "g", 1, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(read_file(dir, "web.stdout.6", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "g");
    ASSERT(!exists(dir, "web.stdout.8"));
    buf_free(&b);
    remove_dir(dir);
}

TEST(largest_canonical_index_is_accepted)
{
    const char *dir = fresh_dir();
    logs_opts o = opts(dir, 2, 100);
    logs *l = NULL;
    buf b = BUF_INIT;
    touch(dir, "web.stdout.999999999", "max");
    touch(dir, "web.stdout.999999997", "gone");
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "!", 1, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(read_file(dir, "web.stdout.999999999", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "max!");
    ASSERT(!exists(dir, "web.stdout.999999997"));
    buf_free(&b);
    remove_dir(dir);
}

TEST(missing_directory_is_an_error)
{
    logs_opts o = opts("/nonexistent/drvctl/logs", 2, 100);
    logs *l = NULL;
    drv_err err;
    drv_err_clear(&err);
    ASSERT_INT_EQ(logs_open(&l, &o, &err), DRV_EIO);
    ASSERT_CONTAINS(err.msg, "\"/nonexistent/drvctl/logs\"");
}

/* Runs `fn` with fd 1 and 2 redirected to files in dir; returns their text. */
static void capture(const char *dir, void (*fn)(const char *), buf *out, buf *err)
{
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/captured.out", dir);
    snprintf(p2, sizeof p2, "%s/captured.err", dir);
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2);
    int f1 = open(p1, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int f2 = open(p2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(f1, 1);
    dup2(f2, 2);
    close(f1);
    close(f2);
    fn(dir);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    read_file(dir, "captured.out", out);
    read_file(dir, "captured.err", err);
}

static void echo_session(const char *dir)
{
    logs_opts o = { dir, "web", 3, 1000, "web[0]" };
    logs *l = NULL;
    if (logs_open(&l, &o, NULL) != 0) {
        return;
    }
    logs_write(l, FRAME_STDOUT, "hel", 3, NULL);
    logs_write(l, FRAME_STDERR, "oops\n", 5, NULL);
    logs_write(l, FRAME_STDOUT, "lo\r\nwor", 7, NULL);
    logs_write(l, FRAME_STDOUT, "\n\nld", 4, NULL);
    logs_close(l);
}

TEST(echo_prefixes_lines_per_stream)
{
    const char *dir = fresh_dir();
    buf out = BUF_INIT, err = BUF_INIT, b = BUF_INIT;
    capture(dir, echo_session, &out, &err);
    ASSERT_STR_EQ(buf_str(&out), "web[0] | hello\nweb[0] | wor\nweb[0] | \nweb[0] | ld\n");
    ASSERT_STR_EQ(buf_str(&err), "web[0] | oops\n");
    /* the files keep the raw bytes, \r included */
    ASSERT_INT_EQ(read_file(dir, "web.stdout.0", &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "hello\r\nwor\n\nld");
    buf_free(&out);
    buf_free(&err);
    buf_free(&b);
    remove_dir(dir);
}

static void quiet_session(const char *dir)
{
    logs_opts o = { dir, "web", 3, 1000, NULL };
    logs *l = NULL;
    if (logs_open(&l, &o, NULL) != 0) {
        return;
    }
    logs_write(l, FRAME_STDOUT, "hello\n", 6, NULL);
    logs_write(l, FRAME_STDERR, "oops\n", 5, NULL);
    logs_close(l);
}

TEST(no_echo_without_prefix)
{
    const char *dir = fresh_dir();
    buf out = BUF_INIT, err = BUF_INIT;
    capture(dir, quiet_session, &out, &err);
    ASSERT_INT_EQ(out.len, 0);
    ASSERT_INT_EQ(err.len, 0);
    ASSERT_INT_EQ(file_size(dir, "web.stdout.0"), 6);
    buf_free(&out);
    buf_free(&err);
    remove_dir(dir);
}

/* [attack corpus] alloc/logs is visible to every task of the allocation as
 * /alloc/logs: a task can swap it for a symlink or plant special files under
 * the log names. drvctl (root) must never write outside the directory it
 * opened, nor into anything but a regular file. */
TEST(directory_symlink_is_refused)
{
    const char *dir = fresh_dir();
    char outside[256], link[300];
    snprintf(outside, sizeof outside, "%s", dir);
    snprintf(link, sizeof link, "%s-link", dir);
    ASSERT_INT_EQ(symlink(outside, link), 0);
    logs_opts o = opts(link, 10, 100);
    logs *l = NULL;
    drv_err err;
    drv_err_clear(&err);
    ASSERT(logs_open(&l, &o, &err) < 0);
    ASSERT(strstr(err.msg, "symbolic link") != NULL);
    ASSERT_INT_EQ(count_files(outside), 0);
    unlink(link);
    remove_dir(dir);
}

TEST(directory_swapped_after_open_is_not_followed)
{
    const char *dir = fresh_dir();
    char path[256], moved[300], target[300];
    snprintf(path, sizeof path, "%s", dir);
    snprintf(moved, sizeof moved, "%s-moved", path);
    snprintf(target, sizeof target, "%s-target", path);
    ASSERT_INT_EQ(mkdir(target, 0755), 0);
    logs_opts o = opts(path, 10, 4);
    logs *l = NULL;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    ASSERT_INT_EQ(rename(path, moved), 0);
    ASSERT_INT_EQ(symlink(target, path), 0);
    ASSERT_INT_EQ(logs_write(l, FRAME_STDOUT, "12345678", 8, NULL), 0);
    logs_close(l);
    ASSERT_INT_EQ(count_files(target), 0);
    ASSERT(exists(moved, "web.stdout.0") && exists(moved, "web.stdout.1"));
    unlink(path);
    rmdir(target);
    remove_dir(moved);
}

TEST(special_files_under_log_names_are_refused)
{
    const char *dir = fresh_dir();
    char p[512];
    /* a FIFO as the next index: the open must neither block nor write */
    logs_opts o = opts(dir, 10, 4);
    logs *l = NULL;
    drv_err err;
    ASSERT_INT_EQ(logs_open(&l, &o, NULL), 0);
    snprintf(p, sizeof p, "%s/web.stdout.1", dir);
    ASSERT_INT_EQ(mkfifo(p, 0644), 0);
    drv_err_clear(&err);
    ASSERT(logs_write(l, FRAME_STDOUT, "12345678", 8, &err) < 0);
    ASSERT(strstr(err.msg, "web.stdout.1") != NULL);
    logs_close(l);
    remove_dir(dir);
    dir = fresh_dir();
    o = opts(dir, 10, 4);
    /* a symlink as the first file */
    snprintf(p, sizeof p, "%s/web.stderr.0", dir);
    ASSERT_INT_EQ(symlink("/etc/passwd", p), 0);
    l = NULL;
    drv_err_clear(&err);
    ASSERT(logs_open(&l, &o, &err) < 0);
    ASSERT(strstr(err.msg, "symbolic link") != NULL);
    unlink(p);
    /* a hard link to another file of the directory */
    touch(dir, "secret", "s");
    char q[512];
    snprintf(q, sizeof q, "%s/secret", dir);
    ASSERT_INT_EQ(link(q, p), 0);
    l = NULL;
    drv_err_clear(&err);
    ASSERT(logs_open(&l, &o, &err) < 0);
    ASSERT(strstr(err.msg, "one link") != NULL);
    remove_dir(dir);
}

int main(void)
{
    RUN(streams_go_to_separate_files);
    RUN(files_are_created_0644);
    RUN(rotation_keeps_max_files_of_max_size);
    RUN(full_file_rotates_only_on_next_byte);
    RUN(restart_appends_to_highest_index);
    RUN(open_prunes_indexes_beyond_max_files);
    RUN(unrelated_files_are_ignored);
    RUN(huge_index_neither_wraps_nor_deletes_the_newest);
    RUN(leading_zero_index_is_not_counted_nor_deleted);
    RUN(largest_canonical_index_is_accepted);
    RUN(missing_directory_is_an_error);
    RUN(echo_prefixes_lines_per_stream);
    RUN(no_echo_without_prefix);
    RUN(directory_symlink_is_refused);
    RUN(directory_swapped_after_open_is_not_followed);
    RUN(special_files_under_log_names_are_refused);
    logs_close(NULL);
    return test_summary();
}
