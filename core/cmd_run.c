/*
 * cmd_run.c: `drvctl run`: plan the job, then run every task instance in
 * the foreground on one libuv loop until all have ended. SIGINT/SIGTERM stop
 * the tasks gracefully; a second SIGINT kills them at once. Containers are
 * removed on every path; alloc dirs (logs, files) are kept.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cmd.h"
#include "docker.h"
#include "http.h"
#include "job.h"
#include "log.h"
#include "task.h"

typedef struct runner {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    http_client *http;
    docker *docker;
    job job;
    task **tasks;
    size_t ntasks;
    size_t running;          /* tasks not yet done */
    int signal;              /* first stop signal received */
    int interrupts;
    int failed;              /* a task failed before it ran: stop the rest */
} runner;

static void usage(void)
{
    printf("Usage: drvctl run [-config FILE] [-data-dir DIR] [-lua-dir DIR] JOBFILE\n\n"
           "Runs every docker task of JOBFILE (count instances per group) in the\n"
           "foreground: makes the image available (local, or `load` from an artifact),\n"
           "creates and starts the containers, streams their output prefixed by the\n"
           "task name, and writes it to <data_dir>/alloc/<alloc_id>/alloc/logs/.\n"
           "When every task has ended the containers are removed and drvctl exits with\n"
           "the first non-zero task exit code (0 if all succeeded).\n\n"
           "SIGINT or SIGTERM stops the tasks: kill_signal (default: the image's\n"
           "STOPSIGNAL, else SIGTERM), then SIGKILL after kill_timeout (default 5s).\n"
           "A second SIGINT kills at once.\n");
    cmd_print_exit_codes();
}

static void stop_all(runner *r, int force)
{
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->tasks[i] != NULL) {
            task_stop(r->tasks[i], force);
        }
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    runner *r = h->data;

    if (r->signal == 0) {
        r->signal = signum;
    }
    if (signum == SIGINT) {
        r->interrupts++;
    }
    if (r->interrupts >= 2) {
        fprintf(stderr, "drvctl: second interrupt: killing tasks now\n");
        stop_all(r, 1);
        return;
    }
    fprintf(stderr, "drvctl: %s received: stopping tasks (press Ctrl-C again to kill now)\n",
            signum == SIGINT ? "interrupt" : "SIGTERM");
    stop_all(r, 0);
}

static void shutdown_loop(runner *r)
{
    uv_signal_stop(&r->sigint);
    uv_signal_stop(&r->sigterm);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    http_client_close(r->http);
    r->http = NULL;
}

static void report(const task *t, const plan_task *pt)
{
    const drv_err *e = task_error(t);
    if (e != NULL) {
        fprintf(stderr, "drvctl: %s\n", e->msg);
    } else if (task_oom_killed(t)) {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): OOM Killed (exit code %d)\n",
                pt->task, pt->alloc_id, task_exit_code(t));
    } else {
        fprintf(stderr, "drvctl: task \"%s\" (alloc %s): exited with code %d\n",
                pt->task, pt->alloc_id, task_exit_code(t));
    }
}

static void on_task_done(void *ud, task *t)
{
    runner *r = ud;
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->tasks[i] == t) {
            report(t, &r->job.plan.tasks[i]);
        }
    }
    if (task_error(t) != NULL && !r->failed && r->signal == 0) {
        r->failed = 1;
        stop_all(r, 0);
    }
    if (--r->running == 0) {
        shutdown_loop(r);
    }
}

static void start_tasks(runner *r)
{
    task_ctx ctx = {
        .loop = &r->loop, .http = r->http, .docker = r->docker,
        .script = r->job.script, .echo = 1,
    };
    r->ntasks = r->job.plan.ntasks;
    r->tasks = drv_xcalloc(r->ntasks + 1, sizeof *r->tasks);
    r->running = r->ntasks;
    for (size_t i = 0; i < r->ntasks; i++) {
        task_new(&r->tasks[i], &ctx, &r->job.plan.tasks[i], on_task_done, r, NULL);
    }
    for (size_t i = 0; i < r->ntasks; i++) {
        task_start(r->tasks[i]);
    }
}

/* Picks the exit code: a signal wins, then the first non-zero task result. */
static int exit_code(const runner *r)
{
    if (r->signal == SIGINT) {
        return DRV_EXIT_INTERRUPTED;
    }
    if (r->signal == SIGTERM) {
        return DRV_EXIT_TERMINATED;
    }
    for (size_t i = 0; i < r->ntasks; i++) {
        int c = task_exit_code(r->tasks[i]);
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
    int rc = cmd_parse_flags("run", argc, argv, "config,data-dir,lua-dir,detach", &f);

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
    memset(&r, 0, sizeof r);
    drv_err_clear(&err);
    job_args a = { f.pos[0], f.config, f.data_dir, f.lua_dir, JOB_RUN };
    rc = job_load(&r.job, &a, &err);
    if (rc < 0) {
        if (r.job.problems.n > 0) {
            job_print_problems(&r.job);
        } else {
            fprintf(stderr, "drvctl: %s\n", err.msg);
        }
        job_free(&r.job);
        return drv_err_exit_code(rc);
    }
    for (size_t i = 0; i < r.job.plan.nwarnings; i++) {
        fprintf(stderr, "drvctl: warning: %s\n", r.job.plan.warnings[i]);
    }
    if (r.job.plan.ntasks == 0) {
        fprintf(stderr, "drvctl: %s: the job has no tasks to run\n", a.job_path);
        job_free(&r.job);
        return 0;
    }

    uv_loop_init(&r.loop);
    uv_signal_init(&r.loop, &r.sigint);
    uv_signal_init(&r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    docker_opts dopts = {
        .endpoint = r.job.agent.endpoint, .tls_ca = r.job.agent.tls_ca,
        .tls_cert = r.job.agent.tls_cert, .tls_key = r.job.agent.tls_key,
    };
    rc = http_client_new(&r.http, &r.loop, &err);
    if (rc == 0) {
        rc = docker_new(&r.docker, r.http, &dopts, &err);
    }
    if (rc == 0) {
        /* job_load (JOB_RUN) only succeeds once its probe reached Docker and
         * negotiated the API version: use it, no second ping */
        rc = docker_set_api_version(r.docker, r.job.api_version, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "drvctl: %s\n", err.msg);
        shutdown_loop(&r);
        code = drv_err_exit_code(rc);
    } else {
        log_debug("docker: %s, API %s", docker_endpoint(r.docker), docker_api_version(r.docker));
        start_tasks(&r);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        code = exit_code(&r);
    }
    for (size_t i = 0; i < r.ntasks; i++) {
        task_free(r.tasks[i]);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);   /* runs the close callbacks */
    if (uv_loop_close(&r.loop) != 0) {
        log_debug("loop closed with handles still open");
    }
    free(r.tasks);
    docker_free(r.docker);
    job_free(&r.job);
    return code;
}
