/*
 * logread.h: the reading side of logs.c's files: a task's
 * <task>.<stream>.N files in index order, the last N lines across them, and
 * a follower that passes on new bytes as the writer appends them and moves
 * to the next index when the writer rotates, without losing or repeating a
 * byte. `drvctl logs` uses it on a data dir; the agent can serve the same
 * follower over its API.
 *
 * The log directory is writable by every task of the allocation
 * (/alloc/logs), so nothing there is trusted: the caller opens the directory
 * beneath the alloc dir without following symlinks, and every file is
 * opened beneath that descriptor with openat2 (RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS); a symlink, FIFO, device or hard-linked file under a
 * log file's name is refused (DRV_EDENIED) before one byte is read.
 *
 * When has the task ended? logs.c holds an open-file-description write lock
 * (F_OFD_SETLK) on the file it writes, takes it on the next index before it
 * closes the previous one, and the kernel drops it when the writer closes the
 * file or dies (kill -9 included). A follower that has read everything and
 * sees no lock on its file and no next index twice, one poll interval apart,
 * has seen the end. The reader only tests the lock (F_OFD_GETLK), never
 * takes it.
 */
#ifndef DRV_LOGREAD_H
#define DRV_LOGREAD_H

#include <stddef.h>
#include <sys/types.h>

#include <uv.h>

#include "err.h"

/// Largest -tail accepted.
#define LOGREAD_MAX_TAIL 100000000L

/// 1 when `name` may name a task's log files: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`,
/// no "..", at most 128 bytes (the job-name rule).
int logread_name_ok(const char *name);

/// The canonical indexes of `<task>.<stream>.N` in `dirfd`, ascending, in a
/// malloc'd array (*out, *n; NULL, 0 when there is none).
int logread_list(int dirfd, const char *task, const char *stream, unsigned long **out,
                 size_t *n, drv_err *err);

/// Opens `<task>.<stream>.<idx>` beneath `dirfd` for reading. Returns the fd,
/// DRV_ENOTFOUND when it does not exist, DRV_EDENIED for a symlink or
/// anything but a regular file with one link, DRV_EIO otherwise.
int logread_open_file(int dirfd, const char *task, const char *stream, unsigned long idx,
                      drv_err *err);

/// 1 when a writer (logs.c) holds its lock on the open file `fd`.
int logread_writer_active(int fd);

typedef struct logread_pos {
    unsigned long idx;   /* file index */
    off_t off;           /* byte offset in that file */
} logread_pos;

/// Where the last `lines` lines begin (a final line without '\n' counts;
/// lines < 0: the beginning). Reads backwards in blocks from the end.
int logread_tail_pos(int dirfd, const char *task, const char *stream, long lines,
                     logread_pos *pos, drv_err *err);

typedef struct logread logread;

typedef struct logread_opts {
    uv_loop_t *loop;
    int dirfd;              /* the log directory; duplicated, the caller keeps its own */
    const char *dir_name;   /* for messages */
    const char *task;
    const char *stream;     /* "stdout" or "stderr" */
    long tail;              /* < 0: everything */
    int follow;             /* 0: stop at the end of what is there now */
    unsigned poll_ms;       /* 0: 250 */
    /// New bytes, in order, at most 64 KiB at a time. Return < 0 to stop
    /// (on_end follows with rc 0).
    int (*on_data)(void *ud, const char *data, size_t len);
    /// Optional: everything there is has been passed on (follow: waiting).
    void (*on_idle)(void *ud);
    /// Once, from the loop: the end (rc 0), or an error (rc < 0, err set).
    /// logread_close may be called from here.
    void (*on_end)(void *ud, int rc, const drv_err *err);
    void *ud;
} logread_opts;

/// Starts reading (the first bytes come from the loop).
int logread_start(logread **out, const logread_opts *o, drv_err *err);

/// Backpressure for a consumer that cannot take more now (an API client's
/// full socket): no on_data until logread_resume. May be called from
/// on_data. While paused, the end of the task is not looked for either.
void logread_pause(logread *r);
void logread_resume(logread *r);

/// Stops and frees (in close callbacks: run the loop once more). NULL is allowed.
void logread_close(logread *r);

#endif
