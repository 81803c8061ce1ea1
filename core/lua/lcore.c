/* lcore.c: the drv.core module exposed to Lua, and the counting allocator. */
#include "lcore.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <time.h>

#include "docker.h"
#include "log.h"
#include "version.h"

void *lcore_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lcore_alloc *a = ud;
    size_t old = ptr ? osize : 0;

    if (nsize == 0) {
        free(ptr);
        a->used -= old;
        return NULL;
    }
    if (a->limit != 0 && nsize > old && a->used + (nsize - old) > a->limit) {
        return NULL;   /* Lua raises "not enough memory" */
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL) {
        a->used = a->used - old + nsize;
    }
    return p;
}

/* core.log(level, message): level is "debug", "info", "warn" or "error". */
static int core_log(lua_State *L)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    int level = luaL_checkoption(L, 1, "info", levels);
    const char *msg = luaL_checkstring(L, 2);
    log_msg(level, "%s", msg);
    return 0;
}

#define HOOK_STEP 1000

static lcore_alloc *state_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

static long long now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void budget_start(lcore_budget *b, long long max_instr, long long max_ms)
{
    b->left = max_instr > 0 ? max_instr : 1;
    b->deadline_ms = max_ms > 0 ? now_ms() + max_ms : 0;
    b->active = 1;
}

/* 1 when the budget is spent; `what` says which part. */
static int budget_spent(const lcore_budget *b, const char **what)
{
    if (b->left <= 0) {
        *what = "too many instructions";
        return 1;
    }
    if (b->deadline_ms != 0 && now_ms() >= b->deadline_ms) {
        *what = "ran too long";
        return 1;
    }
    return 0;
}

static void on_entry_count(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lcore_alloc *a = state_of(L);
    const char *what;
    a->entry.left -= HOOK_STEP;
    if (budget_spent(&a->entry, &what)) {
        luaL_error(L, LCORE_ENTRY_BUDGET ": %s", what);
    }
}

static void on_call_count(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lcore_alloc *a = state_of(L);
    a->call.left -= HOOK_STEP;
    if (a->call.left <= 0) {
        luaL_error(L, "budget exceeded: too many instructions");
    }
    if (a->call.deadline_ms != 0 && now_ms() >= a->call.deadline_ms) {
        luaL_error(L, "budget exceeded: ran longer than 1 second");
    }
}

void lcore_entry_begin(lua_State *L, long long max_instr, long long max_ms)
{
    lcore_alloc *a = state_of(L);
    budget_start(&a->entry, max_instr, max_ms);
    a->entry.hooked = 1;
    lua_sethook(L, on_entry_count, LUA_MASKCOUNT, HOOK_STEP);
}

void lcore_entry_begin_policies(lua_State *L, long long max_instr, long long max_ms)
{
    lcore_alloc *a = state_of(L);
    budget_start(&a->entry, max_instr, max_ms);
    a->entry.hooked = 0;
    lua_sethook(L, NULL, 0, 0);
}

void lcore_entry_end(lua_State *L)
{
    lcore_alloc *a = state_of(L);
    a->entry.active = 0;
    lua_sethook(L, NULL, 0, 0);
}

/* core.sandbox_call(fn, max_instructions, max_bytes, ...):
 * runs fn(...) with an instruction budget, a one-second wall-clock limit
 * and a memory budget; returns true, results... or false, message. What
 * the call used counts toward the entry budget of the driver call around
 * it, if any. */
static int core_sandbox_call(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Integer max_instr = luaL_checkinteger(L, 2);
    lua_Integer max_bytes = luaL_checkinteger(L, 3);
    lcore_alloc *a = state_of(L);

    if (a->call.active) {
        return luaL_error(L, "sandbox_call cannot nest");
    }
    int nargs = lua_gettop(L) - 3;
    lua_pushvalue(L, 1);
    lua_rotate(L, 4, 1);     /* [fn, max_i, max_b, fn, args...] */
    /* the budget is relative to what is allocated now; no collection first
     * (a full GC per policy call costs more than the policies themselves) */
    size_t saved_limit = a->limit;
    a->limit = a->used + (size_t)(max_bytes > 0 ? max_bytes : 1);
    budget_start(&a->call, max_instr, 1000);
    long long start_left = a->call.left;
    lua_sethook(L, on_call_count, LUA_MASKCOUNT, HOOK_STEP);
    int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
    a->call.active = 0;
    a->limit = saved_limit;
    if (a->entry.active) {
        const char *what;
        a->entry.left -= start_left - a->call.left;
        if (budget_spent(&a->entry, &what)) {
            /* raised here, this error may be caught (sandbox.call's pcall);
             * the hook on every instruction raises it again until it has
             * left every protected call, as in the hooked entry */
            lua_sethook(L, on_entry_count, LUA_MASKCOUNT, a->entry.hooked ? HOOK_STEP : 1);
            return luaL_error(L, LCORE_ENTRY_BUDGET ": %s", what);
        }
        if (a->entry.hooked) {
            lua_sethook(L, on_entry_count, LUA_MASKCOUNT, HOOK_STEP);
        } else {
            lua_sethook(L, NULL, 0, 0);
        }
    } else {
        lua_sethook(L, NULL, 0, 0);
    }
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (st == LUA_ERRMEM) {
            m = "budget exceeded: memory";
        }
        lua_pushboolean(L, 0);
        lua_pushstring(L, m ? m : "error object is not a string");
        return 2;
    }
    int nres = lua_gettop(L) - 3;
    lua_pushboolean(L, 1);
    lua_rotate(L, 4, 1);
    return nres + 1;
}

static const luaL_Reg core_funcs[] = {
    { "log", core_log },
    { "sandbox_call", core_sandbox_call },
    { NULL, NULL },
};

int luaopen_drv_core(lua_State *L)
{
    luaL_newlib(L, core_funcs);
    lua_pushstring(L, DRV_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, DOCKER_API_MIN);
    lua_setfield(L, -2, "api_min");
    lua_pushstring(L, DOCKER_API_MAX);
    lua_setfield(L, -2, "api_max");
    return 1;
}
