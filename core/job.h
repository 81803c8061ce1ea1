/*
 * job.h: turns command-line inputs (job file, agent config, data dir) into
 * a plan: reads the files, gathers host facts, loads the policy sources and
 * calls driver.agent and driver.plan in Lua. Shared by `plan` and `run`.
 */
#ifndef DRV_JOB_H
#define DRV_JOB_H

#include "buf.h"
#include "err.h"
#include "node.h"
#include "plan.h"
#include "ports.h"
#include "script.h"

enum { JOB_PLAN, JOB_RUN };

typedef struct job_args {
    const char *job_path;
    const char *config_path;    /* agent config, or NULL */
    const char *data_dir;       /* -data-dir override, or NULL */
    const char *lua_dir;        /* -lua-dir override, or NULL */
    int mode;                   /* JOB_PLAN: Docker optional, ports peeked;
                                   JOB_RUN: Docker required, ports reserved */
} job_args;

typedef struct job {
    script *script;
    agent_conf agent;
    plan plan;
    problem_list problems;      /* filled when loading failed on bad input */
    node_facts node;            /* host + Docker attributes */
    char *docker_warning;       /* plan: why Docker facts are missing */
    port_req *ports;            /* allocated host ports */
    size_t nports;
    int ports_reserved;         /* release them in job_free */
    plan *pass1;                /* first pass (owns the port keys) */
    char api_version[16];       /* negotiated by the Docker probe, or "" */
} job;

/* Policy files: the shipped defaults, overridden by file name from the
 * operator's directory. Sorted by file name. */
typedef struct policy_sources {
    script_source *v;
    buf *texts;
    char **paths;
    size_t n;
} policy_sources;

int job_policy_sources(policy_sources *ps, const char *ops_dir, drv_err *err);
void job_policy_sources_free(policy_sources *ps);

/// Loads and plans. On failure returns a negative code; bad-input problems
/// are in j->problems (print them all), other failures in `err`.
int job_load(job *j, const job_args *a, drv_err *err);
void job_free(job *j);

/// Prints every problem as "drvctl: <message>" to stderr.
void job_print_problems(const job *j);

/// The data dir when neither -data-dir nor the agent config names one:
/// /var/lib/drvctl as root, else $XDG_STATE_HOME/drvctl or ~/.local/state/drvctl.
void job_default_data_dir(char *out, size_t len);

/// Resolves the Lua module directory (override, source tree, install path).
const char *job_lua_dir(const char *override);

/// Reads a whole file; returns DRV_ENOINPUT with a message naming it.
int job_read_file(const char *path, const char *what, buf *out, drv_err *err);

#endif
