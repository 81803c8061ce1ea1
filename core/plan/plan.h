/*
 * plan.h: what `driver.plan` decided, copied into C-owned memory. One
 * plan_task per task per group instance. Produced by script_plan(), consumed
 * by cmd_plan (prints json) and cmd_run (runs the tasks).
 */
#ifndef DRV_PLAN_H
#define DRV_PLAN_H

#include <stddef.h>

#include "buf.h"
#include "spec.h"

/* The task spec: fields from spec.h (one line there adds a field to the
 * struct, the Lua read, copy, free and JSON state). */
typedef struct plan_artifact {
    SPEC_MEMBERS(PLAN_ARTIFACT_FIELDS)
} plan_artifact;

typedef struct plan_pin {
    SPEC_MEMBERS(PLAN_PIN_FIELDS)
} plan_pin;

typedef struct plan_task {
    SPEC_MEMBERS(PLAN_TASK_FIELDS)
    PLAN_TASK_SECRETS(SPEC_MEMBER_S)   /* never in JSON (spec.h) */
    plan_pin *pins;          /* bind sources to pin before create */
    size_t npins;
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
    char *auth_config;       /* docker.auth.config: absolute path, or NULL */
    char *auth_helper;       /* docker.auth.helper: helper suffix, or NULL */
    int cleanup_image;       /* docker.cleanup.image (default 1) */
    long cleanup_image_delay_ms; /* docker.cleanup.image.delay (default 3m) */
    int cleanup_container;   /* docker.cleanup.container (default 1) */
    int allow_private_registries; /* plugin config: pull from loopback/private
                                     registries too (default 0) */
} agent_conf;

/* Problems reported by Lua ("kind" picks the exit code of the first one). */
typedef struct problem_list {
    char **kinds;
    char **messages;
    size_t n;
    char *json;     /* plan: the plan JSON with every verdict, when only policies denied */
} problem_list;

void plan_free(plan *p);
/// Frees what a plan_task owns (not the struct itself) and zeroes it.
void plan_task_free(plan_task *t);
/// Deep copy of `src` into `dst` (the task owns its spec).
void plan_task_copy(plan_task *dst, const plan_task *src);
/// Appends the spec as one JSON object (the agent's state encoding; field
/// names as in spec.h, pins and artifacts as arrays of objects).
void plan_task_json(const plan_task *t, buf *out);
void agent_conf_free(agent_conf *a);
void problem_list_free(problem_list *l);
/// Maps a problem kind ("syntax", "unknown", ...) to a DRV_E* code.
int problem_kind_code(const char *kind);

#endif
