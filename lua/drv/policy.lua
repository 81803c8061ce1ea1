-- Operator policies: load, validate and evaluate policies/*.lua.
--
--   local set, problems = policy.load(sources, guard)
--   local result = policy.evaluate(set, ctx, guard)
--   local report = policy.check(sources, guard)
--
-- A policy file returns a table (policy_format = 1):
--   name        string, unique across files ([%w_.-]+)
--   description string (optional)
--   enabled     boolean (optional, default true; agent policy_options[name]
--               .enabled overrides it)
--   settings    plain data the policy reads as ctx.settings; agent
--               policy_options[name].<key> overrides a declared key
--   rules       declarative checks: { field = "HostConfig.Memory", max = n,
--               min = n, equals = v, one_of = {..}, none_of = {..},
--               required = bool, message = "..." }
--   mutate      function(ctx) -> nil | list of { op = "set"|"append"|"remove",
--               path = "HostConfig.CapDrop", value = v }
--   check       function(ctx) -> true | nil, "message" | nil, { "m1", "m2" }
-- Unknown keys are errors. Every policy runs in its own sandbox (drv.sandbox)
-- under the caller's guard; every call gets a deep copy of the context.
--
-- Evaluation: all mutate functions run first, in path order, each seeing the
-- spec as changed by the ones before; then rules and check functions of all
-- enabled policies judge the final spec. Policies are conjunctive. Every
-- violation is reported, prefixed with the policy's path. Any load problem,
-- runtime error, budget overrun or malformed return is a denial.

local sandbox = require("drv.sandbox")
local util = require("drv.util")

local M = {}

M.FORMAT = 1

local deepcopy = sandbox.deepcopy
local copy_tree = sandbox.copy_tree
local sort, concat = table.sort, table.concat
local sub, find, format, gmatch = string.sub, string.find, string.format,
  string.gmatch

local POLICY_KEYS = {
  "check", "description", "enabled", "mutate", "name", "policy_format",
  "rules", "settings",
}
local RULE_KEYS = {
  "equals", "field", "max", "message", "min", "none_of", "one_of", "required",
}
local RULE_OPS = { "equals", "max", "min", "none_of", "one_of", "required" }
local MUTATION_KEYS = { "op", "path", "value" }

local set_of = util.set_of

local POLICY_KEY_SET = set_of(POLICY_KEYS)
local RULE_KEY_SET = set_of(RULE_KEYS)
local MUTATION_KEY_SET = set_of(MUTATION_KEYS)

local function quote(v)
  return '"' .. tostring(v) .. '"'
end

-- unknown("key", "chek", {...}) -> 'unknown key "chek", did you mean "check"?'
local function unknown(what, key, known, where)
  local msg = "unknown " .. what .. " " .. quote(key) .. (where or "")
  if type(key) == "string" then
    local best, bestd
    local limit = math.max(2, #key // 3 + 1)
    for _, k in ipairs(known) do
      local d = util.levenshtein(key, k, limit)
      if d <= limit and (not bestd or d < bestd) then
        best, bestd = k, d
      end
    end
    if not best and #key >= 3 then
      -- "max_memory" -> "max_memory_mb": a known name that starts with it
      for _, k in ipairs(known) do
        if type(k) == "string" and sub(k, 1, #key) == key then
          best = k
          break
        end
      end
    end
    if best then
      msg = msg .. ", did you mean " .. quote(best) .. "?"
    end
  end
  return msg
end

-- at("policies/x.lua", msg) prefixes the policy path unless msg already
-- starts with it (errors raised by policy code carry "path:line:").
local function at(path, msg)
  msg = tostring(msg)
  if sub(msg, 1, #path + 1) == path .. ":" then
    return msg
  end
  return path .. ": " .. msg
end

local function problem(msg)
  return { kind = "denied", message = msg }
end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in next, t do n = n + 1 end
  return n == #t
end

local function split_path(p)
  if type(p) ~= "string" or not find(p, "^[%w_.]+$") or find(p, "%.%.")
    or sub(p, 1, 1) == "." or sub(p, -1) == "." then
    return nil
  end
  local parts = {}
  for seg in gmatch(p, "[^.]+") do
    parts[#parts + 1] = math.tointeger(tonumber(seg)) or seg
  end
  return parts
end

local function get_field(t, p)
  local parts = split_path(p)
  for _, k in ipairs(parts or {}) do
    if type(t) ~= "table" then return nil end
    t = t[k]
  end
  return t
end

-- shape validation -----------------------------------------------------------

local function validate_rule(i, r, errs)
  if type(r) ~= "table" then
    errs[#errs + 1] = format("rule %d must be a table, got %s", i, type(r))
    return
  end
  local ops = 0
  for k in next, r do
    if not RULE_KEY_SET[k] then
      errs[#errs + 1] = format("rule %d: %s", i, unknown("key", k, RULE_KEYS))
    end
  end
  for _, op in ipairs(RULE_OPS) do
    if r[op] ~= nil then ops = ops + 1 end
  end
  if not split_path(r.field) then
    errs[#errs + 1] = format("rule %d: field must be a dotted spec path, got %s",
      i, quote(r.field))
  end
  if ops == 0 then
    errs[#errs + 1] = format("rule %d: no condition (one of %s)", i,
      concat(RULE_OPS, ", "))
  end
  for _, k in ipairs({ "max", "min" }) do
    if r[k] ~= nil and type(r[k]) ~= "number" then
      errs[#errs + 1] = format("rule %d: %s must be a number, got %s", i, k,
        type(r[k]))
    end
  end
  for _, k in ipairs({ "one_of", "none_of" }) do
    if r[k] ~= nil and not is_list(r[k]) then
      errs[#errs + 1] = format("rule %d: %s must be a list", i, k)
    end
  end
  if r.required ~= nil and type(r.required) ~= "boolean" then
    errs[#errs + 1] = format("rule %d: required must be a boolean", i)
  end
  if r.message ~= nil and type(r.message) ~= "string" then
    errs[#errs + 1] = format("rule %d: message must be a string", i)
  end
end

-- validate(t) -> record | nil, list of messages
local function validate(t)
  if type(t) ~= "table" then
    return nil, { "policy must return a table, got " .. type(t) }
  end
  local errs = {}
  for k in next, t do
    if not POLICY_KEY_SET[k] then
      errs[#errs + 1] = unknown("key", k, POLICY_KEYS, " in policy")
    end
  end
  if t.policy_format == nil then
    errs[#errs + 1] = "missing policy_format (set policy_format = 1)"
  elseif t.policy_format ~= M.FORMAT then
    errs[#errs + 1] = "unsupported policy_format: " .. quote(t.policy_format)
  end
  if type(t.name) ~= "string" or not find(t.name, "^[%w][%w_.%-]*$") then
    errs[#errs + 1] = "name must be a word ([A-Za-z0-9_.-]), got "
      .. quote(t.name)
  end
  if t.description ~= nil and type(t.description) ~= "string" then
    errs[#errs + 1] = "description must be a string"
  end
  if t.enabled ~= nil and type(t.enabled) ~= "boolean" then
    errs[#errs + 1] = "enabled must be a boolean, got " .. type(t.enabled)
  end
  for _, k in ipairs({ "check", "mutate" }) do
    if t[k] ~= nil and type(t[k]) ~= "function" then
      errs[#errs + 1] = k .. " must be a function, got " .. type(t[k])
    end
  end
  local settings
  if t.settings ~= nil then
    if type(t.settings) ~= "table" then
      errs[#errs + 1] = "settings must be a table, got " .. type(t.settings)
    else
      local ok, copy = pcall(deepcopy, t.settings, true)
      if ok then
        settings = copy
      else
        errs[#errs + 1] = "settings must be plain data: " .. tostring(copy)
      end
    end
  end
  local rules
  if t.rules ~= nil then
    if not is_list(t.rules) then
      errs[#errs + 1] = "rules must be a list"
    else
      local ok, copy = pcall(deepcopy, t.rules, true)
      if ok then
        rules = copy
        for i, r in ipairs(rules) do validate_rule(i, r, errs) end
      else
        errs[#errs + 1] = "rules must be plain data: " .. tostring(copy)
      end
    end
  end
  if t.check == nil and t.mutate == nil and t.rules == nil then
    errs[#errs + 1] = "policy has none of check, mutate, rules"
  end
  if #errs > 0 then
    return nil, errs
  end
  return {
    name = t.name, description = t.description, enabled = t.enabled ~= false,
    settings = settings or {}, rules = rules, check = t.check, mutate = t.mutate,
  }
end

-- load -----------------------------------------------------------------------

function M.load(sources, guard)
  local set = { policies = {}, problems = {} }
  local function fail(msg)
    set.problems[#set.problems + 1] = problem(msg)
  end
  if type(guard) ~= "function" then
    fail("policies: no budget guard; refusing to run policy code")
    return set, set.problems
  end
  if type(sources) ~= "table" or #sources == 0 then
    fail("policies: no policy files; refusing to run tasks without policies")
    return set, set.problems
  end
  local list = {}
  for i, src in ipairs(sources) do
    local path = type(src) == "table" and type(src.path) == "string"
      and src.path or ("policy #" .. i)
    list[#list + 1] = { path = path, source = type(src) == "table" and src.source,
      bytecode = type(src) == "table" and src.bytecode or nil }
  end
  sort(list, function(a, b) return a.path < b.path end)
  local names = {}
  for _, src in ipairs(list) do
    local path = src.path
    if type(src.source) ~= "string" then
      fail(at(path, "policy source is not text"))
    else
      local env = sandbox.env()
      local chunk, err
      if type(src.bytecode) == "string" then
        -- the shipped policy precompiled by the build for exactly this path
        -- and text (core/plan/policyset.c checked both); compiled from text
        -- when it does not load
        chunk = load(src.bytecode, "@" .. path, "b", env)
      end
      if not chunk then
        chunk, err = load(src.source, "@" .. path, "t", env)
      end
      if not chunk then
        fail(at(path, err))
      else
        local ok, ret = sandbox.call(env, guard, chunk)
        if not ok then
          fail(at(path, ret))
        else
          local rec, errs = validate(ret)
          if not rec then
            for _, e in ipairs(errs) do fail(at(path, e)) end
          elseif names[rec.name] then
            fail(at(path, "duplicate policy name, also used by "
              .. names[rec.name] .. ": " .. quote(rec.name)))
          else
            names[rec.name] = path
            rec.path, rec.env = path, env
            set.policies[#set.policies + 1] = rec
          end
        end
      end
    end
  end
  return set, set.problems
end

-- mutations ------------------------------------------------------------------

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in next, a do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in next, b do
    if a[k] == nil then return false end
  end
  return true
end

local function contains(list, v)
  for _, x in ipairs(list) do
    if deep_equal(x, v) then return true end
  end
  return false
end

-- apply(spec, op) -> recorded change | nil (no effect); raises a message on a
-- malformed operation.
local function apply(spec, m)
  if type(m) ~= "table" then
    error("mutation must be a table, got " .. type(m), 0)
  end
  for k in next, m do
    if not MUTATION_KEY_SET[k] then
      error("mutation: " .. unknown("key", k, MUTATION_KEYS), 0)
    end
  end
  local parts = split_path(m.path)
  if not parts then
    error("mutation path must be a dotted spec path, got " .. quote(m.path), 0)
  end
  local ok, value = pcall(deepcopy, m.value, true)
  if not ok then
    error("mutation value must be plain data: " .. tostring(value), 0)
  end
  local parent = spec
  for i = 1, #parts - 1 do
    local k = parts[i]
    if parent[k] == nil then
      if m.op ~= "set" and m.op ~= "append" then return nil end
      parent[k] = {}
    elseif type(parent[k]) ~= "table" then
      error("mutation path crosses a non-table value: " .. quote(m.path), 0)
    end
    parent = parent[k]
  end
  local key = parts[#parts]
  local old = parent[key]
  if m.op == "set" then
    if deep_equal(old, value) then return nil end
    parent[key] = value
    return { op = "set", path = m.path, value = deepcopy(value) }
  elseif m.op == "append" or m.op == "remove" then
    if old ~= nil and not is_list(old) then
      error(m.op .. " needs a list at " .. quote(m.path), 0)
    end
    local values = is_list(value) and value or { value }
    local changed = {}
    if m.op == "append" then
      old = old or {}
      for _, v in ipairs(values) do
        if not contains(old, v) then
          old[#old + 1] = v
          changed[#changed + 1] = deepcopy(v)
        end
      end
      parent[key] = old
    elseif old then
      local kept = {}
      for _, v in ipairs(old) do
        if contains(values, v) then
          changed[#changed + 1] = deepcopy(v)
        else
          kept[#kept + 1] = v
        end
      end
      parent[key] = kept
    end
    if #changed == 0 then return nil end
    return { op = m.op, path = m.path, value = changed }
  end
  error("mutation op must be \"set\", \"append\" or \"remove\", got "
    .. quote(m.op), 0)
end

-- rules ----------------------------------------------------------------------

local function unset(v)
  return v == nil or v == "" or v == 0 or (type(v) == "table" and next(v) == nil)
end

local function show(v)
  if type(v) == "number" and math.tointeger(v) then
    return tostring(math.tointeger(v))
  end
  return tostring(v)
end

local function eval_rules(rules, spec)
  local msgs = {}
  local function deny(r, default, v)
    msgs[#msgs + 1] = (r.message or default) .. ": " .. quote(show(v))
  end
  for _, r in ipairs(rules or {}) do
    local v = get_field(spec, r.field)
    if unset(v) then
      if r.required then
        deny(r, r.field .. " is required", r.field)
      end
    else
      local values = type(v) == "table" and v or { v }
      if r.equals ~= nil and not deep_equal(v, r.equals) then
        deny(r, r.field .. " must be " .. show(r.equals), v)
      end
      for _, x in ipairs(values) do
        if r.one_of and not contains(r.one_of, x) then
          deny(r, r.field .. " not allowed", x)
        end
        if r.none_of and contains(r.none_of, x) then
          deny(r, r.field .. " not allowed", x)
        end
        if r.max and (type(x) ~= "number" or x > r.max) then
          deny(r, r.field .. " above " .. show(r.max), x)
        end
        if r.min and (type(x) ~= "number" or x < r.min) then
          deny(r, r.field .. " below " .. show(r.min), x)
        end
      end
    end
  end
  return msgs
end

-- evaluate -------------------------------------------------------------------

-- The settings returned are shared (p.settings itself without an override):
-- policies only ever see them through a view.
local function options_for(p, all)
  local enabled, settings = p.enabled, p.settings
  local opt = type(all) == "table" and all[p.name] or nil
  if opt == nil then
    return enabled, settings
  end
  settings = copy_tree(settings)
  if type(opt) ~= "table" then
    return nil, nil, "policy_options for this policy must be an object"
  end
  local keys = { "enabled" }
  for k in next, p.settings do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for k, v in next, opt do
    if k == "enabled" then
      if type(v) ~= "boolean" then
        return nil, nil, "policy option enabled must be a boolean"
      end
      enabled = v
    elseif p.settings[k] == nil then
      return nil, nil, unknown("policy option", k, keys)
    else
      settings[k] = deepcopy(v)
    end
  end
  return enabled, settings
end

-- validate_options(set, policy_options) -> list of messages: unknown policy
-- names, unknown settings and a non-boolean enabled, each with a
-- did-you-mean. The agent config is checked against the loaded set before
-- any task is judged, so a typo fails `run`, `plan` and `policy check`.
function M.validate_options(set, all)
  local msgs = {}
  if all == nil then
    return msgs
  end
  if type(all) ~= "table" then
    return { "policy_options must be an object" }
  end
  local by_name, names = {}, {}
  for _, p in ipairs(type(set) == "table" and set.policies or {}) do
    by_name[p.name] = p
    names[#names + 1] = p.name
  end
  sort(names)
  local keys = {}
  for k in next, all do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, name in ipairs(keys) do
    local p = by_name[name]
    if not p then
      msgs[#msgs + 1] = "policy_options: " .. unknown("policy", name, names)
    else
      local _, _, err = options_for(p, all)
      if err then
        msgs[#msgs + 1] = "policy_options." .. tostring(name) .. ": " .. err
      end
    end
  end
  return msgs
end

-- ctx view handed to one policy call: a deep copy of everything, made
-- lazily (only the fields the policy reads are copied).
local function view(base, spec, settings)
  return sandbox.lazy_copy(base, { spec = sandbox.view(spec), settings = sandbox.view(settings) })
end

local NON_PLAIN = { ["function"] = true, userdata = true, thread = true }

local function interpret_check(n, r1, r2)
  if r1 == true then
    return {}
  end
  if (r1 == nil or r1 == false) then
    if type(r2) == "string" or type(r2) == "number" then
      return { tostring(r2) }
    end
    if is_list(r2) and #r2 > 0 then
      local msgs = {}
      for _, m in ipairs(r2) do
        if type(m) ~= "string" and type(m) ~= "number" then
          return nil, "check returned a message list with a " .. type(m)
        end
        msgs[#msgs + 1] = tostring(m)
      end
      return msgs
    end
    if n == 0 then
      return nil, "check returned nothing; return true, or nil and a message"
    end
    return nil, "check denied without a message; return nil and a message"
  end
  return nil, "check must return true, or nil and a message; got a "
    .. type(r1)
end

function M.evaluate(set, ctx, guard)
  local result = { allowed = false, spec = nil, verdicts = {}, problems = {} }
  local function add(msg)
    result.problems[#result.problems + 1] = problem(msg)
  end
  -- The spec is copied (mutations change the copy, which becomes
  -- result.spec); the rest of the context only reaches policies through
  -- views (sandbox.view), which copy what a policy reads and refuse values
  -- that are not plain data, so it is not copied up front.
  local base = {}
  for k, v in next, type(ctx) == "table" and ctx or {} do
    if NON_PLAIN[type(v)] then
      add("policies: context is not plain data: not plain data: a " .. type(v) .. " value")
      return result
    end
    base[k] = v
  end
  for _, k in ipairs({ "task", "agent", "node", "realpath", "artifacts" }) do
    if type(base[k]) ~= "table" then base[k] = {} end
  end
  local spec = {}
  if type(base.spec) == "table" then
    local okc, copy = pcall(deepcopy, base.spec, true)
    if not okc then
      add("policies: context is not plain data: " .. tostring(copy))
      return result
    end
    spec = copy
  end
  base.spec = spec
  result.spec = spec
  if type(guard) ~= "function" then
    add("policies: no budget guard; refusing to run policy code")
    return result
  end
  if type(set) ~= "table" or type(set.policies) ~= "table" then
    add("policies: no policy set loaded")
    return result
  end
  if set.problems and #set.problems > 0 then
    for _, p in ipairs(set.problems) do add(p.message) end
    return result
  end
  if #set.policies == 0 then
    add("policies: no policy files; refusing to run tasks without policies")
    return result
  end
  local agent = base.agent
  local active = {}
  local function deny(v, msg, is_error)
    v.allowed = false
    v.error = v.error or is_error or nil
    v.messages[#v.messages + 1] = msg
    add(at(v.policy, msg))
  end
  for _, p in ipairs(set.policies) do
    local v = { policy = p.path, name = p.name, enabled = true, allowed = true,
      messages = {}, mutations = {} }
    result.verdicts[#result.verdicts + 1] = v
    local enabled, settings, err = options_for(p, agent.policy_options)
    if err then
      deny(v, err, true)
    elseif not enabled then
      v.enabled = false
    else
      active[#active + 1] = { p = p, v = v, settings = settings }
    end
  end
  -- phase 1: mutations, in path order
  for _, a in ipairs(active) do
    if a.p.mutate then
      local ok, changes = sandbox.call(a.p.env, guard, a.p.mutate,
        view(base, spec, a.settings))
      if not ok then
        deny(a.v, changes, true)
      elseif changes ~= nil then
        if not is_list(changes) then
          deny(a.v, "mutate must return nil or a list of changes, got a "
            .. type(changes), true)
        else
          for _, m in ipairs(changes) do
            local okm, rec = pcall(apply, spec, m)
            if not okm then
              deny(a.v, tostring(rec), true)
            elseif rec then
              a.v.mutations[#a.v.mutations + 1] = rec
            end
          end
        end
      end
    end
  end
  -- phase 2: rules and checks judge the final spec
  for _, a in ipairs(active) do
    for _, msg in ipairs(eval_rules(a.p.rules, spec)) do
      deny(a.v, msg)
    end
    if a.p.check then
      local r = table.pack(sandbox.call(a.p.env, guard, a.p.check,
        view(base, spec, a.settings)))
      if not r[1] then
        deny(a.v, r[2], true)
      else
        local msgs, err = interpret_check(r.n - 1, r[2], r[3])
        if not msgs then
          deny(a.v, err, true)
        else
          for _, m in ipairs(msgs) do deny(a.v, m) end
        end
      end
    end
  end
  result.allowed = #result.problems == 0
  return result
end

-- check ----------------------------------------------------------------------

local SAMPLE_ALLOC = "/var/lib/drvctl/alloc/00000000-0000-0000-0000-000000000000"

local function sample_ctx(set)
  local options = {}
  for _, p in ipairs(set.policies) do
    options[p.name] = { enabled = true }
  end
  return {
    task = { name = "check", config = { image = "busybox:1.36" }, env = {},
      resources = { cpu = 100, memory = 300 } },
    spec = {
      Image = "busybox:1.36",
      Labels = { ["drvctl.task"] = "check" },
      HostConfig = {
        Binds = {
          SAMPLE_ALLOC .. "/alloc:/alloc",
          SAMPLE_ALLOC .. "/check/local:/local",
          SAMPLE_ALLOC .. "/check/secrets:/secrets",
        },
        Memory = 300 * 1048576, MemorySwap = 300 * 1048576, CpuShares = 100,
      },
    },
    agent = { policy_options = options },
    node = {},
    alloc_dir = SAMPLE_ALLOC,
    task_dir = SAMPLE_ALLOC .. "/check",
    realpath = {},
    artifacts = { { source = "https://example.com/check.tar.gz", destination = "local/",
      options = {} } },
  }
end

-- check(sources, guard) -> { ok, problems, policies = { {path, name,
-- enabled, description} } }. Loads and validates every file, then runs every
-- policy (disabled ones too) once against a sample task so that errors in
-- check and mutate code show up; denials of the sample task are not problems.
function M.check(sources, guard)
  local set, problems = M.load(sources, guard)
  local report = { ok = false, problems = {}, policies = {} }
  for _, p in ipairs(problems) do
    report.problems[#report.problems + 1] = p
  end
  for _, p in ipairs(set.policies) do
    report.policies[#report.policies + 1] = { path = p.path, name = p.name,
      enabled = p.enabled, description = p.description }
  end
  if #problems == 0 then
    local r = M.evaluate(set, sample_ctx(set), guard)
    for _, v in ipairs(r.verdicts) do
      if v.error then
        for _, m in ipairs(v.messages) do
          report.problems[#report.problems + 1] = problem(at(v.policy, m))
        end
      end
    end
  end
  report.ok = #report.problems == 0
  return report
end

return M
