/* alloc.c: the tasks of one allocation (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>

struct alloc {
    alloc_opts o;
    task_state_cb on_state;    /* the caller's ctx.on_state */
    task **tasks;
    size_t ntasks;
    size_t running;            /* tasks not yet done */
    int stopping;              /* alloc_stop called */
    int failed;                /* a task failed: the rest were stopped */
    int done;
};

static void on_task_done(void *ud, task *t)
{
    alloc *a = ud;
    size_t i = 0;
    while (i < a->ntasks && a->tasks[i] != t) {
        i++;
    }
    if (a->o.on_task_done != NULL) {
        a->o.on_task_done(a->o.ud, a, i, t);
    }
    if (a->o.restart != NULL) {
        (void)a->o.restart(a->o.ud, a, i, t);   /* hook point only: no restarts yet */
    }
    if (task_error(t) != NULL && !a->failed && !a->stopping) {
        a->failed = 1;
        for (size_t j = 0; j < a->ntasks; j++) {
            task_stop(a->tasks[j], 0);
        }
    }
    if (--a->running == 0 && !a->done) {
        a->done = 1;
        if (a->o.on_done != NULL) {
            a->o.on_done(a->o.ud, a);
        }
    }
}

/* The tasks' ud is the alloc: hand the caller's ud to its on_state. */
static void on_task_state(void *ud, task *t, task_step step)
{
    alloc *a = ud;
    a->on_state(a->o.ud, t, step);
}

int alloc_new(alloc **out, const task_ctx *ctx, const plan_task *specs, size_t n,
              const alloc_opts *o, drv_err *err)
{
    alloc *a = drv_xcalloc(1, sizeof *a);
    a->o = *o;
    task_ctx tc = *ctx;
    a->on_state = ctx->on_state;
    if (tc.on_state != NULL) {
        tc.on_state = on_task_state;
    }
    a->tasks = drv_xcalloc(n + 1, sizeof *a->tasks);
    for (size_t i = 0; i < n; i++) {
        int rc = task_new(&a->tasks[i], &tc, &specs[i], on_task_done, a, err);
        if (rc < 0) {
            a->ntasks = i;
            alloc_free(a);
            return rc;
        }
    }
    a->ntasks = n;
    a->running = n;
    *out = a;
    return 0;
}

void alloc_start(alloc *a)
{
    if (a->ntasks == 0 && !a->done) {
        a->done = 1;
        if (a->o.on_done != NULL) {
            a->o.on_done(a->o.ud, a);
        }
        return;
    }
    for (size_t i = 0; i < a->ntasks; i++) {
        task_start(a->tasks[i]);
    }
}

void alloc_stop(alloc *a, int force)
{
    a->stopping = 1;
    for (size_t i = 0; i < a->ntasks; i++) {
        task_stop(a->tasks[i], force);
    }
}

void alloc_abandon(alloc *a)
{
    for (size_t i = 0; i < a->ntasks; i++) {
        task_abandon(a->tasks[i]);
    }
}

size_t alloc_ntasks(const alloc *a)
{
    return a->ntasks;
}

task *alloc_task(const alloc *a, size_t i)
{
    return i < a->ntasks ? a->tasks[i] : NULL;
}

int alloc_failed(const alloc *a)
{
    return a->failed;
}

void alloc_free(alloc *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->ntasks; i++) {
        task_free(a->tasks[i]);
    }
    free(a->tasks);
    free(a);
}
