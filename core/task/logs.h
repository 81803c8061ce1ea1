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

#endif
