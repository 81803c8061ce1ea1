/*
 * logs.h: a task's log sink. Writes stdout and stderr bytes to
 * <log_dir>/<task>.stdout.N and .stderr.N, rotating when a file reaches
 * max_file_size bytes and keeping at most max_files per stream (older indexes
 * are deleted). Optionally echoes complete lines to the terminal prefixed by
 * "<prefix> | " (stdout lines to stdout, stderr lines to stderr).
 */
#ifndef DRV_LOGS_H
#define DRV_LOGS_H

#include <stddef.h>

#include "err.h"

typedef struct logs logs;

typedef struct logs_opts {
    const char *dir;          /* existing directory, e.g. <alloc>/alloc/logs */
    const char *task;         /* file name stem */
    int max_files;            /* >= 1 */
    size_t max_file_size;     /* bytes, >= 1 */
    const char *echo_prefix;  /* NULL: no terminal echo */
} logs_opts;

int logs_open(logs **out, const logs_opts *o, drv_err *err);
/// `stream` is FRAME_STDOUT or FRAME_STDERR (stdin frames count as stdout).
int logs_write(logs *l, int stream, const char *data, size_t len, drv_err *err);
/// Flushes a pending partial echo line and closes files. NULL is allowed.
void logs_close(logs *l);

/* The files' names: "<task>.<stream>.<index>" in the log dir. */

/// Largest index a log file may have: far beyond any real rotation count,
/// and small enough that index + max_files never wraps.
#define LOGS_MAX_INDEX 999999999UL

/// Writes "<task>.<stream>.<index>" into out; -1 when it does not fit.
int logs_file_name(char *out, size_t n, const char *task, const char *stream,
                   unsigned long idx);
/// Returns 1 and sets *idx when `name` is "<task>.<stream>.<index>" with a
/// canonical index: decimal digits, no leading zero (except "0"), at most
/// LOGS_MAX_INDEX. Other names ("t.stdout.007", a huge number) are not a
/// log file: never counted, read or deleted.
int logs_parse_name(const char *name, const char *task, const char *stream,
                    unsigned long *idx);

#endif
