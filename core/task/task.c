/* task.c: one task instance's lifecycle (see task.h). */
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "frame.h"
#include "fs.h"
#include "imagetar.h"
#include "lines.h"
#include "log.h"
#include "logs.h"
#include "pin.h"
#include "regcheck.h"

#define LOG_DRAIN_MS 2000      /* how long to wait for the log stream after exit */
/* Bounds on the requests of a stop: a Docker that stops answering must not
 * hold a stopping drvctl for minutes (a signal always ends the run). */
#define STOP_REQ_MS 3000       /* kill, and on top of /stop's own t seconds */
#define REMOVE_MS 30000        /* removing a container after it exited */
#define REMOVE_STOPPING_MS 5000 /* removing it when stopping (signal, failure) */

typedef enum {
    ST_NEW, ST_RECOVER, ST_ARTIFACTS, ST_AUTH, ST_PULL, ST_LOAD, ST_CREATE, ST_ATTACH, ST_START, ST_RUNNING,
    ST_EXITED, ST_REMOVE, ST_DONE,
} task_state;

struct task {
    task_ctx ctx;
    plan_task spec;            /* owned copy */
    const plan_task *pt;       /* &spec */
    task_done_cb on_done;
    void *ud;

    task_state state;
    int stopping;              /* stop requested */
    int finishing;             /* winding down; done when nothing is in flight */
    int forced;                /* SIGKILL requested */
    int kill_sent;
    int abandoned;             /* task_abandon: no new requests */
    int leftover;              /* the container may still exist */
    int kept;                  /* ctx.keep_container: left stopped for inspection */
    int create_cut;            /* stopped waiting for the create's answer */
    struct call_ctx *calls;    /* requests in flight */
    char *id;                  /* container id once created */
    int loaded;                /* image came from `load` */
    auth_req *auth;            /* registry auth in flight */
    regcheck *regcheck;        /* registry check in flight (regcheck.h) */
    int registry_checked;      /* ... done, or not needed */
    pull_waiter *pull_w;       /* waiting for the image's pull */
    int pulled;                /* a pull ran for this task (success or not) */
    int pull_fresh;            /* ... and brought the image */
    int pull_rc;               /* its result, handled from the loop (step_timer) */
    int image_cancelled;       /* auth or pull cancelled by a stop */
    uint64_t pull_started;     /* loop time */
    char *pull_ref;            /* "repo:tag" for events */
    char *image_id;            /* "sha256:..." once known (pull, load) */
    int ref_taken;             /* imagerefs holds this task's reference */
    size_t npinned;            /* pt->pins[0..npinned) are mounted */

    size_t next_artifact;
    artifact *art;             /* fetch in flight */
    http_req *main_req;        /* the step in flight */
    http_req *logs_req;        /* the attach stream (stdout and stderr) */
    int pending;               /* requests in flight (any kind) */
    int logs_done;
    int exited;
    /* one timer per purpose, each closed in task_free (see on_timer_closed) */
    uv_timer_t hop_timer;      /* attach answered: start from the loop */
    uv_timer_t kill_timer;     /* kill escalation to SIGKILL */
    uv_timer_t drain_timer;    /* log stream drain after exit */
    uv_timer_t guard_timer;    /* stop with create/start in flight */
    uv_timer_t step_timer;     /* auth/pull ended: continue from the loop */
    uv_timer_t oom_timer;      /* exit 137 not (yet) marked OOMKilled: look again */
    int oom_checks;
    int timers_open;           /* closes still to come before the free */

    FILE *load_file;
    int load_fd;               /* the archive, opened beneath the alloc dir; -1 */
    lines load_lines;
    char *load_error;
    char *load_config_id;      /* "sha256:..." the archive's image would get */

    logs *logs;
    frame_parser frames;

    /* outcome: what the container did, and what the driver could not do */
    int ran;                   /* the container's exit was collected */
    long exit_code;            /* the container's */
    int oom_killed;
    char *recover_id;          /* task_recover: the container to adopt */
    drv_err err;               /* driver failure (before, or around, the run) */
    drv_err sink_err;          /* why the log sink refused a frame */
};

typedef void (*step_fn)(task *t, int rc, long status, const buf *body, const drv_err *err);
typedef void (*head_fn)(task *t, long status);

typedef struct call_ctx {
    task *t;
    step_fn next;
    head_fn head;              /* status line in; runs inside libcurl: no requests */
    http_req **slot;
    docker_cb cb;              /* what the docker_* call reports to */
    http_req *r;               /* the request it started */
    drv_err err;               /* why it could not start */
    struct call_ctx *prev, *next_call; /* in flight, for task_abandon */
} call_ctx;

static void advance(task *t);
static void finish(task *t);
static void start_container(task *t);
static void maybe_done(task *t);
static void remove_container(task *t);

static void stop_timers(task *t)
{
    uv_timer_stop(&t->hop_timer);
    uv_timer_stop(&t->kill_timer);
    uv_timer_stop(&t->drain_timer);
    uv_timer_stop(&t->guard_timer);
    uv_timer_stop(&t->oom_timer);
}

/* Tells the owner (ctx.on_state) before a step that changes Docker's state,
 * so that it can persist what it needs first. */
static void notify(task *t, task_step step)
{
    if (t->ctx.on_state != NULL) {
        t->ctx.on_state(t->ud, t, step);
    }
}

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
    if (c->prev != NULL) {
        c->prev->next_call = c->next_call;
    } else {
        t->calls = c->next_call;
    }
    if (c->next_call != NULL) {
        c->next_call->prev = c->prev;
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

/* Prepares a Docker call whose result goes to `next` (and whose status line,
 * if `head` is set, goes to `head` as soon as it arrives), limited to
 * timeout_ms (0: the call's default). Pass c->cb, &c->r and &c->err to the
 * docker_* function, and its result to call_end:
 *     c = call_new(t, ...);
 *     if (c != NULL) call_end(c, docker_container_start(d, id, &c->cb, &c->r, &c->err));
 * After task_abandon it returns NULL: nothing new is started. */
static call_ctx *call_new(task *t, http_req **slot, http_data_cb on_data, head_fn head,
                          step_fn next, long timeout_ms)
{
    if (t->abandoned) {
        return NULL;
    }
    call_ctx *c = drv_xcalloc(1, sizeof *c);
    c->t = t;
    c->next = next;
    c->head = head;
    c->slot = slot;
    c->cb.on_data = on_data;
    c->cb.on_head = head != NULL ? on_call_head : NULL;
    c->cb.on_done = on_call_done;
    c->cb.ud = c;
    c->cb.timeout_ms = timeout_ms;
    drv_err_clear(&c->err);
    return c;
}

/* Accounts for a started call, or records why it did not start. */
static int call_end(call_ctx *c, int rc)
{
    task *t = c->t;
    if (rc < 0) {
        if (t->err.code == 0) {
            t->err = c->err;
        }
        free(c);
        return rc;
    }
    t->pending++;
    if (c->slot != NULL) {
        *c->slot = c->r;
    }
    c->next_call = t->calls;
    if (t->calls != NULL) {
        t->calls->prev = c;
    }
    t->calls = c;
    return 0;
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

/* What Docker's answer to `op` means (docker_classify); the error message
 * is decoded only when the class depends on it. No answer (rc < 0) is
 * DOCKER_UNEXPECTED, never done. */
static docker_answer answer(task *t, docker_op op, int rc, long status, const buf *body)
{
    docker_answer a;
    docker_classify(op, rc == 0 ? status : 0, NULL, &a);
    if (rc == 0 && (a.cls == DOCKER_NOT_FOUND || a.cls == DOCKER_CONFLICT)) {
        decoded d;
        if (script_decode(t->ctx.script, "error", status, buf_str(body), &d, NULL) == 0) {
            docker_classify(op, status, d.message, &a);
        }
        decoded_free(&d);
    }
    return a;
}

/* 1 when the call did what it asked (a 2xx, or what it asked held already). */
static int done(task *t, docker_op op, int rc, long status, const buf *body)
{
    return answer(t, op, rc, status, body).done;
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
    if (!done(t, DOCKER_OP_IMAGE_LOAD, rc, status, body)) {
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

/* Opens the image archive beneath the alloc dir without following any
 * symlink (an earlier artifact or a sibling task may have planted
 * `local/img.tar -> /etc/shadow`): a regular file, read-only. */
static int open_load_archive(task *t, drv_err *err)
{
    const char *root = t->pt->alloc_dir;
    size_t n = root != NULL ? strlen(root) : 0;
    const char *load = t->pt->load;
    if (n == 0 || strncmp(load, root, n) != 0 || load[n] != '/') {
        return drv_err_set(err, DRV_EDENIED, "image archive is outside the alloc dir: \"%s\"",
                           load);
    }
    int pfd = pin_open_as("image archive", root, load + n + 1, 0, err);
    if (pfd < 0) {
        return pfd;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
    int fd = open(proc, O_RDONLY | O_CLOEXEC);
    int e = errno;
    close(pfd);
    if (fd < 0) {
        return drv_err_set(err, DRV_EIMAGE, "cannot open image archive: %s: \"%s\"", strerror(e),
                           load);
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return drv_err_set(err, DRV_EDENIED, "image archive is not a regular file: \"%s\"", load);
    }
    return fd;
}

static void post_load(task *t)
{
    /* the manifest check read the same open file: rewind it for Docker */
    if (lseek(t->load_fd, 0, SEEK_SET) != 0 ||
        (t->load_file = fdopen(t->load_fd, "rb")) == NULL) {
        drv_err e;
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": cannot read image archive for load: \"%s\": %s",
                    t->pt->task, t->pt->load, strerror(errno));
        fail(t, &e);
        finish(t);
        return;
    }
    t->load_fd = -1;    /* owned by load_file now */
    lines_init(&t->load_lines, 0, on_load_line, t);
    call_ctx *c = call_new(t, &t->main_req, on_load_data, NULL, on_load, 0);
    if (c == NULL || call_end(c, docker_image_load(t->ctx.docker, t->load_file, 1, &c->cb, &c->r, &c->err)) < 0) {
        fclose(t->load_file);
        t->load_file = NULL;
        lines_free(&t->load_lines);
        finish(t);
    }
}

/* The task's image tag exists already: loading may not re-point it to a
 * different image. The same image (config digest) is fine. */
static void on_load_inspect(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    drv_err e;
    if (t->stopping && rc == DRV_ECANCELED) {
        finish(t);
        return;
    }
    docker_answer a = answer(t, DOCKER_OP_IMAGE_INSPECT, rc, status, body);
    if (rc == 0 && a.cls == DOCKER_NOT_FOUND) {
        post_load(t);
        return;
    }
    if (rc < 0 || !a.done) {
        docker_failure(t, DRV_EIMAGE, "image load: inspect the existing image", rc, status, body, err);
        finish(t);
        return;
    }
    decoded d;
    char *have = NULL;
    if (script_decode(t->ctx.script, "image_inspect", status, buf_str(body), &d, NULL) == 0) {
        have = d.id;
        d.id = NULL;
        decoded_free(&d);
    }
    if (have != NULL && t->load_config_id != NULL && strcmp(have, t->load_config_id) == 0) {
        free(have);
        post_load(t);
        return;
    }
    drv_err_set(&e, DRV_EIMAGE, "task \"%s\": image archive \"%s\": image \"%s\" already exists "
                "as %s and the archive would re-point it to %s: refused", t->pt->task, t->pt->load,
                t->pt->image, have ? have : "another image",
                t->load_config_id ? t->load_config_id : "an image of unknown id");
    free(have);
    fail(t, &e);
    finish(t);
}

/* Before anything reaches Docker: the archive may tag only the task's own
 * image (imagetar.h, lua/drv/imagetar.lua). */
static void load_image(task *t)
{
    imagetar it;
    drv_err e;
    buf json = BUF_INIT;
    decoded d;

    t->state = ST_LOAD;
    log_info("task \"%s\": loading image \"%s\" from \"%s\"", t->pt->task, t->pt->image, t->pt->load);
    t->load_fd = open_load_archive(t, &e);
    if (t->load_fd < 0) {
        drv_err f;
        drv_err_set(&f, e.code, "task \"%s\": %s", t->pt->task, e.msg);
        t->load_fd = -1;
        fail(t, &f);
        finish(t);
        return;
    }
    if (imagetar_read_fd(t->load_fd, t->pt->load, &it, &e) < 0) {
        drv_err f;
        drv_err_set(&f, DRV_EIMAGE, "task \"%s\": %s", t->pt->task, e.msg);
        fail(t, &f);
        finish(t);
        return;
    }
    imagetar_json(&it, t->pt->image, &json);
    imagetar_free(&it);
    int rc = script_decode(t->ctx.script, "load_manifest", 200, buf_str(&json), &d, &e);
    buf_free(&json);
    if (rc < 0 || d.error != NULL) {
        drv_err f;
        drv_err_set(&f, DRV_EIMAGE, "task \"%s\": image archive \"%s\": %s: refused", t->pt->task,
                    t->pt->load, rc < 0 ? e.msg : d.error);
        decoded_free(&d);
        fail(t, &f);
        finish(t);
        return;
    }
    t->load_config_id = d.id;
    d.id = NULL;
    decoded_free(&d);

    call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_load_inspect, 30000);
    if (c == NULL || call_end(c, docker_image_inspect(t->ctx.docker, t->pt->image, &c->cb, &c->r,
                                                      &c->err)) < 0) {
        finish(t);
    }
}

static void on_create(task *t, int rc, long status, const buf *body, const drv_err *err);
static void create_container(task *t);
static void on_image_step(uv_timer_t *timer);

/* The staging path must be `<binds_dir>/<name>` with a name of hex digits
 * and dashes (alloc id and indexes): nothing a job chose. */
static int valid_staging(const char *binds_dir, const char *staging)
{
    size_t bl = strlen(binds_dir);
    if (strncmp(staging, binds_dir, bl) != 0 || staging[bl] != '/' || staging[bl + 1] == '\0') {
        return 0;
    }
    for (const char *p = staging + bl + 1; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-')) {
            return 0;
        }
    }
    return 1;
}

/* A pin's root is the alloc dir or one of its ancestors (the data dir). */
static int valid_root(const char *alloc_dir, const char *root)
{
    size_t rl = strlen(root);
    return root[0] == '/' && alloc_dir != NULL && strncmp(alloc_dir, root, rl) == 0 &&
           (alloc_dir[rl] == '\0' || alloc_dir[rl] == '/');
}

/* Pins are released once the container started (its mounts are its own
 * then), or when the task finishes without having started. Unpinning runs
 * on the libuv thread pool: each umount waits for an RCU grace period (2-3
 * ms here), and in parallel those overlap (4 binds: ~3.5 ms instead of ~10
 * ms on the loop). The task is done once all are back. */
typedef struct unpin_work {
    uv_work_t req;
    task *t;
    const char *staging;
    int rc;
    drv_err err;
} unpin_work;

static void unpin_run(uv_work_t *req)
{
    unpin_work *u = req->data;
    u->rc = pin_release(u->staging, &u->err);
}

static void unpin_after(uv_work_t *req, int status)
{
    unpin_work *u = req->data;
    task *t = u->t;
    if (status < 0) {                   /* cancelled before it ran */
        u->rc = pin_release(u->staging, &u->err);
    }
    if (u->rc < 0) {
        log_error("task \"%s\": %s", t->pt->task, u->err.msg);
    }
    free(u);
    t->pending--;
    maybe_done(t);
}

/* Unmounts and removes every staging path this task pinned. */
static void unpin_all(task *t)
{
    for (size_t i = t->npinned; i > 0; i--) {
        unpin_work *u = drv_xcalloc(1, sizeof *u);
        u->req.data = u;
        u->t = t;
        u->staging = t->pt->pins[i - 1].staging;
        if (uv_queue_work(t->ctx.loop, &u->req, unpin_run, unpin_after) == 0) {
            t->pending++;
            continue;
        }
        if (pin_release(u->staging, &u->err) < 0) {
            log_error("task \"%s\": %s", t->pt->task, u->err.msg);
        }
        free(u);
    }
    t->npinned = 0;
}

/* Pins every bind source under the data dir (see pin.h): Docker gets the
 * staging paths, which name the directories opened here whatever a
 * container does to the original paths later. No fallback: a source that
 * cannot be pinned fails the task. */
static int pin_all(task *t, drv_err *err)
{
    const plan_task *pt = t->pt;
    drv_err e;

    if (pt->npins == 0 || t->npinned > 0) {
        return 0;
    }
    if (pt->binds_dir == NULL || pin_private_dir(pt->binds_dir, 0, &e) < 0) {
        return drv_err_set(err, DRV_ETASK, "task \"%s\": cannot prepare the directory for "
                           "pinned binds: %s", pt->task, pt->binds_dir ? e.msg : "none planned");
    }
    for (size_t i = 0; i < pt->npins; i++) {
        const plan_pin *p = &pt->pins[i];
        if (p->root == NULL || !valid_root(pt->alloc_dir, p->root) || p->path == NULL ||
            p->staging == NULL || !valid_staging(pt->binds_dir, p->staging)) {
            unpin_all(t);
            return drv_err_set(err, DRV_EINTERNAL, "task \"%s\": malformed bind pin in the "
                               "plan: \"%s\"", pt->task, p->staging ? p->staging : "");
        }
        if (pin_bind(p->root, p->path, p->create, p->staging, &e) < 0) {
            unpin_all(t);
            return drv_err_set(err, e.code == DRV_EDENIED ? DRV_EDENIED : DRV_ETASK,
                               "task \"%s\": %s", pt->task, e.msg);
        }
        t->npinned = i + 1;
        log_debug("task \"%s\": pinned bind source \"%s\" at \"%s\"", pt->task,
                  p->source ? p->source : p->path, p->staging);
    }
    return 0;
}

/* --- the image: registry auth and pull (pull.h, auth.h) ------------------------ */

/* 1 when this task may pull: a puller, a registry reference, and no `load`
 * (a task with `load` never pulls: the archive is its source). */
static int can_pull(const task *t)
{
    const plan_task *pt = t->pt;
    return t->ctx.puller != NULL && pt->load == NULL && pt->image_repo != NULL &&
           pt->image_repo[0] != '\0' && pt->image_tag != NULL && pt->image_tag[0] != '\0' &&
           pt->image_registry != NULL && pt->image_registry[0] != '\0';
}

static void pull_event_out(task *t, pull_event *ev)
{
    if (t->ctx.on_pull != NULL) {
        ev->ref = t->pull_ref;
        t->ctx.on_pull(t->ctx.pull_ud, t, ev);
    }
}

static void on_pull_progress(void *ud, const pull_event *ev)
{
    task *t = ud;
    if (t->ctx.on_pull != NULL) {
        t->ctx.on_pull(t->ctx.pull_ud, t, ev);
    }
}

/* The pull's result: every waiter of a shared pull is told in one go,
 * before any of them acts on it (from the loop, here), so that a sibling
 * stopped by the first failure still ends with the same failure. */
static void on_pull_done(void *ud, int rc, const char *image_id, const pull_stats *stats,
                         const drv_err *err)
{
    task *t = ud;
    t->pull_w = NULL;
    t->pulled = 1;
    t->pull_rc = rc;
    if (rc == 0) {
        free(t->image_id);
        t->image_id = image_id != NULL ? drv_xstrdup(image_id) : NULL;
        t->pull_fresh = stats != NULL && stats->fresh;
    } else if (rc != DRV_ECANCELED && err != NULL) {
        drv_err e;
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": %s", t->pt->task, err->msg);
        fail(t, &e);
    }
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = PULL_EV_DONE;
    ev.rc = rc;
    ev.err = rc < 0 ? err : NULL;
    ev.image_id = image_id;
    ev.stats = stats;
    ev.elapsed_ms = uv_now(t->ctx.loop) - t->pull_started;
    if (rc != DRV_ECANCELED) {
        pull_event_out(t, &ev);
    }
    uv_timer_start(&t->step_timer, on_image_step, 0, 0);
}

static void start_pull(task *t, const char *header)
{
    drv_err e;
    buf ref = BUF_INIT;
    t->state = ST_PULL;
    pull_ref(&ref, t->pt->image_repo, t->pt->image_tag);
    free(t->pull_ref);
    t->pull_ref = drv_xstrdup(buf_str(&ref));
    buf_free(&ref);
    t->pull_started = uv_now(t->ctx.loop);
    log_debug("task \"%s\": pulling \"%s\"", t->pt->task, t->pull_ref);
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = PULL_EV_START;
    pull_event_out(t, &ev);
    pull_request q = {
        .repo = t->pt->image_repo, .tag = t->pt->image_tag, .auth = header,
        .timeout_ms = t->pt->image_pull_timeout_ms,
        .activity_timeout_ms = t->pt->pull_activity_timeout_ms,
    };
    if (puller_pull(t->ctx.puller, &q, on_pull_progress, on_pull_done, t, &t->pull_w, &e) < 0) {
        drv_err f;
        drv_err_set(&f, DRV_EIMAGE, "task \"%s\": %s", t->pt->task, e.msg);
        fail(t, &f);
        finish(t);
        return;
    }
    t->pending++;
}

static void on_auth(void *ud, int rc, const char *header, const drv_err *err)
{
    task *t = ud;
    t->auth = NULL;
    t->pending--;
    if (rc < 0) {
        drv_err e;
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": %s", t->pt->task,
                    err != NULL ? err->msg : "registry auth failed");
        fail(t, &e);
        finish(t);
    } else if (t->stopping || t->err.code != 0) {
        finish(t);
    } else {
        start_pull(t, header);
    }
    maybe_done(t);
}

static int check_registry(task *t);

/* Resolves the registry credentials (auth.h), then pulls. */
static void start_auth(task *t)
{
    drv_err e;
    if (!t->registry_checked && check_registry(t)) {
        return;
    }
    t->state = ST_AUTH;
    if (t->ctx.auth == NULL) {
        start_pull(t, NULL);
        return;
    }
    const plan_task *pt = t->pt;
    auth_query q = {
        .registry = pt->image_registry, .image = pt->image,
        .username = pt->auth_username, .password = pt->auth_password,
        .email = pt->auth_email, .server = pt->auth_server,
        .soft_fail = pt->auth_soft_fail,
    };
    if (auth_resolve(t->ctx.auth, &q, on_auth, t, &t->auth, &e) < 0) {
        drv_err f;
        drv_err_set(&f, DRV_EIMAGE, "task \"%s\": %s", pt->task, e.msg);
        t->auth = NULL;
        fail(t, &f);
        finish(t);
        return;
    }
    t->pending++;
}

static void on_registry_checked(void *ud, int rc, const drv_err *err)
{
    task *t = ud;
    t->regcheck = NULL;
    t->pending--;
    if (rc < 0) {
        drv_err e;
        drv_err_set(&e, DRV_EDENIED, "task \"%s\": %s", t->pt->task,
                    err != NULL ? err->msg : "image registry refused");
        fail(t, &e);
        finish(t);
    } else if (t->stopping || t->err.code != 0) {
        finish(t);
    } else {
        start_auth(t);
    }
    maybe_done(t);
}

/* Before auth and pull: the registry may not be a loopback or private
 * address of the host (regcheck.h) unless the operator allows private
 * registries. Returns 1 when the check took over (in flight, or refused:
 * the task finishes), 0 when auth may go on now. */
static int check_registry(task *t)
{
    t->registry_checked = 1;
    if (t->ctx.allow_private_registries) {
        return 0;
    }
    drv_err e;
    t->state = ST_AUTH;        /* a stop cancels the check (cancel_image_step) */
    int rc = regcheck_start(t->ctx.loop, t->pt->image_registry, on_registry_checked, t,
                            &t->regcheck, &e);
    if (rc == 1) {
        return 0;
    }
    if (rc < 0) {
        drv_err f;
        drv_err_set(&f, DRV_EDENIED, "task \"%s\": %s", t->pt->task, e.msg);
        fail(t, &f);
        finish(t);
        return 1;
    }
    t->pending++;
    return 1;
}

/* Auth or pull ended (or was cancelled by a stop): go on from the loop. */
static void on_image_step(uv_timer_t *timer)
{
    task *t = timer->data;
    t->pending--;
    if (t->image_cancelled || t->pull_rc < 0 || t->err.code != 0 || t->stopping) {
        finish(t);
    } else {
        create_container(t);
    }
    maybe_done(t);
}

/* A stop (or abandon) while the image step is in flight: cancel it; the
 * task then finishes from the loop, having created nothing. */
static void cancel_image_step(task *t)
{
    if (t->regcheck != NULL) {
        regcheck_cancel(t->regcheck);
        t->regcheck = NULL;
    } else if (t->auth != NULL) {
        auth_cancel(t->auth);
        t->auth = NULL;
    } else if (t->pull_w != NULL) {
        pull_waiter_cancel(t->pull_w);
        t->pull_w = NULL;
    } else {
        return;     /* nothing in flight, or its result is on its way */
    }
    t->image_cancelled = 1;
    uv_timer_start(&t->step_timer, on_image_step, 0, 0);
}

static const char *holder_of(const task *t, buf *b)
{
    buf_reset(b);
    buf_appendf(b, "%s/%s", t->pt->alloc_id != NULL ? t->pt->alloc_id : "",
                t->pt->task != NULL ? t->pt->task : "");
    return buf_str(b);
}

/* The task's image reference, taken right before create. */
static void take_ref(task *t)
{
    if (t->ctx.imagerefs == NULL || t->ref_taken) {
        return;
    }
    drv_err e;
    buf h = BUF_INIT;
    const char *id = t->image_id != NULL ? t->image_id : t->loaded ? t->load_config_id : NULL;
    if (imagerefs_take(t->ctx.imagerefs, holder_of(t, &h), t->pt->image, id,
                       t->loaded || t->pull_fresh, &e) < 0) {
        log_warn("task \"%s\": image reference not recorded: %s", t->pt->task, e.msg);
    } else {
        t->ref_taken = 1;
    }
    buf_free(&h);
}

static void release_ref(task *t)
{
    if (t->ctx.imagerefs == NULL || !t->ref_taken) {
        return;
    }
    buf h = BUF_INIT;
    imagerefs_release(t->ctx.imagerefs, holder_of(t, &h));
    buf_free(&h);
    t->ref_taken = 0;
}

static void create_container(task *t)
{
    drv_err e;

    if (pin_all(t, &e) < 0) {
        fail(t, &e);
        finish(t);
        return;
    }
    t->state = ST_CREATE;
    take_ref(t);
    notify(t, TASK_STEP_CREATE);
    if (t->abandoned) {
        finish(t);
        return;
    }
    call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_create, 0);
    if (c == NULL || call_end(c, docker_container_create(t->ctx.docker, t->pt->name, t->pt->body, &c->cb,
                                            &c->r, &c->err)) < 0) {
        finish(t);
    }
}

/* Output: the attach stream, opened before start, demultiplexed into the log
 * sink. Attaching (rather than following /logs) sees every byte whatever the
 * container's log driver, and loses nothing when json-file rotates. */
static int on_frame(void *ud, int stream, const char *data, size_t len)
{
    task *t = ud;
    return logs_write(t->logs, stream == FRAME_STDERR ? FRAME_STDERR : FRAME_STDOUT, data, len,
                      &t->sink_err);
}

static int on_logs_data(void *ud, const char *data, size_t len)
{
    call_ctx *c = ud;
    task *t = c->t;
    drv_err err;
    /* a refusal of the sink (on_frame) leaves `err` alone: its reason is in
     * t->sink_err */
    drv_err_clear(&err);
    drv_err_clear(&t->sink_err);
    int rc = frame_feed(&t->frames, data, len, &err);
    if (rc < 0) {
        log_warn("task \"%s\": log stream: %s", t->pt->task,
                 err.code != 0 ? err.msg : t->sink_err.code != 0 ? t->sink_err.msg : "aborted");
    }
    return rc;
}

static void on_logs(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    (void)err;
    if (rc == 0 && !answer(t, DOCKER_OP_CONTAINER_ATTACH, rc, status, body).done) {
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

/* Create answered DOCKER_NO_SUCH_IMAGE: the image is not here. Load it once
 * when the job says how (then create again), else fail with what to do. */
static void missing_image(task *t)
{
    /* nothing uses an image that is not here: the reference goes until
     * the load or pull brings it */
    release_ref(t);
    if (t->pt->load != NULL && !t->loaded) {
        load_image(t);
        return;
    }
    if (!t->pulled && can_pull(t)) {
        start_auth(t);
        return;
    }
    drv_err e;
    if (t->loaded) {
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": image \"%s\" is not in the archive loaded from \"%s\"",
                    t->pt->task, t->pt->image, t->pt->load);
    } else if (t->pulled) {
        drv_err_set(&e, DRV_EIMAGE, "task \"%s\": image \"%s\" is still missing after its pull",
                    t->pt->task, t->pt->image);
    } else {
        drv_err_set(&e, DRV_EIMAGE,
                    "task \"%s\": image \"%s\" is not present locally and cannot be pulled "
                    "here; load it with config { load = \"image.tar\" } and an artifact, or "
                    "`docker load` it first",
                    t->pt->task, t->pt->image);
    }
    fail(t, &e);
    finish(t);
}

static void on_create(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    docker_answer a = answer(t, DOCKER_OP_CONTAINER_CREATE, rc, status, body);
    if (rc == 0 && a.cls == DOCKER_OK) {
        decoded d;
        if (script_decode(t->ctx.script, "create", status, buf_str(body), &d, NULL) == 0 &&
            d.id != NULL) {
            t->id = d.id;
            d.id = NULL;
        }
        decoded_free(&d);
    }
    if (t->id == NULL && rc == 0 && a.cls == DOCKER_NO_SUCH_IMAGE) {
        if (t->stopping) {
            /* nothing was created and the stop needs no image: not a
             * failure of its own (a sibling's failure, or a signal, is
             * the answer) */
            release_ref(t);
            finish(t);
            return;
        }
        missing_image(t);
        return;
    }
    if (t->id == NULL) {
        if (!t->stopping || rc != DRV_ECANCELED) {
            docker_failure(t, DRV_ETASK, "create container", rc, status, body, err);
        }
        if (rc < 0) {
            /* cancelled or no answer: Docker may have created it anyway;
             * remove it by its name (unique: it holds the alloc id) */
            remove_container(t);
            return;
        }
        finish(t);
        return;
    }
    if (t->stopping) {
        remove_container(t);
        return;
    }
    t->state = ST_ATTACH;
    frame_init(&t->frames, t->pt->tty, on_frame, t);
    call_ctx *c = call_new(t, &t->logs_req, on_logs_data, on_attached, on_logs, 0);
    if (c == NULL || call_end(c, docker_container_attach(t->ctx.docker, t->id, &c->cb, &c->r, &c->err)) < 0) {
        t->logs_done = 1;
        start_container(t);
    }
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
    t->state = ST_START;
    notify(t, TASK_STEP_START);
    call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_start, 0);
    if (c == NULL || call_end(c, docker_container_start(t->ctx.docker, t->id, &c->cb, &c->r, &c->err)) < 0) {
        remove_container(t);
    }
}

static void on_attach_timer(uv_timer_t *timer)
{
    start_container(timer->data);
}

/* The attach stream is open: start the container, but from the loop, since
 * this runs inside libcurl, which takes no new request here. */
static void on_attached(task *t, long status)
{
    docker_answer a;
    docker_classify(DOCKER_OP_CONTAINER_ATTACH, status, NULL, &a);   /* 2xx or 101 */
    if (a.cls == DOCKER_OK) {
        uv_timer_start(&t->hop_timer, on_attach_timer, 0, 0);
    }
}

/* The answer to a kill or a stop: an answer that means the container is not
 * running any more (docker_answer.done: 304 on stop, 404 gone, 409 not
 * running) is success. */
static void on_signal_sent(task *t, docker_op op, int rc, long status, const buf *body,
                           const drv_err *err)
{
    if (rc < 0 && rc != DRV_ECANCELED) {
        log_warn("task \"%s\": signal: %s", t->pt->task, err->msg);
        if (t->stopping && t->state == ST_RUNNING && !t->exited) {
            /* Docker does not answer: do not wait for an exit it may never
             * report; try to remove the container (bounded) and go */
            remove_container(t);
        }
    } else if (rc == 0 && !answer(t, op, rc, status, body).done) {
        log_warn("task \"%s\": signal: docker: HTTP %ld: %s", t->pt->task, status, buf_str(body));
    }
}

static void on_kill_sent(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    on_signal_sent(t, DOCKER_OP_CONTAINER_KILL, rc, status, body, err);
}

static void on_stop_sent(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    on_signal_sent(t, DOCKER_OP_CONTAINER_STOP, rc, status, body, err);
}

static void send_signal(task *t, const char *sig)
{
    /* 409 (not running) and 404 (gone) mean it already stopped: ignore */
    call_ctx *c = call_new(t, NULL, NULL, NULL, on_kill_sent, STOP_REQ_MS);
    if (c != NULL) {
        (void)call_end(c, docker_container_kill(t->ctx.docker, t->id, sig, &c->cb, &c->r, &c->err));
    }
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
        uv_timer_start(&t->kill_timer, on_kill_timer, (uint64_t)t->pt->kill_timeout_ms, 0);
        return;
    }
    /* no kill_signal: Docker sends the container's STOPSIGNAL (the image's,
     * else SIGTERM) and SIGKILL after t seconds; the timer is a backstop */
    long secs = (t->pt->kill_timeout_ms + 999) / 1000;
    log_info("task \"%s\": stopping with the image's stop signal (kill_timeout %ld ms)",
             t->pt->task, t->pt->kill_timeout_ms);
    call_ctx *c = call_new(t, NULL, NULL, NULL, on_stop_sent, secs * 1000 + STOP_REQ_MS);
    if (c != NULL) {
        (void)call_end(c, docker_container_stop(t->ctx.docker, t->id, secs, &c->cb, &c->r, &c->err));
    }
    uv_timer_start(&t->kill_timer, on_kill_timer, (uint64_t)(secs * 1000 + 1000), 0);
}

static void on_start(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    if (!done(t, DOCKER_OP_CONTAINER_START, rc, status, body)) {   /* 304: running already */
        if (!(t->stopping && rc == DRV_ECANCELED)) {
            docker_failure(t, DRV_ETASK, "start container", rc, status, body, err);
        }
        remove_container(t);
        return;
    }
    t->state = ST_RUNNING;
    /* runc made the container's own bind mounts before start returned: the
     * staging paths have done their job (and Docker never restarts it) */
    unpin_all(t);
    call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_wait, 0);
    if (c == NULL || call_end(c, docker_container_wait(t->ctx.docker, t->id, "not-running", &c->cb, &c->r,
                                          &c->err)) < 0) {
        remove_container(t);
        return;
    }
    if (t->stopping) {
        signal_running(t);
    }
}

static void inspect_exited(task *t);

/* Docker marks State.OOMKilled from the kernel's OOM event, which may
 * arrive a moment after the exit: a SIGKILL exit (137) not marked yet is
 * looked at again a few times before it is reported as a plain kill. */
#define OOM_RECHECKS 3
#define OOM_RECHECK_MS 100

static void on_oom_timer(uv_timer_t *timer)
{
    task *t = timer->data;
    if (t->state == ST_RUNNING) {
        inspect_exited(t);
    }
}

static void on_container_inspect(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    (void)err;
    if (t->state != ST_RUNNING) {
        return;
    }
    if (done(t, DOCKER_OP_CONTAINER_INSPECT, rc, status, body)) {
        decoded d;
        if (script_decode(t->ctx.script, "container_inspect", status, buf_str(body), &d, NULL) == 0) {
            t->oom_killed = d.oom_killed;
            decoded_free(&d);
        }
        if (!t->oom_killed && t->ran && t->exit_code == 137 && !t->stopping &&
            t->oom_checks < OOM_RECHECKS) {
            t->oom_checks++;
            uv_timer_start(&t->oom_timer, on_oom_timer, OOM_RECHECK_MS, 0);
            return;
        }
    }
    t->state = ST_EXITED;
    advance(t);
}

/* After the exit: inspect for State.OOMKilled, then on to removal. */
static void inspect_exited(task *t)
{
    call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_container_inspect, 0);
    if (c == NULL || call_end(c, docker_container_inspect(t->ctx.docker, t->id, &c->cb, &c->r, &c->err)) < 0) {
        t->state = ST_EXITED;
        advance(t);
    }
}

static void on_wait(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    t->exited = 1;
    if (t->state != ST_RUNNING) {
        return;              /* removing already (stop with Docker unresponsive) */
    }
    uv_timer_stop(&t->kill_timer);
    if (done(t, DOCKER_OP_CONTAINER_WAIT, rc, status, body)) {
        decoded d;
        if (script_decode(t->ctx.script, "wait", status, buf_str(body), &d, NULL) == 0) {
            t->exit_code = d.exit_code;
            t->ran = 1;
            if (d.error != NULL) {
                log_warn("task \"%s\": wait: %s", t->pt->task, d.error);
            }
            decoded_free(&d);
        }
    } else if (!(t->stopping && rc == DRV_ECANCELED)) {
        docker_failure(t, DRV_ETASK, "wait for container", rc, status, body, err);
    }
    /* a task that exited 0 was not ended by the OOM killer: only a failure
     * needs the inspect that says whether it was (one round trip less) */
    if (t->ran && t->exit_code == 0) {
        t->state = ST_EXITED;
        advance(t);
        return;
    }
    inspect_exited(t);
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

/* Cancels every request in flight (their callbacks then run with
 * DRV_ECANCELED, from the loop). */
static void cancel_calls(task *t)
{
    for (call_ctx *c = t->calls; c != NULL; c = c->next_call) {
        http_cancel(c->r);
    }
    if (t->art != NULL) {
        artifact_cancel(t->art);
    }
}

/* The container could not be removed: say so, with the command that does
 * it, and stop waiting for anything else Docker owes us. */
static void left_behind(task *t, const char *why)
{
    t->leftover = 1;
    t->abandoned = 1;
    log_error("task \"%s\": container %s may still exist (%s): docker rm -f %s",
              t->pt->task, t->pt->name, why, t->pt->name);
    cancel_calls(t);
}

static void on_remove(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    docker_answer a = answer(t, DOCKER_OP_CONTAINER_REMOVE, rc, status, body);
    if (rc < 0) {
        left_behind(t, rc == DRV_ECANCELED ? "removal cancelled" : err->msg);
    } else if (a.cls == DOCKER_NOT_FOUND && t->id == NULL && t->create_cut) {
        /* a create we stopped waiting for may still complete after this */
        left_behind(t, "docker did not answer the create in time");
    } else if (!a.done) {           /* done: removed, or gone already (404) */
        buf why = BUF_INIT;
        buf_appendf(&why, "docker: HTTP %ld: %s", status, buf_str(body));
        left_behind(t, buf_str(&why));
        buf_free(&why);
    } else {
        cancel_calls(t);     /* the wait and the log stream end with it */
    }
    finish(t);
}

/* Removes the container (by id, or by name when a create may have gone
 * through unanswered), bounded in time when stopping. */
static void remove_container(task *t)
{
    t->state = ST_REMOVE;
    stop_timers(t);
    notify(t, TASK_STEP_REMOVE);
    if (t->logs_req != NULL) {
        http_cancel(t->logs_req);
    }
    call_ctx *c = call_new(t, NULL, NULL, NULL, on_remove,
                           t->stopping || t->err.code != 0 ? REMOVE_STOPPING_MS : REMOVE_MS);
    if (c == NULL || call_end(c, docker_container_remove(t->ctx.docker,
                                                         t->id != NULL ? t->id : t->pt->name, 1, 1,
                                                         &c->cb, &c->r, &c->err)) < 0) {
        left_behind(t, t->abandoned ? "gave up waiting for docker" : "cannot send the removal");
        finish(t);
    }
}

static int open_logs(task *t)
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
        return -1;
    }
    return 0;
}

/* task_recover: what the container is doing decides where the task goes. */
static void on_recover_inspect(task *t, int rc, long status, const buf *body, const drv_err *err)
{
    drv_err e;
    decoded d;
    docker_answer a = answer(t, DOCKER_OP_CONTAINER_INSPECT, rc, status, body);

    if (rc == 0 && a.cls == DOCKER_NOT_FOUND) {
        drv_err_set(&e, DRV_ETASK, "task \"%s\": recover: container %s no longer exists",
                    t->pt->task, t->recover_id);
        fail(t, &e);
        finish(t);
        return;
    }
    if (rc < 0 || !a.done) {
        /* not known to be gone: it may still exist */
        docker_failure(t, DRV_ETASK, "recover: inspect container", rc, status, body, err);
        t->leftover = 1;
        finish(t);
        return;
    }
    if (script_decode(t->ctx.script, "container_inspect", status, buf_str(body), &d, &e) < 0) {
        fail(t, &e);
        t->leftover = 1;
        finish(t);
        return;
    }
    t->id = drv_xstrdup(t->recover_id);
    if (d.running) {
        decoded_free(&d);
        t->state = ST_RUNNING;
        if (open_logs(t) == 0) {
            frame_init(&t->frames, t->pt->tty, on_frame, t);
            call_ctx *c = call_new(t, &t->logs_req, on_logs_data, NULL, on_logs, 0);
            if (c == NULL || call_end(c, docker_container_attach(t->ctx.docker, t->id, &c->cb,
                                                                  &c->r, &c->err)) < 0) {
                t->logs_done = 1;
            }
        } else {
            drv_err_clear(&t->err);   /* the run goes on without its output */
            log_warn("task \"%s\": recover: output is not collected", t->pt->task);
            t->logs_done = 1;
        }
        call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_wait, 0);
        if (c == NULL || call_end(c, docker_container_wait(t->ctx.docker, t->id, "not-running",
                                                           &c->cb, &c->r, &c->err)) < 0) {
            remove_container(t);
            return;
        }
        if (t->stopping) {
            signal_running(t);
        }
        return;
    }
    if (d.status != NULL && strcmp(d.status, "created") == 0) {
        drv_err_set(&e, DRV_ETASK, "task \"%s\": recover: container %s was created but never "
                    "started", t->pt->task, t->recover_id);
        decoded_free(&d);
        fail(t, &e);
        remove_container(t);
        return;
    }
    t->exit_code = d.exit_code;
    t->oom_killed = d.oom_killed;
    t->ran = 1;
    decoded_free(&d);
    t->logs_done = 1;
    t->state = ST_EXITED;
    advance(t);
}

/* Moves through the steps that have no request of their own. */
static void advance(task *t)
{
    switch (t->state) {
    case ST_RECOVER: {
        call_ctx *c = call_new(t, &t->main_req, NULL, NULL, on_recover_inspect, 30000);
        if (c == NULL || call_end(c, docker_container_inspect(t->ctx.docker, t->recover_id,
                                                              &c->cb, &c->r, &c->err)) < 0) {
            t->leftover = 1;
            finish(t);
        }
        return;
    }
    case ST_NEW:
        for (size_t i = 0; i < t->pt->ndirs; i++) {
            drv_err e;
            if (fs_mkdir_p(t->pt->dirs[i], 0755, &e) < 0) {
                drv_err f;
                drv_err_set(&f, DRV_EIO, "task \"%s\": %s", t->pt->task, e.msg);
                fail(t, &f);
                finish(t);
                return;
            }
        }
        if (open_logs(t) < 0) {
            finish(t);
            return;
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
        if (can_pull(t) && t->pt->pull != NULL && strcmp(t->pt->pull, "always") == 0) {
            start_auth(t);
            return;
        }
        create_container(t);
        return;
    case ST_EXITED:
        if (!t->logs_done && !t->abandoned) {
            if (!uv_is_active((uv_handle_t *)&t->drain_timer)) {
                uv_timer_start(&t->drain_timer, on_drain_timeout, LOG_DRAIN_MS, 0);
            }
            return;
        }
        uv_timer_stop(&t->drain_timer);
        if (t->ctx.keep_container && t->ran && t->id != NULL && !t->abandoned) {
            /* docker.cleanup.container = false: the exited container stays */
            t->kept = 1;
            log_debug("task \"%s\": container %s kept for inspection "
                     "(docker.cleanup.container = false): docker rm %s",
                     t->pt->task, t->pt->name, t->pt->name);
            finish(t);
            return;
        }
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
    stop_timers(t);
    logs_close(t->logs);
    t->logs = NULL;
    t->on_done(t->ud, t);
}

static void finish(task *t)
{
    if (t->finishing || t->state == ST_DONE) {
        return;
    }
    if (t->id != NULL && t->state != ST_REMOVE && !t->kept) {
        remove_container(t);
        return;
    }
    t->finishing = 1;
    release_ref(t);
    if (t->load_fd >= 0) {
        close(t->load_fd);
        t->load_fd = -1;
    }
    /* the container is gone, or never started: its pinned binds go too */
    unpin_all(t);
    if (t->logs_req != NULL) {
        http_cancel(t->logs_req);
    }
    maybe_done(t);
}

/* A stop found create or start in flight and Docker has not answered:
 * stop waiting (on_create then removes the container by name). */
static void on_stop_guard(uv_timer_t *timer)
{
    task *t = timer->data;
    if ((t->state == ST_CREATE || t->state == ST_START) && t->main_req != NULL) {
        if (t->state == ST_CREATE) {
            t->create_cut = 1;
        }
        http_cancel(t->main_req);
    }
}

/* --- public ---------------------------------------------------------------- */

int task_new(task **out, const task_ctx *ctx, const plan_task *pt,
             task_done_cb on_done, void *ud, drv_err *err)
{
    (void)err;
    task *t = drv_xcalloc(1, sizeof *t);
    t->ctx = *ctx;
    plan_task_copy(&t->spec, pt);
    t->pt = &t->spec;
    t->on_done = on_done;
    t->ud = ud;
    t->state = ST_NEW;
    t->load_fd = -1;
    uv_timer_t *timers[] = { &t->hop_timer, &t->kill_timer, &t->drain_timer, &t->guard_timer,
                             &t->step_timer, &t->oom_timer };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(ctx->loop, timers[i]);
        timers[i]->data = t;
        t->timers_open++;
    }
    *out = t;
    return 0;
}

int task_recover(task **out, const task_ctx *ctx, const plan_task *pt,
                 const char *container_id, task_done_cb on_done, void *ud, drv_err *err)
{
    if (container_id == NULL || container_id[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "task recover: no container id");
    }
    int rc = task_new(out, ctx, pt, on_done, ud, err);
    if (rc < 0) {
        return rc;
    }
    (*out)->recover_id = drv_xstrdup(container_id);
    (*out)->state = ST_RECOVER;
    return 0;
}

const plan_task *task_spec(const task *t)
{
    return t->pt;
}

const char *task_container_id(const task *t)
{
    return t->id;
}

int task_container_exit(const task *t, long *code)
{
    if (t->ran && code != NULL) {
        *code = t->exit_code;
    }
    return t->ran;
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
    case ST_AUTH:
    case ST_PULL:
        cancel_image_step(t);
        break;
    case ST_ATTACH:
        /* not started yet: a pending attach ends in on_logs, which then
         * sees `stopping` and removes the container instead of starting it */
        if (t->logs_req != NULL && !uv_is_active((uv_handle_t *)&t->hop_timer)) {
            http_cancel(t->logs_req);
        }
        break;
    case ST_RUNNING:
        if (!t->exited && (!again || force)) {
            signal_running(t);
        }
        break;
    case ST_CREATE:
    case ST_START:
        /* handled when they answer; unless Docker does not answer soon */
        if (!uv_is_active((uv_handle_t *)&t->guard_timer)) {
            uv_timer_start(&t->guard_timer, on_stop_guard, force ? 0 : STOP_REQ_MS, 0);
        }
        break;
    default:
        break;
    }
}

void task_abandon(task *t)
{
    if (t->state == ST_DONE) {
        return;
    }
    t->stopping = 1;
    t->abandoned = 1;
    stop_timers(t);
    cancel_calls(t);
    cancel_image_step(t);
}

int task_left_behind(const task *t)
{
    return t->leftover;
}

int task_kept(const task *t)
{
    return t->kept;
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

static void on_timer_closed(uv_handle_t *h)
{
    task *t = h->data;
    if (--t->timers_open > 0) {
        return;
    }
    plan_task_free(&t->spec);
    free(t->recover_id);
    free(t->id);
    free(t->load_error);
    free(t->load_config_id);
    free(t->pull_ref);
    free(t->image_id);
    free(t);
}

void task_free(task *t)
{
    if (t != NULL) {
        uv_close((uv_handle_t *)&t->hop_timer, on_timer_closed);
        uv_close((uv_handle_t *)&t->kill_timer, on_timer_closed);
        uv_close((uv_handle_t *)&t->drain_timer, on_timer_closed);
        uv_close((uv_handle_t *)&t->guard_timer, on_timer_closed);
        uv_close((uv_handle_t *)&t->step_timer, on_timer_closed);
        uv_close((uv_handle_t *)&t->oom_timer, on_timer_closed);
    }
}
