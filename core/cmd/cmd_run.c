/*
 * cmd_run.c: `drvctl run`: plan the job, then run every task instance in
 * the foreground on one libuv loop until all have ended. SIGINT, SIGTERM,
 * SIGHUP (closed terminal) and SIGQUIT stop the tasks gracefully; a second
 * one kills them at once. Containers are removed on every path (unless
 * docker.cleanup.container = false keeps those that exited); alloc dirs
 * (logs, files) are kept, each alloc recorded in
 * <data_dir>/state/allocs/<alloc_id>.json (allocrec.h) before anything of
 * it exists and again when it ends, for `drvctl gc`.
 *
 * A signal always ends the run, even when Docker stops answering: requests
 * of a stop are bounded (task.c), and a deadline gives up on Docker
 * altogether (task_abandon), naming each container that may be left.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "alloc.h"
#include "allocrec.h"
#include "auth.h"
#include "cmd.h"
#include "docker.h"
#include "esc.h"
#include "http.h"
#include "imagerefs.h"
#include "planner.h"
#include "log.h"
#include "loop.h"
#include "progress.h"
#include "pull.h"
#include "task.h"

/* A foreground run that held an image's last reference waits this long at
 * most for its removal; a later removal is left to the next drvctl process. */
#define REFS_CLOSE_MAX_MS 10000L

typedef struct runner {
    uv_loop_t loop;
    drv_loop lp;             /* signals INT, TERM, HUP, QUIT; shutdown */
    uv_timer_t deadline;     /* after a stop signal: give up on Docker */
    uint64_t deadline_at;    /* loop time it fires at, 0 when not armed */
    http_client *http;
    docker *docker;
    planned job;
    alloc *alloc;            /* every task of the run (alloc.h: a failure stops the rest) */
    size_t ntasks;
    int *index;              /* each task's instance index in its group */
    puller *puller;          /* registry pulls, shared by the tasks */
    imagerefs *refs;         /* image references (cleanup), or NULL */
    state *allocs;           /* <data_dir>/state/allocs: the alloc records */
    auth_opts auth;
    progress *progress;      /* pull progress on stderr */
    int signal;              /* first stop signal received */
    int signals;             /* stop signals received */
} runner;

static void usage(void)
{
    printf("Usage: drvctl run [-config FILE] [-data-dir DIR] [-lua-dir DIR] [-json] JOBFILE\n\n"
           "Runs every docker task of JOBFILE (count instances per group) in the\n"
           "foreground: makes the image available (local, `load` from an artifact, or\n"
           "pulled from its registry, with progress on stderr: per layer on a terminal,\n"
           "else one line per phase; -json prints one JSON object per pull event),\n"
           "creates and starts the containers, streams their output prefixed by the\n"
           "task name, and writes it to <data_dir>/alloc/<alloc_id>/alloc/logs/.\n"
           "When every task has ended the containers are removed (kept stopped, for\n"
           "inspection, with docker.cleanup.container = false) and drvctl exits with\n"
           "the first non-zero task exit code (0 if all succeeded). The alloc dirs stay\n"
           "until `drvctl gc` (each alloc is recorded under <data_dir>/state/allocs/).\n\n"
           "SIGINT, SIGTERM, SIGHUP or SIGQUIT stops the tasks: kill_signal (default:\n"
           "the image's STOPSIGNAL, else SIGTERM), then SIGKILL after kill_timeout\n"
           "(default 5s), removes the containers and exits 128 + the signal number.\n"
           "A second signal kills at once; a third gives up on Docker. When Docker\n"
           "does not answer, drvctl still exits within seconds and names every\n"
           "container that may be left behind with the command that removes it.\n");
    cmd_print_exit_codes();
}

static void stop_all(runner *r, int force)
{
    if (r->alloc != NULL) {
        alloc_stop(r->alloc, force);
    }
}

/* The graceful stop's bound: the longest kill_timeout, plus the bounded
 * requests around it (task.c: kill, /stop, remove) and some slack. */
#define STOP_SLACK_MS 12000
/* After a second signal (SIGKILL sent): how long Docker gets to remove. */
#define FORCE_GRACE_MS 6000

static void abandon_all(runner *r)
{
    if (r->alloc != NULL) {
        alloc_abandon(r->alloc);
    }
}

static void on_deadline(uv_timer_t *h)
{
    runner *r = h->data;
    fprintf(stderr, "drvctl: docker did not finish the stop in time: giving up on it\n");
    abandon_all(r);
}

/* Arms the deadline `ms` from now unless an earlier one is armed. */
static void arm_deadline(runner *r, uint64_t ms)
{
    uint64_t at = uv_now(&r->loop) + ms;
    if (r->deadline_at != 0 && r->deadline_at <= at) {
        return;
    }
    r->deadline_at = at;
    uv_timer_start(&r->deadline, on_deadline, ms, 0);
}

static const char *signal_name(int signum)
{
    switch (signum) {
    case SIGINT: return "interrupt";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    default: return "signal";
    }
}

/* Writes to a closed terminal (SIGHUP) fail with EIO or EPIPE (SIGPIPE is
 * ignored): the messages are lost, the stop and cleanup go on. */
static void on_signal(void *ud, int signum, int count)
{
    runner *r = ud;

    if (r->signal == 0) {
        r->signal = signum;
    }
    r->signals = count;
    if (r->signals >= 3) {
        fprintf(stderr, "drvctl: %s received again: giving up on Docker now\n",
                signal_name(signum));
        abandon_all(r);
        return;
    }
    if (r->signals == 2) {
        fprintf(stderr, "drvctl: %s received again: killing tasks now\n", signal_name(signum));
        stop_all(r, 1);
        arm_deadline(r, FORCE_GRACE_MS);
        return;
    }
    fprintf(stderr, "drvctl: %s received: stopping tasks (press Ctrl-C again to kill now)\n",
            signal_name(signum));
    long longest = 0;
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->job.plan.tasks[i].kill_timeout_ms > longest) {
            longest = r->job.plan.tasks[i].kill_timeout_ms;
        }
    }
    arm_deadline(r, (uint64_t)longest + STOP_SLACK_MS);
    stop_all(r, 0);
}

static void shutdown_loop(runner *r)
{
    progress_flush(r->progress);
    drv_loop_stop_signals(&r->lp);
    uv_timer_stop(&r->deadline);
    uv_close((uv_handle_t *)&r->deadline, NULL);
    http_client_close(r->http);
    r->http = NULL;
}

/* Task names are validated, but messages quote Docker's answers and job
 * values: escaped (esc.h) like every line drvctl prints. */
static void report(const task *t, const plan_task *pt)
{
    const drv_err *e = task_error(t);
    buf b = BUF_INIT;
    if (e != NULL) {
        log_text(LOG_ERROR, esc_msg(&b, e->msg));
    } else if (!task_container_exit(t, NULL) && task_container_id(t) == NULL) {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): stopped before it started\n",
                esc_str(&b, pt->task), pt->alloc_id);
    } else if (task_oom_killed(t)) {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): OOM Killed (exit code %d)\n",
                esc_str(&b, pt->task), pt->alloc_id, task_exit_code(t));
    } else {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): exited with code %d\n",
                esc_str(&b, pt->task), pt->alloc_id, task_exit_code(t));
    }
    if (task_kept(t)) {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): container %s kept for inspection "
                "(docker.cleanup.container = false); remove it with: docker rm %s\n",
                esc_str(&b, pt->task), pt->alloc_id, pt->name, pt->name);
    }
    buf_free(&b);
}

static void on_task_done(void *ud, alloc *a, size_t i, task *t)
{
    runner *r = ud;
    (void)a;
    (void)i;
    progress_flush(r->progress);
    report(t, task_spec(t));
}

static void on_refs_dropped(void *ud)
{
    (void)ud;
}

static void on_refs_closed(void *ud)
{
    runner *r = ud;
    r->refs = NULL;
    shutdown_loop(r);
}

/* Every task ended: pulls still running go (none should), then the image
 * references close (waiting up to 10 s for removals due by then), then the
 * loop winds down. */
static void on_alloc_done(void *ud, alloc *a)
{
    runner *r = ud;
    (void)a;
    puller_close(r->puller);
    r->puller = NULL;
    if (r->refs != NULL) {
        imagerefs_close(r->refs, REFS_CLOSE_MAX_MS, on_refs_closed, r);
        return;
    }
    shutdown_loop(r);
}

static void on_pull(void *ud, task *t, const pull_event *ev)
{
    runner *r = ud;
    const plan_task *pt = task_spec(t);
    progress_who who = { .task = pt->task, .index = 0, .alloc_id = pt->alloc_id };
    for (size_t i = 0; i < r->ntasks; i++) {
        if (alloc_task(r->alloc, i) == t) {
            who.index = r->index[i];
            break;
        }
    }
    progress_event(r->progress, &who, ev);
}

/* The instance index of each task: how many earlier tasks share its group
 * and task name (instances are planned in order). */
static void index_tasks(runner *r)
{
    const plan *pl = &r->job.plan;
    r->index = drv_xcalloc(pl->ntasks + 1, sizeof *r->index);
    for (size_t i = 0; i < pl->ntasks; i++) {
        for (size_t j = 0; j < i; j++) {
            const plan_task *a = &pl->tasks[i], *b = &pl->tasks[j];
            if (a->group != NULL && b->group != NULL && a->task != NULL && b->task != NULL &&
                strcmp(a->group, b->group) == 0 && strcmp(a->task, b->task) == 0) {
                r->index[i]++;
            }
        }
    }
}

static progress *open_progress(int json)
{
    if (json) {
        return progress_new(stderr, PROGRESS_JSON, 0);
    }
    if (isatty(STDERR_FILENO)) {
        struct winsize ws;
        int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 80;
        return progress_new(stderr, PROGRESS_TTY, cols);
    }
    return progress_new(stderr, PROGRESS_LINES, 0);
}

/* The puller and the image references, shared by every task of the run. */
static int open_images(runner *r, drv_err *err)
{
    const agent_conf *ac = &r->job.agent;
    puller_opts po = { .loop = &r->loop, .docker = r->docker, .script = r->job.script };
    int rc = puller_new(&r->puller, &po, err);
    if (rc < 0) {
        return rc;
    }
    r->auth.loop = &r->loop;
    r->auth.script = r->job.script;
    r->auth.config_path = ac->auth_config;
    r->auth.helper = ac->auth_helper;
    buf dir = BUF_INIT;
    buf_appendf(&dir, "%s/state", ac->data_dir != NULL ? ac->data_dir : ".");
    imagerefs_opts io = {
        .loop = &r->loop, .docker = r->docker, .state_dir = buf_str(&dir),
        .enabled = ac->cleanup_image, .delay_ms = ac->cleanup_image_delay_ms,
    };
    drv_err e;
    if (imagerefs_open(&r->refs, &io, &e) < 0) {
        /* bookkeeping for cleanup, not a reason to keep tasks from running */
        buf b = BUF_INIT;
        log_warn("image references are not recorded (images pulled now are not cleaned "
                 "up): %s", esc_msg(&b, e.msg));
        buf_free(&b);
        r->refs = NULL;
    }
    buf_free(&dir);
    return 0;
}

static int start_tasks(runner *r, drv_err *err)
{
    task_ctx ctx = {
        .loop = &r->loop, .http = r->http, .docker = r->docker,
        .script = r->job.script, .echo = 1,
        .puller = r->puller, .auth = &r->auth, .imagerefs = r->refs,
        .allow_private_registries = r->job.agent.allow_private_registries,
        .keep_container = !r->job.agent.cleanup_container,
        .on_pull = on_pull, .pull_ud = r,
    };
    index_tasks(r);
    alloc_opts o = { .on_task_done = on_task_done, .on_done = on_alloc_done, .ud = r };
    int rc = alloc_new(&r->alloc, &ctx, r->job.plan.tasks, r->job.plan.ntasks, &o, err);
    if (rc < 0) {
        return rc;
    }
    /* the records first: nothing of the allocs exists yet (dirs, artifacts,
     * containers), so gc can tell them from leftovers of a run killed later */
    rc = allocrec_open(r->job.agent.data_dir, 1, &r->allocs, err);
    if (rc == 0) {
        rc = alloc_record(r->alloc, r->allocs, err);
    }
    if (rc < 0) {
        return rc;    /* nothing started; the alloc is freed with the runner */
    }
    r->ntasks = r->job.plan.ntasks;
    alloc_start(r->alloc);
    return 0;
}

/* Picks the exit code: a signal wins, then the first driver failure (the
 * reason siblings were stopped: never a sibling's stop), then the first
 * non-zero task result. */
static int exit_code(const runner *r)
{
    if (r->signal != 0) {
        return 128 + r->signal;   /* 130 INT, 143 TERM, 129 HUP, 131 QUIT */
    }
    for (size_t i = 0; i < r->ntasks; i++) {
        const task *t = alloc_task(r->alloc, i);
        if (task_error(t) != NULL) {
            return task_exit_code(t);
        }
    }
    for (size_t i = 0; i < r->ntasks; i++) {
        int c = task_exit_code(alloc_task(r->alloc, i));
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    cmd_flags f;
    runner r;
    drv_err err;
    int code;
    int rc = cmd_parse_flags("run", argc, argv, "config,data-dir,lua-dir,detach,json", &f);

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 1) {
        fprintf(stderr, "drvctl run: expected one JOBFILE argument (see drvctl help run)\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    if (f.detach) {
        fprintf(stderr, "drvctl run: -detach needs a running `drvctl agent`, which this "
                        "version does not have yet; run in the foreground instead\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    /* a closed terminal or pipe (EPIPE, EIO) loses the output, not the run
     * (SIGPIPE ignored); RLIMIT_NOFILE raised for many streams */
    drv_process_setup();
    memset(&r, 0, sizeof r);
    drv_err_clear(&err);
    planner_args a = { .job_path = f.pos[0], .config_path = f.config, .data_dir = f.data_dir,
                       .lua_dir = f.lua_dir, .mode = PLANNER_RUN };
    rc = planner_plan_now(&a, &r.job, &err);
    if (rc < 0) {
        if (r.job.problems.n > 0) {
            problems_print(&r.job.problems);
        } else {
            buf b = BUF_INIT;
            log_text(LOG_ERROR, esc_msg(&b, err.msg));
            buf_free(&b);
        }
        planned_free(&r.job);
        return drv_err_exit_code(rc);
    }
    for (size_t i = 0; i < r.job.plan.nwarnings; i++) {
        log_warn("%s", r.job.plan.warnings[i]);
    }
    if (r.job.plan.ntasks == 0) {
        fprintf(stderr, "drvctl: %s: the job has no tasks to run\n", a.job_path);
        planned_free(&r.job);
        return 0;
    }

    rc = drv_loop_init(&r.lp, &r.loop, on_signal, &r, &err);
    if (rc < 0) {
        buf b = BUF_INIT;
        log_text(LOG_ERROR, esc_msg(&b, err.msg));
        buf_free(&b);
        planned_free(&r.job);
        return drv_err_exit_code(rc);
    }
    uv_timer_init(&r.loop, &r.deadline);
    r.deadline.data = &r;

    docker_opts dopts = {
        .endpoint = r.job.agent.endpoint, .tls_ca = r.job.agent.tls_ca,
        .tls_cert = r.job.agent.tls_cert, .tls_key = r.job.agent.tls_key,
    };
    rc = http_client_new(&r.http, &r.loop, &err);
    if (rc == 0) {
        rc = docker_new(&r.docker, r.http, &dopts, &err);
    }
    if (rc == 0) {
        /* planning (PLANNER_RUN) only succeeds once its fingerprint reached Docker and
         * negotiated the API version: use it, no second ping */
        rc = docker_set_api_version(r.docker, r.job.api_version, &err);
    }
    r.progress = open_progress(f.json);
    if (rc == 0) {
        rc = open_images(&r, &err);
    }
    if (rc == 0) {
        log_debug("docker: %s, API %s", docker_endpoint(r.docker), docker_api_version(r.docker));
        rc = start_tasks(&r, &err);
    }
    if (rc < 0) {
        buf b = BUF_INIT;
        log_text(LOG_ERROR, esc_msg(&b, err.msg));
        buf_free(&b);
        puller_close(r.puller);
        r.puller = NULL;
        if (r.refs != NULL) {
            imagerefs_close(r.refs, 0, on_refs_dropped, NULL);   /* closes as the loop winds down */
            r.refs = NULL;
        }
        shutdown_loop(&r);
        code = drv_err_exit_code(rc);
    } else {
        uv_run(&r.loop, UV_RUN_DEFAULT);
        code = exit_code(&r);
        int left = 0;
        for (size_t i = 0; i < r.ntasks; i++) {
            left |= task_left_behind(alloc_task(r.alloc, i));
        }
        if (left && r.job.ports_reserved) {
            fprintf(stderr, "drvctl: this run's port reservations are released; a container "
                            "left behind may still hold its ports\n");
        }
    }
    alloc_free(r.alloc);
    state_close(r.allocs);
    drv_loop_close(&r.lp);   /* runs the close callbacks, closes stragglers */
    progress_free(r.progress);
    free(r.index);
    docker_free(r.docker);
    planned_free(&r.job);
    return code;
}
