/* script.c: the Lua VM facade (see script.h). */
#include "script.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "lcore.h"
#include "log.h"

struct script {
    lua_State *L;
    lcore_alloc alloc;       /* counting allocator (budgets for policies) */
};

/* --- VM setup ------------------------------------------------------------- */

/* Appends the default search templates of `field` that are not relative to
 * the working directory ("./?.lua" would let a hostile cwd inject code). */
static void append_safe_defaults(buf *b, const char *defaults)
{
    const char *p = defaults;
    while (*p != '\0') {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && p[0] == '/') {
            if (b->len > 0) {
                buf_append(b, ";", 1);
            }
            buf_append(b, p, len);
        }
        p += len;
        if (*p == ';') {
            p++;
        }
    }
}

static int open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {
        { LUA_GNAME, luaopen_base },     { LUA_LOADLIBNAME, luaopen_package },
        { LUA_TABLIBNAME, luaopen_table }, { LUA_STRLIBNAME, luaopen_string },
        { LUA_MATHLIBNAME, luaopen_math }, { LUA_UTF8LIBNAME, luaopen_utf8 },
        { LUA_COLIBNAME, luaopen_coroutine },
    };
    const char *lua_dir = lua_touserdata(L, 1);

    /* LUA_NOENV must be set before the package library reads the env. */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    lua_getglobal(L, LUA_LOADLIBNAME);                 /* [package] */
    {
        buf path = BUF_INIT;
        buf_appendf(&path, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
        append_safe_defaults(&path, LUA_PATH_DEFAULT);
        lua_pushstring(L, buf_str(&path));
        lua_setfield(L, -2, "path");
        buf_free(&path);
    }
    {
        buf cpath = BUF_INIT;
        append_safe_defaults(&cpath, LUA_CPATH_DEFAULT);
        lua_pushstring(L, buf_str(&cpath));
        lua_setfield(L, -2, "cpath");
        buf_free(&cpath);
    }
    lua_getfield(L, -1, "preload");                    /* [package, preload] */
    lua_pushcfunction(L, luaopen_drv_core);
    lua_setfield(L, -2, "drv.core");
    lua_pop(L, 2);
    return 0;
}

/* Message handler: appends a traceback; handles non-string error objects. */
static int on_error(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            return 1;
        }
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below `nargs` arguments on the stack, protected. */
static int call(script *s, int nargs, int nres, drv_err *err)
{
    lua_State *L = s->L;
    int base = lua_gettop(L) - nargs;

    lua_pushcfunction(L, on_error);
    lua_insert(L, base);
    int st = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (st != LUA_OK) {
        drv_err_set(err, DRV_EINTERNAL, "lua: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return DRV_EINTERNAL;
    }
    return 0;
}

int script_open(script **out, const char *lua_dir, drv_err *err)
{
    script *s = drv_xcalloc(1, sizeof *s);

    s->L = lua_newstate(lcore_alloc_fn, &s->alloc);
    if (s->L == NULL) {
        free(s);
        return drv_err_set(err, DRV_ENOMEM, "lua: cannot create a state");
    }
    /* a plan's VM lives for one plan and builds many short-lived tables: a
     * collection cycle when the heap has grown 4x instead of 2x does half
     * the collection work (policy memory budgets are relative to what is
     * allocated when a policy is called, so they do not move) */
    lua_gc(s->L, LUA_GCINC, 400, 0, 0);
    lua_pushcfunction(s->L, open_libs);
    lua_pushlightuserdata(s->L, (void *)(uintptr_t)lua_dir);
    int rc = call(s, 1, 0, err);
    if (rc < 0) {
        script_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void script_close(script *s)
{
    if (s == NULL) {
        return;
    }
    lua_close(s->L);
    free(s);
}

/* --- helpers to move data across ----------------------------------------- */

/* Pushes driver[fname]; fails with a clear message if the module is broken. */
static int push_driver_fn(script *s, const char *fname, drv_err *err)
{
    lua_State *L = s->L;
    lua_getglobal(L, "require");
    lua_pushstring(L, "drv.driver");
    int rc = call(s, 1, 1, err);
    if (rc < 0) {
        return rc;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return drv_err_set(err, DRV_EINTERNAL, "lua: drv.driver did not return a table");
    }
    lua_getfield(L, -1, fname);                        /* [driver, fn] */
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return drv_err_set(err, DRV_EINTERNAL, "lua: drv.driver.%s is not a function", fname);
    }
    return 0;
}

static void push_str_or_nil(lua_State *L, const char *s)
{
    if (s != NULL) {
        lua_pushstring(L, s);
    } else {
        lua_pushnil(L);
    }
}

static void push_host(lua_State *L, const host_facts *h)
{
    lua_createtable(L, 0, 8);
    push_str_or_nil(L, h->default_data_dir);
    lua_setfield(L, -2, "default_data_dir");
    push_str_or_nil(L, h->data_dir);
    lua_setfield(L, -2, "data_dir");
    push_str_or_nil(L, h->alloc_seed);
    lua_setfield(L, -2, "alloc_seed");
    push_str_or_nil(L, h->docker_host);
    lua_setfield(L, -2, "docker_host");
    push_str_or_nil(L, h->docker_tls_verify);
    lua_setfield(L, -2, "docker_tls_verify");
    push_str_or_nil(L, h->docker_cert_path);
    lua_setfield(L, -2, "docker_cert_path");
    push_str_or_nil(L, h->cwd);
    lua_setfield(L, -2, "cwd");
    lua_createtable(L, (int)h->npolicies, 0);
    for (size_t i = 0; i < h->npolicies; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, h->policies[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, h->policies[i].text, h->policies[i].len);
        lua_setfield(L, -2, "source");
        if (h->policies[i].bc != NULL) {
            lua_pushlstring(L, h->policies[i].bc, h->policies[i].bclen);
            lua_setfield(L, -2, "bytecode");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "policies");
    lua_createtable(L, 0, (int)h->nnode);
    for (size_t i = 0; i < h->nnode; i++) {
        lua_pushstring(L, h->node[i].value);
        lua_setfield(L, -2, h->node[i].key);
    }
    lua_setfield(L, -2, "node");
    push_str_or_nil(L, h->network_ip);
    lua_setfield(L, -2, "network_ip");
    if (h->ports != NULL) {
        lua_createtable(L, 0, (int)h->nports);
        for (size_t i = 0; i < h->nports; i++) {
            lua_pushinteger(L, h->ports[i].port);
            lua_setfield(L, -2, h->ports[i].key);
        }
        lua_setfield(L, -2, "ports");
    }
    lua_pushboolean(L, h->docker_facts);
    lua_setfield(L, -2, "docker_facts");
    lua_pushboolean(L, h->skip_policies);
    lua_setfield(L, -2, "skip_policies");
    lua_pushboolean(L, h->skip_json);
    lua_setfield(L, -2, "skip_json");
}

/* Copies t[key] (a string) or NULL. */
static char *get_str(lua_State *L, int t, const char *key)
{
    char *r = NULL;
    lua_getfield(L, t, key);
    if (lua_type(L, -1) == LUA_TSTRING) {
        r = drv_xstrdup(lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return r;
}

static long long get_int(lua_State *L, int t, const char *key, long long dflt)
{
    long long r = dflt;
    lua_getfield(L, t, key);
    if (lua_isnumber(L, -1)) {
        r = (long long)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return r;
}

static int get_bool(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int r = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return r;
}

/* Copies an array of strings at t[key]. */
static char **get_strv(lua_State *L, int t, const char *key, size_t *n)
{
    char **v = NULL;
    *n = 0;
    lua_getfield(L, t, key);
    if (lua_istable(L, -1)) {
        size_t len = (size_t)luaL_len(L, -1);
        v = drv_xcalloc(len + 1, sizeof *v);
        for (size_t i = 0; i < len; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            const char *s = lua_tostring(L, -1);
            v[(*n)++] = drv_xstrdup(s ? s : "");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return v;
}

/* Reads the `nil, problems` form at stack index `idx`. */
static int read_problems(script *s, int idx, problem_list *probs, drv_err *err)
{
    lua_State *L = s->L;

    memset(probs, 0, sizeof *probs);
    if (lua_type(L, idx) == LUA_TSTRING) {
        probs->kinds = drv_xcalloc(1, sizeof(char *));
        probs->messages = drv_xcalloc(1, sizeof(char *));
        probs->kinds[0] = drv_xstrdup("type");
        probs->messages[0] = drv_xstrdup(lua_tostring(L, idx));
        probs->n = 1;
    } else if (lua_istable(L, idx)) {
        size_t len = (size_t)luaL_len(L, idx);
        probs->kinds = drv_xcalloc(len + 1, sizeof(char *));
        probs->messages = drv_xcalloc(len + 1, sizeof(char *));
        for (size_t i = 0; i < len; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i + 1);
            if (lua_istable(L, -1)) {
                char *k = get_str(L, lua_gettop(L), "kind");
                char *m = get_str(L, lua_gettop(L), "message");
                probs->kinds[probs->n] = k ? k : drv_xstrdup("type");
                probs->messages[probs->n] = m ? m : drv_xstrdup("(no message)");
            } else {
                const char *m = lua_tostring(L, -1);
                probs->kinds[probs->n] = drv_xstrdup("type");
                probs->messages[probs->n] = drv_xstrdup(m ? m : "(no message)");
            }
            probs->n++;
            lua_pop(L, 1);
        }
        probs->json = get_str(L, idx, "json");
    }
    if (probs->n > 0) {
        return drv_err_set(err, problem_kind_code(probs->kinds[0]), "%s", probs->messages[0]);
    }
    return drv_err_set(err, DRV_EINTERNAL, "lua: driver returned nil without problems");
}

/* --- entry points --------------------------------------------------------- */

static void push_source(lua_State *L, const script_source *src)
{
    if (src != NULL && src->text != NULL) {
        lua_pushlstring(L, src->text, src->len);
        lua_pushstring(L, src->path);
    } else {
        lua_pushnil(L);
        lua_pushnil(L);
    }
}

int script_agent(script *s, const script_source *agent, const host_facts *h,
                 agent_conf *out, problem_list *probs, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(out, 0, sizeof *out);
    memset(probs, 0, sizeof *probs);
    int rc = push_driver_fn(s, "agent", err);
    if (rc < 0) {
        return rc;
    }
    push_source(L, agent);
    push_host(L, h);
    rc = call(s, 3, 2, err);
    if (rc == 0) {
        if (lua_istable(L, -2)) {
            int t = lua_gettop(L) - 1;
            out->data_dir = get_str(L, t, "data_dir");
            out->endpoint = get_str(L, t, "endpoint");
            out->tls_ca = get_str(L, t, "tls_ca");
            out->tls_cert = get_str(L, t, "tls_cert");
            out->tls_key = get_str(L, t, "tls_key");
            out->policy_dir = get_str(L, t, "policy_dir");
            out->network_interface = get_str(L, t, "network_interface");
            out->min_dynamic_port = (int)get_int(L, t, "min_dynamic_port", 20000);
            out->max_dynamic_port = (int)get_int(L, t, "max_dynamic_port", 32000);
            out->cpu_total_compute = (long)get_int(L, t, "cpu_total_compute", 0);
            lua_getfield(L, t, "options");
            if (lua_istable(L, -1)) {
                out->volumes_enabled = get_bool(L, lua_gettop(L), "volumes_enabled");
                out->privileged_enabled = get_bool(L, lua_gettop(L), "privileged_enabled");
                out->auth_config = get_str(L, lua_gettop(L), "auth_config");
                out->auth_helper = get_str(L, lua_gettop(L), "auth_helper");
                out->cleanup_image = get_bool(L, lua_gettop(L), "cleanup_image");
                out->cleanup_image_delay_ms =
                    (long)get_int(L, lua_gettop(L), "cleanup_image_delay_ms", 180000);
                out->cleanup_container = get_bool(L, lua_gettop(L), "cleanup_container");
                out->allow_private_registries =
                    get_bool(L, lua_gettop(L), "allow_private_registries");
            }
            lua_pop(L, 1);
        } else {
            rc = read_problems(s, lua_gettop(L), probs, err);
        }
    }
    lua_settop(L, top);
    return rc;
}

/* The Lua read of a task spec, generated from spec.h: a field named like
 * the C member, defaults as listed there. */
#define READ_S(n) x->n = get_str(L, t, #n);
#define READ_I(n, type, dflt) x->n = (type)get_int(L, t, #n, dflt);
#define READ_B(n) x->n = get_bool(L, t, #n);
#define READ_V(n, count) x->n = get_strv(L, t, #n, &x->count);

static void read_pin(lua_State *L, int t, plan_pin *x)
{
    PLAN_PIN_FIELDS(READ_S, READ_I, READ_B, READ_V)
}

static void read_artifact(lua_State *L, int t, plan_artifact *x)
{
    PLAN_ARTIFACT_FIELDS(READ_S, READ_I, READ_B, READ_V)
}

static void read_task(lua_State *L, int t, plan_task *x)
{
    PLAN_TASK_FIELDS(READ_S, READ_I, READ_B, READ_V)
    PLAN_TASK_SECRETS(READ_S)
    lua_getfield(L, t, "pins");
    if (lua_istable(L, -1)) {
        int a = lua_gettop(L);
        size_t n = (size_t)luaL_len(L, a);
        x->pins = drv_xcalloc(n + 1, sizeof *x->pins);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, a, (lua_Integer)i + 1);
            read_pin(L, lua_gettop(L), &x->pins[x->npins++]);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    lua_getfield(L, t, "artifacts");
    if (lua_istable(L, -1)) {
        int a = lua_gettop(L);
        size_t n = (size_t)luaL_len(L, a);
        x->artifacts = drv_xcalloc(n + 1, sizeof *x->artifacts);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, a, (lua_Integer)i + 1);
            read_artifact(L, lua_gettop(L), &x->artifacts[x->nartifacts++]);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

int script_task_spec(script *s, const char *json, plan_task *out, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(out, 0, sizeof *out);
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson.safe");
    int rc = call(s, 1, 1, err);
    if (rc < 0) {
        return rc;
    }
    lua_getfield(L, -1, "decode");
    lua_pushstring(L, json != NULL ? json : "");
    rc = call(s, 1, 1, err);
    if (rc == 0 && !lua_istable(L, -1)) {
        rc = drv_err_set(err, DRV_EINVALID, "task state: not a JSON object");
    }
    if (rc == 0) {
        read_task(L, lua_gettop(L), out);
    }
    lua_settop(L, top);
    return rc;
}

int script_plan(script *s, const script_source *job, const script_source *agent,
                const host_facts *h, plan *out, problem_list *probs, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(out, 0, sizeof *out);
    memset(probs, 0, sizeof *probs);
    int rc = push_driver_fn(s, "plan", err);
    if (rc < 0) {
        return rc;
    }
    push_source(L, job);
    push_source(L, agent);
    push_host(L, h);
    /* every job file gets a plan or an error within about a second: pass 1
     * counts every instruction; pass 2 (policies judged) repeats pass 1's
     * work on the same parsed job, so only its policies are counted (no
     * per-instruction hook outside them; see lcore_entry_begin_policies) */
    if (h->skip_policies) {
        lcore_entry_begin(L, SCRIPT_PLAN_BUDGET, 0);
    } else {
        lcore_entry_begin_policies(L, SCRIPT_PLAN_BUDGET, 0);
    }
    rc = call(s, 5, 2, err);
    log_debug("plan: %lld Lua instructions%s", SCRIPT_PLAN_BUDGET - s->alloc.entry.left,
              h->skip_policies ? "" : " in policies");
    lcore_entry_end(L);
    if (rc < 0 && strstr(err->msg, LCORE_ENTRY_BUDGET) != NULL) {
        return drv_err_set(err, DRV_EINVALID,
                           "%s: job too large to plan: it needs more than %lld million Lua "
                           "instructions (about a second); use fewer instances, tasks or "
                           "smaller task configs", job != NULL && job->path != NULL ? job->path : "job",
                           SCRIPT_PLAN_BUDGET / 1000000);
    }
    if (rc == 0 && !lua_istable(L, -2)) {
        rc = read_problems(s, lua_gettop(L), probs, err);
    } else if (rc == 0) {
        int p = lua_gettop(L) - 1;
        out->json = get_str(L, p, "json");
        out->warnings = get_strv(L, p, "warnings", &out->nwarnings);
        lua_getfield(L, p, "tasks");
        if (lua_istable(L, -1)) {
            int ts = lua_gettop(L);
            size_t n = (size_t)luaL_len(L, ts);
            out->tasks = drv_xcalloc(n + 1, sizeof *out->tasks);
            for (size_t i = 0; i < n; i++) {
                lua_rawgeti(L, ts, (lua_Integer)i + 1);
                read_task(L, lua_gettop(L), &out->tasks[out->ntasks++]);
                lua_pop(L, 1);
            }
        }
        lua_getfield(L, p, "port_requests");
        if (lua_istable(L, -1)) {
            int ps = lua_gettop(L);
            size_t n = (size_t)luaL_len(L, ps);
            out->port_requests = drv_xcalloc(n + 1, sizeof *out->port_requests);
            for (size_t i = 0; i < n; i++) {
                lua_rawgeti(L, ps, (lua_Integer)i + 1);
                int e = lua_gettop(L);
                plan_port *pp = &out->port_requests[out->nport_requests++];
                pp->key = get_str(L, e, "key");
                pp->task = get_str(L, e, "task");
                pp->label = get_str(L, e, "label");
                pp->alloc_id = get_str(L, e, "alloc_id");
                pp->static_port = (int)get_int(L, e, "static", 0);
                if (pp->key == NULL) {
                    pp->key = drv_xstrdup("?");
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        if (out->json == NULL) {
            rc = drv_err_set(err, DRV_EINTERNAL, "lua: driver.plan returned no json");
        }
    }
    lua_settop(L, top);
    if (rc < 0 && probs->n == 0) {
        plan_free(out);
    }
    return rc;
}

int script_decode(script *s, const char *op, long status, const char *body,
                  decoded *out, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(out, 0, sizeof *out);
    int rc = push_driver_fn(s, "decode", err);
    if (rc < 0) {
        return rc;
    }
    lua_pushstring(L, op);
    lua_pushinteger(L, status);
    lua_pushstring(L, body ? body : "");
    rc = call(s, 3, 2, err);
    if (rc == 0) {
        if (lua_istable(L, -2)) {
            int t = lua_gettop(L) - 1;
            out->id = get_str(L, t, "id");
            out->message = get_str(L, t, "message");
            out->error = get_str(L, t, "error");
            out->status = get_str(L, t, "status");
            out->stream = get_str(L, t, "stream");
            out->gateway = get_str(L, t, "gateway");
            out->version = get_str(L, t, "version");
            out->exit_code = (long)get_int(L, t, "exit_code", 0);
            out->running = get_bool(L, t, "running");
            out->oom_killed = get_bool(L, t, "oom_killed");
        } else {
            const char *m = lua_tostring(L, -1);
            rc = drv_err_set(err, DRV_EINTERNAL, "docker: cannot decode %s response: %s", op,
                             m ? m : "?");
        }
    }
    lua_settop(L, top);
    return rc;
}

void decoded_free(decoded *d)
{
    free(d->id);
    free(d->message);
    free(d->error);
    free(d->status);
    free(d->stream);
    free(d->gateway);
    free(d->version);
    memset(d, 0, sizeof *d);
}

int script_check_policies(script *s, const script_source *policies, size_t n,
                          const script_source *agent, problem_list *probs, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(probs, 0, sizeof *probs);
    int rc = push_driver_fn(s, "check_policies", err);
    if (rc < 0) {
        return rc;
    }
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, policies[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, policies[i].text, policies[i].len);
        lua_setfield(L, -2, "source");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_source(L, agent);
    rc = call(s, 3, 2, err);
    if (rc == 0 && !(lua_toboolean(L, -2) && lua_isnil(L, -1))) {
        rc = read_problems(s, lua_gettop(L), probs, err);
    }
    lua_settop(L, top);
    return rc;
}

int script_registry_auth(script *s, const char *op, const script_field *fields, size_t n,
                         script_auth *out, drv_err *err)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);

    memset(out, 0, sizeof *out);
    int rc = push_driver_fn(s, "registry_auth", err);
    if (rc < 0) {
        return rc;
    }
    lua_pushstring(L, op);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (fields[i].data != NULL) {
            lua_pushlstring(L, fields[i].data, fields[i].len);
            lua_setfield(L, -2, fields[i].key);
        }
    }
    rc = call(s, 2, 2, err);
    if (rc == 0) {
        if (lua_istable(L, -2)) {
            int t = lua_gettop(L) - 1;
            out->header = get_str(L, t, "header");
            out->helper = get_str(L, t, "helper");
            out->input = get_str(L, t, "input");
            out->source = get_str(L, t, "source");
        } else {
            const char *m = lua_tostring(L, -1);
            rc = drv_err_set(err, DRV_EIMAGE, "%s", m != NULL ? m : "registry auth failed");
        }
    }
    lua_settop(L, top);
    return rc;
}

void script_auth_free(script_auth *a)
{
    if (a->header != NULL) {
        explicit_bzero(a->header, strlen(a->header));
        free(a->header);
    }
    free(a->helper);
    free(a->input);
    free(a->source);
    memset(a, 0, sizeof *a);
}
