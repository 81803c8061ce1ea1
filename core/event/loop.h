/*
 * loop.h: the libuv loop of a command. One unit owns what every long-lived
 * command needs around its loop: SIGPIPE ignored, RLIMIT_NOFILE raised (a
 * stream costs a socket on each side; hundreds of tasks outgrow the default
 * 1024), the stop signals (INT, TERM, HUP, QUIT) delivered to the command
 * with how many were received, and an ordered shutdown that closes every
 * handle and runs the loop until all are closed.
 */
#ifndef DRV_LOOP_H
#define DRV_LOOP_H

#include <stdint.h>
#include <uv.h>

#include "err.h"

#define DRV_LOOP_NSIGNALS 4

/// drv_loop_close: how long deferred work may keep the loop alive before
/// the handles still open are closed by force.
#define DRV_LOOP_CLOSE_GRACE_MS 2000

/// Target for RLIMIT_NOFILE's soft limit: the hard limit, capped here (a
/// select()-free process needs no more; some systems' hard limit is huge).
#define DRV_NOFILE_TARGET ((uint64_t)1048576)

/// `signum` is the signal, `count` how many stop signals arrived so far
/// (1 on the first). Runs on the loop.
typedef void (*drv_loop_signal_cb)(void *ud, int signum, int count);

typedef struct drv_loop {
    uv_loop_t *uv;                          /* the caller's storage */
    uv_signal_t sigs[DRV_LOOP_NSIGNALS];    /* INT, TERM, HUP, QUIT */
    int nsigs;                              /* initialised signal handles */
    int first_signal;                       /* 0 until one arrives */
    int count;                              /* stop signals received */
    drv_loop_signal_cb on_signal;
    void *ud;
} drv_loop;

/// Process setup, idempotent: ignores SIGPIPE (a closed pipe or terminal
/// loses output, not the run: writes fail with EPIPE) and raises
/// RLIMIT_NOFILE (drv_raise_nofile). Call before anything opens sockets.
void drv_process_setup(void);

/// Raises the soft RLIMIT_NOFILE to min(hard, target); logs the change at
/// debug level. Returns the soft limit now in force, or -1 if getrlimit
/// failed. Never lowers it.
int64_t drv_raise_nofile(uint64_t target);

/// Initialises `uv` (caller's storage, e.g. inside its own struct), runs
/// drv_process_setup and starts the signal handlers; `on_signal` may be NULL
/// (the signals are then ignored while the loop runs).
int drv_loop_init(drv_loop *l, uv_loop_t *uv, drv_loop_signal_cb on_signal, void *ud,
                  drv_err *err);

/// Stops and closes the signal handlers (so uv_run can return once the
/// command's own work is done). Idempotent; safe from any loop callback.
void drv_loop_stop_signals(drv_loop *l);

/// Ordered shutdown: closes the signal handlers, runs the loop until every
/// close callback ran (at most DRV_LOOP_CLOSE_GRACE_MS while some active
/// handle keeps it alive), then closes any handle still open (uv_walk; each
/// named in a debug log: a leak in the caller) and closes the loop. Returns
/// the number of stragglers it had to close (0 on a clean shutdown).
int drv_loop_close(drv_loop *l);

#endif
