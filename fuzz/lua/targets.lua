-- fuzz/lua/targets.lua: the entry points the Lua fuzzer drives, each with
-- its contract. Loaded (dofile) by fuzz/lua/mutate.lua and by
-- spec/unit/fuzz_regressions_spec.lua, with package.path already reaching
-- the repository's lua/.
--
-- TARGETS[name](input) runs one input and returns nil when the entry point
-- kept its contract, or a string saying how it broke it; a Lua error simply
-- propagates. take_outcome() returns (and clears) a short description of the
-- last run's result, which the fuzzer uses as cheap coverage feedback.

local hcl = require("drv.hcl")
local driver = require("drv.driver")
local interp = require("drv.interp")
local constraint = require("drv.constraint")

local SEP = "\31" -- field separator of the constraint/decode inputs

-- targets ----------------------------------------------------------------------

local NODE = { ["kernel.name"] = "linux", ["cpu.arch"] = "amd64", ["unique.hostname"] = "node-a" }
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work",
  alloc_seed = "0123456789abcdef0123456789abcdef", node = NODE }
local ATTRS = { ["kernel.name"] = "linux", ["cpu.arch"] = "amd64", ["cpu.numcores"] = "2",
  ["driver.docker.version"] = "17.05.0-ce", ["os.version"] = "12.4", ["unique.hostname"] = "node-a" }
local META = { rack = "r1", tier = "front" }
local NODEINFO = { ["unique.name"] = "node-a", datacenter = "dc1", class = "" }
local SCOPE = { env = { NOMAD_TASK_NAME = "web", A = "${A}", B = "%{x}", EMPTY = "" },
  meta = META, node = NODEINFO, attr = ATTRS, nomad = { datacenter = "dc1" } }
local DECODE_OP = { error = true, create = true, wait = true, container_inspect = true,
  image_inspect = true, stream_line = true, network = true, version = true }

local function is_string_list(t)
  if type(t) ~= "table" then
    return false
  end
  for _, v in ipairs(t) do
    if type(v) ~= "string" then
      return false
    end
  end
  return true
end

-- Each target: run(input) -> nil (contract kept) or a string (violation).
-- A target may set OUTCOME to a short description of what happened (the
-- first problem's message, digits and quoted values blanked): an input with
-- a new outcome joins the pool, a cheap stand-in for coverage feedback.
local TARGETS = {}
local OUTCOME = nil

local function take_outcome()
  local o = OUTCOME
  OUTCOME = nil
  return o
end

local function outcome_of(msg)
  local words = {}
  for w in tostring(msg):gsub("%b\"\"", " "):gmatch("%S+") do
    if w:match("^%a+:?$") and #words < 6 then
      words[#words + 1] = w
    end
  end
  OUTCOME = table.concat(words, " "):sub(1, 100)
end

TARGETS.hcl = function(src)
  local tree, err = hcl.parse(src, "job.hcl")
  if tree == nil and type(err) ~= "string" then
    return "hcl.parse returned nil without a message"
  end
  outcome_of(err or "ok")
  if tree ~= nil and type(tree) ~= "table" then
    return "hcl.parse returned a " .. type(tree)
  end
end

TARGETS.plan = function(src)
  local path = src:match("^%s*{") and "job.json" or "job.hcl"
  local plan, problems = driver.plan(src, path, nil, nil, HOST)
  if plan then
    if type(plan.json) ~= "string" then
      return "plan without json"
    end
    local cjson = require("cjson.safe")
    if type(cjson.decode(plan.json)) ~= "table" then
      return "plan json does not decode"
    end
    for _, entry in ipairs(plan.tasks) do
      if type(entry.body) ~= "string" or type(cjson.decode(entry.body)) ~= "table" then
        return "a task's create body is not a JSON object"
      end
    end
    outcome_of("plan " .. #plan.tasks .. " " .. (plan.warnings[1] or ""))
    return nil
  end
  if type(problems) ~= "table" or #problems == 0 then
    return "plan returned nil without problems (exit 70)"
  end
  outcome_of(type(problems[1]) == "table" and problems[1].message)
  for _, p in ipairs(problems) do
    if type(p) ~= "table" or type(p.message) ~= "string" or type(p.kind) ~= "string" then
      return "malformed problem"
    end
    if p.kind == "internal" then
      return "problem of kind internal (exit 70): " .. p.message
    end
  end
end

TARGETS.interp = function(s)
  local out, unknown = interp.expand(s, SCOPE)
  if type(out) ~= "string" or not is_string_list(unknown) then
    return "interp.expand broke its contract"
  end
  outcome_of(string.rep("unknown ", math.min(#unknown, 3)) .. (out == s and "same" or "changed"))
  local list = interp.expand_list({ s, s }, SCOPE)
  local map = interp.expand_map({ k = s }, SCOPE)
  if list[1] ~= out or map.k ~= out then
    return "expand_list/expand_map disagree with expand"
  end
end

local function split_fields(s, n)
  local out, pos = {}, 1
  for i = 1, n - 1 do
    local j = s:find(SEP, pos, true)
    if not j then
      out[i] = s:sub(pos)
      pos = #s + 1
    else
      out[i] = s:sub(pos, j - 1)
      pos = j + 1
    end
  end
  out[n] = s:sub(pos)
  for i = 1, n do
    if out[i] == "" then
      out[i] = nil
    end
  end
  return out
end

TARGETS.constraint = function(s)
  local f = split_fields(s, 4)
  local c = { attribute = f[1], operator = f[2], value = f[3] }
  local attrs = setmetatable({ fuzz = f[4] }, { __index = ATTRS })
  local ok, msg = constraint.check(c, attrs, META, NODEINFO)
  local op = constraint.OPERATORS[c.operator or "="] and c.operator or "bad"
  outcome_of(tostring(op) .. " " .. tostring(ok) .. " " .. tostring(msg))
  if ok == true then
    return nil
  end
  if (ok == false or ok == nil) and type(msg) == "string" then
    return nil
  end
  return "constraint.check returned " .. tostring(ok) .. ", " .. tostring(msg)
end

TARGETS.decode = function(s)
  local f = split_fields(s, 2)
  local res, msg = driver.decode(f[1] or "stream_line", 200, f[2])
  local op = f[1] == nil and "default" or (DECODE_OP[f[1]] and f[1]) or "bad"
  local fields = {}
  for k in pairs(type(res) == "table" and res or {}) do
    fields[#fields + 1] = k
  end
  table.sort(fields)
  outcome_of(op .. " " .. tostring(msg) .. " " .. table.concat(fields, " "))
  if type(res) == "table" or type(msg) == "string" then
    return nil
  end
  return "decode returned " .. tostring(res) .. ", " .. tostring(msg)
end

local GROUPS = { hcl = { "hcl", "plan" }, expr = { "interp", "constraint", "decode" } }


return { TARGETS = TARGETS, GROUPS = GROUPS, SEP = SEP, HOST = HOST, take_outcome = take_outcome }
