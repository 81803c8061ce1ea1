/*
 * planner.h: turns command-line inputs (job file, agent config, data dir)
 * into a plan: the two-pass pipeline shared by `plan` and `run`.
 *
 *   agent config (conf) -> data dir (run) -> policy files (policyset)
 *   -> node facts -> pass 1 (validate, map, port requests; no policies)
 *   -> Docker facts (fingerprint, asynchronous on the caller's loop)
 *   -> ports (peeked for plan, reserved for run)
 *   -> pass 2 (final plan with Docker facts and ports, policies judge)
 *
 * Each plan opens its own script VM. With `worker` set, the steps that may
 * take a while (file reads, the Lua passes, the port ledger's flock) run on
 * libuv's threadpool (uv_queue_work), one after the other, and only the
 * fingerprint (and the callback) runs on the loop: an agent's log streams
 * do not wait for a plan.
 */
#ifndef DRV_PLANNER_H
#define DRV_PLANNER_H

#include <uv.h>

#include "conf.h"
#include "err.h"
#include "node.h"
#include "plan.h"
#include "ports.h"
#include "script.h"

enum { PLANNER_PLAN, PLANNER_RUN };

typedef struct planner_args {
    const char *job_path;
    const char *config_path;    /* agent config, or NULL */
    const char *data_dir;       /* -data-dir override, or NULL */
    const char *lua_dir;        /* -lua-dir override, or NULL */
    int mode;                   /* PLANNER_PLAN: Docker optional, ports peeked;
                                   PLANNER_RUN: Docker required, ports reserved */
    int worker;                 /* run the slow steps on the threadpool */
} planner_args;

/* A planned job: what `plan` prints and `run` runs. */
typedef struct planned {
    script *script;
    conf conf;                  /* the agent config (its agent moved below) */
    agent_conf agent;
    plan plan;
    problem_list problems;      /* filled when planning failed on bad input */
    node_facts node;            /* host + Docker attributes */
    char *docker_warning;       /* plan: why Docker facts are missing */
    port_req *ports;            /* allocated host ports */
    size_t nports;
    int ports_reserved;         /* released by planned_free */
    plan *pass1;                /* first pass (owns the port keys) */
    char api_version[16];       /* negotiated with Docker, or "" */
} planned;

/// Called once from `loop` when planning ends: rc 0, or a negative code with
/// bad-input problems in p->problems (print them all) or the failure in `err`.
typedef void (*planner_cb)(void *ud, planned *p, int rc, const drv_err *err);

/// Starts planning into `p` (which must stay put until `cb`); `a`'s strings
/// must live as long. `cb` runs exactly once, from `loop`, when planning has
/// ended (Docker answered or not, pass 2 done, or a step failed). Without
/// a->worker the file, Lua and port steps run on the calling thread, so `cb`
/// may run before planner_plan returns when one of them fails.
void planner_plan(uv_loop_t *loop, const planner_args *a, planned *p, planner_cb cb, void *ud);

/// planner_plan on a loop of its own, run to completion: for the
/// foreground commands, before any stream exists.
int planner_plan_now(const planner_args *a, planned *p, drv_err *err);

/// Releases reserved ports and frees everything in `p`.
void planned_free(planned *p);

#endif
