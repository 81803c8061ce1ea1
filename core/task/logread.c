/*
 * logread.c: reading a task's rotated log files (see logread.h).
 *
 * [attack corpus] The log directory is the task's /alloc/logs: a task can
 * replace any file there by a symlink to a host file (/etc/shadow), a FIFO
 * (an open or read that blocks), a device node it made with CAP_MKNOD, or a
 * hard link. Every file is opened O_PATH beneath the directory descriptor
 * with no symlink anywhere, checked to be a regular file with one link, and
 * only then reopened for reading through /proc/self/fd, so nothing but such
 * a file is ever opened for reading. A task can still write what it likes
 * into its own files: that is its output.
 */
#include "logread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "logs.h"

#define CHUNK ((size_t)64 * 1024)
#define PUMP_CHUNKS 16          /* chunks per loop turn, then yield */
#define POLL_MS_DEFAULT 250U
#define END_CHECKS 2            /* idle + unlocked this many ticks in a row */

int logread_name_ok(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 128 || strstr(name, "..") != NULL) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) {
            return 0;
        }
    }
    return 1;
}

/* "<task>.<stream>.<idx>"; 0, or -1 when it does not fit. */
static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

int logread_list(int dirfd, const char *task, const char *stream, unsigned long **out,
                 size_t *n, drv_err *err)
{
    *out = NULL;
    *n = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return drv_err_set(err, DRV_EIO, "logs: cannot list the log directory: %s",
                           strerror(e));
    }
    buf b = BUF_INIT;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long idx;
        if (logs_parse_name(e->d_name, task, stream, &idx)) {
            buf_append(&b, &idx, sizeof idx);
        }
    }
    closedir(d);
    /* buf's data is malloc'd and suitably aligned: it becomes the array */
    *out = (unsigned long *)(void *)b.data;
    *n = b.len / sizeof **out;
    if (*n > 1) {
        qsort(*out, *n, sizeof **out, cmp_ulong);
    }
    return 0;
}

int logread_open_file(int dirfd, const char *task, const char *stream, unsigned long idx,
                      drv_err *err)
{
    char name[512];
    struct stat st;

    if (logs_file_name(name, sizeof name, task, stream, idx) < 0) {
        return drv_err_set(err, DRV_EINVALID, "logs: task name too long: \"%s\"", task);
    }
    int pfd = fs_openat2(dirfd, name, O_PATH, 0);
    if (pfd < 0) {
        int e = errno;
        if (e == ENOENT) {
            return drv_err_set(err, DRV_ENOTFOUND, "logs: no log file \"%s\"", name);
        }
        if (e == ELOOP || e == EXDEV) {
            return drv_err_set(err, DRV_EDENIED,
                               "logs: refused: log file is a symbolic link: \"%s\"", name);
        }
        return drv_err_set(err, DRV_EIO, "logs: cannot open \"%s\": %s", name, strerror(e));
    }
    if (fstat(pfd, &st) != 0) {
        int e = errno;
        close(pfd);
        return drv_err_set(err, DRV_EIO, "logs: cannot stat \"%s\": %s", name, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(pfd);
        return drv_err_set(err, DRV_EDENIED,
                           "logs: refused: not a regular file with one link: \"%s\"", name);
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    int fd = open(proc, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    close(pfd);
    if (fd < 0) {
        return drv_err_set(err, DRV_EIO, "logs: cannot open \"%s\": %s", name, strerror(e));
    }
    return fd;
}

int logread_writer_active(int fd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl) != 0) {
        return 0;
    }
    return fl.l_type != F_UNLCK;
}

int logread_tail_pos(int dirfd, const char *task, const char *stream, long lines,
                     logread_pos *pos, drv_err *err)
{
    unsigned long *idx = NULL;
    size_t n = 0;
    int rc = logread_list(dirfd, task, stream, &idx, &n, err);
    if (rc < 0) {
        return rc;
    }
    pos->idx = n > 0 ? idx[0] : 0;
    pos->off = 0;
    if (lines < 0 || n == 0) {
        free(idx);
        return 0;
    }
    char *blk = drv_xmalloc(CHUNK);
    long count = 0;
    int first = 1;            /* the stream's last byte not seen yet */
    int found = 0;
    for (size_t i = n; i-- > 0 && !found;) {
        int fd = logread_open_file(dirfd, task, stream, idx[i], err);
        if (fd == DRV_ENOTFOUND) {
            continue;         /* rotated away meanwhile */
        }
        if (fd < 0) {
            rc = fd;
            break;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            rc = drv_err_set(err, DRV_EIO, "logs: cannot stat a log file: %s", strerror(errno));
            close(fd);
            break;
        }
        off_t end = st.st_size;
        if (first && lines == 0) {
            pos->idx = idx[i];
            pos->off = end;
            found = 1;
        }
        while (end > 0 && !found) {
            off_t start = end > (off_t)CHUNK ? end - (off_t)CHUNK : 0;
            ssize_t got = pread(fd, blk, (size_t)(end - start), start);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                /* shorter than fstat said (truncated meanwhile): start here */
                break;
            }
            end = start + got;
            for (ssize_t k = got; k-- > 0;) {
                if (first) {
                    first = 0;
                    if (blk[k] == '\n') {
                        continue;   /* ends the last line */
                    }
                }
                if (blk[k] == '\n' && ++count == lines) {
                    pos->idx = idx[i];
                    pos->off = start + k + 1;
                    found = 1;
                    break;
                }
            }
            end = start;
        }
        close(fd);
    }
    free(blk);
    free(idx);
    return rc < 0 ? rc : 0;
}

/* --- the follower ------------------------------------------------------- */

struct logread {
    uv_loop_t *loop;
    int dirfd;
    char *dir_name;
    char *task;
    char *stream;
    int follow;
    unsigned poll_ms;
    int (*on_data)(void *ud, const char *data, size_t len);
    void (*on_idle)(void *ud);
    void (*on_end)(void *ud, int rc, const drv_err *err);
    void *ud;

    int fd;                 /* current file, -1 when none is open */
    unsigned long idx;      /* its index (or the next one to look for) */
    off_t off;              /* bytes of it passed on */
    int final;              /* the next index exists: read to EOF once more */
    int ended_checks;
    int scan;               /* look for any later index, not just the next */
    int emitted;            /* bytes passed on since the last on_idle */
    int stopped;            /* on_data asked to stop */
    int paused;             /* logread_pause: the consumer is full */
    int done;               /* on_end called (or closing) */
    int closing;
    int handles;            /* open uv handles */
    int ev_on;
    char *chunk;
    drv_err err;

    uv_timer_t kick;
    uv_timer_t poll;
    uv_fs_event_t ev;
};

static void on_handle_closed(uv_handle_t *h)
{
    logread *r = h->data;
    if (--r->handles == 0) {
        free(r->chunk);
        free(r->dir_name);
        free(r->task);
        free(r->stream);
        free(r);
    }
}

static void stop_all(logread *r)
{
    uv_timer_stop(&r->kick);
    uv_timer_stop(&r->poll);
    if (r->ev_on) {
        uv_fs_event_stop(&r->ev);
        r->ev_on = 0;
    }
}

static void finish(logread *r, int rc, const drv_err *err)
{
    if (r->done) {
        return;
    }
    r->done = 1;
    stop_all(r);
    r->on_end(r->ud, rc, err);
}

/* Opens the lowest existing index >= r->idx. 1: open, 0: none, < 0: error. */
static int open_from(logread *r)
{
    int fd = logread_open_file(r->dirfd, r->task, r->stream, r->idx, &r->err);
    if (fd >= 0) {
        r->fd = fd;
        return 1;
    }
    if (fd != DRV_ENOTFOUND) {
        return fd;
    }
    unsigned long *idx;
    size_t n;
    int rc = logread_list(r->dirfd, r->task, r->stream, &idx, &n, &r->err);
    if (rc < 0) {
        return rc;
    }
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] <= r->idx) {
            continue;
        }
        fd = logread_open_file(r->dirfd, r->task, r->stream, idx[i], &r->err);
        if (fd == DRV_ENOTFOUND) {
            continue;
        }
        if (fd < 0) {
            rc = fd;
            break;
        }
        r->fd = fd;
        r->idx = idx[i];
        r->off = 0;       /* a later file than the one asked for: from its start */
        r->final = 0;
        rc = 1;
        break;
    }
    free(idx);
    return rc;
}

static void next_file(logread *r)
{
    close(r->fd);
    r->fd = -1;
    r->idx++;
    r->off = 0;
    r->final = 0;
}

/* Has the writer moved past r->idx? The next index, or (when scanning: not
 * following, or on a poll tick) any later one: a gap left by a deleted file
 * is skipped. */
static int newer_exists(logread *r)
{
    char name[512];
    struct stat st;
    if (r->idx >= LOGS_MAX_INDEX) {
        return 0;
    }
    if (logs_file_name(name, sizeof name, r->task, r->stream, r->idx + 1) == 0 &&
        fstatat(r->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return 1;
    }
    if (r->follow && !r->scan) {
        return 0;
    }
    unsigned long *idx;
    size_t n;
    int found = 0;
    if (logread_list(r->dirfd, r->task, r->stream, &idx, &n, NULL) == 0) {
        found = n > 0 && idx[n - 1] > r->idx;
        free(idx);
    }
    return found;
}

/* One step: 1 progress, 0 caught up with the writer, < 0 error. */
static int step(logread *r)
{
    if (r->fd < 0) {
        int rc = open_from(r);
        if (rc <= 0) {
            return rc;
        }
    }
    ssize_t got;
    do {
        got = pread(r->fd, r->chunk, CHUNK, r->off);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        return drv_err_set(&r->err, DRV_EIO, "logs: cannot read \"%s/%s.%s.%lu\": %s",
                           r->dir_name, r->task, r->stream, r->idx, strerror(errno));
    }
    if (got > 0) {
        r->off += got;
        r->emitted = 1;
        r->ended_checks = 0;
        if (r->on_data(r->ud, r->chunk, (size_t)got) < 0) {
            r->stopped = 1;
        }
        return 1;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0) {
        return drv_err_set(&r->err, DRV_EIO, "logs: cannot stat a log file: %s",
                           strerror(errno));
    }
    if (st.st_size < r->off) {
        /* truncated under us (by the task): new bytes go after its new end */
        r->off = st.st_size;
        return 1;
    }
    if (newer_exists(r)) {
        /* the writer moved on: this file is complete once read to its end
         * after the next one appeared */
        if (!r->final) {
            r->final = 1;
            return 1;
        }
        next_file(r);
        return 1;
    }
    if (st.st_nlink == 0) {
        /* rotated away (deleted past max_files) while we lagged behind:
         * continue with the oldest file left */
        next_file(r);
        return 1;
    }
    return 0;
}

static void on_kick(uv_timer_t *t);

/* Reads what there is, a bounded amount per loop turn. Returns 1 when
 * caught up (or finished), 0 when more is scheduled. */
static int pump(logread *r)
{
    if (r->done) {
        return 1;
    }
    for (int i = 0; i < PUMP_CHUNKS; i++) {
        if (r->paused) {
            return 0;     /* logread_resume goes on */
        }
        int rc = step(r);
        if (r->stopped) {
            finish(r, 0, NULL);
            return 1;
        }
        if (rc < 0) {
            finish(r, rc, &r->err);
            return 1;
        }
        if (rc == 0) {
            if (!r->follow) {
                finish(r, 0, NULL);
                return 1;
            }
            if (r->emitted && r->on_idle != NULL) {
                r->emitted = 0;
                r->on_idle(r->ud);
            }
            return 1;
        }
    }
    uv_timer_start(&r->kick, on_kick, 0, 0);
    return 0;
}

static void on_kick(uv_timer_t *t)
{
    pump(t->data);
}

static void on_poll(uv_timer_t *t)
{
    logread *r = t->data;
    if (r->paused) {
        return;
    }
    r->scan = 1;
    int caught_up = pump(r);
    r->scan = 0;
    if (!caught_up || r->done) {
        return;
    }
    /* caught up: has the writer let go of the file, with nothing after it? */
    if (r->fd >= 0 && logread_writer_active(r->fd)) {
        r->ended_checks = 0;
        return;
    }
    if (++r->ended_checks >= END_CHECKS) {
        finish(r, 0, NULL);
    }
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)name;
    (void)events;
    if (status == 0) {
        logread *r = h->data;
        if (!uv_is_active((uv_handle_t *)&r->kick)) {
            pump(r);
        }
    }
}

int logread_start(logread **out, const logread_opts *o, drv_err *err)
{
    if (o->loop == NULL || o->dirfd < 0 || !logread_name_ok(o->task) || o->stream == NULL ||
        (strcmp(o->stream, "stdout") != 0 && strcmp(o->stream, "stderr") != 0) ||
        o->on_data == NULL || o->on_end == NULL) {
        return drv_err_set(err, DRV_EINTERNAL, "logs: invalid reader options");
    }
    logread_pos pos = { 0, 0 };
    int rc = logread_tail_pos(o->dirfd, o->task, o->stream, o->tail, &pos, err);
    if (rc < 0) {
        return rc;
    }
    int dfd = fcntl(o->dirfd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0) {
        return drv_err_set(err, DRV_EIO, "logs: dup: %s", strerror(errno));
    }
    logread *r = drv_xcalloc(1, sizeof *r);
    r->loop = o->loop;
    r->dirfd = dfd;
    r->dir_name = drv_xstrdup(o->dir_name != NULL ? o->dir_name : "logs");
    r->task = drv_xstrdup(o->task);
    r->stream = drv_xstrdup(o->stream);
    r->follow = o->follow;
    r->poll_ms = o->poll_ms ? o->poll_ms : POLL_MS_DEFAULT;
    r->on_data = o->on_data;
    r->on_idle = o->on_idle;
    r->on_end = o->on_end;
    r->ud = o->ud;
    r->fd = -1;
    r->idx = pos.idx;
    r->off = pos.off;
    r->chunk = drv_xmalloc(CHUNK);

    uv_timer_init(r->loop, &r->kick);
    uv_timer_init(r->loop, &r->poll);
    r->kick.data = r->poll.data = r;
    r->handles = 2;
    uv_timer_start(&r->kick, on_kick, 0, 0);
    if (r->follow) {
        uv_timer_start(&r->poll, on_poll, r->poll_ms, r->poll_ms);
        uv_fs_event_init(r->loop, &r->ev);
        r->ev.data = r;
        r->handles++;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", r->dirfd);
        /* inotify where it works; the poll timer covers the rest */
        r->ev_on = uv_fs_event_start(&r->ev, on_fs_event, proc, 0) == 0;
    }
    *out = r;
    return 0;
}

void logread_pause(logread *r)
{
    if (r != NULL && !r->done) {
        r->paused = 1;
        uv_timer_stop(&r->kick);
    }
}

void logread_resume(logread *r)
{
    if (r != NULL && !r->done && r->paused) {
        r->paused = 0;
        uv_timer_start(&r->kick, on_kick, 0, 0);
    }
}

void logread_close(logread *r)
{
    if (r == NULL || r->closing) {
        return;
    }
    r->closing = 1;
    r->done = 1;
    stop_all(r);
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    close(r->dirfd);
    uv_close((uv_handle_t *)&r->kick, on_handle_closed);
    uv_close((uv_handle_t *)&r->poll, on_handle_closed);
    if (r->follow) {
        uv_close((uv_handle_t *)&r->ev, on_handle_closed);
    }
}
