/* lcore.c: the drv.core module exposed to Lua, and the counting allocator. */
#include "lcore.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

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

/* --- core.pretty ------------------------------------------------------------ */

/* core.pretty(v, empty_array) -> v as indented JSON with sorted keys and a
 * final newline: exactly what lua/drv/driver.lua's Lua encoder writes (its
 * fallback and reference; core/tests/test_lcore.c compares the two), in C
 * because `drvctl plan` prints about 9 KB of it per task. Strings are
 * escaped as lua-cjson escapes them, except "/"; integers print as %d,
 * other numbers as cjson's %.14g (NaN and infinities are errors); a table
 * whose [1] is not nil is an array of its # elements, `empty_array` is [],
 * any other empty table {}; object keys are sorted by their tostring form
 * (byte order, as Lua compares strings in the C locale) and each value is
 * v[that string]; anything else is null. */

#define PRETTY_MAX_DEPTH 200

static void pretty_pad(buf *b, int indent)
{
    static const char spaces[] = "                                                                ";
    size_t n = (size_t)indent * 2;
    while (n > 0) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        buf_append(b, spaces, k);
        n -= k;
    }
}

static void pretty_string(buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\b': esc = "\\b"; break;
            case '\t': esc = "\\t"; break;
            case '\n': esc = "\\n"; break;
            case '\f': esc = "\\f"; break;
            case '\r': esc = "\\r"; break;
            default:
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = '\0';
                esc = u;
                break;
            }
        }
        if (esc != NULL) {
            buf_append(b, s + i - run, run);
            run = 0;
            buf_append(b, esc, strlen(esc));
        } else {
            run++;
        }
    }
    buf_append(b, s + len - run, run);
    buf_append(b, "\"", 1);
}

typedef struct pretty_key {
    const char *s;
    size_t len;
} pretty_key;

static int cmp_key(const void *x, const void *y)
{
    const pretty_key *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c != 0) {
        return c;
    }
    return (a->len > b->len) - (a->len < b->len);
}

static void pretty_value(lua_State *L, buf *b, int idx, int indent, int empty);

/* The value on top of the stack (popped). */
static void pretty_top(lua_State *L, buf *b, int indent, int empty)
{
    pretty_value(L, b, lua_gettop(L), indent, empty);
    lua_pop(L, 1);
}

static void pretty_value(lua_State *L, buf *b, int idx, int indent, int empty)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        pretty_string(b, s, len);
        return;
    }
    case LUA_TNUMBER: {
        char num[64];
        if (lua_isinteger(L, idx)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double d = (double)lua_tonumber(L, idx);
            if (isnan(d) || isinf(d)) {
                luaL_error(L, "Cannot serialise number: must not be NaN or Infinity");
            }
            snprintf(num, sizeof num, "%.14g", d);
        }
        buf_append(b, num, strlen(num));
        return;
    }
    case LUA_TBOOLEAN:
        buf_puts(b, lua_toboolean(L, idx) ? "true" : "false");
        return;
    case LUA_TTABLE:
        break;
    default:
        buf_puts(b, "null");
        return;
    }
    if (lua_rawequal(L, idx, empty)) {
        buf_puts(b, "[]");
        return;
    }
    lua_pushnil(L);
    if (lua_next(L, idx) == 0) {
        buf_puts(b, "{}");
        return;
    }
    lua_pop(L, 2);
    if (indent >= PRETTY_MAX_DEPTH) {
        luaL_error(L, "plan output nested deeper than %d levels", PRETTY_MAX_DEPTH);
    }
    luaL_checkstack(L, 8, "plan output");
    int first_nil = lua_geti(L, idx, 1) == LUA_TNIL;
    lua_pop(L, 1);
    if (!first_nil) {
        lua_Integer len = luaL_len(L, idx);
        buf_puts(b, "[\n");
        for (lua_Integer i = 1; i <= len; i++) {
            pretty_pad(b, indent + 1);
            lua_geti(L, idx, i);
            pretty_top(L, b, indent + 1, empty);
            buf_puts(b, i < len ? ",\n" : "\n");
        }
        pretty_pad(b, indent);
        buf_puts(b, "]");
        return;
    }
    /* the keys' tostring forms, anchored in a table while in use */
    lua_newtable(L);
    int names = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
        } else {
            luaL_tolstring(L, -1, NULL);
        }
        lua_rawseti(L, names, (lua_Integer)++n);
    }
    /* Lua memory, so that an error below (a NaN) leaks nothing */
    pretty_key *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, names, (lua_Integer)i + 1);
        keys[i].s = lua_tolstring(L, -1, &keys[i].len);   /* anchored in `names` */
        lua_pop(L, 1);
    }
    qsort(keys, n, sizeof *keys, cmp_key);
    buf_puts(b, "{\n");
    for (size_t i = 0; i < n; i++) {
        pretty_pad(b, indent + 1);
        pretty_string(b, keys[i].s, keys[i].len);
        buf_puts(b, ": ");
        lua_pushlstring(L, keys[i].s, keys[i].len);
        lua_gettable(L, idx);
        pretty_top(L, b, indent + 1, empty);
        buf_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    lua_pop(L, 2);   /* keys, names */
    pretty_pad(b, indent);
    buf_puts(b, "}");
}

/* The buffer is C memory: freed on an error too (a to-be-closed value). */
static int pretty_close(lua_State *L)
{
    buf *b = lua_touserdata(L, 1);
    buf_free(b);
    return 0;
}

static int core_pretty(lua_State *L)
{
    lua_settop(L, 2);
    buf *b = lua_newuserdatauv(L, sizeof *b, 0);    /* 3 */
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, "drv.core.pretty")) {
        lua_pushcfunction(L, pretty_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, 3);
    lua_toclose(L, 3);
    pretty_value(L, b, 1, 0, 2);
    buf_puts(b, "\n");
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

static const luaL_Reg core_funcs[] = {
    { "pretty", core_pretty },
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
