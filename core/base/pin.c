/* pin.c: bind sources resolved beneath a root and pinned (see pin.h). */
#include "pin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x00000008
#endif

/* The message for a component that could not be opened: the first `ulen`
 * bytes of `upto` are the relative path up to and including it. */
static int open_failure(const char *what, int e, const char *root, int ulen, const char *upto,
                        drv_err *err)
{
    switch (e) {
    case ELOOP:
        return drv_err_set(err, DRV_EDENIED, "%s has a symbolic link in its path, and "
                           "%ss are opened without following symlinks: \"%s/%.*s\"",
                           what, what, root, ulen, upto);
    case ENOTDIR:
        return drv_err_set(err, DRV_EDENIED, "%s path goes through something that "
                           "is not a directory: \"%s/%.*s\"", what, root, ulen, upto);
    case EXDEV:
        return drv_err_set(err, DRV_EDENIED, "%s leaves its root: \"%s/%.*s\"", what, root, ulen, upto);
    case ENOENT:
        return drv_err_set(err, DRV_ETASK, "%s does not exist: \"%s/%.*s\"", what, root, ulen,
                           upto);
    default:
        return drv_err_set(err, DRV_EIO, "cannot open %s: %s: \"%s/%.*s\"", what,
                           strerror(e), root, ulen, upto);
    }
}

int pin_open_as(const char *what, const char *root, const char *rel, int create, drv_err *err)
{
    const char *p = rel;

    if (strlen(rel) >= PATH_MAX) {
        return drv_err_set(err, DRV_EDENIED, "%s path too long: \"%s/%s\"", what, root, rel);
    }
    int cur = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) {
        return drv_err_set(err, DRV_EIO, "cannot open the root of %s: %s: \"%s\"",
                           what, strerror(errno), root);
    }
    for (;;) {
        while (*p == '/') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *q = strchr(p, '/');
        size_t len = q != NULL ? (size_t)(q - p) : strlen(p);
        char name[NAME_MAX + 1];
        if (len > NAME_MAX) {
            close(cur);
            return drv_err_set(err, DRV_EDENIED, "%s has a name longer than %d bytes: "
                               "\"%s/%s\"", what, NAME_MAX, root, rel);
        }
        memcpy(name, p, len);
        name[len] = '\0';
        p += len;
        if (strcmp(name, ".") == 0) {
            continue;
        }
        int ulen = (int)(p - rel);   /* rel up to this component, for messages */
        if (strcmp(name, "..") == 0) {
            close(cur);
            return drv_err_set(err, DRV_EDENIED, "%s may not contain \"..\": \"%s/%s\"",
                               what, root, rel);
        }
        const char *rest = p;
        while (*rest == '/') {
            rest++;
        }
        int last = *rest == '\0';
        /* O_DIRECTORY on the way down; no O_NOFOLLOW: with O_PATH it would
         * open a trailing symlink itself instead of refusing it (ELOOP) */
        int flags = last ? 0 : O_DIRECTORY;
        int fd = fs_openat2(cur, name, flags | O_PATH, 0);
        if (fd < 0 && errno == ENOENT && create) {
            if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                return drv_err_set(err, DRV_EIO, "cannot create %s: %s: \"%s/%.*s\"",
                                   what, strerror(e), root, ulen, rel);
            }
            fd = fs_openat2(cur, name, flags | O_PATH, 0);
        }
        if (fd < 0) {
            int e = errno;
            close(cur);
            return open_failure(what, e, root, ulen, rel, err);
        }
        close(cur);
        cur = fd;
    }
    struct stat st;
    if (fstat(cur, &st) < 0) {
        int e = errno;
        close(cur);
        return drv_err_set(err, DRV_EIO, "cannot stat %s: %s: \"%s/%s\"", what, strerror(e),
                           root, rel);
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        close(cur);
        return drv_err_set(err, DRV_EDENIED, "%s is neither a directory nor a regular "
                           "file: \"%s/%s\"", what, root, rel);
    }
    return cur;
}

int pin_open(const char *root, const char *rel, int create, drv_err *err)
{
    return pin_open_as("bind source", root, rel, create, err);
}

int pin_bind(const char *root, const char *rel, int create, const char *staging, drv_err *err)
{
    struct stat st, at;
    char proc[64];

    int fd = pin_open(root, rel, create, err);
    if (fd < 0) {
        return fd;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return drv_err_set(err, DRV_EIO, "cannot stat bind source: %s: \"%s/%s\"", strerror(e),
                           root, rel);
    }
    int is_dir = S_ISDIR(st.st_mode);
    if (is_dir) {
        if (mkdir(staging, 0700) < 0) {
            int e = errno;
            close(fd);
            return drv_err_set(err, DRV_EIO, "cannot create the staging directory for a bind: "
                               "%s: \"%s\"", strerror(e), staging);
        }
    } else {
        int sfd = open(staging, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (sfd < 0) {
            int e = errno;
            close(fd);
            return drv_err_set(err, DRV_EIO, "cannot create the staging file for a bind: %s: "
                               "\"%s\"", strerror(e), staging);
        }
        close(sfd);
    }
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (mount(proc, staging, NULL, MS_BIND, NULL) < 0) {
        int e = errno;
        close(fd);
        if (is_dir) {
            rmdir(staging);
        } else {
            unlink(staging);
        }
        if (e == EPERM || e == EACCES) {
            return drv_err_set(err, DRV_EDENIED, "cannot pin bind source \"%s/%s\": mount(2) is "
                               "not permitted here (%s); binds of paths inside the data dir need "
                               "drvctl to run as root with mount rights and are never handed to "
                               "Docker unpinned: \"%s\"", root, rel, strerror(e), staging);
        }
        return drv_err_set(err, DRV_EIO, "cannot pin bind source \"%s/%s\": mount: %s: \"%s\"",
                           root, rel, strerror(e), staging);
    }
    close(fd);
    /* the staging path now names the opened object itself */
    if (stat(staging, &at) < 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino) {
        pin_release(staging, NULL);
        return drv_err_set(err, DRV_EINTERNAL, "pinned bind source does not match what was "
                           "opened: \"%s/%s\"", root, rel);
    }
    return 0;
}

int pin_release(const char *staging, drv_err *err)
{
    if (umount2(staging, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL) {
        if (errno == ENOENT) {
            return 0;
        }
        return drv_err_set(err, DRV_EIO, "cannot unmount a pinned bind source: %s: \"%s\"",
                           strerror(errno), staging);
    }
    if (rmdir(staging) < 0) {
        if (errno == ENOTDIR) {
            if (unlink(staging) < 0 && errno != ENOENT) {
                return drv_err_set(err, DRV_EIO, "cannot remove the staging file of a bind: %s: "
                                   "\"%s\"", strerror(errno), staging);
            }
        } else if (errno != ENOENT) {
            return drv_err_set(err, DRV_EIO, "cannot remove the staging directory of a bind: "
                               "%s: \"%s\"", strerror(errno), staging);
        }
    }
    return 0;
}

/* mkdir -p of the parents of `dir` (0755). */
static int make_parents(const char *dir, drv_err *err)
{
    char tmp[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof tmp) {
        return drv_err_set(err, DRV_ECONFIG, "data dir path empty or too long: \"%s\"", dir);
    }
    memcpy(tmp, dir, len + 1);
    char *slash = strrchr(tmp, '/');
    if (slash == NULL || slash == tmp) {
        return 0;
    }
    *slash = '\0';
    if (fs_mkdir_p(tmp, 0755, err) < 0) {
        err->code = DRV_ECONFIG;
        return DRV_ECONFIG;
    }
    return 0;
}

int pin_private_dir(const char *dir, int follow, drv_err *err)
{
    struct stat st;

    if (make_parents(dir, err) < 0) {
        return DRV_ECONFIG;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        return drv_err_set(err, DRV_ECONFIG, "cannot create directory: %s: \"%s\"",
                           strerror(errno), dir);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR) {
            return drv_err_set(err, DRV_ECONFIG, "not a directory%s: \"%s\"",
                               follow ? "" : " (symbolic links are refused here)", dir);
        }
        return drv_err_set(err, DRV_ECONFIG, "cannot open directory: %s: \"%s\"", strerror(e), dir);
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return drv_err_set(err, DRV_ECONFIG, "cannot stat directory: %s: \"%s\"", strerror(e), dir);
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return drv_err_set(err, DRV_ECONFIG, "directory is owned by uid %u, not by the user "
                           "running drvctl (uid %u): \"%s\"", (unsigned)st.st_uid,
                           (unsigned)geteuid(), dir);
    }
    if ((st.st_mode & 07077) != 0) {
        if (fchmod(fd, 0700) < 0) {
            int e = errno;
            close(fd);
            return drv_err_set(err, DRV_ECONFIG, "cannot make directory private (0700): %s: "
                               "\"%s\"", strerror(e), dir);
        }
        log_info("\"%s\" had mode %04o; set to 0700 so that no other user can reach task files",
                 dir, (unsigned)(st.st_mode & 07777));
    }
    close(fd);
    return 0;
}
