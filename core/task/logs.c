/*
 * logs.c: a task's log files and terminal echo (see logs.h).
 *
 * Rotation follows Nomad's FileRotator: a file is filled up to exactly
 * max_file_size bytes (a write is split across files if needed), the next
 * index is opened lazily on the next byte, and index N - max_files is deleted
 * when index N is opened. On open, writing continues in the highest existing
 * index, so a restarted driver appends instead of overwriting.
 *
 * [attack corpus] The directory is alloc/logs, which every task of the
 * allocation sees as /alloc/logs and may replace: with a symlink to a host
 * directory (drvctl, as root, would write the task's output there, e.g. a
 * config that /etc/logrotate.d reads), or plant a FIFO (an open that blocks
 * the loop), a device node (writes into a host disk) or a symlink under a
 * log file's name. So the directory is opened once, without following a
 * symlink, and every file is opened, scanned and deleted relative to that
 * descriptor; a log file must be a regular file with one link, opened with
 * O_NOFOLLOW | O_NONBLOCK.
 */
#include "logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "esc.h"
#include "frame.h"

/* A partial echo line longer than this is printed as if it were complete. */
#define ECHO_MAX_PARTIAL ((size_t)64 * 1024)

typedef struct logs_stream {
    const char *name;      /* "stdout" / "stderr" */
    FILE *term;            /* echo target */
    int fd;                /* -1 until opened */
    unsigned long idx;     /* index of the open (or next) file */
    size_t size;           /* bytes in the open file */
    buf echo;              /* partial echo line */
} logs_stream;

struct logs {
    char *dir;
    int dirfd;             /* l->dir, opened without following a symlink */
    char *task;
    char *prefix;          /* NULL: no echo */
    int max_files;
    size_t max_file_size;
    logs_stream s[2];
    buf line;              /* one escaped echo line */
};

static void file_path(const logs *l, const logs_stream *s, unsigned long idx,
                      char *out, size_t n)
{
    snprintf(out, n, "%s/%s.%s.%lu", l->dir, l->task, s->name, idx);
}

/* "<task>.<stream>.<idx>", relative to l->dirfd. */
static void file_name(const logs *l, const logs_stream *s, unsigned long idx,
                      char *out, size_t n)
{
    (void)logs_file_name(out, n, l->task, s->name, idx);
}

int logs_file_name(char *out, size_t n, const char *task, const char *stream,
                   unsigned long idx)
{
    int w = snprintf(out, n, "%s.%s.%lu", task, stream, idx);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int logs_parse_name(const char *name, const char *task, const char *stream,
                    unsigned long *idx)
{
    size_t tl = strlen(task), sl = strlen(stream);
    if (strncmp(name, task, tl) != 0 || name[tl] != '.' ||
        strncmp(name + tl + 1, stream, sl) != 0 || name[tl + 1 + sl] != '.') {
        return 0;
    }
    const char *d = name + tl + sl + 2;
    if (d[0] == '\0' || (d[0] == '0' && d[1] != '\0')) {
        return 0;
    }
    unsigned long v = 0;
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            return 0;
        }
        v = v * 10 + (unsigned long)(*d - '0');
        if (v > LOGS_MAX_INDEX) {
            return 0;
        }
    }
    *idx = v;
    return 1;
}

static void delete_index(const logs *l, const logs_stream *s, unsigned long idx)
{
    char name[4096];
    file_name(l, s, idx, name, sizeof name);
    (void)unlinkat(l->dirfd, name, 0);
}

/* Finds the highest existing index of each stream and deletes the indexes
 * that fall outside the max_files window. */
static int scan_dir(logs *l, drv_err *err)
{
    l->dirfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (l->dirfd < 0) {
        int e = errno;
        struct stat st;
        int is_link = lstat(l->dir, &st) == 0 && S_ISLNK(st.st_mode);
        return drv_err_set(err, DRV_EIO, "logs: cannot open directory \"%s\": %s",
                           l->dir, is_link ? "it is a symbolic link" : strerror(e));
    }
    int scan_fd = dup(l->dirfd);
    DIR *d = scan_fd < 0 ? NULL : fdopendir(scan_fd);
    if (d == NULL) {
        if (scan_fd >= 0) {
            close(scan_fd);
        }
        return drv_err_set(err, DRV_EIO, "logs: cannot open directory \"%s\": %s",
                           l->dir, strerror(errno));
    }
    int found[2] = { 0, 0 };
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        for (int i = 0; i < 2; i++) {
            unsigned long idx;
            if (logs_parse_name(e->d_name, l->task, l->s[i].name, &idx) &&
                (!found[i] || idx > l->s[i].idx)) {
                l->s[i].idx = idx;
                found[i] = 1;
            }
        }
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        for (int i = 0; i < 2; i++) {
            unsigned long idx;
            if (logs_parse_name(e->d_name, l->task, l->s[i].name, &idx) &&
                idx + (unsigned long)l->max_files <= l->s[i].idx) {
                delete_index(l, &l->s[i], idx);
            }
        }
    }
    closedir(d);
    return 0;
}

static int open_file(logs *l, logs_stream *s, drv_err *err)
{
    char path[4096];
    struct stat st;

    char name[4096];

    file_path(l, s, s->idx, path, sizeof path);
    file_name(l, s, s->idx, name, sizeof name);
    s->fd = openat(l->dirfd, name,
                   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (s->fd < 0) {
        return drv_err_set(err, DRV_EIO, "logs: cannot open \"%s\": %s", path,
                           errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    }
    if (fstat(s->fd, &st) != 0) {
        int e = errno;
        close(s->fd);
        s->fd = -1;
        return drv_err_set(err, DRV_EIO, "logs: cannot stat \"%s\": %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(s->fd);
        s->fd = -1;
        return drv_err_set(err, DRV_EIO, "logs: not a regular file with one link: \"%s\"", path);
    }
    s->size = (size_t)st.st_size;
    /* the open file description's write lock tells readers (logread.h) that
     * this file is still being written; the kernel drops it on close or
     * death. A lock someone else holds (the task can lock its own files)
     * only keeps a follower waiting: never fatal here, never blocking. */
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    (void)fcntl(s->fd, F_OFD_SETLK, &fl);
    if (s->idx >= (unsigned long)l->max_files) {
        delete_index(l, s, s->idx - (unsigned long)l->max_files);
    }
    return 0;
}

/* The next index is opened (and locked) before the full one is closed, so
 * a reader never sees neither locked (logread.h). */
static int rotate(logs *l, logs_stream *s, drv_err *err)
{
    int old = s->fd;
    s->fd = -1;
    s->idx++;
    int rc = open_file(l, s, err);
    if (old >= 0) {
        close(old);
    }
    return rc;
}

static int write_all(logs *l, logs_stream *s, const char *data, size_t len, drv_err *err)
{
    while (len > 0) {
        ssize_t n = write(s->fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            char path[4096];
            file_path(l, s, s->idx, path, sizeof path);
            return drv_err_set(err, DRV_EIO, "logs: cannot write \"%s\": %s", path,
                               strerror(errno));
        }
        data += n;
        len -= (size_t)n;
        s->size += (size_t)n;
    }
    return 0;
}

/* Prints one line as "<prefix> | <line>". The line is task output: control
 * characters (escape sequences, a mid-line \r that would overwrite the
 * prefix), C1 controls and invalid UTF-8 are escaped (esc.h), on a terminal
 * or not, so neither the operator's terminal nor a log collector reading
 * drvctl's output ever sees them raw. The log files keep the bytes. A \r
 * right before the \n (CRLF output) is dropped. Write errors (a closed
 * terminal: EIO, EPIPE) are ignored: the task keeps running and logging. */
static void echo_line(logs *l, const logs_stream *s, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    buf_reset(&l->line);
    esc_append(&l->line, l->prefix, strlen(l->prefix));
    buf_puts(&l->line, " | ");
    esc_append(&l->line, line, len);
    buf_puts(&l->line, "\n");
    (void)fwrite(l->line.data, 1, l->line.len, s->term);
}

static void echo(logs *l, logs_stream *s, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        if (nl == NULL) {
            buf_append(&s->echo, data, len);
            if (s->echo.len >= ECHO_MAX_PARTIAL) {
                echo_line(l, s, s->echo.data, s->echo.len);
                buf_reset(&s->echo);
            }
            break;
        }
        size_t n = (size_t)(nl - data);
        if (s->echo.len > 0) {
            buf_append(&s->echo, data, n);
            echo_line(l, s, s->echo.data, s->echo.len);
            buf_reset(&s->echo);
        } else {
            echo_line(l, s, data, n);
        }
        data += n + 1;
        len -= n + 1;
    }
    fflush(s->term);
}

int logs_open(logs **out, const logs_opts *o, drv_err *err)
{
    if (o->dir == NULL || o->task == NULL || o->task[0] == '\0' || o->max_files < 1 ||
        o->max_file_size < 1) {
        return drv_err_set(err, DRV_EINTERNAL, "logs: invalid options");
    }
    logs *l = drv_xcalloc(1, sizeof *l);
    l->dir = drv_xstrdup(o->dir);
    l->dirfd = -1;
    l->task = drv_xstrdup(o->task);
    l->prefix = o->echo_prefix ? drv_xstrdup(o->echo_prefix) : NULL;
    l->max_files = o->max_files;
    l->max_file_size = o->max_file_size;
    l->s[0] = (logs_stream){ "stdout", stdout, -1, 0, 0, BUF_INIT };
    l->s[1] = (logs_stream){ "stderr", stderr, -1, 0, 0, BUF_INIT };

    int rc = scan_dir(l, err);
    for (int i = 0; rc == 0 && i < 2; i++) {
        rc = open_file(l, &l->s[i], err);
    }
    if (rc != 0) {
        logs_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

int logs_write(logs *l, int stream, const char *data, size_t len, drv_err *err)
{
    logs_stream *s = &l->s[stream == FRAME_STDERR ? 1 : 0];

    if (l->prefix != NULL) {
        echo(l, s, data, len);
    }
    while (len > 0) {
        if (s->size >= l->max_file_size) {
            int rc = rotate(l, s, err);
            if (rc != 0) {
                return rc;
            }
        }
        size_t room = l->max_file_size - s->size;
        size_t n = len < room ? len : room;
        int rc = write_all(l, s, data, n, err);
        if (rc != 0) {
            return rc;
        }
        data += n;
        len -= n;
    }
    return 0;
}

void logs_close(logs *l)
{
    if (l == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        logs_stream *s = &l->s[i];
        if (l->prefix != NULL && s->echo.len > 0) {
            echo_line(l, s, s->echo.data, s->echo.len);
            fflush(s->term);
        }
        if (s->fd >= 0) {
            close(s->fd);
        }
        buf_free(&s->echo);
    }
    buf_free(&l->line);
    if (l->dirfd >= 0) {
        close(l->dirfd);
    }
    free(l->dir);
    free(l->task);
    free(l->prefix);
    free(l);
}
