-- The environment policy code runs in, and the only way policy code is called.
--
-- Each policy file gets a fresh environment holding only safe names:
--   pairs ipairs next type tostring tonumber select error assert rawequal
--   rawlen, and fresh copies of string (no dump), table, math (no random,
--   no randomseed: policies are deterministic), utf8, plus `drv`, the helper
--   library (drv.caps, drv.path, drv.bind, drv.image).
-- Absent on purpose: io, os, require, load, loadstring, dofile, debug,
-- package, collectgarbage, rawget, rawset, setmetatable, getmetatable,
-- coroutine, print, _G, and pcall/xpcall: a protected call inside a policy
-- could catch the budget error and keep looping, so policies report
-- problems by returning `nil, message` and any error denies.
--
-- Method calls on strings ("x"):upper() go through the string metatable,
-- which is shared by the whole VM; sandbox.call points its __index at the
-- calling policy's own string copy while that policy runs and restores it
-- afterwards, so string.dump is unreachable and a policy that edits its
-- `string` table affects nobody else.
--
-- Functions that build one large string in a single C call (string.rep,
-- string.gsub, table.concat) are capped at MAX_STRING bytes, because an
-- instruction-count hook cannot interrupt a C function; for the same reason
-- string.find/match/gmatch/gsub refuse patterns whose backtracking cost on
-- the given subject could exceed MAX_PATTERN_COST. The host's allocator
-- limit remains the real memory budget.

local caps = require("drv.caps")

local M = {}

M.MAX_STRING = 1024 * 1024

local s_rep, s_gsub, s_find, s_sub, s_lower, s_gmatch, s_match =
  string.rep, string.gsub, string.find, string.sub, string.lower, string.gmatch,
  string.match
local t_concat = table.concat

local function too_large(what)
  error("budget exceeded: " .. what .. " result larger than "
    .. M.MAX_STRING .. " bytes", 3)
end

local function safe_rep(s, n, sep)
  if (type(s) == "string" or type(s) == "number")
    and type(n) == "number" and n > 0 then
    local size = #tostring(s) * n
    if sep ~= nil and (type(sep) == "string" or type(sep) == "number") then
      size = size + #tostring(sep) * (n - 1)
    end
    if size > M.MAX_STRING then
      too_large("string.rep")
    end
  end
  return s_rep(s, n, sep)
end

-- Lua pattern matching runs inside one C call, out of the hook's reach, and
-- backtracks: a pattern with k repetitions (* + -) can cost about n^(k+1)
-- steps on an n-byte subject (n^k when anchored with ^). Subjects often come
-- from the job, so refuse estimates above MAX_PATTERN_COST.
M.MAX_PATTERN_COST = 1e8

local function repetitions(p)
  local k, i, n = 0, 1, #p
  while i <= n do
    local c = s_sub(p, i, i)
    if c == "%" then
      i = i + 2
    elseif c == "[" then
      i = i + 1
      if s_sub(p, i, i) == "^" then i = i + 1 end
      repeat -- the first character of a set may be ]
        if s_sub(p, i, i) == "%" then i = i + 1 end
        i = i + 1
      until i > n or s_sub(p, i, i) == "]"
      i = i + 1
    else
      if (c == "*" or c == "+" or c == "-") and i > 1 then
        k = k + 1
      end
      i = i + 1
    end
  end
  return k
end

local function check_pattern(s, p)
  if type(p) ~= "string" or (type(s) ~= "string" and type(s) ~= "number") then
    return -- the library raises the proper error
  end
  local n = #tostring(s)
  if n <= 64 then
    return
  end
  local k = repetitions(p)
  if k == 0 then
    return
  end
  local exp = s_sub(p, 1, 1) == "^" and k or k + 1
  if n ^ exp > M.MAX_PATTERN_COST then
    error("budget exceeded: pattern with " .. k .. " repetitions on a "
      .. n .. "-byte string", 3)
  end
end

local function safe_find(s, p, init, plain)
  if not plain then check_pattern(s, p) end
  return s_find(s, p, init, plain)
end

local function safe_match(s, p, init)
  check_pattern(s, p)
  return s_match(s, p, init)
end

local function safe_gmatch(s, p, init)
  check_pattern(s, p)
  return s_gmatch(s, p, init)
end

local function safe_gsub(s, pattern, repl, n)
  check_pattern(s, pattern)
  if type(s) == "string" or type(s) == "number" then
    local len = #tostring(s)
    local per = 0
    if type(repl) == "string" or type(repl) == "number" then
      local r = tostring(repl)
      local _, refs = s_gsub(r, "%%", "")
      per = #r + refs * len
    elseif type(repl) == "table" then
      for _, v in pairs(repl) do
        if (type(v) == "string" or type(v) == "number") and #tostring(v) > per then
          per = #tostring(v)
        end
      end
    end
    if len + (len + 1) * per > M.MAX_STRING then
      too_large("string.gsub")
    end
  end
  return s_gsub(s, pattern, repl, n)
end

local function safe_concat(t, sep, i, j)
  if type(t) == "table" then
    i = i or 1
    j = j or #t
    local size = 0
    local seplen = (type(sep) == "string" or type(sep) == "number")
      and #tostring(sep) or 0
    for k = i, j do
      local v = t[k]
      if type(v) ~= "string" and type(v) ~= "number" then
        break -- table.concat raises the proper error
      end
      size = size + #tostring(v) + seplen
      if size > M.MAX_STRING then
        too_large("table.concat")
      end
    end
  end
  return t_concat(t, sep, i, j)
end

local function copy_lib(lib, skip)
  local c = {}
  for k, v in pairs(lib) do
    if not (skip and skip[k]) then
      c[k] = v
    end
  end
  return c
end

-- Lazy deep copies: view(src) returns a table that behaves as a deep copy
-- of `src` but copies each field only when it is first read (a table field
-- becomes another view), so a policy pays only for the context it looks at
-- instead of a full copy of the spec per policy call. Iterating a view
-- (pairs, `#`, the sandbox's next and rawlen) copies that level's remaining
-- fields first. A policy never sees or changes `src` itself: what it writes
-- stays in its view. `src` must not change while a view of it is in use
-- (policy.evaluate views data that only changes between policy calls).
local lazy_base = setmetatable({}, { __mode = "k" })
local lazy_mt

local function view(src)
  local t = {}
  lazy_base[t] = src
  return setmetatable(t, lazy_mt)
end

-- A view hands out plain data only: a table becomes another view; a
-- function, userdata or thread (never in a context drvctl builds) raises,
-- so such a value cannot reach policy code even through a view of data
-- that was not copied.
local function not_plain(tx)
  error("not plain data: a " .. tx .. " value", 0)
end

local function materialize(t)
  local base = lazy_base[t]
  if base == nil then
    return
  end
  lazy_base[t] = nil
  setmetatable(t, nil)
  for k, x in next, base do
    if rawget(t, k) == nil then
      local tx = type(x)
      if tx == "table" then
        x = view(x)
      elseif tx == "function" or tx == "userdata" or tx == "thread" then
        not_plain(tx)
      end
      rawset(t, k, x)
    end
  end
end

lazy_mt = {
  __index = function(t, k)
    local base = lazy_base[t]
    local x = base and base[k]
    local tx = type(x)
    if tx == "table" then
      x = view(x)
      rawset(t, k, x)
    elseif tx == "function" or tx == "userdata" or tx == "thread" then
      not_plain(tx)
    end
    return x
  end,
  __pairs = function(t)
    materialize(t)
    return next, t, nil
  end,
  __len = function(t)
    materialize(t)
    return rawlen(t)
  end,
}

M.view = view
M.materialize = materialize

-- Deep copy of plain data. Tables are copied (cycles preserved); with `plain`
-- set, functions, userdata and threads raise an error. Depth is limited so a
-- hostile structure cannot exhaust the C stack.
local function deepcopy(v, plain, seen, depth)
  local tv = type(v)
  if tv ~= "table" then
    if plain and (tv == "function" or tv == "userdata" or tv == "thread") then
      error("not plain data: a " .. tv .. " value", 0)
    end
    return v
  end
  seen = seen or {}
  if seen[v] then
    return seen[v]
  end
  if lazy_base[v] ~= nil then
    materialize(v)
  end
  depth = (depth or 0) + 1
  if depth > 64 then
    error("data nested deeper than 64 levels", 0)
  end
  local c = {}
  seen[v] = c
  for k, x in next, v do
    c[deepcopy(k, plain, seen, depth)] = deepcopy(x, plain, seen, depth)
  end
  return c
end

M.deepcopy = deepcopy

-- Copy of data drvctl built itself (acyclic by construction): no cycle
-- table, so about twice as fast as deepcopy; depth is limited all the same.
local function copy_tree(v, depth)
  if type(v) ~= "table" then
    return v
  end
  depth = (depth or 0) + 1
  if depth > 64 then
    error("data nested deeper than 64 levels", 0)
  end
  local c = {}
  for k, x in next, v do
    c[k] = copy_tree(x, depth)
  end
  return c
end

M.copy_tree = copy_tree

-- lazy_copy(base, own): a view of `base` whose fields from `own` are set
-- already (they hide base's fields of the same name).
function M.lazy_copy(base, own)
  local t = view(base)
  for k, x in next, own do
    rawset(t, k, x)
  end
  return t
end

local function sandbox_next(t, k)
  materialize(t)
  return next(t, k)
end

local function sandbox_rawlen(t)
  if type(t) == "table" then
    materialize(t)
  end
  return rawlen(t)
end

-- drv.path: lua/drv/path.lua

local path = require("drv.path")

-- drv.bind -----------------------------------------------------------------

local bind = {}

-- parse("src:dst:ro") -> { source = "src", target = "dst", mode = "ro" };
-- nil, err for fewer than two parts.
function bind.parse(s)
  if type(s) ~= "string" then
    return nil, "volume must be a string"
  end
  local parts = {}
  for part in s_gmatch(s, "[^:]+") do
    parts[#parts + 1] = part
  end
  if #parts < 2 or #parts > 3 then
    return nil, "invalid docker volume: \"" .. s .. "\""
  end
  return { source = parts[1], target = parts[2], mode = parts[3] }
end

function bind.format(b)
  local s = b.source .. ":" .. b.target
  if b.mode and b.mode ~= "" then
    s = s .. ":" .. b.mode
  end
  return s
end

-- drv.image ----------------------------------------------------------------

local image = {}

-- registry("quay.io/a/b:1") -> "quay.io"; "busybox" -> "docker.io".
-- The first component is a host when Docker takes it for one (drv.imageref):
-- "localhost", or holding ".", ":" or an uppercase letter ("Internal/x").
function image.registry(ref)
  if type(ref) ~= "string" then
    return nil
  end
  ref = s_gsub(ref, "^%a+://", "")
  local first, slash = s_gsub(ref, "/.*$", "")
  if slash == 0 then
    return "docker.io"
  end
  if not (s_find(first, "[.:A-Z]") or first == "localhost") then
    return "docker.io"
  end
  first = s_lower(first)
  if first == "index.docker.io" or first == "registry-1.docker.io" then
    return "docker.io"
  end
  return first
end

-- environment ----------------------------------------------------------------

local function helper_lib()
  local c = copy_lib(caps)
  -- lazy copies: most policies never read these lists
  c.DOCKER_DEFAULTS = view(caps.DOCKER_DEFAULTS)
  c.DEFAULT_WHITELIST = view(caps.DEFAULT_WHITELIST)
  c.KNOWN = view(caps.KNOWN)
  return {
    caps = c,
    path = copy_lib(path),
    bind = copy_lib(bind),
    image = copy_lib(image),
  }
end

-- env() -> a fresh environment table for one policy file.
function M.env()
  local str = copy_lib(string, { dump = true })
  str.rep = safe_rep
  str.gsub = safe_gsub
  str.find = safe_find
  str.match = safe_match
  str.gmatch = safe_gmatch
  local tbl = copy_lib(table)
  tbl.concat = safe_concat
  return {
    pairs = pairs, ipairs = ipairs, next = sandbox_next, type = type,
    tostring = tostring, tonumber = tonumber, select = select,
    error = error, assert = assert, rawequal = rawequal, rawlen = sandbox_rawlen,
    string = str,
    table = tbl,
    math = copy_lib(math, { random = true, randomseed = true }),
    utf8 = utf8 and copy_lib(utf8) or nil,
    drv = helper_lib(),
  }
end

M.path, M.bind, M.image = path, bind, image

local string_mt = getmetatable("")

local function errmsg(e)
  if type(e) == "string" then
    return e
  end
  return "error object is a " .. type(e) .. " value"
end

-- Restores the string methods, then turns pcall(guard, fn, ...)'s results
-- into call's: true, results... | false, message.
local function finish(saved, ok, first, ...)
  if string_mt then
    string_mt.__index = saved
  end
  if not ok then
    return false, errmsg(first)
  end
  if first ~= true then
    return false, errmsg((...))
  end
  return true, ...
end

-- call(env, guard, fn, ...) -> true, results... | false, message.
-- Runs fn under the guard with string methods pointing at env.string.
-- Refuses to run anything without a guard (fail closed).
function M.call(env, guard, fn, ...)
  if type(guard) ~= "function" then
    return false, "no budget guard; refusing to run policy code"
  end
  local saved = string_mt and string_mt.__index
  if string_mt then
    string_mt.__index = env.string
  end
  return finish(saved, pcall(guard, fn, ...))
end

return M
