/*
 * frame.h: incremental parser for Docker's multiplexed stream (logs, attach,
 * exec without a TTY): 8-byte headers [stream, 0, 0, 0, size BE32] followed by
 * `size` payload bytes. Input may be split at any byte; one feed may hold
 * many frames. With `raw` set (TTY containers) every byte is stdout.
 */
#ifndef DRV_FRAME_H
#define DRV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum { FRAME_STDIN = 0, FRAME_STDOUT = 1, FRAME_STDERR = 2 };

/// Receives payload bytes of one stream. A frame's payload may arrive in
/// several calls (it is delivered as soon as bytes are available, never
/// buffered whole). Returns 0, or a negative code to stop parsing.
typedef int (*frame_data_cb)(void *ud, int stream, const char *data, size_t len);

typedef struct frame_parser {
    int raw;                /* 1: no framing (TTY), everything is stdout */
    unsigned char hdr[8];   /* partial header */
    size_t hdr_len;
    int stream;             /* stream of the frame being read */
    uint32_t remaining;     /* payload bytes left in the current frame */
    frame_data_cb cb;
    void *ud;
} frame_parser;

void frame_init(frame_parser *p, int raw, frame_data_cb cb, void *ud);

/// Feeds bytes. Returns 0, the callback's negative code, or DRV_EINVALID
/// (with `err` set) on a header whose stream byte is not 0, 1 or 2 or whose
/// padding is not zero.
int frame_feed(frame_parser *p, const char *data, size_t len, drv_err *err);

/// Returns 1 when the parser stopped mid-frame (truncated stream), else 0.
int frame_pending(const frame_parser *p);

#endif
