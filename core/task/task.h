/*
 * task.h: one task instance's lifecycle against Docker:
 *
 *   dirs -> artifacts -> image -> create -> start
 *        -> running (wait + log stream) -> exited (inspect) -> remove -> done
 *
 * The image step: pull "always": registry check -> registry auth -> pull
 * -> create; pull "missing": create, and when Docker answers "No such
 * image": load (when the job sets `load`), else check -> auth -> pull, then
 * create again, once. The check (regcheck.h) refuses a registry on a
 * loopback/private address unless task_ctx.allow_private_registries. The
 * task's image reference (imagerefs.h) is taken right before create and
 * released once its container is gone.
 *
 * task_stop() may be called in any state: before a container exists it
 * cancels what is in flight; while running it sends the kill signal and
 * escalates to SIGKILL after kill_timeout (force: SIGKILL at once). Every
 * path that created a container removes it before `on_done` runs, except a
 * container that ran and exited with task_ctx.keep_container (task_kept).
 */
#ifndef DRV_TASK_H
#define DRV_TASK_H

#include <uv.h>

#include "auth.h"
#include "docker.h"
#include "err.h"
#include "imagerefs.h"
#include "plan.h"
#include "pull.h"
#include "script.h"

typedef struct task task;

typedef void (*task_done_cb)(void *ud, task *t);

/* The steps that change Docker's state, announced before they are sent. */
typedef enum {
    TASK_STEP_CREATE,          /* the container (by its name) is about to exist */
    TASK_STEP_START,           /* task_container_id() is set */
    TASK_STEP_REMOVE,          /* the container is about to go */
} task_step;

/// Called (with the task's `ud`) before each step that changes Docker's
/// state, so that an agent can persist first. May call task_abandon (then
/// the step is not sent). NULL in the foreground run.
typedef void (*task_state_cb)(void *ud, task *t, task_step step);

/// A pull event for this task (PULL_EV_START and PULL_EV_DONE included),
/// for progress output; `ud` is task_ctx.pull_ud.
typedef void (*task_pull_cb)(void *ud, task *t, const pull_event *ev);

typedef struct task_ctx {
    uv_loop_t *loop;
    http_client *http;
    docker *docker;
    script *script;
    int echo;                  /* print log lines to the terminal */
    task_state_cb on_state;    /* or NULL */
    puller *puller;            /* registry pulls (shared); NULL: none */
    const auth_opts *auth;     /* registry credentials; NULL: anonymous */
    imagerefs *imagerefs;      /* image references; NULL: not counted */
    int allow_private_registries; /* 0: refuse pulls from loopback/private
                                     registries (regcheck.h) */
    int keep_container;        /* docker.cleanup.container = false: a container
                                  that ran and exited is left (stopped) for
                                  inspection instead of removed */
    task_pull_cb on_pull;      /* progress; or NULL */
    void *pull_ud;
} task_ctx;

/// The task copies `pt` (it owns its spec). `on_done` runs once, from the loop.
int task_new(task **out, const task_ctx *ctx, const plan_task *pt,
             task_done_cb on_done, void *ud, drv_err *err);
/// A task that adopts an existing container (an agent restarting): on
/// task_start it inspects `container_id`; running: attaches to its output
/// and waits for it; exited: collects its exit code; created but never
/// started: removes it and fails. Then removes it as usual. Nothing before
/// the container (dirs, artifacts, image, pins) is redone.
int task_recover(task **out, const task_ctx *ctx, const plan_task *pt,
                 const char *container_id, task_done_cb on_done, void *ud, drv_err *err);
void task_start(task *t);
/// The task's own copy of its spec.
const plan_task *task_spec(const task *t);
/// The container id once created (or recovered), else NULL.
const char *task_container_id(const task *t);
/// Graceful stop (kill_signal, kill_timeout, SIGKILL), or SIGKILL at once.
void task_stop(task *t, int force);

/// Gives up on Docker: cancels every request in flight and starts no new
/// one; a container that may still exist is reported with the command that
/// removes it (see task_left_behind). on_done follows from the loop.
void task_abandon(task *t);
/// 1 when the container could not be removed and may still exist.
int task_left_behind(const task *t);

/// 1 when the exited container was kept (task_ctx.keep_container).
int task_kept(const task *t);

/// After on_done: the container's exit code, or the driver's exit code for a
/// task that failed before it ran (see task_error).
int task_exit_code(const task *t);
/// The failure that ended the task before its container ran, or NULL.
const drv_err *task_error(const task *t);
int task_oom_killed(const task *t);
/// 1 when the container ran and its exit code was collected (into *code),
/// whatever the driver's error; 0 otherwise.
int task_container_exit(const task *t, long *code);
/// Frees the task (after on_done); the memory goes in a close callback.
void task_free(task *t);

#endif
