/*
 * plan.h: what `driver.plan` decided, copied into C-owned memory. One
 * plan_task per task per group instance. Produced by script_plan(), consumed
 * by cmd_plan (prints json) and cmd_run (runs the tasks).
 */
#ifndef DRV_PLAN_H
#define DRV_PLAN_H

#include <stddef.h>

typedef struct plan_artifact {
    char *source;
    char *dest_dir;          /* task_dir/dest, for messages */
    char *task_dir;          /* absolute */
    char *dest;              /* relative to task_dir, clean */
    char *checksum;          /* "sha256:hex" or NULL */
    char *archive;           /* NULL (auto), "false", "tar", "zip", ... */
    char *local_path;        /* local sources: decoded absolute path, else NULL */
    char *local_root;        /* the client.artifact.local_dirs entry it is under */
    long read_timeout_ms;    /* client.artifact limits (0: artifact.h defaults) */
    long long max_size;
    long long max_unpacked_bytes;
    long long max_unpacked_files;
    int allow_private;
} plan_artifact;

/* A bind source under the data dir, pinned before create (see pin.h): the
 * body already names `staging`, which C makes a bind mount of `path`
 * opened beneath `root` without following symlinks. */
typedef struct plan_pin {
    char *source;            /* the host path as checked, for messages */
    char *root;              /* the alloc dir, or the data dir */
    char *path;              /* relative to root ("" for root itself) */
    char *staging;           /* <binds_dir>/<alloc_id>-<task>-<n> */
    int create;              /* make a missing source (Binds), as Docker did */
} plan_pin;

typedef struct plan_task {
    char *job, *group, *task;
    char *alloc_id;
    char *name;              /* container name */
    char *image;
    char *load;              /* absolute tar path, or NULL */
    char *pull;              /* "missing" or "always" */
    char *body;              /* Docker create body, JSON */
    char *kill_signal;       /* NULL: image STOPSIGNAL, else SIGTERM */
    long kill_timeout_ms;
    int tty;
    char *alloc_dir;
    char *log_dir;
    int log_max_files;
    long long log_max_file_size;
    char **dirs;             /* directories to create before the container */
    size_t ndirs;
    plan_pin *pins;          /* bind sources to pin before create */
    size_t npins;
    char *binds_dir;         /* <data_dir>/binds: where the staging paths live */
    plan_artifact *artifacts;
    size_t nartifacts;
} plan_task;

typedef struct plan_port {
    char *key;               /* "<alloc_id>/<task>/<label>" */
    char *task;
    char *label;
    char *alloc_id;
    int static_port;         /* 0: dynamic */
} plan_port;

typedef struct plan {
    char *json;              /* the whole plan, for `drvctl plan` */
    plan_port *port_requests;/* pass 1: ports the plan needs */
    size_t nport_requests;
    char **warnings;
    size_t nwarnings;
    plan_task *tasks;
    size_t ntasks;
} plan;

/* Agent settings C needs before it can plan or reach Docker. */
typedef struct agent_conf {
    char *data_dir;
    char *endpoint;
    char *tls_ca, *tls_cert, *tls_key;
    char *policy_dir;        /* operator policies overriding defaults, or NULL */
    char *network_interface; /* NULL: the default-route interface */
    int min_dynamic_port;
    int max_dynamic_port;
    long cpu_total_compute;  /* MHz override; 0: fingerprinted */
    int volumes_enabled;     /* docker.volumes.enabled */
    int privileged_enabled;  /* docker.privileged.enabled */
} agent_conf;

/* Problems reported by Lua ("kind" picks the exit code of the first one). */
typedef struct problem_list {
    char **kinds;
    char **messages;
    size_t n;
    char *json;     /* plan: the plan JSON with every verdict, when only policies denied */
} problem_list;

void plan_free(plan *p);
void agent_conf_free(agent_conf *a);
void problem_list_free(problem_list *l);
/// Maps a problem kind ("syntax", "unknown", ...) to a DRV_E* code.
int problem_kind_code(const char *kind);

#endif
