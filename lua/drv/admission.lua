-- Admission: runs the operator policies on every planned container.
--
--   local ok, problems = admission.prepare(host, agent)   -- once per plan
--   local body, verdicts = admission.apply(entry, body, ctx)
--   -- or nil, problems (kind "denied")
--   local ok, problems = admission.check(sources)         -- drvctl policy check
--
-- The policy set comes from host.policies ({ path, source } pairs that C
-- read from the shipped directory and the operator's policy_dir, sorted).
-- Policy code only ever runs under a budget guard: drv.core.sandbox_call in
-- the binary, or host.guard in specs. Without a guard, or when any policy
-- fails to load, every task is denied (fail closed).
--
-- host.policies is always a list when C calls; an empty list denies every
-- task. host.policies = nil (unit specs of the mapping only) runs no policy,
-- and then a task that asks for a privilege-widening option
-- (container.POLICY_GATED) is denied: with nothing to judge it, the option
-- is not allowed.
--
-- prepare() builds a new set and only then replaces the current one, so a
-- long-running agent can call it again on SIGHUP and keep the previous set
-- (and say why) when an edit is broken.

local policy = require("drv.policy")
local container = require("drv.container")

local admission = {}

local MAX_INSTRUCTIONS = 50000000   -- per policy call; the 1 s clock stops it first
local MAX_BYTES = 64 * 1024 * 1024  -- per policy call

local current = nil                 -- { set = ..., guard = ..., paths = {...} }


local function default_guard()
  local ok, core = pcall(require, "drv.core")
  if ok and type(core) == "table" and core.sandbox_call then
    return function(fn, ...)
      return core.sandbox_call(fn, MAX_INSTRUCTIONS, MAX_BYTES, ...)
    end
  end
  return nil
end


local function denied(msg)
  return { kind = "denied", message = msg }
end


---Loads host.policies. Returns true, or nil and problems (the old set stays).
---@param host table
---@param agent table
---@return boolean|nil
---@return table|nil problems
function admission.prepare(host, agent)
  local sources = host.policies
  local guard = host.guard or default_guard()
  if sources == nil then
    -- no policy engine in this call (unit specs of the mapping): tasks that
    -- ask for gated options are refused in apply()
    current = { set = nil, guard = guard, agent = agent }
    return true
  end
  if #sources == 0 then
    return nil, { denied("policies: no policy files found (the shipped policies/ directory "
      .. "is missing); refusing to run tasks without policies") }
  end
  local set, problems = policy.load(sources, guard)
  if problems and #problems > 0 then
    local out = {}
    for _, p in ipairs(problems) do
      out[#out + 1] = denied(p.message or tostring(p))
    end
    return nil, out
  end
  current = { set = set, guard = guard, agent = agent }
  return true
end


local function under(path, root)
  return path == root or path:sub(1, #root + 1) == root .. "/"
end


-- Bind sources inside the alloc dir: C re-checks them with realpath just
-- before create, after artifacts (which may plant symlinks) are in place.
local function confined_sources(body, alloc_dir)
  local out = {}
  local hc = body.HostConfig or {}
  for _, b in ipairs(hc.Binds or {}) do
    local src = b:match("^([^:]+):")
    if src and src:sub(1, 1) == "/" and under(src, alloc_dir) then
      out[#out + 1] = src
    end
  end
  for _, m in ipairs(hc.Mounts or {}) do
    if m.Type == "bind" and type(m.Source) == "string" and under(m.Source, alloc_dir) then
      out[#out + 1] = m.Source
    end
  end
  return out
end


-- ctx.artifacts: what every artifact asks for, as copies (a policy that
-- edits them changes nothing): { source, destination, options = {...} }.
local function artifact_copies(list)
  local out = {}
  for _, a in ipairs(list or {}) do
    local opts = {}
    for k, v in pairs(a.options or {}) do
      opts[k] = v
    end
    out[#out + 1] = { source = a.source, destination = a.destination, options = opts }
  end
  return out
end


---Judges one planned container.
---@param entry table plan entry (gets `confined` for C)
---@param body table Docker create body
---@param ctx table { task, agent, node, alloc_dir, task_dir, host }
---@return table|nil body the (possibly mutated) body
---@return table verdicts or problems
function admission.apply(entry, body, ctx)
  local cur = current
  local task = ctx.task or {}
  if cur == nil or cur.set == nil then
    local gated = container.gated(task.config or {})
    if #gated > 0 then
      local problems = {}
      for _, name in ipairs(gated) do
        problems[#problems + 1] = denied(string.format(
          "task %q: config option %q needs a policy to allow it, but no policies are loaded",
          task.name or "?", name))
      end
      return nil, problems
    end
    return body, {}
  end
  local agent = ctx.agent or {}
  local pctx = {
    task = { name = task.name, config = task.config, env = task.env,
      resources = task.resources, user = task.user },
    spec = body,
    agent = agent.options or {},
    node = ctx.node or {},
    alloc_dir = ctx.alloc_dir,
    task_dir = ctx.task_dir,
    realpath = {},
    artifacts = artifact_copies(task.artifacts),
  }
  local result = policy.evaluate(cur.set, pctx, cur.guard)
  if not result.allowed then
    local problems = {}
    for _, p in ipairs(result.problems or {}) do
      -- origin first: "policies/x.lua[:line]: task "web": what is wrong"
      local msg = p.message or tostring(p)
      local origin, rest = msg:match("^(%S-%.lua[:%d]*): (.*)$")
      if origin then
        msg = string.format("%s: task %q: %s", origin, task.name or "?", rest)
      else
        msg = string.format("task %q: %s", task.name or "?", msg)
      end
      problems[#problems + 1] = denied(msg)
    end
    if #problems == 0 then
      problems[1] = denied(string.format("task %q: denied by policy", task.name or "?"))
    end
    return nil, problems
  end
  local out = result.spec or body
  local opts = agent.options or {}
  if not opts.volumes_enabled and ctx.alloc_dir then
    entry.confined = confined_sources(out, ctx.alloc_dir)
  end
  return out, result.verdicts or {}
end


---Validates a set of policy sources for `drvctl policy check`.
---@param sources table
---@param guard function|nil
---@return boolean|nil
---@return table|nil problems
function admission.check(sources, guard)
  local report = policy.check(sources, guard or default_guard())
  if report.ok then
    return true
  end
  local out = {}
  for _, p in ipairs(report.problems or {}) do
    out[#out + 1] = { kind = "config", message = p.message or tostring(p) }
  end
  return nil, out
end


return admission
