/*
 * alloc.h: the tasks of one allocation, run together: started together,
 * the rest stopped when one fails before or around its run (a driver
 * failure, not a container's non-zero exit), done when all are done.
 *
 * A restart policy hooks in at `restart` (called when a task ends; no
 * restart logic yet: the hook may only observe and must return 0).
 */
#ifndef DRV_ALLOC_H
#define DRV_ALLOC_H

#include <stddef.h>

#include "err.h"
#include "plan.h"
#include "state.h"
#include "task.h"

typedef struct alloc alloc;

typedef struct alloc_opts {
    /// A task ended (report it); `i` indexes the specs given to alloc_new.
    void (*on_task_done)(void *ud, alloc *a, size_t i, task *t);
    /// Every task has ended; runs once, from the loop.
    void (*on_done)(void *ud, alloc *a);
    /// Restart-policy hook point: a task ended; returns 1 to restart it
    /// (not supported yet: ignored), 0 to let it end. NULL: never.
    int (*restart)(void *ud, alloc *a, size_t i, const task *t);
    void *ud;
} alloc_opts;

/// Makes one task per spec (each copies its spec). `ctx.on_state`, if set,
/// gets `o->ud`.
int alloc_new(alloc **out, const task_ctx *ctx, const plan_task *specs, size_t n,
              const alloc_opts *o, drv_err *err);
/// Writes the durable record of each alloc id among the tasks (allocrec.h:
/// status "running", owned by this process) into `allocs` (which must
/// outlive the alloc); each is written again, "ended" with every task's
/// exit code or error, once all its tasks are done. Call before
/// alloc_start: nothing of the alloc exists yet. On failure nothing starts.
int alloc_record(alloc *a, state *allocs, drv_err *err);
void alloc_start(alloc *a);
/// Stops every task (see task_stop); a failure after this stops nothing more.
void alloc_stop(alloc *a, int force);
/// Gives up on Docker for every task (see task_abandon).
void alloc_abandon(alloc *a);
size_t alloc_ntasks(const alloc *a);
task *alloc_task(const alloc *a, size_t i);
/// 1 once a task failed and its siblings were stopped for it.
int alloc_failed(const alloc *a);
/// Frees the alloc and its tasks (after on_done; task memory goes in close
/// callbacks: run the loop once more).
void alloc_free(alloc *a);

#endif
