/* alloc.c: the tasks of one allocation (see alloc.h). */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "allocrec.h"
#include "log.h"

struct alloc {
    alloc_opts o;
    task_state_cb on_state;    /* the caller's ctx.on_state */
    task **tasks;
    size_t ntasks;
    size_t running;            /* tasks not yet done */
    int stopping;              /* alloc_stop called */
    int failed;                /* a task failed: the rest were stopped */
    int done;
    /* durable records (alloc_record): one per alloc id among the tasks */
    state *recs;               /* <data_dir>/state/allocs, or NULL */
    int keep;                  /* ctx.keep_container */
    allocrec *rec;
    size_t nrec;
    size_t *rec_of;            /* task index -> record index */
    size_t *rec_left;          /* per record: tasks not yet done */
};

/* Task `i` ended: its entry in its record; the record is written as ended
 * once every task of that alloc id has. */
static void record_task_done(alloc *a, size_t i, task *t)
{
    if (a->recs == NULL || i >= a->ntasks) {
        return;
    }
    size_t k = a->rec_of[i];
    allocrec *r = &a->rec[k];
    const plan_task *pt = task_spec(t);
    for (size_t j = 0; j < r->ntasks; j++) {
        allocrec_task *e = &r->tasks[j];
        if (e->task == NULL || e->has_exit || e->error != NULL || pt->task == NULL ||
            strcmp(e->task, pt->task) != 0) {
            continue;
        }
        long code;
        if (task_container_exit(t, &code)) {
            e->has_exit = 1;
            e->exit_code = code;
        }
        e->oom_killed = task_oom_killed(t);
        const drv_err *err = task_error(t);
        if (err != NULL) {
            e->error = drv_xstrdup(err->msg);
        } else if (!e->has_exit) {
            e->error = drv_xstrdup("stopped before it started");
        }
        e->left_behind = task_left_behind(t);
        e->kept = task_kept(t);
        break;
    }
    if (a->rec_left[k] > 0 && --a->rec_left[k] == 0) {
        drv_err e;
        free(r->status);
        r->status = drv_xstrdup("ended");
        r->ended_ms = allocrec_now_ms();
        if (allocrec_write(a->recs, r, &e) < 0) {
            log_warn("alloc %s: the end is not recorded (gc will wait for the owner to be "
                     "gone): %s", r->alloc_id, e.msg);
        }
    }
}

static void on_task_done(void *ud, task *t)
{
    alloc *a = ud;
    size_t i = 0;
    while (i < a->ntasks && a->tasks[i] != t) {
        i++;
    }
    record_task_done(a, i, t);
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
    a->keep = ctx->keep_container;
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

int alloc_record(alloc *a, state *allocs, drv_err *err)
{
    owner self;
    owner_self(&self);
    long long now = allocrec_now_ms();
    a->rec = drv_xcalloc(a->ntasks + 1, sizeof *a->rec);
    a->rec_of = drv_xcalloc(a->ntasks + 1, sizeof *a->rec_of);
    a->rec_left = drv_xcalloc(a->ntasks + 1, sizeof *a->rec_left);
    for (size_t i = 0; i < a->ntasks; i++) {
        const plan_task *pt = task_spec(a->tasks[i]);
        size_t k = 0;
        while (k < a->nrec && strcmp(a->rec[k].alloc_id, pt->alloc_id ? pt->alloc_id : "") != 0) {
            k++;
        }
        if (k == a->nrec) {
            allocrec *r = &a->rec[a->nrec++];
            r->version = ALLOCREC_VERSION;
            r->alloc_id = drv_xstrdup(pt->alloc_id ? pt->alloc_id : "");
            r->job = pt->job ? drv_xstrdup(pt->job) : NULL;
            r->group = pt->group ? drv_xstrdup(pt->group) : NULL;
            r->owner = self;
            r->created_ms = now;
            r->status = drv_xstrdup("running");
            r->keep_containers = a->keep;
        }
        allocrec_add_task(&a->rec[k], pt->task, pt->name);
        a->rec_of[i] = k;
        a->rec_left[k]++;
    }
    for (size_t k = 0; k < a->nrec; k++) {
        int rc = allocrec_write(allocs, &a->rec[k], err);
        if (rc < 0) {
            return rc;
        }
    }
    a->recs = allocs;
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
    for (size_t k = 0; k < a->nrec; k++) {
        allocrec_free(&a->rec[k]);
    }
    free(a->rec);
    free(a->rec_of);
    free(a->rec_left);
    free(a);
}
