/*
 * test_rmtree.c: removal of a tree untrusted code wrote (core/base/rmtree.c):
 * symlinks out of the tree (a canary outside must survive), symlink loops,
 * read-only and unreadable directories, a 3000-level tree, a mount point
 * inside (a tmpfs in a private mount namespace, as root), files of another
 * uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rmtree.h"
#include "test.h"

static char base[64];
static int reports;
static char last_report[PATH_MAX];

static void on_report(void *ud, const char *path, const char *why)
{
    (void)ud;
    reports++;
    snprintf(last_report, sizeof last_report, "%s: %s", path, why);
}

static void fresh(void)
{
    snprintf(base, sizeof base, "/tmp/drv-rmtree-test.XXXXXX");
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    reports = 0;
    last_report[0] = '\0';
}

static void cleanup(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", base, base);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", base);
    }
}

static void put(const char *rel, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    if (f == NULL) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void dir(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (mkdir(p, 0755) < 0) {
        perror(p);
        exit(2);
    }
}

static void link_to(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (symlink(target, p) < 0) {
        perror(p);
        exit(2);
    }
}

static int exists(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", base, rel);
    return lstat(p, &st) == 0;
}

static int rm(const char *rel, rmtree_result *res, drv_err *err)
{
    int fd = open(base, O_RDONLY | O_DIRECTORY);
    int rc = rmtree_at(fd, rel, on_report, NULL, res, err);
    close(fd);
    return rc;
}

TEST(plain_tree)
{
    rmtree_result res;
    drv_err err;
    fresh();
    dir("t");
    dir("t/a");
    dir("t/a/b");
    put("t/a/b/f", "hello");
    put("t/g", "x");
    ASSERT_INT_EQ(rm("t", &res, &err), 0);
    ASSERT(!exists("t"));
    ASSERT_INT_EQ(res.entries, 5);
    ASSERT_INT_EQ(res.kept, 0);
    ASSERT_INT_EQ(reports, 0);
    cleanup();
}

TEST(missing_is_fine)
{
    rmtree_result res;
    drv_err err;
    fresh();
    ASSERT_INT_EQ(rm("nothing", &res, &err), 0);
    ASSERT_INT_EQ(res.entries, 0);
    cleanup();
}

/* Symlinks to a directory and a file outside, at every level, and the top
 * itself a symlink: the canaries survive, the links go. */
TEST(symlinks_not_followed)
{
    rmtree_result res;
    drv_err err;
    fresh();
    dir("outside");
    put("outside/canary", "alive");
    dir("t");
    dir("t/d");
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/outside", base);
    link_to(target, "t/out");
    link_to(target, "t/d/out");
    link_to("../../outside/canary", "t/d/canary");
    link_to("/", "t/root");
    ASSERT_INT_EQ(rm("t", &res, &err), 0);
    ASSERT(!exists("t"));
    ASSERT(exists("outside/canary"));
    ASSERT(exists("outside"));
    /* a top that is a symlink is removed itself */
    link_to(target, "top");
    ASSERT_INT_EQ(rm("top", &res, &err), 0);
    ASSERT(!exists("top"));
    ASSERT(exists("outside/canary"));
    cleanup();
}

TEST(symlink_loops)
{
    rmtree_result res;
    drv_err err;
    fresh();
    dir("t");
    dir("t/a");
    link_to("a", "t/a/self");
    link_to("..", "t/a/up");
    link_to("loop2", "t/loop1");
    link_to("loop1", "t/loop2");
    link_to(".", "t/dot");
    ASSERT_INT_EQ(rm("t", &res, &err), 0);
    ASSERT(!exists("t"));
    cleanup();
}

/* Read-only and unreadable directories (a task's chmod 0 / 0555): made
 * enterable and writable through their fds, then removed. Run as an
 * unprivileged uid (root would not notice the modes). */
TEST(read_only_dirs)
{
    pid_t pid = fork();
    if (pid == 0) {
        rmtree_result res;
        drv_err err;
        char p[PATH_MAX];
        if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) {
            _exit(10);
        }
        fresh();
        dir("t");
        dir("t/ro");
        put("t/ro/f", "x");
        dir("t/none");
        dir("t/none/inner");
        put("t/none/inner/f", "y");
        snprintf(p, sizeof p, "%s/t/none/inner", base);
        chmod(p, 0);
        snprintf(p, sizeof p, "%s/t/none", base);
        chmod(p, 0);
        snprintf(p, sizeof p, "%s/t/ro", base);
        chmod(p, 0555);
        snprintf(p, sizeof p, "%s/t", base);
        chmod(p, 0500);
        int rc = rm("t", &res, &err);
        int ok = rc == 0 && !exists("t") && res.entries == 6;
        cleanup();
        _exit(ok ? 0 : 11);
    }
    int status = 0;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), 0);
}

/* 3000 levels: no recursion, a bounded number of open fds (levels beyond the
 * window are reopened through ".."). */
TEST(deep_tree)
{
    rmtree_result res;
    drv_err err;
    fresh();
    dir("t");
    int fd = open(base, O_RDONLY | O_DIRECTORY);
    int cur = openat(fd, "t", O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 3000; i++) {
        ASSERT(mkdirat(cur, "d", 0755) == 0);
        int fdf = openat(cur, "f", O_WRONLY | O_CREAT, 0644);
        close(fdf);
        if (i % 100 == 0) {
            ASSERT(symlinkat("/", cur, "root") == 0);
            ASSERT(mkdirat(cur, "side", 0755) == 0);
        }
        int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
        close(cur);
        cur = next;
        ASSERT(cur >= 0);
    }
    close(cur);
    close(fd);
    ASSERT_INT_EQ(rm("t", &res, &err), 0);
    ASSERT(!exists("t"));
    ASSERT_INT_EQ(res.entries, 1 + 3000 * 2 + 30 * 2);
    cleanup();
}

/* A file owned by another uid (a container's), in a directory of another
 * uid with mode 0500: root removes it. */
TEST(other_uid)
{
    rmtree_result res;
    drv_err err;
    char p[PATH_MAX];
    if (geteuid() != 0) {
        printf("     (not root: files of another uid cannot be made)\n");
        return;
    }
    fresh();
    dir("t");
    dir("t/c");
    put("t/c/f", "x");
    snprintf(p, sizeof p, "%s/t/c/f", base);
    ASSERT(chown(p, 100000, 100000) == 0);
    snprintf(p, sizeof p, "%s/t/c", base);
    ASSERT(chown(p, 100000, 100000) == 0);
    ASSERT(chmod(p, 0500) == 0);
    ASSERT_INT_EQ(rm("t", &res, &err), 0);
    ASSERT(!exists("t"));
    cleanup();
}

/* A tmpfs mounted inside (a stale pin, a bind leftover) is neither entered
 * nor removed: the canary in it survives, it is reported, and everything
 * else goes. Run in a forked child with a private mount namespace. */
TEST(mount_point_inside)
{
    if (geteuid() != 0) {
        printf("     (not root: no mount namespace)\n");
        return;
    }
    fresh();
    dir("t");
    dir("t/a");
    dir("t/a/mnt");
    put("t/a/other", "x");
    dir("t/b");
    pid_t pid = fork();
    if (pid == 0) {
        char p[PATH_MAX];
        rmtree_result res;
        drv_err err;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            _exit(10);
        }
        snprintf(p, sizeof p, "%s/t/a/mnt", base);
        if (mount("tmpfs", p, "tmpfs", 0, "size=1m") < 0) {
            _exit(11);
        }
        put("t/a/mnt/canary", "alive");
        /* a bind mount of a directory of the same file system too */
        dir("t/b/bind");
        dir("src");
        put("src/canary", "alive");
        char src[PATH_MAX];
        snprintf(src, sizeof src, "%s/src", base);
        snprintf(p, sizeof p, "%s/t/b/bind", base);
        if (mount(src, p, NULL, MS_BIND, NULL) < 0) {
            _exit(12);
        }
        int rc = rm("t", &res, &err);
        if (rc != DRV_EIO || res.kept < 2) {
            _exit(13);
        }
        if (!exists("t/a/mnt/canary") || !exists("src/canary") || exists("t/a/other")) {
            _exit(14);
        }
        if (reports < 2 || strstr(last_report, "mount point") == NULL) {
            _exit(15);
        }
        /* once unmounted, the rest goes */
        umount2(p, MNT_DETACH);
        snprintf(p, sizeof p, "%s/t/a/mnt", base);
        umount2(p, MNT_DETACH);
        rc = rm("t", &res, &err);
        _exit(rc == 0 && !exists("t") && exists("src/canary") ? 0 : 16);
    }
    int status = 0;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), 0);
    cleanup();
}

/* The top directory a mount point itself: kept, nothing inside touched. */
TEST(top_mount_point)
{
    if (geteuid() != 0) {
        printf("     (not root: no mount namespace)\n");
        return;
    }
    fresh();
    dir("t");
    pid_t pid = fork();
    if (pid == 0) {
        char p[PATH_MAX];
        rmtree_result res;
        drv_err err;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            _exit(10);
        }
        snprintf(p, sizeof p, "%s/t", base);
        if (mount("tmpfs", p, "tmpfs", 0, "size=1m") < 0) {
            _exit(11);
        }
        put("t/canary", "alive");
        int rc = rm("t", &res, &err);
        _exit(rc == DRV_EIO && exists("t/canary") ? 0 : 12);
    }
    int status = 0;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), 0);
    cleanup();
}

int main(void)
{
    RUN(plain_tree);
    RUN(missing_is_fine);
    RUN(symlinks_not_followed);
    RUN(symlink_loops);
    RUN(read_only_dirs);
    RUN(deep_tree);
    RUN(other_uid);
    RUN(mount_point_inside);
    RUN(top_mount_point);
    return test_summary();
}
