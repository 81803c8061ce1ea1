/* planner.c: the two-pass plan pipeline (see planner.h). */
#include "planner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fingerprint.h"
#include "fs.h"
#include "log.h"
#include "pin.h"
#include "policyset.h"

/* One planning in flight: what the asynchronous part still needs. */
typedef struct planner_run planner_run;
typedef void (*step_fn)(planner_run *r);

struct planner_run {
    planned *p;
    planner_args a;
    uv_loop_t *loop;
    buf job_text;
    policyset ps;
    host_facts h;
    fingerprint *fp;
    planner_cb cb;
    void *ud;
    int rc;                  /* the current step's result */
    drv_err err;
    uv_work_t work;          /* a->worker: the Lua steps run on the threadpool */
    step_fn step, after;
    /* without a->worker, the ping is sent before pass 1 runs and answers
     * while it runs (about 0.5 ms of a `run`): pass 1 starts on the loop
     * turn that sends it (kick), and whichever of the two ends last goes on */
    int early;
    uv_timer_t *kick;
    int pass1_done, docker_done, docker_rc;
    drv_err docker_err;
};

/* Milliseconds since the first call, for DRVCTL_LOG=debug step timings. */
static double elapsed_ms(void)
{
    static uint64_t t0;
    uint64_t now = uv_hrtime();
    if (t0 == 0) {
        t0 = now;
    }
    return (double)(now - t0) / 1e6;
}

/* Points h->node at `f` (the array is allocated into *kv; free it). */
static void set_node(host_facts *h, const node_facts *f, script_kv **kv)
{
    *kv = drv_xcalloc(f->n + 1, sizeof **kv);
    for (size_t i = 0; i < f->n; i++) {
        (*kv)[i].key = f->v[i].name;
        (*kv)[i].value = f->v[i].value;
    }
    h->node = *kv;
    h->nnode = f->n;
}

/* `run`: the data dir and its alloc/, binds/ and state/ are 0700 (made so,
 * or fixed with a note): task files there may include setuid binaries a
 * container made, which no other host user may reach. The alloc dirs below
 * keep 0755 (containers running as non-root users need them) but cannot be
 * reached from above. */
static int prepare_data_dir(const char *data_dir, drv_err *err)
{
    static const char *const subdirs[] = { "alloc", "binds", "state" };
    drv_err e;
    char sub[PATH_MAX];

    if (data_dir == NULL || data_dir[0] != '/') {
        return drv_err_set(err, DRV_ECONFIG, "data dir: not an absolute path: \"%s\"",
                           data_dir ? data_dir : "");
    }
    /* the data dir itself may be a symlink the operator made */
    if (pin_private_dir(data_dir, 1, &e) < 0) {
        return drv_err_set(err, DRV_ECONFIG, "data dir: %s", e.msg);
    }
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (snprintf(sub, sizeof sub, "%s/%s", data_dir, subdirs[i]) >= (int)sizeof sub) {
            return drv_err_set(err, DRV_ECONFIG, "data dir: path too long: \"%s\"", data_dir);
        }
        if (pin_private_dir(sub, 0, &e) < 0) {
            return drv_err_set(err, DRV_ECONFIG, "data dir: %s", e.msg);
        }
    }
    return 0;
}

static void run_free(planner_run *r)
{
    fingerprint_free(r->fp);
    policyset_free(&r->ps);
    buf_free(&r->job_text);
    free(r);
}

static const script_source *job_source(const planner_run *r, script_source *src)
{
    src->path = r->a.job_path;
    src->text = r->job_text.data;
    src->len = r->job_text.len;
    return src;
}

/* Ends the planning: frees the state, then tells the caller. */
static void finish(planner_run *r)
{
    planner_cb cb = r->cb;
    void *ud = r->ud;
    planned *p = r->p;
    int rc = r->rc;
    drv_err err = r->err;

    run_free(r);    /* closes the fingerprint's client: from its callback is fine */
    cb(ud, p, rc, &err);
}

static void on_work(uv_work_t *w)
{
    planner_run *r = w->data;
    r->step(r);
}

static void on_work_done(uv_work_t *w, int status)
{
    planner_run *r = w->data;
    if (status == UV_ECANCELED && r->rc == 0) {
        r->rc = drv_err_set(&r->err, DRV_ECANCELED, "planning canceled");
    }
    r->after(r);
}

/* Runs `step` (file reads, Lua, flock: anything that may take a while) on
 * the threadpool with a->worker, else here; then `after` on the loop. */
static void run_step(planner_run *r, step_fn step, step_fn after)
{
    r->step = step;
    r->after = after;
    if (r->a.worker) {
        r->work.data = r;
        int e = uv_queue_work(r->loop, &r->work, on_work, on_work_done);
        if (e == 0) {
            return;
        }
        r->rc = drv_err_set(&r->err, DRV_EINTERNAL, "planner: cannot queue work: %s",
                            uv_strerror(e));
        after(r);
        return;
    }
    step(r);
    after(r);
}

/* Step 3 (worker): ports (peeked for plan, reserved for run), then pass 2:
 * the final plan, with Docker facts and real ports. */
static void step_pass2(planner_run *r)
{
    planned *p = r->p;
    host_facts h = r->h;
    script_source job_src;
    drv_err *err = &r->err;

    size_t n = p->plan.nport_requests;
    p->ports = drv_xcalloc(n + 1, sizeof *p->ports);
    p->nports = n;
    for (size_t i = 0; i < n; i++) {
        p->ports[i].key = p->plan.port_requests[i].key;
        p->ports[i].static_port = p->plan.port_requests[i].static_port;
        p->ports[i].alloc_id = p->plan.port_requests[i].alloc_id;
    }
    if (n > 0) {
        int rc;
        if (r->a.mode == PLANNER_RUN) {
            rc = ports_reserve(p->agent.data_dir, p->node.network_ip, p->agent.min_dynamic_port,
                               p->agent.max_dynamic_port, p->ports, n, err);
            p->ports_reserved = rc == 0;
        } else {
            rc = ports_peek(p->agent.data_dir, p->node.network_ip, p->agent.min_dynamic_port,
                            p->agent.max_dynamic_port, p->ports, n, err);
        }
        if (rc < 0) {
            r->rc = rc;
            return;
        }
    }

    script_port *sp = drv_xcalloc(n + 1, sizeof *sp);
    for (size_t i = 0; i < n; i++) {
        sp[i].key = p->ports[i].key;
        sp[i].port = p->ports[i].result;
    }
    script_kv *kv = NULL;
    h.ports = sp;
    h.nports = n;
    h.network_ip = p->node.network_ip;
    h.skip_json = r->a.mode == PLANNER_RUN;   /* `run` prints no plan */
    set_node(&h, &p->node, &kv);
    plan first = p->plan;
    memset(&p->plan, 0, sizeof p->plan);
    r->rc = script_plan(p->script, job_source(r, &job_src), conf_source(&p->conf), &h, &p->plan,
                        &p->problems, err);
    free(kv);
    free(sp);
    log_debug("%.1f ms: plan pass 2 (ports, policies)", elapsed_ms());
    /* the port keys point into the first plan: keep it until planned_free */
    p->pass1 = drv_xmalloc(sizeof *p->pass1);
    *p->pass1 = first;
}

/* Docker answered, or not (loop), and pass 1 is done. */
static void docker_result(planner_run *r, fingerprint *fp, int rc, const drv_err *derr)
{
    planned *p = r->p;

    /* the node facts as the fingerprint now has them (driver.docker.* on success) */
    node_facts_free(&p->node);
    fingerprint_copy_facts(fp, &p->node);
    if (rc == 0) {
        r->h.docker_facts = 1;
        snprintf(p->api_version, sizeof p->api_version, "%s", fingerprint_api_version(fp));
    } else if (r->a.mode == PLANNER_RUN || rc == DRV_ECONFIG) {
        /* a bad endpoint is a configuration error for plan too */
        r->rc = rc;
        r->err = *derr;
        finish(r);
        return;
    } else {
        p->docker_warning = drv_xstrdup(derr->msg);
    }
    log_debug("%.1f ms: Docker facts", elapsed_ms());
    run_step(r, step_pass2, finish);
}

static void on_docker(void *ud, fingerprint *fp, int rc, const drv_err *derr)
{
    docker_result(ud, fp, rc, derr);
}

/* The early ping's answer: waits for pass 1 (its problems come first). */
static void on_docker_early(void *ud, fingerprint *fp, int rc, const drv_err *derr)
{
    planner_run *r = ud;
    r->docker_done = 1;
    r->docker_rc = rc;
    if (rc < 0 && derr != NULL) {
        r->docker_err = *derr;
    }
    if (r->pass1_done) {
        docker_result(r, fp, rc, &r->docker_err);
    }
}

/* Step 2 (worker): pass 1: validate and map; collect port requests. */
static void step_pass1(planner_run *r)
{
    planned *p = r->p;
    script_source job_src;
    script_kv *kv = NULL;
    host_facts h1 = r->h;

    set_node(&h1, &p->node, &kv);
    h1.network_ip = p->node.network_ip;
    h1.skip_policies = 1;
    r->rc = script_plan(p->script, job_source(r, &job_src), conf_source(&p->conf), &h1, &p->plan,
                        &p->problems, &r->err);
    log_debug("%.1f ms: plan pass 1 (validate, port requests)", elapsed_ms());
    free(kv);
}

/* After pass 1 (loop): Docker facts (constraints on driver.docker.*):
 * required to run; the bridge gateway costs a request: ask only when the
 * job names it. */
static void after_pass1(planner_run *r)
{
    if (r->rc < 0) {
        finish(r);   /* frees the fingerprint: an early ping is cancelled */
        return;
    }
    if (r->early) {
        r->pass1_done = 1;
        if (r->docker_done) {
            docker_result(r, r->fp, r->docker_rc, &r->docker_err);
        }
        return;
    }
    int want_bridge = strstr(buf_str(&r->job_text), "bridge_ip") != NULL;
    r->rc = fingerprint_refresh(r->fp, r->p->script, want_bridge, on_docker, r, &r->err);
    if (r->rc < 0) {
        finish(r);
    }
}

/* Step 1 (worker): the files, the VM, the agent config, the data dir
 * (run), the policy files. */
static void step_load(planner_run *r)
{
    const planner_args *a = &r->a;
    planned *p = r->p;
    drv_err *err = &r->err;
    int rc;

    rc = fs_read_file(a->job_path, "job file", &r->job_text, err);
    if (rc == 0 && a->config_path != NULL) {
        /* read it here too: an unreadable config is reported before the VM opens */
        buf probe = BUF_INIT;
        rc = fs_read_file(a->config_path, "agent config", &probe, err);
        buf_free(&probe);
        if (rc < 0) {
            err->code = rc = DRV_ECONFIG;
        }
    }
    if (rc == 0) {
        rc = script_open(&p->script, conf_lua_dir(a->lua_dir), err);
    }
    if (rc < 0) {
        r->rc = rc;
        return;
    }
    log_debug("%.1f ms: Lua VM open", elapsed_ms());
    rc = conf_load(&p->conf, p->script, a->config_path, a->data_dir, err);
    /* the agent's answer lives in p->agent, its problems with the plan's */
    p->agent = p->conf.agent;
    memset(&p->conf.agent, 0, sizeof p->conf.agent);
    p->problems = p->conf.problems;
    memset(&p->conf.problems, 0, sizeof p->conf.problems);
    if (rc == 0) {
        r->h = p->conf.host;
        if (a->mode == PLANNER_RUN) {
            rc = prepare_data_dir(p->agent.data_dir, err);
        }
    }
    if (rc == 0) {
        rc = policyset_load(&r->ps, p->agent.policy_dir, err);
        r->h.policies = r->ps.v;
        r->h.npolicies = r->ps.n;
    }
    log_debug("%.1f ms: agent config and policy files read", elapsed_ms());
    r->rc = rc;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_kick(uv_timer_t *t)
{
    planner_run *r = t->data;
    uv_close((uv_handle_t *)t, free_handle);
    r->kick = NULL;
    run_step(r, step_pass1, after_pass1);
}

/* After step 1 (loop): the fingerprint, whose node facts pass 1 needs. */
static void after_load(planner_run *r)
{
    if (r->rc < 0) {
        finish(r);
        return;
    }
    r->rc = fingerprint_new(&r->fp, r->loop, &r->p->agent, &r->err);
    if (r->rc < 0) {
        finish(r);
        return;
    }
    fingerprint_copy_facts(r->fp, &r->p->node);
    log_debug("%.1f ms: node facts gathered", elapsed_ms());
    if (!r->a.worker) {
        /* ask Docker now; libcurl sends from the loop, so pass 1 waits for
         * the next loop turn (its timer runs after libcurl's) */
        int want_bridge = strstr(buf_str(&r->job_text), "bridge_ip") != NULL;
        r->rc = fingerprint_refresh(r->fp, r->p->script, want_bridge, on_docker_early, r, &r->err);
        if (r->rc < 0) {
            finish(r);
            return;
        }
        r->early = 1;
        r->kick = drv_xmalloc(sizeof *r->kick);
        uv_timer_init(r->loop, r->kick);
        r->kick->data = r;
        uv_timer_start(r->kick, on_kick, 0, 0);
        return;
    }
    run_step(r, step_pass1, after_pass1);
}

void planner_plan(uv_loop_t *loop, const planner_args *a, planned *p, planner_cb cb, void *ud)
{
    planner_run *r = drv_xcalloc(1, sizeof *r);

    memset(p, 0, sizeof *p);
    r->p = p;
    r->a = *a;
    r->loop = loop;
    r->cb = cb;
    r->ud = ud;
    drv_err_clear(&r->err);
    elapsed_ms();
    run_step(r, step_load, after_load);
}

typedef struct sync_wait {
    int rc;
    drv_err err;
} sync_wait;

static void on_sync(void *ud, planned *p, int rc, const drv_err *err)
{
    sync_wait *w = ud;
    (void)p;
    w->rc = rc;
    w->err = *err;
}

int planner_plan_now(const planner_args *a, planned *p, drv_err *err)
{
    uv_loop_t loop;
    sync_wait w;

    memset(&w, 0, sizeof w);
    uv_loop_init(&loop);
    planner_plan(&loop, a, p, on_sync, &w);
    uv_run(&loop, UV_RUN_DEFAULT);   /* also runs the Docker client's close callbacks */
    uv_loop_close(&loop);
    if (w.rc < 0 && err != NULL) {
        *err = w.err;
    }
    return w.rc;
}

void planned_free(planned *p)
{
    if (p->ports_reserved) {
        ports_release(p->agent.data_dir, p->ports, p->nports);
    }
    free(p->ports);
    if (p->pass1 != NULL) {
        plan_free(p->pass1);
        free(p->pass1);
    }
    node_facts_free(&p->node);
    free(p->docker_warning);
    script_close(p->script);
    conf_free(&p->conf);
    agent_conf_free(&p->agent);
    plan_free(&p->plan);
    problem_list_free(&p->problems);
    memset(p, 0, sizeof *p);
}
