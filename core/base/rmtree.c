/* rmtree.c: safe removal of a tree written by untrusted code (see rmtree.h). */
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "buf.h"

#define MAX_KEPT 100000UL     /* beyond this many kept entries: stop */

typedef struct frame {
    DIR *d;                    /* NULL: closed (beyond the window), reopened via ".." */
    dev_t dev;
    ino_t ino;
    char *name;                /* its name in the parent */
} frame;

typedef struct kept {
    dev_t dev;
    ino_t ino;                 /* the parent directory */
    char *name;
} kept;

typedef struct walk {
    frame *f;
    size_t n, cap;
    size_t open;               /* frames with d != NULL */
    kept *k;
    size_t nk, capk;
    uint64_t mnt;              /* the top's mount id (0: unknown) */
    dev_t dev;                 /* the top's device */
    rmtree_report_fn report;
    void *ud;
    rmtree_result *res;
} walk;

/* The path of entry `name` in the top frame, for reports. */
static void rel_path(const walk *w, const char *name, buf *out)
{
    buf_reset(out);
    for (size_t i = 1; i < w->n; i++) {
        buf_puts(out, w->f[i].name);
        buf_puts(out, "/");
    }
    buf_puts(out, name);
}

static void keep(walk *w, const frame *in, const char *name, const char *why)
{
    if (w->nk == w->capk) {
        w->capk = w->capk ? w->capk * 2 : 16;
        kept *nk = realloc(w->k, w->capk * sizeof *nk);
        if (nk == NULL) {
            abort();
        }
        w->k = nk;
    }
    w->k[w->nk].dev = in->dev;
    w->k[w->nk].ino = in->ino;
    w->k[w->nk].name = drv_xstrdup(name);
    w->nk++;
    w->res->kept++;
    if (why != NULL && w->report != NULL) {
        buf p = BUF_INIT;
        rel_path(w, name, &p);
        w->report(w->ud, buf_str(&p), why);
        buf_free(&p);
    }
}

static int is_kept(const walk *w, const frame *in, const char *name)
{
    for (size_t i = 0; i < w->nk; i++) {
        if (w->k[i].ino == in->ino && w->k[i].dev == in->dev && strcmp(w->k[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* statx without following: mode, dev, ino, mount id and mount-root bit. */
static int xstat(int dfd, const char *name, int flags, struct statx *sx)
{
    memset(sx, 0, sizeof *sx);
    return statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | flags,
                 STATX_TYPE | STATX_MODE | STATX_INO | STATX_BLOCKS | STATX_MNT_ID, sx);
}

static dev_t sx_dev(const struct statx *sx)
{
    return makedev(sx->stx_dev_major, sx->stx_dev_minor);
}

/* 1 when `sx` is on another file system or mount than the top. */
static int other_mount(const walk *w, const struct statx *sx)
{
    if (sx_dev(sx) != w->dev) {
        return 1;
    }
    if ((sx->stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
        (sx->stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        return 1;
    }
    return (sx->stx_mask & STATX_MNT_ID) && w->mnt != 0 && sx->stx_mnt_id != w->mnt;
}

/* Makes the directory `fd` readable, writable and searchable by its owner. */
static int make_writable(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -1;
    }
    if ((st.st_mode & 0700) == 0700) {
        errno = EACCES;
        return -1;    /* nothing to add: the failure has another cause */
    }
    return fchmod(fd, (st.st_mode & 07777) | 0700);
}

/* chmod u+rwx of the directory `name` in `dfd` without following a symlink
 * (an O_PATH fd, changed through /proc/self/fd). */
static int make_enterable(int dfd, const char *name)
{
    int pfd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        return -1;
    }
    struct stat st;
    int rc = fstat(pfd, &st);
    if (rc == 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        rc = chmod(proc, (st.st_mode & 07777) | 0700);
    }
    close(pfd);
    return rc;
}

static int unlink_retry(int dfd, const char *name, int flags)
{
    if (unlinkat(dfd, name, flags) == 0) {
        return 0;
    }
    if ((errno == EACCES || errno == EPERM) && make_writable(dfd) == 0 &&
        unlinkat(dfd, name, flags) == 0) {
        return 0;
    }
    return -1;
}

/* Opens directory `name` in `dfd`, making it enterable when needed. */
static int open_dir(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && make_enterable(dfd, name) == 0) {
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    return fd;
}

static void push(walk *w, DIR *d, const struct statx *sx, const char *name)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        frame *nf = realloc(w->f, w->cap * sizeof *nf);
        if (nf == NULL) {
            abort();
        }
        w->f = nf;
    }
    frame *f = &w->f[w->n++];
    f->d = d;
    f->dev = sx_dev(sx);
    f->ino = (ino_t)sx->stx_ino;
    f->name = drv_xstrdup(name);
    w->open++;
    if (w->open > RMTREE_OPEN_DIRS) {
        /* the oldest open frame below the window goes; reopened via ".." */
        for (size_t i = 0; i + 1 < w->n; i++) {
            if (w->f[i].d != NULL) {
                closedir(w->f[i].d);
                w->f[i].d = NULL;
                w->open--;
                break;
            }
        }
    }
}

/* Enters subdirectory `name` of the top frame. 1: entered, 0: kept. */
static int enter(walk *w, const char *name, const struct statx *sx)
{
    frame *top = &w->f[w->n - 1];
    int dfd = dirfd(top->d);
    int fd = open_dir(dfd, name);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        keep(w, top, name, strerror(errno));
        return 0;
    }
    struct statx o;
    if (xstat(fd, "", AT_EMPTY_PATH, &o) < 0 || o.stx_ino != sx->stx_ino ||
        sx_dev(&o) != sx_dev(sx)) {
        close(fd);
        keep(w, top, name, "changed while being removed");
        return 0;
    }
    if (other_mount(w, &o)) {
        close(fd);
        keep(w, top, name, "mount point: not entered");
        return 0;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        keep(w, top, name, strerror(errno));
        return 0;
    }
    push(w, d, &o, name);
    return 1;
}

/* Leaves the top frame (its entries are done) and removes it from its
 * parent. -1 when the parent cannot be found again. */
static int leave(walk *w, int parentfd, const char *top_name, drv_err *err)
{
    frame *f = &w->f[w->n - 1];
    int pfd;
    if (w->n == 1) {
        pfd = parentfd;
    } else if (w->f[w->n - 2].d != NULL) {
        pfd = dirfd(w->f[w->n - 2].d);
    } else {
        frame *p = &w->f[w->n - 2];
        int fd = openat(dirfd(f->d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct statx o;
        if (fd < 0 || xstat(fd, "", AT_EMPTY_PATH, &o) < 0 || (ino_t)o.stx_ino != p->ino ||
            sx_dev(&o) != p->dev || (p->d = fdopendir(fd)) == NULL) {
            if (fd >= 0) {
                close(fd);
            }
            return drv_err_set(err, DRV_EIO, "rmtree: a directory was moved during the "
                               "removal: stopped in \"%s\"", top_name);
        }
        w->open++;
        pfd = fd;
    }
    closedir(f->d);
    w->open--;
    char *name = f->name;
    w->n--;
    if (unlink_retry(pfd, name, AT_REMOVEDIR) == 0) {
        w->res->entries++;
    } else if (w->n > 0) {
        keep(w, &w->f[w->n - 1], name, errno == ENOTEMPTY ? NULL : strerror(errno));
    } else {
        w->res->kept++;
        if (errno != ENOTEMPTY && w->report != NULL) {
            w->report(w->ud, "", strerror(errno));
        }
    }
    free(name);
    return 0;
}

int rmtree_at(int parentfd, const char *name, rmtree_report_fn report, void *ud,
              rmtree_result *res, drv_err *err)
{
    walk w;
    struct statx sx, psx;
    int rc = 0;

    memset(res, 0, sizeof *res);
    memset(&w, 0, sizeof w);
    w.report = report;
    w.ud = ud;
    w.res = res;
    if (xstat(parentfd, name, 0, &sx) < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return drv_err_set(err, DRV_EIO, "rmtree: %s: \"%s\"", strerror(errno), name);
    }
    if (!S_ISDIR(sx.stx_mode)) {
        if (unlinkat(parentfd, name, 0) < 0 && errno != ENOENT) {
            return drv_err_set(err, DRV_EIO, "rmtree: cannot remove: %s: \"%s\"",
                               strerror(errno), name);
        }
        res->entries = 1;
        return 0;
    }
    if (xstat(parentfd, "", AT_EMPTY_PATH, &psx) < 0) {
        return drv_err_set(err, DRV_EIO, "rmtree: %s: \"%s\"", strerror(errno), name);
    }
    int fd = open_dir(parentfd, name);
    struct statx o;
    if (fd < 0 || xstat(fd, "", AT_EMPTY_PATH, &o) < 0 || o.stx_ino != sx.stx_ino ||
        sx_dev(&o) != sx_dev(&sx)) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return drv_err_set(err, DRV_EIO, "rmtree: cannot open: %s: \"%s\"",
                           fd >= 0 ? "changed while being opened" : strerror(e), name);
    }
    w.dev = sx_dev(&psx);
    w.mnt = (psx.stx_mask & STATX_MNT_ID) ? psx.stx_mnt_id : 0;
    if (other_mount(&w, &o)) {
        close(fd);
        res->kept = 1;
        if (report != NULL) {
            report(ud, "", "mount point: not entered");
        }
        return drv_err_set(err, DRV_EIO, "rmtree: \"%s\" is a mount point: kept", name);
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return drv_err_set(err, DRV_EIO, "rmtree: %s: \"%s\"", strerror(errno), name);
    }
    push(&w, d, &o, name);
    while (w.n > 0 && rc == 0) {
        frame *top = &w.f[w.n - 1];
        errno = 0;
        struct dirent *e = readdir(top->d);
        if (e == NULL) {
            if (errno != 0) {
                keep(&w, top, ".", strerror(errno));
            }
            rc = leave(&w, parentfd, name, err);
            continue;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (w.nk > 0 && is_kept(&w, top, e->d_name))) {
            continue;
        }
        int dfd = dirfd(top->d);
        if (xstat(dfd, e->d_name, 0, &sx) < 0) {
            if (errno != ENOENT) {
                keep(&w, top, e->d_name, strerror(errno));
            }
        } else if (S_ISDIR(sx.stx_mode)) {
            if (other_mount(&w, &sx)) {
                keep(&w, top, e->d_name, "mount point: not entered");
            } else {
                (void)enter(&w, e->d_name, &sx);
            }
        } else if (unlink_retry(dfd, e->d_name, 0) == 0) {
            res->entries++;
            res->bytes += (unsigned long long)sx.stx_blocks * 512ULL;
        } else if (errno != ENOENT) {
            keep(&w, top, e->d_name, strerror(errno));
        }
        if (w.nk > MAX_KEPT) {
            rc = drv_err_set(err, DRV_EIO, "rmtree: over %lu entries could not be removed: "
                             "stopped in \"%s\"", MAX_KEPT, name);
        }
    }
    for (size_t i = 0; i < w.n; i++) {
        if (w.f[i].d != NULL) {
            closedir(w.f[i].d);
        }
        free(w.f[i].name);
    }
    free(w.f);
    for (size_t i = 0; i < w.nk; i++) {
        free(w.k[i].name);
    }
    free(w.k);
    if (rc == 0 && res->kept > 0) {
        rc = drv_err_set(err, DRV_EIO, "rmtree: %lu entr%s could not be removed: \"%s\"",
                         res->kept, res->kept == 1 ? "y" : "ies", name);
    }
    return rc;
}
