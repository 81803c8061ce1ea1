/* test_pin.c: bind sources opened beneath a root without following
 * symlinks, pinned by a bind mount (needs root, as drvctl run does), and
 * released; the data dir made private. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pin.h"
#include "test.h"

static char base[64];          /* the test's temp dir */
static char root[128];         /* base/root: what binds resolve beneath */

static void path_of(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", base, rel);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    return fclose(f);
}

static int is_mounted(const char *path)
{
    char line[4096];
    int found = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char mp[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0) {
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void setup(void)
{
    char p[256];
    snprintf(base, sizeof base, "/tmp/drvctl-test-pin.XXXXXX");
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(root, sizeof root, "%s/root", base);
    mkdir(root, 0755);
    path_of(p, sizeof p, "root/data");
    mkdir(p, 0755);
    path_of(p, sizeof p, "root/data/x");
    mkdir(p, 0755);
    path_of(p, sizeof p, "root/data/x/marker");
    write_file(p, "inside\n");
    path_of(p, sizeof p, "root/data/file");
    write_file(p, "a file\n");
    path_of(p, sizeof p, "root/link");           /* link -> / */
    if (symlink("/", p) < 0) {
        perror("symlink");
    }
    path_of(p, sizeof p, "root/data/inner");     /* a relative link inside */
    if (symlink("x", p) < 0) {
        perror("symlink");
    }
    path_of(p, sizeof p, "binds");
    mkdir(p, 0700);
}

TEST(opens_a_directory_beneath_the_root)
{
    drv_err e;
    int fd = pin_open(root, "data/x", 0, &e);
    ASSERT(fd >= 0);
    struct stat st;
    ASSERT_INT_EQ(0, fstat(fd, &st));
    ASSERT(S_ISDIR(st.st_mode));
    close(fd);
    fd = pin_open(root, "", 0, &e);              /* the root itself */
    ASSERT(fd >= 0);
    close(fd);
    fd = pin_open(root, "./data//file", 0, &e);
    ASSERT(fd >= 0);
    close(fd);
}

TEST(refuses_symlinks_anywhere_in_the_path)
{
    drv_err e;
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "link", 0, &e));
    ASSERT(strstr(e.msg, "symbolic link") != NULL);
    ASSERT(strstr(e.msg, "/root/link\"") != NULL);
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "link/etc", 0, &e));
    ASSERT(strstr(e.msg, "/root/link\"") != NULL);
    /* even a link that stays inside */
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "data/inner", 0, &e));
    /* and with create, nothing is made behind a link */
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "link/new-dir", 1, &e));
    ASSERT(access("/new-dir", F_OK) != 0);
}

TEST(refuses_dotdot)
{
    drv_err e;
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "data/../../", 0, &e));
    ASSERT(strstr(e.msg, "\"..\"") != NULL);
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "..", 0, &e));
}

TEST(missing_sources)
{
    drv_err e;
    char p[256];
    ASSERT_INT_EQ(DRV_ETASK, pin_open(root, "data/missing/deeper", 0, &e));
    ASSERT(strstr(e.msg, "does not exist") != NULL);
    int fd = pin_open(root, "data/made/deeper", 1, &e);
    ASSERT(fd >= 0);
    close(fd);
    path_of(p, sizeof p, "root/data/made/deeper");
    struct stat st;
    ASSERT_INT_EQ(0, lstat(p, &st));
    ASSERT(S_ISDIR(st.st_mode));
    /* through a file */
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "data/file/x", 1, &e));
}

TEST(refuses_special_files)
{
    drv_err e;
    char p[256];
    path_of(p, sizeof p, "root/data/fifo");
    ASSERT_INT_EQ(0, mkfifo(p, 0600));
    ASSERT_INT_EQ(DRV_EDENIED, pin_open(root, "data/fifo", 0, &e));
    ASSERT(strstr(e.msg, "neither a directory nor a regular file") != NULL);
}

TEST(pin_survives_a_swap_and_is_released)
{
    drv_err e;
    char staging[256], x[256], moved[256], seen[512];
    path_of(staging, sizeof staging, "binds/a-0-0");
    path_of(x, sizeof x, "root/data/x");
    path_of(moved, sizeof moved, "root/data/x.moved");
    ASSERT_INT_EQ(0, pin_bind(root, "data/x", 0, staging, &e));
    ASSERT_INT_EQ(1, is_mounted(staging));
    /* the attack: x becomes a link to / after the pin */
    ASSERT_INT_EQ(0, rename(x, moved));
    ASSERT_INT_EQ(0, symlink("/", x));
    snprintf(seen, sizeof seen, "%s/marker", staging);
    ASSERT_INT_EQ(0, access(seen, F_OK));
    snprintf(seen, sizeof seen, "%s/etc", staging);
    ASSERT(access(seen, F_OK) != 0);
    /* release: unmounted and gone; twice is fine */
    ASSERT_INT_EQ(0, pin_release(staging, &e));
    ASSERT_INT_EQ(0, is_mounted(staging));
    ASSERT(access(staging, F_OK) != 0);
    ASSERT_INT_EQ(0, pin_release(staging, &e));
    /* the original is untouched */
    snprintf(seen, sizeof seen, "%s/marker", moved);
    ASSERT_INT_EQ(0, access(seen, F_OK));
    unlink(x);
    ASSERT_INT_EQ(0, rename(moved, x));
}

TEST(pins_a_file)
{
    drv_err e;
    char staging[256];
    path_of(staging, sizeof staging, "binds/a-0-1");
    ASSERT_INT_EQ(0, pin_bind(root, "data/file", 0, staging, &e));
    FILE *f = fopen(staging, "r");
    ASSERT(f != NULL);
    char line[32] = "";
    ASSERT(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    ASSERT(strcmp(line, "a file\n") == 0);
    ASSERT_INT_EQ(0, pin_release(staging, &e));
    ASSERT(access(staging, F_OK) != 0);
}

TEST(refused_pins_leave_nothing)
{
    drv_err e;
    char staging[256];
    path_of(staging, sizeof staging, "binds/a-0-2");
    ASSERT_INT_EQ(DRV_EDENIED, pin_bind(root, "link", 1, staging, &e));
    ASSERT(access(staging, F_OK) != 0);
    /* an existing staging path is never reused */
    ASSERT_INT_EQ(0, mkdir(staging, 0700));
    ASSERT(pin_bind(root, "data/x", 0, staging, &e) < 0);
    ASSERT_INT_EQ(0, is_mounted(staging));
    rmdir(staging);
}

/* not root: the pin is refused, with the reason, and nothing is left */
TEST(refused_without_mount_rights)
{
    drv_err e;
    char staging[256];
    path_of(staging, sizeof staging, "binds/a-0-3");
    ASSERT_INT_EQ(DRV_EDENIED, pin_bind(root, "data/x", 0, staging, &e));
    ASSERT(strstr(e.msg, "mount(2) is not permitted") != NULL);
    ASSERT(access(staging, F_OK) != 0);
}

TEST(private_dirs)
{
    drv_err e;
    char d[256], l[256];
    struct stat st;
    path_of(d, sizeof d, "data/alloc");
    ASSERT_INT_EQ(0, pin_private_dir(d, 0, &e));
    ASSERT_INT_EQ(0, stat(d, &st));
    ASSERT_INT_EQ(0700, st.st_mode & 07777);
    ASSERT_INT_EQ(0, chmod(d, 0755));
    ASSERT_INT_EQ(0, pin_private_dir(d, 0, &e));
    ASSERT_INT_EQ(0, stat(d, &st));
    ASSERT_INT_EQ(0700, st.st_mode & 07777);
    /* a symlink is refused where drvctl makes the directory itself */
    path_of(l, sizeof l, "data/state");
    ASSERT_INT_EQ(0, symlink("/tmp", l));
    ASSERT_INT_EQ(DRV_ECONFIG, pin_private_dir(l, 0, &e));
    ASSERT(strstr(e.msg, "symbolic links are refused") != NULL);
    /* a file too */
    path_of(l, sizeof l, "data/file");
    ASSERT_INT_EQ(0, write_file(l, ""));
    ASSERT_INT_EQ(DRV_ECONFIG, pin_private_dir(l, 1, &e));
}

int main(void)
{
    char cmd[128];
    setup();
    RUN(opens_a_directory_beneath_the_root);
    RUN(refuses_symlinks_anywhere_in_the_path);
    RUN(refuses_dotdot);
    RUN(missing_sources);
    RUN(refuses_special_files);
    if (geteuid() == 0) {
        RUN(pin_survives_a_swap_and_is_released);
        RUN(pins_a_file);
        RUN(refused_pins_leave_nothing);
    } else {
        RUN(refused_without_mount_rights);
    }
    RUN(private_dirs);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", base);
    }
    return test_summary();
}
