/*
 * lines.h: incremental newline splitter for JSON-lines streams (image pull,
 * image load, events). Input may be split at any byte. Each complete line is
 * delivered without its "\n" (and without a trailing "\r"); empty lines are
 * skipped. A line longer than `max_line` is an error.
 */
#ifndef DRV_LINES_H
#define DRV_LINES_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/// Returns 0, or a negative code to stop splitting.
typedef int (*lines_cb)(void *ud, const char *line, size_t len);

typedef struct lines {
    buf partial;            /* bytes of the current unterminated line */
    size_t max_line;        /* 0 means 1 MiB */
    lines_cb cb;
    void *ud;
} lines;

void lines_init(lines *l, size_t max_line, lines_cb cb, void *ud);
int lines_feed(lines *l, const char *data, size_t len, drv_err *err);
/// Delivers a final unterminated line, if any. Returns like lines_feed.
int lines_finish(lines *l, drv_err *err);
void lines_free(lines *l);

#endif
