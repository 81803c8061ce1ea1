/* test_alloc.c: the tasks of one allocation against the scripted fake
 * dockerd: a driver failure stops the siblings, a container's exit does
 * not, alloc_stop stops all, on_done comes once all are done. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "docker.h"
#include "fake_dockerd.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "script.h"
#include "test.h"

static char tmpdir[64];
static script *lua;

#define FD(m, p, st, b, ...) { .method = (m), .path = (p), .status = (st), .body = (b), __VA_ARGS__ }
#define END { .method = NULL }

typedef struct arun {
    uv_loop_t loop;
    fake_dockerd fd;
    http_client *http;
    docker *docker;
    alloc *a;
    plan_task specs[2];
    int done;
    int task_done[2];
    int restart_calls;
    const char *stop_on;       /* request prefix that calls alloc_stop */
} arun;

static void on_task_done(void *ud, alloc *a, size_t i, task *t)
{
    arun *r = ud;
    (void)a;
    (void)t;
    if (i < 2) {
        r->task_done[i]++;
    }
}

static int on_restart(void *ud, alloc *a, size_t i, const task *t)
{
    arun *r = ud;
    (void)a;
    (void)i;
    (void)t;
    r->restart_calls++;
    return 0;
}

static void on_done(void *ud, alloc *a)
{
    arun *r = ud;
    (void)a;
    r->done++;
    http_client_close(r->http);
    r->http = NULL;
    fake_dockerd_close(&r->fd);
}

static void on_request(void *ud, const char *line)
{
    arun *r = ud;
    if (r->stop_on != NULL && strncmp(line, r->stop_on, strlen(r->stop_on)) == 0) {
        r->stop_on = NULL;
        alloc_stop(r->a, 0);
    }
}

static void spec_init(plan_task *p, const char *tname, const char *name)
{
    char logdir[128];
    snprintf(logdir, sizeof logdir, "%s/logs", tmpdir);
    mkdir(logdir, 0755);
    memset(p, 0, sizeof *p);
    p->task = drv_xstrdup(tname);
    p->alloc_id = drv_xstrdup("0000");
    p->name = drv_xstrdup(name);
    p->image = drv_xstrdup("img:1");
    p->body = drv_xstrdup("{}");
    p->kill_signal = drv_xstrdup("SIGTERM");
    p->kill_timeout_ms = 5000;
    p->alloc_dir = drv_xstrdup(tmpdir);
    p->log_dir = drv_xstrdup(logdir);
    p->log_max_files = 2;
    p->log_max_file_size = 1 << 20;
}

static int arun_go(arun *r, const fd_step *steps)
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
    spec_init(&r->specs[0], "web", "drv-web-1");
    spec_init(&r->specs[1], "db", "drv-db-1");
    task_ctx ctx = { .loop = &r->loop, .http = r->http, .docker = r->docker, .script = lua };
    alloc_opts ao = { .on_task_done = on_task_done, .on_done = on_done, .restart = on_restart,
                      .ud = r };
    int rc = alloc_new(&r->a, &ctx, r->specs, 2, &ao, &err);
    /* the tasks own copies: the specs may go now */
    plan_task_free(&r->specs[0]);
    plan_task_free(&r->specs[1]);
    if (rc < 0) {
        return rc;
    }
    alloc_start(r->a);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return 0;
}

static void arun_free(arun *r)
{
    alloc_free(r->a);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    docker_free(r->docker);
    fake_dockerd_free(&r->fd);
}

/* db runs until killed; web's create fails: db is stopped for it. */
TEST(a_failure_stops_the_siblings)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create?name=drv-web-1", 500, "{\"message\":\"boom\"}",
           .after = "POST /containers/c2/wait"),
        FD("POST", "/containers/create?name=drv-db-1", 201, "{\"Id\":\"c2\"}"),
        FD("POST", "/containers/c2/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c2/start", 204, NULL),
        FD("POST", "/containers/c2/kill?signal=SIGTERM", 204, NULL),
        FD("POST", "/containers/c2/wait", 200, "{\"StatusCode\":143}", .end_streams = 1,
           .after = "POST /containers/c2/kill"),
        FD("GET", "/containers/c2/json", 200, "{\"State\":{\"ExitCode\":143}}"),
        FD("DELETE", "/containers/c2?", 204, NULL),
        END };
    arun r;
    memset(&r, 0, sizeof r);
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(1, r.task_done[0]);
    ASSERT_INT_EQ(1, r.task_done[1]);
    ASSERT_INT_EQ(2, r.restart_calls);
    ASSERT_INT_EQ(1, alloc_failed(r.a));
    ASSERT(task_error(alloc_task(r.a, 0)) != NULL);
    ASSERT(task_error(alloc_task(r.a, 1)) == NULL);
    ASSERT_INT_EQ(143, task_exit_code(alloc_task(r.a, 1)));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);
    arun_free(&r);
}

/* A container's non-zero exit is its result, not a driver failure. */
TEST(a_non_zero_exit_stops_nothing)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create?name=drv-web-1", 201, "{\"Id\":\"c1\"}"),
        FD("POST", "/containers/create?name=drv-db-1", 201, "{\"Id\":\"c2\"}"),
        FD("POST", "/containers/c1/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c2/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c1/start", 204, NULL),
        FD("POST", "/containers/c2/start", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":1}"),
        FD("GET", "/containers/c1/json", 200, "{\"State\":{\"ExitCode\":1}}"),
        FD("DELETE", "/containers/c1?", 204, NULL),
        /* db exits on its own once web is removed */
        FD("POST", "/containers/c2/wait", 200, "{\"StatusCode\":0}", .end_streams = 1,
           .after = "DELETE /containers/c1"),
        /* exit 0: no OOM inspect */
        FD("DELETE", "/containers/c2?", 204, NULL),
        END };
    arun r;
    memset(&r, 0, sizeof r);
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(0, alloc_failed(r.a));
    ASSERT_INT_EQ(1, task_exit_code(alloc_task(r.a, 0)));
    ASSERT_INT_EQ(0, task_exit_code(alloc_task(r.a, 1)));
    ASSERT(strstr(buf_str(&r.fd.log), "/kill") == NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    arun_free(&r);
}

/* alloc_stop stops every task; a failure after it is not an alloc failure. */
TEST(stop_stops_all)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create?name=drv-web-1", 201, "{\"Id\":\"c1\"}"),
        FD("POST", "/containers/create?name=drv-db-1", 201, "{\"Id\":\"c2\"}"),
        FD("POST", "/containers/c1/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c2/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c1/start", 204, NULL),
        FD("POST", "/containers/c2/start", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":143}",
           .after = "POST /containers/c1/kill"),
        FD("POST", "/containers/c2/wait", 500, "{\"message\":\"gone\"}",
           .after = "POST /containers/c2/kill"),
        FD("POST", "/containers/c1/kill?signal=SIGTERM", 204, NULL),
        FD("POST", "/containers/c2/kill?signal=SIGTERM", 204, NULL),
        FD("GET", "/containers/c1/json", 200, "{\"State\":{\"ExitCode\":143}}"),
        FD("GET", "/containers/c2/json", 200, "{\"State\":{\"ExitCode\":143}}"),
        FD("DELETE", "/containers/c1?", 204, NULL),
        FD("DELETE", "/containers/c2?", 204, NULL),
        END };
    arun r;
    memset(&r, 0, sizeof r);
    r.stop_on = "POST /containers/c2/wait";
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(0, alloc_failed(r.a));
    ASSERT_INT_EQ(143, task_exit_code(alloc_task(r.a, 0)));
    ASSERT(task_error(alloc_task(r.a, 1)) != NULL);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    arun_free(&r);
}

int main(void)
{
    drv_err err;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-alloc-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || script_open(&lua, "lua", &err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    log_set_level(LOG_ERROR);
    RUN(a_failure_stops_the_siblings);
    RUN(a_non_zero_exit_stops_nothing);
    RUN(stop_stops_all);
    script_close(lua);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
    return test_summary();
}
