/*
 * test_lcore.c: drv.core.pretty (core/lua/lcore.c) writes exactly what the
 * Lua encoder in lua/drv/driver.lua (driver.pretty_lua) writes, for random
 * values with every escape, number kind, key kind and nesting; errors are
 * errors in both, and too deep a value is an error, not a crash.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

#include "lcore.h"
#include "test.h"

static lua_State *new_vm(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_drv_core);
    lua_setfield(L, -2, "drv.core");
    lua_pop(L, 1);
    if (luaL_dostring(L, "package.path = 'lua/?.lua;' .. package.path") != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        exit(2);
    }
    return L;
}

/* Runs `code`; on an error the test fails with Lua's message. */
#define RUN_LUA(L, code)                                                                         \
    do {                                                                                         \
        if (luaL_dostring((L), (code)) != LUA_OK) {                                              \
            TEST_FAIL_("lua: %s", lua_tostring((L), -1));                                        \
        }                                                                                        \
    } while (0)

static const char RANDOM_VALUES[] =
    "local driver = require('drv.driver')\n"
    "local core = require('drv.core')\n"
    "local E = driver.EMPTY_ARRAY\n"
    "math.randomseed(8)\n"
    "local specials = { '/', '\\\\', '\"', '\\n', '\\0', '\\127', '\\128', '\\255', 'a', 'Z', ' ', '{' }\n"
    "local function str()\n"
    "  local t = {}\n"
    "  for i = 1, math.random(0, 10) do\n"
    "    t[i] = math.random() < 0.5 and specials[math.random(#specials)] or string.char(math.random(0, 255))\n"
    "  end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local numbers = { 0, -1, 42, math.maxinteger, math.mininteger, 0.5, -0.0, 1/3, 1e300, 2^53, 1e-7,"
    " 123456789012345.6, 3.0 }\n"
    "local value\n"
    "local function tbl(depth)\n"
    "  local r = math.random(6)\n"
    "  if r == 1 then return E end\n"
    "  if r == 2 then return {} end\n"
    "  local t = {}\n"
    "  if r == 3 then\n"
    "    for i = 1, math.random(1, 4) do t[i] = value(depth + 1) end\n"
    "    if math.random() < 0.3 then t.extra = 1 end\n"
    "    return t\n"
    "  end\n"
    "  for _ = 1, math.random(1, 5) do\n"
    "    local k = math.random(10)\n"
    "    if k == 1 then t[math.random(2, 9)] = value(depth + 1)\n"
    "    elseif k == 2 then t[1.5] = value(depth + 1)\n"
    "    elseif k == 3 then t[true] = value(depth + 1)\n"
    "    else t[str()] = value(depth + 1) end\n"
    "  end\n"
    "  if math.random() < 0.2 then t['5'] = 'x' end\n"
    "  return t\n"
    "end\n"
    "value = function(depth)\n"
    "  local r = math.random(depth > 4 and 4 or 6)\n"
    "  if r == 1 then return str() end\n"
    "  if r == 2 then return numbers[math.random(#numbers)] end\n"
    "  if r == 3 then return math.random() < 0.5 end\n"
    "  if r == 4 then return math.random(-1000, 1000) end\n"
    "  return tbl(depth)\n"
    "end\n"
    "for i = 1, 3000 do\n"
    "  local v = value(0)\n"
    "  local a, b = driver.pretty_lua(v), core.pretty(v, E)\n"
    "  if a ~= b then error(('case %d differs:\\nlua:\\n%s\\nc:\\n%s'):format(i, a, b)) end\n"
    "end\n"
    "local plan = { job = 'j', tasks = { { body = { Image = 'a/b:1', Env = { 'A=1' } }, policies = E } } }\n"
    "assert(driver.pretty_lua(plan) == core.pretty(plan, E))\n";

TEST(c_encoder_matches_the_lua_one)
{
    lua_State *L = new_vm();
    RUN_LUA(L, RANDOM_VALUES);
    lua_close(L);
}

TEST(bad_numbers_and_deep_values_are_errors)
{
    lua_State *L = new_vm();
    RUN_LUA(L,
            "local driver, core = require('drv.driver'), require('drv.core')\n"
            "for _, n in ipairs({ 0/0, 1/0, -1/0 }) do\n"
            "  local ok1 = pcall(driver.pretty_lua, { x = n })\n"
            "  local ok2, e = pcall(core.pretty, { x = n }, driver.EMPTY_ARRAY)\n"
            "  assert(not ok1 and not ok2 and e:find('NaN or Infinity', 1, true), e)\n"
            "end\n"
            "local deep = {}\n"
            "local t = deep\n"
            "for _ = 1, 1000 do t.x = {}; t = t.x end\n"
            "t.y = 1\n"
            "local ok, e = pcall(core.pretty, deep, driver.EMPTY_ARRAY)\n"
            "assert(not ok and e:find('nested deeper than', 1, true), e)\n"
            "local cyc = {}\n"
            "cyc.self = cyc\n"
            "ok, e = pcall(core.pretty, cyc, driver.EMPTY_ARRAY)\n"
            "assert(not ok and e:find('nested deeper than', 1, true), e)\n");
    lua_close(L);
}

int main(void)
{
    RUN(c_encoder_matches_the_lua_one);
    RUN(bad_numbers_and_deep_values_are_errors);
    return test_summary();
}
