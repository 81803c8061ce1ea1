/*
 * test_planner.c: planner_plan on a loop, inline and with the worker
 * (uv_queue_work): both give the same plan; the worker keeps the loop
 * turning while Lua plans. Prints the longest loop stall of each (a
 * measurement, not an assertion: the machine may be loaded). Docker is
 * not needed: the agent config names an endpoint nobody listens on.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "planner.h"
#include "test.h"

static char dir[PATH_MAX];
static char job_path[PATH_MAX + 16];
static char agent_path[PATH_MAX + 16];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void setup(void)
{
    char cwd[PATH_MAX], text[PATH_MAX * 4];
    snprintf(dir, sizeof dir, "/tmp/drvctl-test-planner.XXXXXX");
    if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof cwd) == NULL) {
        abort();
    }
    snprintf(agent_path, sizeof agent_path, "%s/agent.hcl", dir);
    snprintf(text, sizeof text,
             "data_dir = \"%s/data\"\n"
             "policy_dir = \"%s/policies\"\n"
             "client {\n  options {\n    \"docker.endpoint\" = \"unix://%s/no.sock\"\n  }\n}\n",
             dir, cwd, dir);
    write_file(agent_path, text);
    snprintf(job_path, sizeof job_path, "%s/job.hcl", dir);
    FILE *f = fopen(job_path, "w");
    if (f == NULL) {
        abort();
    }
    fputs("job \"j\" {\n  datacenters = [\"dc1\"]\n  group \"g\" {\n", f);
    for (int i = 0; i < 30; i++) {
        fprintf(f, "    task \"t%d\" {\n      driver = \"docker\"\n"
                   "      config {\n        image = \"drvctl-test/busybox:1\"\n"
                   "        args = [\"-c\", \"echo ${NOMAD_PORT_http}\"]\n"
                   "        port_map { http = 8080 }\n      }\n"
                   "      resources {\n        memory = 64\n"
                   "        network {\n          mbits = 1\n          port \"http\" {}\n"
                   "        }\n      }\n    }\n", i);
    }
    fputs("  }\n}\n", f);
    fclose(f);
}

typedef struct probe {
    uv_timer_t tick;
    uv_timer_t kick;
    planner_args a;
    planned *out;
    uint64_t last;
    uint64_t max_gap;
    int done;
    int rc;
} probe;

static void on_tick(uv_timer_t *t)
{
    probe *p = t->data;
    uint64_t now = uv_hrtime();
    if (p->last != 0 && now - p->last > p->max_gap) {
        p->max_gap = now - p->last;
    }
    p->last = now;
}

static void on_planned(void *ud, planned *pl, int rc, const drv_err *err)
{
    probe *p = ud;
    (void)pl;
    on_tick(&p->tick);   /* the gap up to here counts too */
    if (rc < 0) {
        fprintf(stderr, "planner: %s\n", err->msg);
    }
    p->done = 1;
    p->rc = rc;
    uv_timer_stop(&p->tick);
    uv_close((uv_handle_t *)&p->tick, NULL);
}

static void on_kick(uv_timer_t *t)
{
    probe *p = t->data;
    uv_close((uv_handle_t *)t, NULL);
    p->last = uv_hrtime();
    planner_plan(t->loop, &p->a, p->out, on_planned, p);
}

/* Plans, from within the loop, with a 1 ms ticker running; returns the
 * longest tick gap in ms. */
static double plan_on_loop(int worker, planned *out, int *rc)
{
    uv_loop_t loop;
    probe p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &p.tick);
    p.tick.data = &p;
    uv_timer_start(&p.tick, on_tick, 1, 1);
    uv_timer_init(&loop, &p.kick);
    p.kick.data = &p;
    uv_timer_start(&p.kick, on_kick, 3, 0);
    p.out = out;
    /* read by on_kick through tick.data */
    /* cppcheck-suppress unreadVariable */
    p.a = (planner_args){ .job_path = job_path, .config_path = agent_path, .lua_dir = "lua",
                          .mode = PLANNER_PLAN, .worker = worker };
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    *rc = p.done ? p.rc : -1;
    return (double)p.max_gap / 1e6;
}

TEST(inline_and_worker_plan_alike)
{
    planned a, b;
    int ra, rb;
    double sa = plan_on_loop(0, &a, &ra);
    double sb = plan_on_loop(1, &b, &rb);
    printf("     longest loop stall while planning 30 tasks: inline %.1f ms, worker %.1f ms\n",
           sa, sb);
    ASSERT_INT_EQ(ra, 0);
    ASSERT_INT_EQ(rb, 0);
    ASSERT_INT_EQ(a.plan.ntasks, 30);
    ASSERT_INT_EQ(b.plan.ntasks, 30);
    ASSERT(a.docker_warning != NULL && b.docker_warning != NULL);
    /* same plan but for the random alloc ids (same length) */
    ASSERT(a.plan.json != NULL && b.plan.json != NULL);
    ASSERT_INT_EQ(strlen(a.plan.json), strlen(b.plan.json));
    ASSERT(strstr(b.plan.json, "\"verdict\": \"allowed\"") != NULL);
    planned_free(&a);
    planned_free(&b);
}

TEST(worker_reports_bad_input)
{
    planned p;
    int rc;
    char bad[PATH_MAX + 16];
    snprintf(bad, sizeof bad, "%s/bad.hcl", dir);
    write_file(bad, "job \"j\" {\n  group \"g\" {\n    task \"../x\" { driver = \"docker\" }\n  }\n}\n");
    snprintf(job_path, sizeof job_path, "%s", bad);
    plan_on_loop(1, &p, &rc);
    ASSERT(rc < 0);
    ASSERT(p.problems.n > 0);
    planned_free(&p);
}

TEST(worker_reports_missing_job)
{
    planned p;
    int rc;
    snprintf(job_path, sizeof job_path, "%s/none.hcl", dir);
    plan_on_loop(1, &p, &rc);
    ASSERT_INT_EQ(rc, DRV_ENOINPUT);
    planned_free(&p);
}

int main(void)
{
    setup();
    RUN(inline_and_worker_plan_alike);
    RUN(worker_reports_bad_input);
    RUN(worker_reports_missing_job);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    return test_summary();
}
