/*
 * lcore.h: the `drv.core` Lua module and the VM's counting allocator.
 * Lua sees: core.version, core.api_min, core.api_max, core.log(level, msg),
 * core.sandbox_call(fn, max_instructions, max_bytes, ...) -> true, ... | false, msg
 */
#ifndef DRV_LCORE_H
#define DRV_LCORE_H

#include <stddef.h>

typedef struct lua_State lua_State;

/* An instruction budget with a wall-clock deadline (0: none). */
typedef struct lcore_budget {
    long long left;
    long long deadline_ms;   /* CLOCK_MONOTONIC, milliseconds */
    int active;
    int hooked;              /* entry: a count hook outside policy calls too */
} lcore_budget;

/* Per-VM state, the allocator's userdata: every VM (the main one and each
 * planning worker's) has its own, so budgets never cross threads. */
typedef struct lcore_alloc {
    size_t used;     /* bytes currently allocated by the VM */
    size_t limit;    /* 0: unlimited; else allocations beyond it fail */
    lcore_budget call;   /* the running core.sandbox_call (a policy) */
    lcore_budget entry;  /* the running driver entry point (lcore_entry_begin) */
} lcore_alloc;

/* The message prefix of an entry point stopped by its budget. */
#define LCORE_ENTRY_BUDGET "entry budget exceeded"

void *lcore_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);
int luaopen_drv_core(lua_State *L);

/* Bounds the next driver entry call on L: `max_instr` Lua instructions
 * (policies' own included) and `max_ms` of wall time (0: none). Over either,
 * the call raises an error starting with LCORE_ENTRY_BUDGET. */
void lcore_entry_begin(lua_State *L, long long max_instr, long long max_ms);
void lcore_entry_end(lua_State *L);

/* Like lcore_entry_begin, but only the policies' instructions are counted
 * (core.sandbox_call charges them) and no hook runs outside policy calls:
 * a count hook makes Lua stop at every instruction (about a fifth of a
 * plan's time). For a call whose own code is bounded otherwise: plan pass 2,
 * which repeats the budgeted pass 1 on the same parsed job. */
void lcore_entry_begin_policies(lua_State *L, long long max_instr, long long max_ms);

#endif
