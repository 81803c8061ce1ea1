/* task.c: one task instance's lifecycle (see task.h). */
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "artifact.h"
#include "frame.h"
#include "lines.h"
#include "log.h"
#include "logs.h"

#define LOG_DRAIN_MS 2000      /* how long to wait for the log stream after exit */

typedef enum {
    ST_NEW, ST_ARTIFACTS, ST_LOAD, ST_CREATE, ST_ATTACH, ST_START, ST_RUNNING,
    ST_EXITED, ST_REMOVE, ST_DONE,
} task_state;

struct task {
    task_ctx ctx;
    const plan_task *pt;
    task_done_cb on_done;
    void *ud;

    task_state state;
    int stopping;              /* stop requested */
    int finishing;             /* winding down; done when nothing is in flight */
    int forced;                /* SIGKILL requested */
    int kill_sent;
    char *id;                  /* container id once created */
    int loaded;                /* image came from `load` */

    size_t next_artifact;
    artifact *art;             /* fetch in flight */
    http_req *main_req;        /* the step in flight */
    http_req *logs_req;        /* the attach stream (stdout and stderr) */
    int pending;               /* requests in flight (any kind) */
    int logs_done;
    int exited;
    uv_timer_t timer;          /* attach-to-start hop, kill escalation, log drain */

    FILE *load_file;
    lines load_lines;
    char *load_error;

    logs *logs;
    frame_parser frames;

    long exit_code;
    int oom_killed;
    drv_err err;               /* failure before the container ran */
};

typedef void (*step_fn)(task *t, int rc, long status, const buf *body, const drv_err *err);
typedef void (*head_fn)(task *t, long status);

typedef struct call_ctx {
    task *t;
    step_fn next;
    head_fn head;              /* status line in; runs inside libcurl: no requests */
    http_req **slot;
} call_ctx;

static void advance(task *t);
static void finish(task *t);
static void start_container(task *t);
static void maybe_done(task *t);
static void remove_container(task *t);

/* --- plumbing ------------------------------------------------------------- */

static void on_call_done(void *ud, http_req *r, int rc, long status, const buf *body,
                         const drv_err *err)
{
    call_ctx *c = ud;
    task *t = c->t;
    (void)r;

    if (c->slot != NULL) {
        *c->slot = NULL;
    }
    t->pending--;
    c->next(t, rc, status, body, err);
    free(c);
    maybe_done(t);
}

static void on_call_head(void *ud, http_req *r, long status)
{
    call_ctx *c = ud;
    (void)r;
    c->head(c->t, status);
}

/* Starts a Docker request whose result goes to `next` (and whose status
 * line, if `head` is set, goes to `head` as soon as it arrives). */
static int call_head(task *t, http_req **slot, const char *method, const char *path,
                     const char *json, FILE *tar, http_data_cb on_data, head_fn head,
                     step_fn next)
{
    call_ctx *c = drv_xcalloc(1, sizeof *c);
    docker_req q;
    http_req *r = NULL;
    drv_err err;

    c->t = t;
    c->next = next;
    c->head = head;
    c->slot = slot;
    memset(&q, 0, sizeof q);
    q.method = method;
    q.path = path;
    q.json = json;
    q.tar = tar;
    q.on_data = on_data;
    q.on_head = head != NULL ? on_call_head : NULL;
    q.on_done = on_call_done;
    q.ud = c;
    q.timeout_ms = (on_data != NULL || tar != NULL || strstr(path, "/wait") != NULL) ? 0 : 120000;
    int rc = docker_request(t->ctx.docker, &q, &r, &err);
    if (rc < 0) {
        free(c);
        if (t->err.code == 0) {
            t->err = err;
        }
        return rc;
    }
    t->pending++;
    if (slot != NULL) {
        *slot = r;
    }
    return 0;
}

static int call(task *t, http_req **slot, const char *method, const char *path,
                const char *json, FILE *tar, http_data_cb on_data, step_fn next)
{
    return call_head(t, slot, method, path, json, tar, on_data, NULL, next);
}

/* Records the first failure; the task then winds down. */
static void fail(task *t, const drv_err *e)
{
    if (t->err.code == 0 && e != NULL) {
        t->err = *e;
    }
}

/* Turns a non-2xx Docker answer into a message ("docker: ..."). */
static void docker_failure(task *t, int code, const char *what, int rc, long status,
                           const buf *body, const drv_err *err)
{
    drv_err e;
    if (rc < 0) {
        if (rc == DRV_EHTTP) {
            docker_unreachable(t->ctx.docker, err, &e);
        } else {
            e = *err;
        }
    } else {
        decoded d;
        const char *msg = buf_str(body);
        if (script_decode(t->ctx.script, "error", status, buf_str(body), &d, NULL) == 0 &&
            d.message != NULL) {
            drv_err_set(&e, code, "task \"%s\": %s: docker: %s (HTTP %ld)", t->pt->task, what,
                        d.message, status);
        } else {
            drv_err_set(&e, code, "task \"%s\": %s: docker: HTTP %ld: %s", t->pt->task, what,
                        status, msg);
        }
        decoded_free(&d);
    }
    fail(t, &e);
}

static int ok(long status)
{
    return status >= 200 && status < 300;
}

static int mkdir_p(const char *path, drv_err *err)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len >= sizeof tmp) {
        return drv_err_set(err, DRV_EIO, "path too long: \"%s\"", path);
    }
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return drv_err_set(err, DRV_EIO, "cannot create directory \"%s\": %s", tmp,
                                   strerror(errno));
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}

/* --- steps ----------------------------------------------------------------- */

static void on_artifact(void *ud, int rc, const drv_err *err)
{
    task *t = ud;
    t->art = NULL;
    t->pending--;
    if (rc < 0 && !(rc == DRV_ECANCELED && t->stopping)) {
        drv_err e;
        drv_err_set(&e, DRV_EARTIFACT, "task \"%s\": %s", t->pt->task, err ? err->msg : "artifact failed");
        fail(t, &e);
    }
    t->next_artifact++;
    advance(t);
    maybe_done(t);
}

static void fetch_artifact(task *t)
{
    const plan_artifact *pa = &t->pt->artifacts[t->next_artifact];
    artifact_opts o;
    drv_err err;

    memset(&o, 0, sizeof o);
    o.source = pa->source;
    o.task_dir = pa->task_dir;
    o.dest = pa->dest;
    o.local_path = pa->local_path;
    o.local_root = pa->local_root;
    o.read_timeout_ms = pa->read_timeout_ms;
    o.max_size = pa->max_size;
    o.max_unpacked_bytes = pa->max_unpacked_bytes;
    o.max_unpacked_files = pa->max_unpacked_files;
    o.allow_private = pa->allow_private;
    o.checksum = pa->checksum;
    o.archive = pa->archive;
    o.on_done = on_artifact;
    o.ud = t;
    if (artifact_fetch(t->ctx.http, t->ctx.loop, &o, &t->art, &err) < 0) {
        drv_err e;
        drv_err_set(&e, DRV_EARTIFACT, "task \"%s\": %s", t->pt->task, err.msg);
        fail(t, &e);
        finish(t);
        return;
    }
    t->pending++;
}

static void create_container(task *t);

static int on_load_line(void *ud, const char *line, size_t len)
{
    task *t = ud;
    decoded d;
    buf l = BUF_INIT;

    buf_append(&l, line, len);
    if (script_decode(t->ctx.script, "stream_line", 200, buf_str(&l), &d, NULL) == 0) {
        if (d.error != NULL && t->load_error == NULL) {
            t->load_error = drv_xstrdup(d.error);
        } else if (d.stream != NULL) {
            log_debug("task \"%s\": load: %s", t->pt->task, d.stream);
        }
        decoded_free(&d);
    }
    buf_free(&l);
    return 0;
}

static int on_load_data(void *ud, const char *data, size_t len)
{
    call_ctx *c = ud;
    return lines_feed(&c->t->load_lines, data, len, NULL);
}

static void on_load(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    lines_finish(&t->load_lines, NULL);
    lines_free(&t->load_lines);
    fclose(t->load_file);
    t->load_file = NULL;
    if (t->stopping && rc == DRV_ECANCELED) {
        finish(t);
        return;
    }
    if (rc < 0 || !ok(status)) {
        docker_failure(t, DRV_EIMAGE, "image load", rc, status, body, err);
        finish(t);
        return;
    }
    if (t->load_error != NULL) {
        drv_err e;
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": image load from \"%s\" failed: docker: %s",
                    t->pt->task, t->pt->load, t->load_error);
        fail(t, &e);
        finish(t);
        return;
    }
    t->loaded = 1;
    create_container(t);
}

static void load_image(task *t)
{
    t->state = ST_LOAD;
    t->load_file = fopen(t->pt->load, "rb");
    if (t->load_file == NULL) {
        drv_err e;
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": cannot open image archive for load: \"%s\": %s",
                    t->pt->task, t->pt->load, strerror(errno));
        fail(t, &e);
        finish(t);
        return;
    }
    log_info("task \"%s\": loading image \"%s\" from \"%s\"", t->pt->task, t->pt->image, t->pt->load);
    lines_init(&t->load_lines, 0, on_load_line, t);
    if (call(t, &t->main_req, "POST", "/images/load?quiet=1", NULL, t->load_file,
             on_load_data, on_load) < 0) {
        fclose(t->load_file);
        t->load_file = NULL;
        lines_free(&t->load_lines);
        finish(t);
    }
}

static void on_create(task *t, int rc, long status, const buf *body, const drv_err *err);

/* Resolves `path`, or its longest existing parent when it does not exist yet
 * (Docker creates a missing bind source as a directory at start). */
static int resolve_existing(const char *path, char *out)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (;;) {
        if (realpath(tmp, out) != NULL) {
            return 0;
        }
        char *slash = strrchr(tmp, '/');
        if (errno != ENOENT || slash == NULL || slash == tmp) {
            return -1;
        }
        *slash = '\0';
    }
}

/* Bind sources that the volumes policy allowed because they lie inside the
 * alloc dir must still resolve inside it now that artifacts are in place: a
 * symlink an artifact planted must not widen what the policy allowed. */
static int check_confined(task *t, drv_err *err)
{
    char root[PATH_MAX], real[PATH_MAX];

    if (t->pt->nconfined == 0) {
        return 0;
    }
    if (realpath(t->pt->alloc_dir, root) == NULL) {
        return drv_err_set(err, DRV_EDENIED, "task \"%s\": cannot resolve the alloc dir \"%s\": %s",
                           t->pt->task, t->pt->alloc_dir, strerror(errno));
    }
    size_t rl = strlen(root);
    for (size_t i = 0; i < t->pt->nconfined; i++) {
        const char *src = t->pt->confined[i];
        if (resolve_existing(src, real) < 0) {
            return drv_err_set(err, DRV_EDENIED, "policies/volumes.lua: task \"%s\": cannot resolve "
                               "bind source \"%s\": %s", t->pt->task, src, strerror(errno));
        }
        if (strncmp(real, root, rl) != 0 || (real[rl] != '/' && real[rl] != '\0')) {
            return drv_err_set(err, DRV_EDENIED, "policies/volumes.lua: task \"%s\": bind source "
                               "\"%s\" resolves outside the alloc dir: \"%s\"", t->pt->task, src, real);
        }
    }
    return 0;
}

static void create_container(task *t)
{
    buf path = BUF_INIT;
    drv_err e;

    if (check_confined(t, &e) < 0) {
        fail(t, &e);
        finish(t);
        return;
    }
    buf_appendf(&path, "/containers/create?name=%s", t->pt->name);
    t->state = ST_CREATE;
    if (call(t, &t->main_req, "POST", buf_str(&path), t->pt->body, NULL, NULL, on_create) < 0) {
        finish(t);
    }
    buf_free(&path);
}

/* Output: the attach stream, opened before start, demultiplexed into the log
 * sink. Attaching (rather than following /logs) sees every byte whatever the
 * container's log driver, and loses nothing when json-file rotates. */
static int on_frame(void *ud, int stream, const char *data, size_t len)
{
    task *t = ud;
    return logs_write(t->logs, stream == FRAME_STDERR ? FRAME_STDERR : FRAME_STDOUT, data, len, NULL);
}

static int on_logs_data(void *ud, const char *data, size_t len)
{
    call_ctx *c = ud;
    task *t = c->t;
    drv_err err;
    int rc = frame_feed(&t->frames, data, len, &err);
    if (rc < 0) {
        log_warn("task \"%s\": log stream: %s", t->pt->task, err.msg);
    }
    return rc;
}

static void on_logs(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    (void)err;
    if (rc == 0 && !ok(status)) {
        decoded d;
        if (script_decode(t->ctx.script, "error", status, buf_str(body), &d, NULL) == 0) {
            log_warn("task \"%s\": logs are not collected: docker: %s", t->pt->task,
                     d.message ? d.message : buf_str(body));
            decoded_free(&d);
        }
    }
    t->logs_done = 1;
    if (t->state == ST_ATTACH) {
        /* the attach ended before the container started: cancelled by a
         * stop (start_container then removes it), or refused by Docker (the
         * task runs without its output collected) */
        if (!t->stopping) {
            log_warn("task \"%s\": output is not collected: attach failed", t->pt->task);
        }
        start_container(t);
    } else if (t->state == ST_EXITED) {
        advance(t);
    }
}

static void on_wait(task *t, int rc, long status, const buf *body, const drv_err *err);
static void on_start(task *t, int rc, long status, const buf *body, const drv_err *err);
static void on_attached(task *t, long status);

/* Create answered 404: the image is not here. Load it once when the job says
 * how (then create again), else fail with what to do. Returns 1 when it
 * handled the answer. */
static int missing_image(task *t, const buf *body)
{
    decoded d;
    int is_image = 0;
    if (script_decode(t->ctx.script, "error", 404, buf_str(body), &d, NULL) == 0) {
        is_image = d.message != NULL && strstr(d.message, "No such image") != NULL;
        decoded_free(&d);
    }
    if (!is_image) {
        return 0;
    }
    if (t->pt->load != NULL && !t->loaded) {
        load_image(t);
        return 1;
    }
    drv_err e;
    if (t->loaded) {
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": image \"%s\" is not in the archive loaded from \"%s\"",
                    t->pt->task, t->pt->image, t->pt->load);
    } else {
        drv_err_set(&e, DRV_EIMAGE,
                    "task \"%s\": image \"%s\" is not present locally and registry pulls are "
                    "not supported yet; load it with config { load = \"image.tar\" } and an "
                    "artifact, or `docker load` it first",
                    t->pt->task, t->pt->image);
    }
    fail(t, &e);
    finish(t);
    return 1;
}

static void on_create(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    if (rc == 0 && ok(status)) {
        decoded d;
        if (script_decode(t->ctx.script, "create", status, buf_str(body), &d, NULL) == 0 &&
            d.id != NULL) {
            t->id = d.id;
            d.id = NULL;
        }
        decoded_free(&d);
    }
    if (t->id == NULL && rc == 0 && status == 404 && !t->stopping && missing_image(t, body)) {
        return;
    }
    if (t->id == NULL) {
        if (!t->stopping || rc != DRV_ECANCELED) {
            docker_failure(t, DRV_ETASK, "create container", rc, status, body, err);
        }
        finish(t);
        return;
    }
    if (!t->loaded && t->pt->pull != NULL && strcmp(t->pt->pull, "always") == 0) {
        log_warn("task \"%s\": using local image \"%s\": registry pulls are not supported yet",
                 t->pt->task, t->pt->image);
    }
    if (t->stopping) {
        remove_container(t);
        return;
    }
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/attach?stream=1&stdout=1&stderr=1", t->id);
    t->state = ST_ATTACH;
    frame_init(&t->frames, t->pt->tty, on_frame, t);
    if (call_head(t, &t->logs_req, "POST", buf_str(&path), NULL, NULL, on_logs_data,
                  on_attached, on_logs) < 0) {
        t->logs_done = 1;
        start_container(t);
    }
    buf_free(&path);
}

static void start_container(task *t)
{
    if (t->state != ST_ATTACH) {
        return;
    }
    if (t->stopping) {
        remove_container(t);
        return;
    }
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/start", t->id);
    t->state = ST_START;
    if (call(t, &t->main_req, "POST", buf_str(&path), NULL, NULL, NULL, on_start) < 0) {
        remove_container(t);
    }
    buf_free(&path);
}

static void on_attach_timer(uv_timer_t *timer)
{
    start_container(timer->data);
}

/* The attach stream is open: start the container, but from the loop, since
 * this runs inside libcurl, which takes no new request here. */
static void on_attached(task *t, long status)
{
    if (ok(status) || status == 101) {
        uv_timer_start(&t->timer, on_attach_timer, 0, 0);
    }
}

static void on_signal_sent(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    /* 304 (stop: not running), 404 (gone), 409 (kill: not running): stopped */
    if (rc < 0 && rc != DRV_ECANCELED) {
        log_warn("task \"%s\": signal: %s", t->pt->task, err->msg);
    } else if (rc == 0 && !ok(status) && status != 304 && status != 404 && status != 409) {
        log_warn("task \"%s\": signal: docker: HTTP %ld: %s", t->pt->task, status, buf_str(body));
    }
}

static void send_signal(task *t, const char *sig)
{
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/kill?signal=%s", t->id, sig);
    /* 409 (not running) and 404 (gone) mean it already stopped: ignore */
    call(t, NULL, "POST", buf_str(&path), NULL, NULL, NULL, on_signal_sent);
    buf_free(&path);
}

static void on_kill_timer(uv_timer_t *timer)
{
    task *t = timer->data;
    if (t->state == ST_RUNNING && !t->exited) {
        log_info("task \"%s\": still running after %ld ms, sending SIGKILL", t->pt->task,
                 t->pt->kill_timeout_ms);
        send_signal(t, "SIGKILL");
    }
}

/* Sends the stop signal (or SIGKILL) and arms the escalation timer. */
static void signal_running(task *t)
{
    if (t->forced) {
        send_signal(t, "SIGKILL");
        return;
    }
    if (t->kill_sent) {
        return;
    }
    t->kill_sent = 1;
    if (t->pt->kill_signal != NULL) {
        /* kill_signal, then SIGKILL after kill_timeout */
        log_info("task \"%s\": sending %s (kill_timeout %ld ms)", t->pt->task, t->pt->kill_signal,
                 t->pt->kill_timeout_ms);
        send_signal(t, t->pt->kill_signal);
        uv_timer_start(&t->timer, on_kill_timer, (uint64_t)t->pt->kill_timeout_ms, 0);
        return;
    }
    /* no kill_signal: Docker sends the container's STOPSIGNAL (the image's,
     * else SIGTERM) and SIGKILL after t seconds; the timer is a backstop */
    long secs = (t->pt->kill_timeout_ms + 999) / 1000;
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/stop?t=%ld", t->id, secs);
    log_info("task \"%s\": stopping with the image's stop signal (kill_timeout %ld ms)",
             t->pt->task, t->pt->kill_timeout_ms);
    call(t, NULL, "POST", buf_str(&path), NULL, NULL, NULL, on_signal_sent);
    buf_free(&path);
    uv_timer_start(&t->timer, on_kill_timer, (uint64_t)(secs * 1000 + 1000), 0);
}

static void on_start(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    if (rc < 0 || !(ok(status) || status == 304)) {
        if (!(t->stopping && rc == DRV_ECANCELED)) {
            docker_failure(t, DRV_ETASK, "start container", rc, status, body, err);
        }
        remove_container(t);
        return;
    }
    t->state = ST_RUNNING;
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/wait?condition=not-running", t->id);
    if (call(t, &t->main_req, "POST", buf_str(&path), NULL, NULL, NULL, on_wait) < 0) {
        buf_free(&path);
        remove_container(t);
        return;
    }
    buf_free(&path);
    if (t->stopping) {
        signal_running(t);
    }
}

static void on_container_inspect(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    (void)err;
    if (rc == 0 && ok(status)) {
        decoded d;
        if (script_decode(t->ctx.script, "container_inspect", status, buf_str(body), &d, NULL) == 0) {
            t->oom_killed = d.oom_killed;
            decoded_free(&d);
        }
    }
    t->state = ST_EXITED;
    advance(t);
}

static void on_wait(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    t->exited = 1;
    uv_timer_stop(&t->timer);
    if (rc == 0 && ok(status)) {
        decoded d;
        if (script_decode(t->ctx.script, "wait", status, buf_str(body), &d, NULL) == 0) {
            t->exit_code = d.exit_code;
            if (d.error != NULL) {
                log_warn("task \"%s\": wait: %s", t->pt->task, d.error);
            }
            decoded_free(&d);
        }
    } else if (!(t->stopping && rc == DRV_ECANCELED)) {
        docker_failure(t, DRV_ETASK, "wait for container", rc, status, body, err);
    }
    buf path = BUF_INIT;
    buf_appendf(&path, "/containers/%s/json", t->id);
    if (call(t, &t->main_req, "GET", buf_str(&path), NULL, NULL, NULL, on_container_inspect) < 0) {
        t->state = ST_EXITED;
        advance(t);
    }
    buf_free(&path);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    task *t = timer->data;
    if (!t->logs_done && t->logs_req != NULL) {
        log_warn("task \"%s\": log stream did not end %d ms after exit; closing it",
                 t->pt->task, LOG_DRAIN_MS);
        http_cancel(t->logs_req);
    }
}

static void on_remove(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    if (rc < 0 || !(ok(status) || status == 404)) {
        drv_err e;
        if (rc < 0) {
            e = *err;
        } else {
            drv_err_set(&e, DRV_EINTERNAL, "HTTP %ld: %s", status, buf_str(body));
        }
        log_error("task \"%s\": could not remove container \"%s\": %s", t->pt->task, t->pt->name, e.msg);
    }
    finish(t);
}

static void remove_container(task *t)
{
    buf path = BUF_INIT;
    t->state = ST_REMOVE;
    if (t->logs_req != NULL) {
        http_cancel(t->logs_req);
    }
    buf_appendf(&path, "/containers/%s?force=1&v=1", t->id);
    if (call(t, NULL, "DELETE", buf_str(&path), NULL, NULL, NULL, on_remove) < 0) {
        log_error("task \"%s\": could not remove container \"%s\"", t->pt->task, t->pt->name);
        finish(t);
    }
    buf_free(&path);
}

/* Moves through the steps that have no request of their own. */
static void advance(task *t)
{
    switch (t->state) {
    case ST_NEW:
        for (size_t i = 0; i < t->pt->ndirs; i++) {
            drv_err e;
            if (mkdir_p(t->pt->dirs[i], &e) < 0) {
                drv_err f;
                drv_err_set(&f, DRV_EIO, "task \"%s\": %s", t->pt->task, e.msg);
                fail(t, &f);
                finish(t);
                return;
            }
        }
        {
            drv_err e;
            logs_opts lo = {
                .dir = t->pt->log_dir, .task = t->pt->task,
                .max_files = t->pt->log_max_files,
                .max_file_size = (size_t)t->pt->log_max_file_size,
                .echo_prefix = t->ctx.echo ? t->pt->task : NULL,
            };
            if (logs_open(&t->logs, &lo, &e) < 0) {
                fail(t, &e);
                finish(t);
                return;
            }
        }
        t->state = ST_ARTIFACTS;
        /* fall through */
    case ST_ARTIFACTS:
        if (t->err.code != 0 || t->stopping) {
            finish(t);
            return;
        }
        if (t->next_artifact < t->pt->nartifacts) {
            fetch_artifact(t);
            return;
        }
        create_container(t);
        return;
    case ST_EXITED:
        if (!t->logs_done) {
            if (!uv_is_active((uv_handle_t *)&t->timer)) {
                uv_timer_start(&t->timer, on_drain_timeout, LOG_DRAIN_MS, 0);
            }
            return;
        }
        uv_timer_stop(&t->timer);
        remove_container(t);
        return;
    default:
        return;
    }
}

/* Reports the task once it is finishing and nothing is in flight. */
static void maybe_done(task *t)
{
    if (!t->finishing || t->pending > 0 || t->state == ST_DONE) {
        return;
    }
    t->state = ST_DONE;
    uv_timer_stop(&t->timer);
    logs_close(t->logs);
    t->logs = NULL;
    t->on_done(t->ud, t);
}

static void finish(task *t)
{
    if (t->finishing || t->state == ST_DONE) {
        return;
    }
    if (t->id != NULL && t->state != ST_REMOVE) {
        remove_container(t);
        return;
    }
    t->finishing = 1;
    if (t->logs_req != NULL) {
        http_cancel(t->logs_req);
    }
    maybe_done(t);
}

/* --- public ---------------------------------------------------------------- */

int task_new(task **out, const task_ctx *ctx, const plan_task *pt,
             task_done_cb on_done, void *ud, drv_err *err)
{
    (void)err;
    task *t = drv_xcalloc(1, sizeof *t);
    t->ctx = *ctx;
    t->pt = pt;
    t->on_done = on_done;
    t->ud = ud;
    t->state = ST_NEW;
    uv_timer_init(ctx->loop, &t->timer);
    t->timer.data = t;
    *out = t;
    return 0;
}

void task_start(task *t)
{
    advance(t);
}

void task_stop(task *t, int force)
{
    if (t->state == ST_DONE) {
        return;
    }
    int again = t->stopping;
    t->stopping = 1;
    if (force) {
        t->forced = 1;
    }
    switch (t->state) {
    case ST_ARTIFACTS:
        if (t->art != NULL) {
            artifact_cancel(t->art);
        }
        break;
    case ST_LOAD:
        if (t->main_req != NULL) {
            http_cancel(t->main_req);
        }
        break;
    case ST_ATTACH:
        /* not started yet: a pending attach ends in on_logs, which then
         * sees `stopping` and removes the container instead of starting it */
        if (t->logs_req != NULL && !uv_is_active((uv_handle_t *)&t->timer)) {
            http_cancel(t->logs_req);
        }
        break;
    case ST_RUNNING:
        if (!t->exited && (!again || force)) {
            signal_running(t);
        }
        break;
    default:
        /* create/start in flight: handled when they answer */
        break;
    }
}

int task_exit_code(const task *t)
{
    if (t->err.code != 0) {
        return drv_err_exit_code(t->err.code);
    }
    return (int)t->exit_code;
}

const drv_err *task_error(const task *t)
{
    return t->err.code != 0 ? &t->err : NULL;
}

int task_oom_killed(const task *t)
{
    return t->oom_killed;
}

static void on_task_close(uv_handle_t *h)
{
    task *t = h->data;
    free(t->id);
    free(t->load_error);
    free(t);
}

void task_free(task *t)
{
    if (t != NULL) {
        uv_close((uv_handle_t *)&t->timer, on_task_close);
    }
}
