/* test_alloc.c: the tasks of one allocation against the scripted fake
 * dockerd: a driver failure stops the siblings, a container's exit does
 * not, alloc_stop stops all, on_done comes once all are done. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "allocrec.h"
#include "docker.h"
#include "fake_dockerd.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "pull.h"
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
    plan_task specs[5];
    int done;
    int task_done[5];
    int restart_calls;
    const char *stop_on;       /* request prefix that calls alloc_stop */
    int count;                 /* >0: `count` instances of one task pulling one image */
    const char *pull;          /* their pull policy */
    puller *puller;
    auth_opts auth;
    state *recs;               /* alloc_record into this, or NULL */
    int keep;                  /* task_ctx.keep_container */
    allocrec before;           /* the record as it was before alloc_start */
} arun;

#define REC_ID "0a1b2c3d-0000-4000-8000-00000000abcd"

static void on_task_done(void *ud, alloc *a, size_t i, task *t)
{
    arun *r = ud;
    (void)a;
    (void)t;
    if (i < 5) {
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
    puller_close(r->puller);
    r->puller = NULL;
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
    size_t n = 2;
    task_ctx ctx = { .loop = &r->loop, .http = r->http, .docker = r->docker, .script = lua };
    if (r->count > 0) {
        n = (size_t)r->count;
        for (size_t i = 0; i < n; i++) {
            char name[32], alloc_id[32];
            snprintf(name, sizeof name, "drv-web-%zu", i);
            snprintf(alloc_id, sizeof alloc_id, "000%zu", i);
            spec_init(&r->specs[i], "web", name);
            free(r->specs[i].alloc_id);
            r->specs[i].alloc_id = drv_xstrdup(alloc_id);
            r->specs[i].pull = drv_xstrdup(r->pull);
            r->specs[i].image_repo = drv_xstrdup("docker.io/library/img");
            r->specs[i].image_tag = drv_xstrdup("1");
            r->specs[i].image_registry = drv_xstrdup("docker.io");
        }
        puller_opts po = { .loop = &r->loop, .docker = r->docker, .script = lua,
                           .retry_base_ms = 10 };
        puller_new(&r->puller, &po, NULL);
        r->auth.loop = &r->loop;
        r->auth.script = lua;
        ctx.puller = r->puller;
        ctx.auth = &r->auth;
    } else {
        spec_init(&r->specs[0], "web", "drv-web-1");
        spec_init(&r->specs[1], "db", "drv-db-1");
        if (r->recs != NULL) {
            for (size_t i = 0; i < 2; i++) {
                free(r->specs[i].alloc_id);
                r->specs[i].alloc_id = drv_xstrdup(REC_ID);
                r->specs[i].job = drv_xstrdup("shop");
            }
        }
    }
    ctx.keep_container = r->keep;
    alloc_opts ao = { .on_task_done = on_task_done, .on_done = on_done, .restart = on_restart,
                      .ud = r };
    int rc = alloc_new(&r->a, &ctx, r->specs, n, &ao, &err);
    /* the tasks own copies: the specs may go now */
    for (size_t i = 0; i < n; i++) {
        plan_task_free(&r->specs[i]);
    }
    if (rc < 0) {
        return rc;
    }
    if (r->recs != NULL) {
        rc = alloc_record(r->a, r->recs, &err);
        if (rc < 0 || allocrec_read(r->recs, REC_ID, &r->before, &err) < 0) {
            return -1;
        }
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

/* The alloc's record: written before anything starts ("running", both
 * tasks, this process as owner), then "ended" with each exit code. */
TEST(the_record_before_and_after)
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
        FD("POST", "/containers/c2/wait", 200, "{\"StatusCode\":0}", .end_streams = 1,
           .after = "DELETE /containers/c1"),
        FD("DELETE", "/containers/c2?", 204, NULL),
        END };
    arun r;
    drv_err err;
    allocrec after;
    memset(&r, 0, sizeof r);
    ASSERT_INT_EQ(0, allocrec_open(tmpdir, 1, &r.recs, &err));
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_STR_EQ("running", r.before.status);
    ASSERT_STR_EQ("shop", r.before.job);
    ASSERT_INT_EQ(2, r.before.ntasks);
    ASSERT_STR_EQ("drv-db-1", r.before.tasks[1].container);
    ASSERT_INT_EQ((long)getpid(), r.before.owner.pid);
    ASSERT_INT_EQ(0, allocrec_read(r.recs, REC_ID, &after, &err));
    ASSERT(allocrec_ended(&after));
    ASSERT(after.ended_ms >= after.created_ms);
    ASSERT_INT_EQ(1, after.tasks[0].has_exit);
    ASSERT_INT_EQ(1, after.tasks[0].exit_code);
    ASSERT_INT_EQ(0, after.tasks[1].exit_code);
    ASSERT(after.tasks[0].error == NULL && !after.tasks[0].kept && !after.keep_containers);
    allocrec_free(&after);
    allocrec_free(&r.before);
    ASSERT_INT_EQ(0, allocrec_remove(r.recs, REC_ID, &err));
    state_close(r.recs);
    arun_free(&r);
}

/* keep_container: containers that ran and exited are not removed (no
 * DELETE is scripted: one would be unexpected), and the record says so. */
TEST(keep_container_leaves_exited_containers)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create?name=drv-web-1", 201, "{\"Id\":\"c1\"}"),
        FD("POST", "/containers/create?name=drv-db-1", 201, "{\"Id\":\"c2\"}"),
        FD("POST", "/containers/c1/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c2/attach", 200, "", .stream = 1),
        FD("POST", "/containers/c1/start", 204, NULL),
        FD("POST", "/containers/c2/start", 204, NULL),
        FD("POST", "/containers/c1/wait", 200, "{\"StatusCode\":1}", .end_streams = 1),
        FD("GET", "/containers/c1/json", 200, "{\"State\":{\"ExitCode\":1}}"),
        FD("POST", "/containers/c2/wait", 200, "{\"StatusCode\":0}", .end_streams = 1,
           .after = "GET /containers/c1/json"),
        END };
    arun r;
    drv_err err;
    allocrec after;
    memset(&r, 0, sizeof r);
    r.keep = 1;
    ASSERT_INT_EQ(0, allocrec_open(tmpdir, 1, &r.recs, &err));
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT(task_kept(alloc_task(r.a, 0)) && task_kept(alloc_task(r.a, 1)));
    ASSERT(!task_left_behind(alloc_task(r.a, 0)));
    ASSERT(strstr(buf_str(&r.fd.log), "DELETE") == NULL);
    ASSERT_INT_EQ(0, r.fd.unexpected);
    ASSERT_INT_EQ(0, allocrec_read(r.recs, REC_ID, &after, &err));
    ASSERT(after.keep_containers && after.tasks[0].kept && after.tasks[1].kept);
    allocrec_free(&after);
    allocrec_free(&r.before);
    ASSERT_INT_EQ(0, allocrec_remove(r.recs, REC_ID, &err));
    state_close(r.recs);
    arun_free(&r);
}

/* count = 5 on an image that is neither here nor pullable: one pull, and
 * every instance ends with the same failure (73 and the pull's message),
 * whichever instance's result comes first. */
TEST(instances_share_one_failed_pull_and_its_answer)
{
    static const fd_step s[] = {
        FD("POST", "/containers/create?name=drv-web-0", 404, "{\"message\":\"No such image: img:1\"}"),
        FD("POST", "/containers/create?name=drv-web-1", 404, "{\"message\":\"No such image: img:1\"}"),
        FD("POST", "/containers/create?name=drv-web-2", 404, "{\"message\":\"No such image: img:1\"}"),
        FD("POST", "/containers/create?name=drv-web-3", 404, "{\"message\":\"No such image: img:1\"}"),
        FD("POST", "/containers/create?name=drv-web-4", 404, "{\"message\":\"No such image: img:1\"}"),
        FD("POST", "/images/create", 404,
           "{\"message\":\"manifest for img:1 not found: manifest unknown: manifest unknown\"}",
           .delay_ms = 30),
        END };
    arun r;
    memset(&r, 0, sizeof r);
    r.count = 5;
    r.pull = "missing";
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(1, alloc_failed(r.a));
    for (size_t i = 0; i < 5; i++) {
        const task *t = alloc_task(r.a, i);
        ASSERT(task_error(t) != NULL);
        ASSERT_STR_EQ("task \"web\": pull \"docker.io/library/img:1\": manifest for img:1 not "
                      "found: manifest unknown: manifest unknown", task_error(t)->msg);
        ASSERT_INT_EQ(73, task_exit_code(t));
    }
    ASSERT_INT_EQ(0, fake_dockerd_unused(&r.fd));
    ASSERT_INT_EQ(0, r.fd.unexpected);     /* one pull, no second create */
    arun_free(&r);
}

/* alloc_stop during the shared pull: every waiter goes, so does the pull;
 * nothing is created, nobody failed. */
TEST(stop_during_a_shared_pull_cancels_it)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, "{\"status\":\"Pulling from library/img\"}\n",
           .stream = 1),
        END };
    arun r;
    memset(&r, 0, sizeof r);
    r.count = 3;
    r.pull = "always";
    r.stop_on = "POST /images/create";
    ASSERT_INT_EQ(0, arun_go(&r, s));
    ASSERT_INT_EQ(1, r.done);
    ASSERT_INT_EQ(0, alloc_failed(r.a));
    for (size_t i = 0; i < 3; i++) {
        ASSERT(task_error(alloc_task(r.a, i)) == NULL);
        ASSERT(task_container_id(alloc_task(r.a, i)) == NULL);
    }
    ASSERT_STR_EQ("POST /images/create?fromImage=docker.io%2Flibrary%2Fimg&tag=1\n",
                  buf_str(&r.fd.log));
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
    RUN(instances_share_one_failed_pull_and_its_answer);
    RUN(stop_during_a_shared_pull_cancels_it);
    RUN(the_record_before_and_after);
    RUN(keep_container_leaves_exited_containers);
    script_close(lua);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
    return test_summary();
}
