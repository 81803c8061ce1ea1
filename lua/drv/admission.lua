-- Admission: runs the operator policies on every planned container.
--
--   local ok, problems = admission.prepare(host, agent)   -- once per plan
--   local body, verdicts = admission.apply(entry, body, ctx)
--   -- or nil, problems (kind "denied"), verdicts, judged body (for plan)
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
-- (container.gated: POLICY_GATED and POLICY_GATED_VALUES) or less than 10 MB
-- of memory is denied: with nothing to judge it, the option is not allowed.
--
-- prepare() also checks the agent's policy_options against the loaded set:
-- an unknown policy name or setting is a config problem with a did-you-mean.
--
-- ctx.siblings (container names {task}-{alloc_id} of the other tasks of the
-- allocation) and ctx.alloc_id reach the policies for container:<name>.
--
-- prepare() builds a new set and only then replaces the current one, so a
-- long-running agent can call it again on SIGHUP and keep the previous set
-- (and say why) when an edit is broken.

local policy = require("drv.policy")
local container = require("drv.container")
local path = require("drv.path")

local admission = {}

local MAX_INSTRUCTIONS = 50000000   -- per policy call; the 1 s clock stops it first
local MAX_BYTES = 64 * 1024 * 1024  -- per policy call

local MIN_MEMORY = 10 * 1024 * 1024  -- Nomad's minimum MemoryMB
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
  local bad = policy.validate_options(set, ((agent or {}).options or {}).policy_options)
  if #bad > 0 then
    local out = {}
    for _, m in ipairs(bad) do
      out[#out + 1] = { kind = "config", message = ((agent or {}).config_path or "agent config")
        .. ": " .. m }
    end
    return nil, out
  end
  current = { set = set, guard = guard, agent = agent }
  return true
end


-- Bind sources inside the data dir (the alloc dir, which the task's
-- containers can write, or with host volumes enabled any other path under
-- data_dir) are pinned: a container could swap a directory there for a
-- symlink between any check and Docker's mount at start. Each such source
-- is rewritten to a staging path `<data_dir>/binds/<alloc_id>-<task>-<n>`
-- (alloc id and indexes only: no name the job chose), and entry.pins tells
-- C to open the source beneath its root without following symlinks and
-- bind-mount it there before create (core/base/pin.c). Binds get `create`:
-- Docker made a missing bind source as a directory, so C does too (beneath
-- the root); a missing source of a `mount` block stays an error. Named
-- volumes and host paths outside data_dir are left as they are.
local function pin_sources(body, entry, ctx)
  local agent = (ctx.agent or {})
  local data_dir = type(agent.data_dir) == "string" and path.clean(agent.data_dir) or nil
  local alloc_dir = path.clean(ctx.alloc_dir)
  if not data_dir or not path.is_abs(data_dir) or type(entry.alloc_id) ~= "string"
    or not entry.alloc_id:match("^[%x%-]+$") then
    return nil
  end
  local binds_dir = data_dir .. "/binds"
  local task_index = math.tointeger(ctx.task_index) or 1
  local pins = {}
  local function pin(src, create)
    if type(src) ~= "string" or not path.is_abs(src) then
      return nil
    end
    local clean = path.clean(src)
    local root
    if path.within(clean, alloc_dir) then
      root = alloc_dir
    elseif path.within(clean, data_dir) then
      root = data_dir
    else
      return nil
    end
    local rel = clean == root and "" or clean:sub(#root + 2)
    local staging = string.format("%s/%s-%d-%d", binds_dir, entry.alloc_id, task_index, #pins)
    pins[#pins + 1] = { source = clean, root = root, path = rel, staging = staging,
      create = create }
    return staging
  end
  local hc = type(body.HostConfig) == "table" and body.HostConfig or {}
  for i, b in ipairs(type(hc.Binds) == "table" and hc.Binds or {}) do
    if type(b) == "string" then
      local src, rest = b:match("^([^:]*)(.*)$")
      local staging = pin(src, true)
      if staging then
        hc.Binds[i] = staging .. rest
      end
    end
  end
  for _, m in ipairs(type(hc.Mounts) == "table" and hc.Mounts or {}) do
    if type(m) == "table" and m.Type == "bind" then
      local staging = pin(m.Source, false)
      if staging then
        m.Source = staging
      end
    end
  end
  if #pins == 0 then
    return nil
  end
  return pins, binds_dir
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
---@param entry table plan entry (gets `pins` and `binds_dir` for C)
---@param body table Docker create body
---@param ctx table { task, agent, node, alloc_dir, task_dir, host, task_index }
---@return table|nil body the (possibly mutated) body
---@return table verdicts or problems
---@return table|nil verdicts on denial (for plan output)
---@return table|nil spec on denial: the body as the policies judged it
function admission.apply(entry, body, ctx)
  local cur = current
  local task = ctx.task or {}
  if cur == nil or cur.set == nil then
    local gated = container.gated(task.config or {})
    local problems = {}
    for _, name in ipairs(gated) do
      problems[#problems + 1] = denied(string.format(
        "task %q: config option %q needs a policy to allow it, but no policies are loaded",
        task.name or "?", name))
    end
    local mem = (body.HostConfig or {}).Memory
    if type(mem) ~= "number" or mem < MIN_MEMORY then
      problems[#problems + 1] = denied(string.format(
        "task %q: memory below 10 MB needs a policy to allow it, but no policies are loaded: %q",
        task.name or "?", tostring(mem)))
    end
    if #problems > 0 then
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
    alloc_id = ctx.alloc_id,
    siblings = ctx.siblings or {},
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
    return nil, problems, result.verdicts or {}, result.spec
  end
  local out = result.spec or body
  if ctx.alloc_dir then
    entry.pins, entry.binds_dir = pin_sources(out, entry, ctx)
  end
  return out, result.verdicts or {}
end


---Validates a set of policy sources for `drvctl policy check`.
---@param sources table
---@param guard function|nil
---@param agent table|nil the agent config: its policy_options are checked too
---@return boolean|nil
---@return table|nil problems
function admission.check(sources, guard, agent)
  guard = guard or default_guard()
  local report = policy.check(sources, guard)
  local out = {}
  for _, p in ipairs(report.problems or {}) do
    out[#out + 1] = { kind = "config", message = p.message or tostring(p) }
  end
  if report.ok and agent then
    local set = policy.load(sources, guard)
    for _, m in ipairs(policy.validate_options(set, (agent.options or {}).policy_options)) do
      out[#out + 1] = { kind = "config", message = (agent.config_path or "agent config") .. ": " .. m }
    end
  end
  if #out == 0 then
    return true
  end
  return nil, out
end


return admission
