/*
 * script.h: the Lua VM facade. The only place (with lcore.c) that includes
 * lua.h. Every call into Lua is protected (lua_pcall with a traceback
 * handler); results are copied into C-owned memory before returning, so no
 * Lua value outlives a call. The VM opens no io, os or debug library, ignores
 * LUA_PATH/LUA_CPATH, and has no "./?.lua" on its path.
 */
#ifndef DRV_SCRIPT_H
#define DRV_SCRIPT_H

#include <stddef.h>

#include "err.h"
#include "plan.h"

typedef struct script script;

typedef struct script_source {
    const char *path;        /* shown in messages */
    const char *text;
    size_t len;              /* bytes in text: pushed whole, NUL bytes included */
    const char *bc;          /* policies only: precompiled `text` (policyset.h), or NULL */
    size_t bclen;
} script_source;

typedef struct script_kv {
    const char *key;
    const char *value;
} script_kv;

typedef struct script_port {
    const char *key;             /* "<alloc_id>/<task>/<label>" */
    int port;
} script_port;

/* Facts about this machine that Lua may not look up itself. */
typedef struct host_facts {
    const char *default_data_dir;
    const char *data_dir;        /* -data-dir: wins over the agent config */
    const char *alloc_seed;      /* 32 hex chars */
    const char *docker_host;     /* $DOCKER_HOST or NULL */
    const char *docker_tls_verify;
    const char *docker_cert_path;
    const char *cwd;
    const script_source *policies;
    size_t npolicies;
    const script_kv *node;       /* node attributes (kernel.name, ...) */
    size_t nnode;
    const char *network_ip;      /* address ports are published on */
    const script_port *ports;    /* pass 2: allocated host ports */
    size_t nports;
    int docker_facts;            /* node holds driver.docker.* answers */
    int skip_policies;           /* pass 1: validate only; pass 2 judges */
    int skip_json;               /* `run`: nobody prints the plan JSON */
} host_facts;

/* One decoded Docker response (driver.decode); absent fields are NULL/0. */
typedef struct decoded {
    char *id;
    char *message;
    char *error;
    char *status;
    char *stream;
    char *gateway;
    char *version;
    long exit_code;
    int running;
    int oom_killed;
} decoded;

/// Opens a VM whose module path starts at `lua_dir`.
int script_open(script **out, const char *lua_dir, drv_err *err);
void script_close(script *s);

/// driver.agent: on problems returns DRV_ECONFIG-ish codes and fills `probs`.
int script_agent(script *s, const script_source *agent, const host_facts *h,
                 agent_conf *out, problem_list *probs, drv_err *err);

/// driver.plan: returns 0 and fills `out`, or a negative code mapped from the
/// first problem kind with every problem in `probs`.
/* The Lua instructions one plan pass may take (policies included): about a
 * second on this project's reference machine; over it, DRV_EINVALID. */
#define SCRIPT_PLAN_BUDGET 15000000LL

int script_plan(script *s, const script_source *job, const script_source *agent,
                const host_facts *h, plan *out, problem_list *probs, drv_err *err);

/// A task spec back from its JSON state (plan_task_json): the same read
/// as the plan's, from the object cjson decodes. Free with plan_task_free.
int script_task_spec(script *s, const char *json, plan_task *out, drv_err *err);

/// driver.decode(op, status, body).
int script_decode(script *s, const char *op, long status, const char *body,
                  decoded *out, drv_err *err);
void decoded_free(decoded *d);

/// driver.check_policies(sources, agent_src, agent_path): prints nothing;
/// fills `probs`. `agent` may be NULL (no agent config: its policy_options
/// are not checked).
int script_check_policies(script *s, const script_source *policies, size_t n,
                          const script_source *agent, problem_list *probs, drv_err *err);

/* One input field of driver.registry_auth: bytes (NUL bytes included);
 * data NULL: the field is absent (nil). */
typedef struct script_field {
    const char *key;
    const char *data;
    size_t len;
} script_field;

/* What driver.registry_auth answered; absent fields are NULL. */
typedef struct script_auth {
    char *header;    /* X-Registry-Auth value: a secret, zeroed by script_auth_free */
    char *helper;    /* a credential helper to run (the docker-credential- suffix) */
    char *input;     /* the helper's stdin */
    char *source;    /* "registry auth for ... from ...": for messages, no secret */
} script_auth;

/// driver.registry_auth(op, fields) (lua/drv/registryauth.lua): op
/// "resolve" or "helper_output". Its `nil, message` is DRV_EIMAGE.
int script_registry_auth(script *s, const char *op, const script_field *fields, size_t n,
                         script_auth *out, drv_err *err);
/// Frees the strings (the header zeroed first).
void script_auth_free(script_auth *a);

#endif
