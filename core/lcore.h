/*
 * lcore.h: the `drv.core` Lua module and the VM's counting allocator.
 * Lua sees: core.version, core.api_min, core.api_max, core.log(level, msg),
 * core.sandbox_call(fn, max_instructions, max_bytes, ...) -> true, ... | false, msg
 */
#ifndef DRV_LCORE_H
#define DRV_LCORE_H

#include <stddef.h>

typedef struct lua_State lua_State;

typedef struct lcore_alloc {
    size_t used;     /* bytes currently allocated by the VM */
    size_t limit;    /* 0: unlimited; else allocations beyond it fail */
} lcore_alloc;

void *lcore_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);
int luaopen_drv_core(lua_State *L);

#endif
