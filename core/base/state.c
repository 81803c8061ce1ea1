/* state.c: atomic, durable files under <data_dir>/state (see state.h). */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#define STATE_MAX_FILE (16u << 20)
#define TMP_PREFIX ".tmp-"

struct state {
    int dfd;                 /* the state directory, O_DIRECTORY */
    char *path;
    unsigned long seq;       /* temp file names of this handle */
};

int state_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.' || strlen(name) > 200 ||
        strstr(name, "..") != NULL) {
        return 0;
    }
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static int bad_name(const state *st, const char *name, drv_err *err)
{
    return drv_err_set(err, DRV_EINTERNAL, "state: invalid name in \"%s\": \"%s\"",
                       st ? st->path : "", name ? name : "");
}

/* Removes the temp files of writers that are gone (crashed mid-write). */
static void sweep_tmp(state *st)
{
    int fd = openat(st->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) {
            continue;
        }
        long pid = strtol(e->d_name + strlen(TMP_PREFIX), NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            unlinkat(st->dfd, e->d_name, 0);
        }
    }
    closedir(d);
}

static int open_state(const char *data_dir, int create, state **out, drv_err *err)
{
    char path[PATH_MAX];
    struct stat sb;

    *out = NULL;
    if (data_dir == NULL || data_dir[0] == '\0') {
        return drv_err_set(err, DRV_EINTERNAL, "state: no data dir");
    }
    if (snprintf(path, sizeof path, "%s/state", data_dir) >= (int)sizeof path) {
        return drv_err_set(err, DRV_EIO, "state: path too long: \"%s\"", data_dir);
    }
    if (create) {
        /* its parents as mkdir -p makes them (0755); itself private */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", data_dir);
        char *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent) {
            *slash = '\0';
            int rc = fs_mkdir_p(parent, 0755, err);
            if (rc < 0) {
                return rc;
            }
        }
        if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
            return drv_err_set(err, DRV_EIO, "state: cannot create \"%s\": %s", data_dir,
                               strerror(errno));
        }
    }
    /* the data dir itself may be a symlink the operator made */
    int ddfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ddfd < 0) {
        if (!create && errno == ENOENT) {
            return 0;
        }
        return drv_err_set(err, DRV_EIO, "state: cannot open \"%s\": %s", data_dir, strerror(errno));
    }
    if (create && mkdirat(ddfd, "state", 0700) < 0 && errno != EEXIST) {
        int e = errno;
        close(ddfd);
        return drv_err_set(err, DRV_EIO, "state: cannot create \"%s\": %s", path, strerror(e));
    }
    int dfd = openat(ddfd, "state", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(ddfd);
    if (dfd < 0) {
        if (!create && e == ENOENT) {
            return 0;
        }
        if (e == ELOOP || e == ENOTDIR) {
            return drv_err_set(err, DRV_ECONFIG,
                               "state: not a directory (symbolic links are refused here): \"%s\"", path);
        }
        return drv_err_set(err, DRV_EIO, "state: cannot open \"%s\": %s", path, strerror(e));
    }
    if (fstat(dfd, &sb) < 0 || sb.st_uid != geteuid()) {
        close(dfd);
        return drv_err_set(err, DRV_ECONFIG, "state: directory not owned by the user running "
                           "drvctl (uid %u): \"%s\"", (unsigned)geteuid(), path);
    }
    if ((sb.st_mode & 07077) != 0 && create && fchmod(dfd, 0700) < 0) {
        e = errno;
        close(dfd);
        return drv_err_set(err, DRV_ECONFIG, "state: cannot make directory private (0700): %s: "
                           "\"%s\"", strerror(e), path);
    }
    state *st = drv_xcalloc(1, sizeof *st);
    st->dfd = dfd;
    st->path = drv_xstrdup(path);
    if (create) {
        sweep_tmp(st);
    }
    *out = st;
    return 0;
}

int state_open(const char *data_dir, state **out, drv_err *err)
{
    return open_state(data_dir, 1, out, err);
}

int state_open_existing(const char *data_dir, state **out, drv_err *err)
{
    return open_state(data_dir, 0, out, err);
}

int state_open_sub(state *parent, const char *sub, int create, state **out, drv_err *err)
{
    struct stat sb;
    char path[PATH_MAX];

    *out = NULL;
    if (!state_name_ok(sub)) {
        return bad_name(parent, sub, err);
    }
    snprintf(path, sizeof path, "%s/%s", parent->path, sub);
    if (create && mkdirat(parent->dfd, sub, 0700) < 0 && errno != EEXIST) {
        return drv_err_set(err, DRV_EIO, "state: cannot create \"%s\": %s", path, strerror(errno));
    }
    int dfd = openat(parent->dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        if (!create && e == ENOENT) {
            return 0;
        }
        if (e == ELOOP || e == ENOTDIR) {
            return drv_err_set(err, DRV_ECONFIG,
                               "state: not a directory (symbolic links are refused here): \"%s\"", path);
        }
        return drv_err_set(err, DRV_EIO, "state: cannot open \"%s\": %s", path, strerror(e));
    }
    if (fstat(dfd, &sb) < 0 || sb.st_uid != geteuid()) {
        close(dfd);
        return drv_err_set(err, DRV_ECONFIG, "state: directory not owned by the user running "
                           "drvctl (uid %u): \"%s\"", (unsigned)geteuid(), path);
    }
    if ((sb.st_mode & 07077) != 0 && fchmod(dfd, 0700) < 0) {
        int e = errno;
        close(dfd);
        return drv_err_set(err, DRV_ECONFIG, "state: cannot make directory private (0700): %s: "
                           "\"%s\"", strerror(e), path);
    }
    state *st = drv_xcalloc(1, sizeof *st);
    st->dfd = dfd;
    st->path = drv_xstrdup(path);
    if (create) {
        sweep_tmp(st);
    }
    *out = st;
    return 0;
}

void state_close(state *st)
{
    if (st == NULL) {
        return;
    }
    close(st->dfd);
    free(st->path);
    free(st);
}

const char *state_path(const state *st)
{
    return st ? st->path : "";
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int state_write(state *st, const char *name, const void *data, size_t len, drv_err *err)
{
    char tmp[256];

    if (!state_name_ok(name)) {
        return bad_name(st, name, err);
    }
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, sizeof tmp, TMP_PREFIX "%ld-%lu-%s", (long)getpid(), st->seq++, name);
        fd = openat(st->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        return drv_err_set(err, DRV_EIO, "state: cannot create a temp file in \"%s\": %s",
                           st->path, strerror(errno));
    }
    const char *step = "write";
    int ok = write_all(fd, data, len) == 0;
    if (ok) {
        step = "fsync";
        ok = fsync(fd) == 0;
    }
    int e = errno;
    if (close(fd) < 0 && ok) {
        ok = 0;
        e = errno;
        step = "close";
    }
    if (ok) {
        step = "rename";
        ok = renameat(st->dfd, tmp, st->dfd, name) == 0;
        e = errno;
    }
    if (!ok) {
        unlinkat(st->dfd, tmp, 0);
        return drv_err_set(err, DRV_EIO, "state: %s failed: %s: \"%s/%s\"", step, strerror(e),
                           st->path, name);
    }
    if (fsync(st->dfd) < 0) {
        return drv_err_set(err, DRV_EIO, "state: fsync of the directory failed: %s: \"%s\"",
                           strerror(errno), st->path);
    }
    return 0;
}

int state_read(state *st, const char *name, buf *out, drv_err *err)
{
    struct stat sb;
    char chunk[8192];

    if (!state_name_ok(name)) {
        return bad_name(st, name, err);
    }
    int fd = openat(st->dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return drv_err_set(err, DRV_ENOTFOUND, "state: no such file: \"%s/%s\"", st->path, name);
        }
        return drv_err_set(err, DRV_EIO, "state: cannot open: %s: \"%s/%s\"", strerror(errno),
                           st->path, name);
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size > STATE_MAX_FILE) {
        close(fd);
        return drv_err_set(err, DRV_EIO, "state: not a regular file of at most 16 MiB: \"%s/%s\"",
                           st->path, name);
    }
    size_t total = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            return drv_err_set(err, DRV_EIO, "state: read failed: %s: \"%s/%s\"", strerror(e),
                               st->path, name);
        }
        if (r == 0) {
            break;
        }
        total += (size_t)r;
        if (total > STATE_MAX_FILE) {
            close(fd);
            return drv_err_set(err, DRV_EIO, "state: file over 16 MiB: \"%s/%s\"", st->path, name);
        }
        buf_append(out, chunk, (size_t)r);
    }
    close(fd);
    return 0;
}

int state_remove(state *st, const char *name, drv_err *err)
{
    if (!state_name_ok(name)) {
        return bad_name(st, name, err);
    }
    if (unlinkat(st->dfd, name, 0) < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return drv_err_set(err, DRV_EIO, "state: cannot remove: %s: \"%s/%s\"", strerror(errno),
                           st->path, name);
    }
    if (fsync(st->dfd) < 0) {
        return drv_err_set(err, DRV_EIO, "state: fsync of the directory failed: %s: \"%s\"",
                           strerror(errno), st->path);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int state_list(state *st, const char *prefix, char ***names, size_t *n, drv_err *err)
{
    size_t cap = 16, len = 0, plen = prefix ? strlen(prefix) : 0;
    *names = NULL;
    *n = 0;
    int fd = openat(st->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return drv_err_set(err, DRV_EIO, "state: cannot list: %s: \"%s\"", strerror(e), st->path);
    }
    char **v = drv_xcalloc(cap, sizeof *v);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!state_name_ok(e->d_name) || (plen > 0 && strncmp(e->d_name, prefix, plen) != 0)) {
            continue;
        }
        if (len + 1 >= cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                abort();
            }
            v = nv;
        }
        v[len++] = drv_xstrdup(e->d_name);
    }
    closedir(d);
    v[len] = NULL;
    qsort(v, len, sizeof *v, cmp_str);
    *names = v;
    *n = len;
    return 0;
}

void state_list_free(char **names)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        free(names[i]);
    }
    free(names);
}

int state_lock(state *st, const char *name, int *fd, drv_err *err)
{
    char lname[256];
    *fd = -1;
    if (!state_name_ok(name) || snprintf(lname, sizeof lname, "%s.lock", name) >= (int)sizeof lname) {
        return bad_name(st, name, err);
    }
    int lfd = openat(st->dfd, lname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0) {
        return drv_err_set(err, DRV_EIO, "state: cannot open lock: %s: \"%s/%s\"", strerror(errno),
                           st->path, lname);
    }
    while (flock(lfd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(lfd);
            return drv_err_set(err, DRV_EIO, "state: cannot lock: %s: \"%s/%s\"", strerror(e),
                               st->path, lname);
        }
    }
    *fd = lfd;
    return 0;
}

void state_unlock(int fd)
{
    if (fd >= 0) {
        close(fd);
    }
}
