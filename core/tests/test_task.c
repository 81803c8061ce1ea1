/* test_task.c: the task state machine against a scripted fake dockerd
 * (fake_dockerd.h): every step's answers, stops in every state, recovery,
 * and the task spec's JSON state. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docker.h"
#include "fake_dockerd.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "pull.h"
#include "script.h"
#include "task.h"
#include "test.h"

static char tmpdir[64];
static script *lua;

/* Writable copies of literals for the spec's char * fields (freed at exit). */
static char *pool[512];
static size_t npool;

static char *S(const char *lit)
{
    char *c = drv_xstrdup(lit);
    if (npool < sizeof pool / sizeof pool[0]) {
        pool[npool++] = c;
    }
    return c;
}

/* One multiplexed stdout frame: "hello\n". */
static const char FRAME[] = "\x01\x00\x00\x00\x00\x00\x00\x06hello\n";
#define FRAME_LEN 14

/* A step: method, path prefix, status, body, then designated extras. */
#define FD(m, p, st, b, ...) { .method = (m), .path = (p), .status = (st), .body = (b), __VA_ARGS__ }

#define CREATE_OK FD("POST", "/containers/create?name=drv-web-1", 201, "{\"Id\":\"c1\"}")
#define ATTACH_OK FD("POST", "/containers/c1/attach", 200, FRAME, .body_len = FRAME_LEN, .stream = 1)
#define START_OK FD("POST", "/containers/c1/start", 204, NULL)
#define WAIT_3 FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":3}", .end_streams = 1)
#define INSPECT_3 FD("GET", "/containers/c1/json", 200, \
    "{\"Id\":\"c1\",\"State\":{\"Running\":false,\"Status\":\"exited\",\"ExitCode\":3}}")
#define REMOVE_OK FD("DELETE", "/containers/c1?", 204, NULL)
#define END { .method = NULL }

typedef struct run {
    uv_loop_t loop;
    fake_dockerd fd;
    http_client *http;
    docker *docker;
    task *t;
    plan_task spec;
    int done;
    const char *stop_on;       /* request prefix ("POST /containers/create") that stops */
    int stop_force;
    int abandon;               /* task_abandon instead of task_stop */
    int stopped;
    task_step steps[8];
    size_t nsteps;
    uv_tcp_t art_srv;          /* a peer that never answers (artifacts) */
    int art_open;
    int with_puller;           /* registry pulls (ctx.puller, ctx.auth) */
    puller *puller;
    auth_opts auth;
    int stop_at_start;         /* task_stop right after task_start */
    int allow_private;         /* ctx.allow_private_registries */
    int pull_events[PULL_EV_DONE + 1];
} run;

static void on_done(void *ud, task *t)
{
    run *r = ud;
    (void)t;
    r->done++;
    puller_close(r->puller);
    r->puller = NULL;
    http_client_close(r->http);
    r->http = NULL;
    fake_dockerd_close(&r->fd);
    if (r->art_open) {
        uv_close((uv_handle_t *)&r->art_srv, NULL);
        r->art_open = 0;
    }
}

static void on_state(void *ud, task *t, task_step step)
{
    run *r = ud;
    (void)t;
    if (r->nsteps < 8) {
        r->steps[r->nsteps++] = step;
    }
}

static void on_request(void *ud, const char *line)
{
    run *r = ud;
    size_t n = r->stop_on != NULL ? strlen(r->stop_on) : 0;
    if (n > 0 && !r->stopped && strncmp(line, r->stop_on, n) == 0) {
        r->stopped = 1;
        if (r->abandon) {
            task_abandon(r->t);
        } else {
            task_stop(r->t, r->stop_force);
        }
    }
}

static void on_pull(void *ud, task *t, const pull_event *ev)
{
    run *r = ud;
    (void)t;
    r->pull_events[ev->kind]++;
}

static void spec_init(plan_task *p)
{
    static char logdir[128];
    snprintf(logdir, sizeof logdir, "%s/logs", tmpdir);
    mkdir(logdir, 0755);
    memset(p, 0, sizeof *p);
    p->job = S("j");
    p->group = S("g");
    p->task = S("web");
    p->alloc_id = S("0000");
    p->name = S("drv-web-1");
    p->image = S("img:1");
    p->body = S("{\"Image\":\"img:1\"}");
    p->kill_signal = S("SIGTERM");
    p->kill_timeout_ms = 5000;
    p->alloc_dir = tmpdir;
    p->log_dir = logdir;
    p->log_max_files = 2;
    p->log_max_file_size = 1 << 20;
}

/* Runs one task (or, with container_id, a recovered one) against the
 * script; the caller checks r. */
static int run_task(run *r, const fd_step *steps, const char *container_id)
{
    drv_err err;
    uv_loop_init(&r->loop);
    if (fake_dockerd_start(&r->fd, &r->loop, tmpdir, steps) != 0) {
        return -1;
    }
    r->fd.on_request = on_request;
    r->fd.ud = r;
    char ep[160];
    snprintf(ep, sizeof ep, "unix://%s", r->fd.path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&r->http, &r->loop, NULL);
    docker_new(&r->docker, r->http, &o, NULL);
    docker_set_api_version(r->docker, "1.41", NULL);
    task_ctx ctx = {
        .loop = &r->loop, .http = r->http, .docker = r->docker, .script = lua,
        .on_state = on_state, .on_pull = on_pull, .pull_ud = r,
        .allow_private_registries = r->allow_private,
    };
    if (r->with_puller) {
        puller_opts po = { .loop = &r->loop, .docker = r->docker, .script = lua,
                           .retry_base_ms = 10 };
        if (puller_new(&r->puller, &po, NULL) < 0) {
            return -1;
        }
        r->auth.loop = &r->loop;
        r->auth.script = lua;
        ctx.puller = r->puller;
        ctx.auth = &r->auth;
    }
    int rc = container_id != NULL
                 ? task_recover(&r->t, &ctx, &r->spec, container_id, on_done, r, &err)
                 : task_new(&r->t, &ctx, &r->spec, on_done, r, &err);
    if (rc < 0) {
        return rc;
    }
    task_start(r->t);
    if (r->stop_at_start) {
        task_stop(r->t, 0);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return 0;
}

static void run_free(run *r)
{
    task_free(r->t);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    docker_free(r->docker);
    fake_dockerd_free(&r->fd);
}

static const char *reqs(run *r)
{
    return buf_str(&r->fd.log);
}

TEST(runs_to_exit_and_collects_output)
{
    static const fd_step s[] = { CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    long code = -1;
    ASSERT_INT_EQ(1, task_container_exit(r.t, &code));
    ASSERT_INT_EQ(3, code);
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    /* persisted before each state change, in order */
    ASSERT_INT_EQ(3, r.nsteps);
    ASSERT_INT_EQ(TASK_STEP_CREATE, r.steps[0]);
    ASSERT_INT_EQ(TASK_STEP_START, r.steps[1]);
    ASSERT_INT_EQ(TASK_STEP_REMOVE, r.steps[2]);
    ASSERT_STR_EQ("c1", task_container_id(r.t));
    char path[160];
    snprintf(path, sizeof path, "%s/logs/web.stdout.0", tmpdir);
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    char line[64] = "";
    ASSERT(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    ASSERT_STR_EQ("hello\n", line);
    run_free(&r);
}

TEST(owns_its_spec)
{
    static const fd_step s[] = { CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    char name[] = "drv-web-1";
    r.spec.name = name;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    /* the caller's strings may change after task_new */
    name[0] = 'X';   /* cppcheck-suppress unreadVariable ; read through r.spec.name */
    ASSERT_STR_EQ("drv-web-1", task_spec(r.t)->name);
    ASSERT(task_spec(r.t)->name != r.spec.name);
    run_free(&r);
}

/* --- an error at every step ------------------------------------------------ */

TEST(create_error_fails_without_removing)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create", 500, "{\"message\":\"boom\"}"), END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_CONTAINS(task_error(r.t)->msg, "create container: docker: boom");
    ASSERT_INT_EQ(drv_err_exit_code(DRV_ETASK), task_exit_code(r.t));
    ASSERT_INT_EQ(0, task_container_exit(r.t, NULL));
    ASSERT_STR_EQ("POST /containers/create?name=drv-web-1\n", reqs(&r));
    run_free(&r);
}

TEST(create_connection_dropped_removes_by_name)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create", 0, NULL, .drop = 1),
        FD("DELETE", "/containers/drv-web-1?", 404, "{\"message\":\"No such container\"}"),
        END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    run_free(&r);
}

TEST(attach_error_still_runs)
{
    static const fd_step s[] = {
        CREATE_OK, FD("POST", "/containers/c1/attach", 500, "{\"message\":\"no attach\"}"),
        START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(start_error_removes)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK,
        FD("POST", "/containers/c1/start", 500, "{\"message\":\"no start\"}"),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_CONTAINS(task_error(r.t)->msg, "start container: docker: no start");
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, task_container_exit(r.t, NULL));
    run_free(&r);
}

TEST(start_304_means_started)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, FD("POST", "/containers/c1/start", 304, NULL),
        WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    run_free(&r);
}

TEST(wait_error_and_dropped_wait_still_remove)
{
    static const fd_step s1[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/wait", 500, "{\"message\":\"no wait\"}", .end_streams = 1),
        INSPECT_3, REMOVE_OK, END };
    static const fd_step s2[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":3}", .drop = 2, .end_streams = 1),
        INSPECT_3, REMOVE_OK, END };
    const fd_step *scripts[] = { s1, s2 };
    for (size_t i = 0; i < 2; i++) {
        run r;
        memset(&r, 0, sizeof r);
        spec_init(&r.spec);
        ASSERT_INT_EQ(0, run_task(&r, scripts[i], NULL));
        ASSERT(task_error(r.t) != NULL);
        /* an answer cut short reads as an unreachable daemon (docker_unreachable) */
        ASSERT_CONTAINS(task_error(r.t)->msg, i == 0 ? "wait for container: docker: no wait"
                                                     : "transfer closed");
        ASSERT_INT_EQ(0, task_container_exit(r.t, NULL));
        ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
        run_free(&r);
    }
}

TEST(inspect_error_keeps_the_exit_code)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK, WAIT_3,
        FD("GET", "/containers/c1/json", 500, "{\"message\":\"x\"}"), REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    run_free(&r);
}

TEST(remove_failure_is_left_behind)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3,
        FD("DELETE", "/containers/c1?", 500, "{\"message\":\"busy\"}"), END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, task_left_behind(r.t));
    ASSERT_INT_EQ(3, task_exit_code(r.t));    /* the container's result stands */
    run_free(&r);
}

TEST(remove_404_means_removed)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3,
        FD("DELETE", "/containers/c1?", 404, "{\"message\":\"No such container\"}"), END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    ASSERT(task_error(r.t) == NULL);
    run_free(&r);
}

TEST(attach_dropped_mid_stream_still_collects_the_exit)
{
    static const fd_step s[] = {
        CREATE_OK,
        FD("POST", "/containers/c1/attach", 200, FRAME, .body_len = FRAME_LEN, .stream = 1,
          .drop = 2),
        START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

/* --- stop in every state ------------------------------------------------- */

static void on_art_conn(uv_stream_t *s, int status)
{
    (void)s;
    (void)status;   /* left in the backlog: the request is never answered */
}

TEST(stop_while_fetching_an_artifact_sends_nothing_to_docker)
{
    static const fd_step s[] = { END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    uv_loop_init(&r.loop);
    uv_tcp_init(&r.loop, &r.art_srv);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    ASSERT_INT_EQ(0, uv_tcp_bind(&r.art_srv, (const struct sockaddr *)&a, 0));
    ASSERT_INT_EQ(0, uv_listen((uv_stream_t *)&r.art_srv, 4, on_art_conn));
    r.art_open = 1;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&r.art_srv, (struct sockaddr *)&got, &len);
    char url[64], local[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/a.txt", ntohs(got.sin_port));
    snprintf(local, sizeof local, "%s/local", tmpdir);
    plan_artifact art;
    memset(&art, 0, sizeof art);
    art.source = url;
    art.task_dir = tmpdir;
    art.dest_dir = local;
    art.dest = S("local");
    art.allow_private = 1;
    art.archive = S("false");
    r.spec.artifacts = &art;
    r.spec.nartifacts = 1;
    /* the loop is initialised: run_task initialises it again, so inline */
    drv_err err;
    ASSERT_INT_EQ(0, fake_dockerd_start(&r.fd, &r.loop, tmpdir, s));
    char ep[160];
    snprintf(ep, sizeof ep, "unix://%s", r.fd.path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&r.http, &r.loop, NULL);
    docker_new(&r.docker, r.http, &o, NULL);
    task_ctx ctx = { .loop = &r.loop, .http = r.http, .docker = r.docker, .script = lua };
    ASSERT_INT_EQ(0, task_new(&r.t, &ctx, &r.spec, on_done, &r, &err));
    task_start(r.t);
    task_stop(r.t, 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(1, r.done);
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, r.fd.requests);
    run_free(&r);
}

TEST(stop_while_create_in_flight_removes_the_created_container)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create", 201, "{\"Id\":\"c1\"}", .delay_ms = 50),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/create";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, r.stopped);
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    run_free(&r);
}

TEST(forced_stop_with_create_unanswered_removes_by_name_and_warns)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create", 0, NULL, .hold = 1),
        FD("DELETE", "/containers/drv-web-1?", 404, "{\"message\":\"No such container\"}"),
        END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/create";
    r.stop_force = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    /* the create may still complete after the 404: reported as left */
    ASSERT_INT_EQ(1, task_left_behind(r.t));
    run_free(&r);
}

TEST(stop_while_attaching_removes_without_starting)
{
    static const fd_step s[] = {
        CREATE_OK, FD("POST", "/containers/c1/attach", 0, NULL, .hold = 1), REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/c1/attach";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);   /* no start */
    ASSERT(strstr(reqs(&r), "/start") == NULL);
    run_free(&r);
}

TEST(stop_while_start_in_flight_signals_once_running)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK,
        FD("POST", "/containers/c1/start", 204, NULL, .delay_ms = 50),
        FD("POST", "/containers/c1/kill?signal=SIGTERM", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":143}", .end_streams = 1,
          .after = "POST /containers/c1/kill"),
        INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/c1/start";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(143, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(stop_while_running_kill_409_means_already_stopped)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/kill", 409, "{\"message\":\"not running\"}"),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":0}", .end_streams = 1,
          .after = "POST /containers/c1/kill"),
        REMOVE_OK, END };   /* exit 0: no OOM inspect */
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/c1/wait";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);   /* exit 0: no inspect was sent */
    run_free(&r);
}

TEST(stop_without_kill_signal_uses_docker_stop_and_304)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/stop?t=1", 304, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":0}", .end_streams = 1,
          .after = "POST /containers/c1/stop"),
        REMOVE_OK, END };   /* exit 0: no OOM inspect */
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.spec.kill_signal = NULL;
    r.spec.kill_timeout_ms = 1000;
    r.stop_on = "POST /containers/c1/wait";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(forced_stop_while_running_sends_sigkill)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/kill?signal=SIGKILL", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":137}", .end_streams = 1,
          .after = "POST /containers/c1/kill"),
        INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/c1/wait";
    r.stop_force = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(137, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(abandon_while_running_names_the_container_left)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/wait", 0, NULL, .hold = 1), END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "POST /containers/c1/wait";
    r.abandon = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(1, task_left_behind(r.t));
    ASSERT(strstr(reqs(&r), "DELETE") == NULL);
    run_free(&r);
}

/* --- the image step: auth, pull, create ------------------------------------------ */

#define STREAM_OK \
    "{\"status\":\"Pulling from library/img\",\"id\":\"1\"}\n" \
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Status: Downloaded newer image for img:1\"}\n"
#define PULL_OK FD("POST", "/images/create?fromImage=docker.io%2Flibrary%2Fimg&tag=1", 200, \
                   STREAM_OK)
#define IMAGE_OK FD("GET", "/images/docker.io/library/img", 200, "{\"Id\":\"sha256:feed\"}")
#define NO_SUCH_IMAGE FD("POST", "/containers/create", 404, \
                         "{\"message\":\"No such image: img:1\"}")

static void pull_spec(run *r, const char *pull)
{
    memset(r, 0, sizeof *r);
    spec_init(&r->spec);
    r->with_puller = 1;
    r->spec.pull = S(pull);
    r->spec.image_repo = S("docker.io/library/img");
    r->spec.image_tag = S("1");
    r->spec.image_registry = S("docker.io");
}

TEST(pull_always_pulls_before_the_create)
{
    static const fd_step s[] = {
        PULL_OK, IMAGE_OK, CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    pull_spec(&r, "always");
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT(strncmp(reqs(&r), "POST /images/create?fromImage=docker.io%2Flibrary%2Fimg&tag=1\n"
                             "GET /images/docker.io/library/img", 80) == 0);
    ASSERT_INT_EQ(1, r.pull_events[PULL_EV_START]);
    ASSERT_INT_EQ(2, r.pull_events[PULL_EV_LAYER]);
    ASSERT_INT_EQ(1, r.pull_events[PULL_EV_DONE]);
    run_free(&r);
}

TEST(a_missing_image_is_pulled_and_created_again_once)
{
    static const fd_step s[] = {
        NO_SUCH_IMAGE, PULL_OK, IMAGE_OK, CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3,
        REMOVE_OK, END };
    run r;
    pull_spec(&r, "missing");
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    run_free(&r);

    /* still missing after a pull that said it worked: 73, no third create */
    static const fd_step s2[] = { NO_SUCH_IMAGE, PULL_OK, IMAGE_OK, NO_SUCH_IMAGE, END };
    pull_spec(&r, "missing");
    ASSERT_INT_EQ(0, run_task(&r, s2, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_CONTAINS(task_error(r.t)->msg, "is still missing after its pull");
    ASSERT_INT_EQ(73, task_exit_code(r.t));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    run_free(&r);
}

TEST(an_unknown_tag_fails_with_73_and_creates_nothing)
{
    static const fd_step s[] = {
        NO_SUCH_IMAGE,
        FD("POST", "/images/create", 404,
           "{\"message\":\"manifest for img:1 not found: manifest unknown: manifest unknown\"}"),
        END };
    run r;
    pull_spec(&r, "missing");
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_STR_EQ("task \"web\": pull \"docker.io/library/img:1\": manifest for img:1 not found: "
                  "manifest unknown: manifest unknown", task_error(r.t)->msg);
    ASSERT_INT_EQ(73, task_exit_code(r.t));
    ASSERT_INT_EQ(0, r.fd.unexpected);     /* one pull, no second create */
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(1, r.pull_events[PULL_EV_DONE]);
    run_free(&r);
}

TEST(a_task_with_load_never_pulls)
{
    static const fd_step s[] = { NO_SUCH_IMAGE, END };
    run r;
    pull_spec(&r, "always");
    r.spec.load = S("/nonexistent/elsewhere.tar");
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) != NULL);
    ASSERT(strstr(reqs(&r), "/images/create") == NULL);
    run_free(&r);
}

TEST(stop_during_auth_sends_nothing)
{
    static const fd_step s[] = { END };
    run r;
    pull_spec(&r, "always");
    r.stop_at_start = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, r.done);
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, r.fd.requests);
    ASSERT_INT_EQ(0, r.nsteps);           /* no create announced */
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    run_free(&r);
}

TEST(stop_during_pull_cancels_it_and_creates_nothing)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, "{\"status\":\"Pulling from library/img\"}\n",
           .stream = 1),
        END };
    for (int abandon = 0; abandon <= 1; abandon++) {
        run r;
        pull_spec(&r, "always");
        r.stop_on = "POST /images/create";
        r.abandon = abandon;
        ASSERT_INT_EQ(0, run_task(&r, s, NULL));
        ASSERT_INT_EQ(1, r.stopped);
        ASSERT_INT_EQ(1, r.done);
        ASSERT(task_error(r.t) == NULL);
        ASSERT_STR_EQ("POST /images/create?fromImage=docker.io%2Flibrary%2Fimg&tag=1\n", reqs(&r));
        ASSERT_INT_EQ(0, r.nsteps);
        ASSERT_INT_EQ(0, task_left_behind(r.t));
        run_free(&r);
    }
}

/* The registry check (regcheck.h): a registry on a loopback address is
 * refused (77) before auth and pull: no request, no credential helper run;
 * allow_private_registries lets the same task pull. */
static void private_registry_spec(run *r, const char *pull, char *ran, size_t n)
{
    pull_spec(r, pull);
    r->spec.image_repo = S("127.0.0.1:5000/img");
    r->spec.image_registry = S("127.0.0.1:5000");
    /* a credential helper that leaves a mark when it runs */
    char dir[160], path[200];
    snprintf(dir, sizeof dir, "%s/bin", tmpdir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/docker-credential-regmark", dir);
    snprintf(ran, n, "%s/regmark.ran", tmpdir);
    unlink(ran);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "#!/bin/sh\ncat >/dev/null; touch '%s'\n"
                   "printf '{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"s\"}\\n'\n", ran);
        fclose(f);
    }
    chmod(path, 0755);
    const char *old = getenv("PATH");
    if (strstr(old != NULL ? old : "", dir) == NULL) {
        char pathenv[4200];
        snprintf(pathenv, sizeof pathenv, "%s:%s", dir, old != NULL ? old : "/usr/bin:/bin");
        setenv("PATH", pathenv, 1);
    }
    r->auth.helper = "regmark";
}

TEST(a_loopback_registry_is_refused_before_auth_and_pull)
{
    static const char *pulls[] = { "always", "missing" };
    for (int i = 0; i < 2; i++) {
        /* "missing": the create comes first and answers No such image */
        static const fd_step s_always[] = { END };
        static const fd_step s_missing[] = {
            FD("POST", "/containers/create", 404, "{\"message\":\"No such image: img:1\"}"),
            END };
        run r;
        char ran[200];
        private_registry_spec(&r, pulls[i], ran, sizeof ran);
        ASSERT_INT_EQ(0, run_task(&r, i == 0 ? s_always : s_missing, NULL));
        ASSERT_INT_EQ(1, r.done);
        ASSERT(task_error(r.t) != NULL);
        ASSERT_STR_EQ("task \"web\": image registry \"127.0.0.1:5000\" is a loopback address: "
                      "pulls from private registries are off (allow_private_registries = true "
                      "in the docker plugin config allows them)", task_error(r.t)->msg);
        ASSERT_INT_EQ(77, task_exit_code(r.t));
        ASSERT(strstr(reqs(&r), "/images/create") == NULL);
        ASSERT_INT_EQ(i == 0 ? 0 : 1, r.fd.requests);
        ASSERT_INT_EQ(0, r.fd.unexpected);
        ASSERT_INT_EQ(0, r.pull_events[PULL_EV_START]);
        ASSERT(access(ran, F_OK) != 0);          /* the helper never ran */
        run_free(&r);
    }
}

TEST(allow_private_registries_pulls_from_a_loopback_registry)
{
    static const fd_step s[] = {
        FD("POST", "/images/create?fromImage=127.0.0.1%3A5000%2Fimg&tag=1", 200, STREAM_OK),
        FD("GET", "/images/127.0.0.1:5000/img", 200, "{\"Id\":\"sha256:feed\"}"),
        CREATE_OK, ATTACH_OK, START_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    char ran[200];
    private_registry_spec(&r, "always", ran, sizeof ran);
    r.allow_private = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT(access(ran, F_OK) == 0);              /* auth ran, as before */
    run_free(&r);
}

TEST(stop_during_the_registry_check_sends_nothing)
{
    static const fd_step s[] = { END };
    run r;
    char ran[200];
    private_registry_spec(&r, "always", ran, sizeof ran);
    r.stop_at_start = 1;
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(1, r.done);
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(0, r.fd.requests);
    ASSERT_INT_EQ(0, r.nsteps);
    ASSERT(access(ran, F_OK) != 0);
    run_free(&r);
}

TEST(stop_with_create_answering_no_such_image_is_no_failure)
{
    /* the stop (a sibling's failure, a signal) is the answer: not 75 */
    static const fd_step s[] = {
        FD("POST", "/containers/create", 404, "{\"message\":\"No such image: img:1\"}",
           .delay_ms = 30),
        END };
    run r;
    pull_spec(&r, "missing");
    r.stop_on = "POST /containers/create";
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT(task_error(r.t) == NULL);
    ASSERT(strstr(reqs(&r), "/images/create") == NULL);
    ASSERT_INT_EQ(0, r.fd.unexpected);
    run_free(&r);
}

/* --- recovery ------------------------------------------------------------ */

TEST(recover_running_container_attaches_and_waits)
{
    static const fd_step s[] = {
        FD("GET", "/containers/c1/json", 200,
          "{\"Id\":\"c1\",\"State\":{\"Running\":true,\"Status\":\"running\",\"ExitCode\":0}}"),
        ATTACH_OK, WAIT_3, INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, "c1"));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(3, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(1, r.nsteps);
    ASSERT_INT_EQ(TASK_STEP_REMOVE, r.steps[0]);
    run_free(&r);
}

TEST(a_kill_marked_oom_late_is_reported_oom)
{
    /* Docker sets State.OOMKilled from the kernel's event, which can come
     * after the exit: the first inspect of a 137 exit may not say it yet */
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":137}", .end_streams = 1),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":false}}"),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":true}}"),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(137, task_exit_code(r.t));
    ASSERT_INT_EQ(1, task_oom_killed(r.t));
    run_free(&r);
}

TEST(a_plain_kill_is_looked_at_a_few_times_then_not_oom)
{
    static const fd_step s[] = {
        CREATE_OK, ATTACH_OK, START_OK,
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":137}", .end_streams = 1),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":false}}"),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":false}}"),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":false}}"),
        FD("GET", "/containers/c1/json", 200, "{\"Id\":\"c1\",\"State\":{\"OOMKilled\":false}}"),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, NULL));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(137, task_exit_code(r.t));
    ASSERT_INT_EQ(0, task_oom_killed(r.t));
    run_free(&r);
}

TEST(recover_exited_container_collects_its_exit_code)
{
    static const fd_step s[] = {
        FD("GET", "/containers/c1/json", 200,
          "{\"Id\":\"c1\",\"State\":{\"Running\":false,\"Status\":\"exited\",\"ExitCode\":7,"
          "\"OOMKilled\":true}}"),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, s, "c1"));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(7, task_exit_code(r.t));
    ASSERT_INT_EQ(1, task_oom_killed(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(recover_gone_or_never_started)
{
    static const fd_step gone[] = {
        FD("GET", "/containers/c1/json", 404, "{\"message\":\"No such container\"}"), END };
    static const fd_step created[] = {
        FD("GET", "/containers/c1/json", 200,
          "{\"Id\":\"c1\",\"State\":{\"Running\":false,\"Status\":\"created\",\"ExitCode\":0}}"),
        REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, gone, "c1"));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_CONTAINS(task_error(r.t)->msg, "no longer exists");
    ASSERT_INT_EQ(0, task_left_behind(r.t));
    run_free(&r);

    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    ASSERT_INT_EQ(0, run_task(&r, created, "c1"));
    ASSERT(task_error(r.t) != NULL);
    ASSERT_CONTAINS(task_error(r.t)->msg, "never started");
    ASSERT_INT_EQ(0, task_container_exit(r.t, NULL));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

TEST(recover_stopped_while_inspecting_signals_the_running_container)
{
    static const fd_step s[] = {
        FD("GET", "/containers/c1/json", 200,
          "{\"Id\":\"c1\",\"State\":{\"Running\":true,\"Status\":\"running\"}}", .delay_ms = 30),
        ATTACH_OK,
        FD("POST", "/containers/c1/kill?signal=SIGTERM", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":143}", .end_streams = 1,
          .after = "POST /containers/c1/kill"),
        INSPECT_3, REMOVE_OK, END };
    run r;
    memset(&r, 0, sizeof r);
    spec_init(&r.spec);
    r.stop_on = "GET /containers/c1/json";
    ASSERT_INT_EQ(0, run_task(&r, s, "c1"));
    ASSERT(task_error(r.t) == NULL);
    ASSERT_INT_EQ(143, task_exit_code(r.t));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    run_free(&r);
}

/* --- the spec's JSON state ------------------------------------------------- */

TEST(spec_json_round_trips_through_the_lua_read)
{
    plan_task p, q;
    spec_init(&p);
    p.kill_signal = S("SIG\"INT\n");
    p.tty = 1;
    char *dirs[] = { S("/a"), S("/b c") };
    p.dirs = dirs;
    p.ndirs = 2;
    plan_pin pin = { S("src"), S("/root"), S("p"), S("/binds/0-a-1"), 1 };
    p.pins = &pin;
    p.npins = 1;
    plan_artifact art;
    memset(&art, 0, sizeof art);
    art.source = S("https://x/y");
    art.max_size = 12345678901LL;
    art.allow_private = 1;
    p.artifacts = &art;
    p.nartifacts = 1;
    buf j = BUF_INIT;
    plan_task_json(&p, &j);
    drv_err err;
    ASSERT_INT_EQ(0, script_task_spec(lua, buf_str(&j), &q, &err));
    buf k = BUF_INIT;
    plan_task_json(&q, &k);
    ASSERT_STR_EQ(buf_str(&j), buf_str(&k));
    ASSERT_STR_EQ("SIG\"INT\n", q.kill_signal);
    ASSERT(q.load == NULL);
    ASSERT_INT_EQ(5000, q.kill_timeout_ms);
    ASSERT_INT_EQ(2, q.ndirs);
    ASSERT_STR_EQ("/b c", q.dirs[1]);
    ASSERT_INT_EQ(1, q.npins);
    ASSERT_INT_EQ(1, q.pins[0].create);
    ASSERT_INT_EQ(12345678901LL, q.artifacts[0].max_size);
    plan_task c;
    plan_task_copy(&c, &q);
    buf l = BUF_INIT;
    plan_task_json(&c, &l);
    ASSERT_STR_EQ(buf_str(&j), buf_str(&l));
    plan_task_free(&c);
    plan_task_free(&q);
    buf_free(&j);
    buf_free(&k);
    buf_free(&l);
    ASSERT_INT_EQ(DRV_EINVALID, script_task_spec(lua, "[1,2", &q, &err));
}

int main(void)
{
    drv_err err;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-task-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || script_open(&lua, "lua", &err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    log_set_level(LOG_ERROR);
    RUN(runs_to_exit_and_collects_output);
    RUN(owns_its_spec);
    RUN(create_error_fails_without_removing);
    RUN(create_connection_dropped_removes_by_name);
    RUN(attach_error_still_runs);
    RUN(start_error_removes);
    RUN(start_304_means_started);
    RUN(wait_error_and_dropped_wait_still_remove);
    RUN(inspect_error_keeps_the_exit_code);
    RUN(remove_failure_is_left_behind);
    RUN(remove_404_means_removed);
    RUN(attach_dropped_mid_stream_still_collects_the_exit);
    RUN(stop_while_fetching_an_artifact_sends_nothing_to_docker);
    RUN(stop_while_create_in_flight_removes_the_created_container);
    RUN(forced_stop_with_create_unanswered_removes_by_name_and_warns);
    RUN(stop_while_attaching_removes_without_starting);
    RUN(stop_while_start_in_flight_signals_once_running);
    RUN(stop_while_running_kill_409_means_already_stopped);
    RUN(stop_without_kill_signal_uses_docker_stop_and_304);
    RUN(forced_stop_while_running_sends_sigkill);
    RUN(abandon_while_running_names_the_container_left);
    RUN(pull_always_pulls_before_the_create);
    RUN(a_missing_image_is_pulled_and_created_again_once);
    RUN(an_unknown_tag_fails_with_73_and_creates_nothing);
    RUN(a_task_with_load_never_pulls);
    RUN(stop_during_auth_sends_nothing);
    RUN(stop_during_pull_cancels_it_and_creates_nothing);
    RUN(stop_with_create_answering_no_such_image_is_no_failure);
    RUN(a_loopback_registry_is_refused_before_auth_and_pull);
    RUN(allow_private_registries_pulls_from_a_loopback_registry);
    RUN(stop_during_the_registry_check_sends_nothing);
    RUN(recover_running_container_attaches_and_waits);
    RUN(a_kill_marked_oom_late_is_reported_oom);
    RUN(a_plain_kill_is_looked_at_a_few_times_then_not_oom);
    RUN(recover_exited_container_collects_its_exit_code);
    RUN(recover_gone_or_never_started);
    RUN(recover_stopped_while_inspecting_signals_the_running_container);
    RUN(spec_json_round_trips_through_the_lua_read);
    script_close(lua);
    for (size_t i = 0; i < npool; i++) {
        free(pool[i]);
    }
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
    return test_summary();
}
