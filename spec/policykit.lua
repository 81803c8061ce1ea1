-- policykit: write policy specs in a few lines.
--
--   local kit = require("policykit")
--   kit.task({ cap_add = { "SYS_ADMIN" } }):denied_by("capabilities.lua", "SYS_ADMIN")
--   kit.task({ labels = { team = "x" } }, { agent = { volumes_enabled = true } })
--     :allowed():has_label("team", "x")
--
-- kit.task(config, opts) builds a plausible task context from a small
-- docker `config {}` table, evaluates the policies of the repository's
-- policies/ directory (plus $DRVCTL_POLICY_DIR, whose files override the
-- defaults by file name, as the agent does) and returns a case to assert on.
--
-- config keys: image command args entrypoint labels env cap_add cap_drop
--   privileged pid_mode ipc_mode uts_mode userns_mode network_mode volumes
--   volume_driver mounts ({ type, source, target, readonly }) devices
--   ({ host_path, container_path, cgroup_permissions }) security_opt runtime
--   pids_limit
-- opts: agent (ctx.agent), node, realpath, resources ({ cpu, memory }),
--   task (task name), enable ({ "registries", ... } turns shipped-off
--   policies on), only ({ "capabilities.lua" } evaluates just these files),
--   sources (extra { path, source } entries, e.g. a policy written inline),
--   spec (function(spec) tweaking the built Docker body), guard.
--
-- Unlike lua/drv, this file is test code: it reads files and uses debug.

local lfs = require("lfs")
local policy = require("drv.policy")

local ok_assert, luassert = pcall(require, "luassert")

local kit = {}

kit.DATA_DIR = "/var/lib/drvctl"
kit.ALLOC_ID = "3b0c4f6e-9a51-4c1e-8d1a-2f0c5a7e9b11"
kit.ALLOC_DIR = kit.DATA_DIR .. "/alloc/" .. kit.ALLOC_ID
kit.MiB = 1024 * 1024

local function fail(msg)
  if ok_assert then
    luassert.is_true(false, msg)
  end
  error(msg, 3)
end

-- guard ----------------------------------------------------------------------

-- guard(limits) -> a guard(fn, ...) running fn under a count hook that stops
-- it after `instructions`, `seconds` of CPU time or `memory_kb` of heap
-- growth. Returns true, results... or false, message.
function kit.guard(limits)
  limits = limits or {}
  local max_instr = limits.instructions or 20000000
  local max_seconds = limits.seconds or 0.5
  local max_kb = limits.memory_kb or 32 * 1024
  local step = limits.step or 4
  local clock, gc = os.clock, collectgarbage
  local sethook, gethook, getinfo = debug.sethook, debug.gethook, debug.getinfo
  local guard
  guard = function(fn, ...)
    local t0, m0, used = clock(), gc("count"), 0
    local why
    local function stop(reason)
      local info = getinfo(3, "Slf")
      if info and info.func == guard then
        return -- the guard's own bookkeeping after fn returned: never raise there
      end
      why = reason
      if info and info.currentline and info.currentline > 0 then
        why = reason .. " at " .. info.short_src .. ":" .. info.currentline
      end
      error(why, 0)
    end
    local function hook()
      used = used + step
      if used > max_instr then
        stop("more than " .. max_instr .. " instructions")
      end
      if gc("count") - m0 > max_kb then
        gc("collect")
        if gc("count") - m0 > max_kb then
          stop("more than " .. max_kb .. " KiB of memory")
        end
      end
      if used % (step * 256) == 0 and clock() - t0 > max_seconds then
        stop("more than " .. max_seconds .. " s of CPU time")
      end
    end
    local oh, om, oc = gethook()
    sethook(hook, "", step)
    local res = table.pack(pcall(fn, ...))
    if type(oh) == "function" then
      sethook(oh, om, oc)
    else
      sethook()
    end
    if why then
      return false, "budget exceeded: " .. why
    end
    if not res[1] then
      return false, res[2]
    end
    return table.unpack(res, 1, res.n)
  end
  return guard
end

kit.default_guard = kit.guard()

-- sources --------------------------------------------------------------------

function kit.read(file)
  local f, err = io.open(file, "rb")
  if not f then
    error(err, 2)
  end
  local s = f:read("a")
  f:close()
  return s
end

-- policy_dirs(): the default directory, then $DRVCTL_POLICY_DIR if set.
function kit.policy_dirs()
  local dirs = { os.getenv("DRVCTL_DEFAULT_POLICY_DIR") or "policies" }
  local extra = os.getenv("DRVCTL_POLICY_DIR")
  if extra and extra ~= "" then
    dirs[#dirs + 1] = extra
  end
  return dirs
end

-- sources(dirs) -> { { path = "dir/x.lua", source = "..." } } where a later
-- directory's file replaces an earlier one of the same name.
function kit.sources(dirs)
  local by_name, names = {}, {}
  for _, dir in ipairs(dirs or kit.policy_dirs()) do
    for name in lfs.dir(dir) do
      if name:match("%.lua$") and lfs.attributes(dir .. "/" .. name, "mode") == "file" then
        if not by_name[name] then
          names[#names + 1] = name
        end
        by_name[name] = { path = dir .. "/" .. name, source = kit.read(dir .. "/" .. name) }
      end
    end
  end
  table.sort(names)
  local out = {}
  for _, n in ipairs(names) do
    out[#out + 1] = by_name[n]
  end
  return out
end

local function basename(p)
  return (p:match("[^/]+$")) or p
end

local cache = {}

-- load(opts) -> policy set; raises when a policy fails to load.
function kit.load(opts)
  opts = opts or {}
  local key
  if not opts.sources and not opts.guard then
    key = table.concat(kit.policy_dirs(), "\0") .. "\0" .. table.concat(opts.only or {}, "\0")
    if cache[key] then
      return cache[key]
    end
  end
  local sources = {}
  local only
  if opts.only then
    only = {}
    for _, n in ipairs(opts.only) do only[n] = true end
  end
  for _, s in ipairs(kit.sources()) do
    if not only or only[basename(s.path)] then
      sources[#sources + 1] = s
    end
  end
  for _, s in ipairs(opts.sources or {}) do
    sources[#sources + 1] = s
  end
  local set, problems = policy.load(sources, opts.guard or kit.default_guard)
  if #problems > 0 then
    local msgs = {}
    for _, p in ipairs(problems) do msgs[#msgs + 1] = p.message end
    error("policies failed to load:\n  " .. table.concat(msgs, "\n  "), 2)
  end
  if key then
    cache[key] = set
  end
  return set
end

-- context builder --------------------------------------------------------------

local function list(v)
  if v == nil then return nil end
  local out = {}
  for i, x in ipairs(v) do out[i] = x end
  return out
end

-- ctx(config, opts) -> the context policy.evaluate receives.
function kit.ctx(config, opts)
  config, opts = config or {}, opts or {}
  local name = opts.task or "web"
  local alloc, task_dir = kit.ALLOC_DIR, kit.ALLOC_DIR .. "/" .. name
  local res = opts.resources or {}
  local cpu, mem = res.cpu or 100, res.memory or 300
  local binds = { alloc .. "/alloc:/alloc", task_dir .. "/local:/local",
    task_dir .. "/secrets:/secrets" }
  for _, v in ipairs(config.volumes or {}) do
    binds[#binds + 1] = v
  end
  local mounts
  for _, m in ipairs(config.mounts or {}) do
    mounts = mounts or {}
    mounts[#mounts + 1] = { Type = m.type or "volume", Source = m.source,
      Target = m.target, ReadOnly = m.readonly or false }
  end
  local devices
  for _, d in ipairs(config.devices or {}) do
    devices = devices or {}
    devices[#devices + 1] = { PathOnHost = d.host_path,
      PathInContainer = d.container_path or d.host_path,
      CgroupPermissions = d.cgroup_permissions or "rwm" }
  end
  local labels = { ["drvctl.job"] = "example", ["drvctl.group"] = "app",
    ["drvctl.task"] = name, ["drvctl.alloc_id"] = kit.ALLOC_ID }
  for k, v in pairs(config.labels or {}) do labels[k] = v end
  local env = { "NOMAD_ALLOC_DIR=/alloc", "NOMAD_TASK_DIR=/local",
    "NOMAD_SECRETS_DIR=/secrets", "NOMAD_ALLOC_ID=" .. kit.ALLOC_ID,
    "NOMAD_TASK_NAME=" .. name, "NOMAD_CPU_LIMIT=" .. cpu,
    "NOMAD_MEMORY_LIMIT=" .. mem }
  local keys = {}
  for k in pairs(config.env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do env[#env + 1] = k .. "=" .. config.env[k] end
  local cmd
  if config.command then
    cmd = { config.command }
    for _, a in ipairs(config.args or {}) do cmd[#cmd + 1] = a end
  end
  local spec = {
    Image = config.image or "busybox:1.36",
    Cmd = cmd,
    Entrypoint = list(config.entrypoint),
    Env = env,
    Labels = labels,
    HostConfig = {
      Binds = binds,
      Memory = mem * kit.MiB,
      MemorySwap = mem * kit.MiB,
      CpuShares = cpu,
      CapAdd = list(config.cap_add),
      CapDrop = list(config.cap_drop),
      Privileged = config.privileged or nil,
      PidMode = config.pid_mode,
      IpcMode = config.ipc_mode,
      UTSMode = config.uts_mode,
      UsernsMode = config.userns_mode,
      NetworkMode = config.network_mode or "bridge",
      VolumeDriver = config.volume_driver,
      Mounts = mounts,
      Devices = devices,
      SecurityOpt = list(config.security_opt),
      Runtime = config.runtime,
      PidsLimit = config.pids_limit,
    },
  }
  if opts.spec then
    opts.spec(spec)
  end
  local agent = {}
  for k, v in pairs(opts.agent or {}) do agent[k] = v end
  if opts.enable then
    local po = {}
    for k, v in pairs(agent.policy_options or {}) do po[k] = v end
    for _, n in ipairs(opts.enable) do
      local o = {}
      for k, v in pairs(po[n] or {}) do o[k] = v end
      o.enabled = true
      po[n] = o
    end
    agent.policy_options = po
  end
  return {
    task = { name = name, config = config, env = config.env or {},
      resources = { cpu = cpu, memory = mem } },
    spec = spec,
    agent = agent,
    node = opts.node or {},
    alloc_dir = alloc,
    task_dir = task_dir,
    realpath = opts.realpath or {},
  }
end

-- cases --------------------------------------------------------------------------

local Case = {}
Case.__index = Case

local function describe_result(r)
  local lines = {}
  for _, p in ipairs(r.problems) do lines[#lines + 1] = "  " .. p.message end
  if #lines == 0 then return "  (no problems)" end
  return table.concat(lines, "\n")
end

-- evaluate(config, opts) -> result of policy.evaluate
function kit.evaluate(config, opts)
  opts = opts or {}
  local ctx = kit.ctx(config, opts)
  return policy.evaluate(kit.load(opts), ctx, opts.guard or kit.default_guard), ctx
end

function kit.task(config, opts)
  local result, ctx = kit.evaluate(config, opts)
  return setmetatable({ result = result, ctx = ctx }, Case)
end

function Case:allowed()
  if not self.result.allowed then
    fail("expected the task to be allowed, got:\n" .. describe_result(self.result))
  end
  return self
end

function Case:denied()
  if self.result.allowed or #self.result.problems == 0 then
    fail("expected the task to be denied, but it was allowed")
  end
  return self
end

local function problems_of(self, file)
  local out = {}
  for _, p in ipairs(self.result.problems) do
    local path = p.message:match("^([^:]+):")
    if path and (path == file or basename(path) == file) then
      out[#out + 1] = p.message
    end
  end
  return out
end

-- denied_by(file, ...) -> asserts that the task is denied and that some
-- message from policy `file` contains every given text.
function Case:denied_by(file, ...)
  self:denied()
  local want = { ... }
  for _, m in ipairs(problems_of(self, file)) do
    local all = true
    for _, w in ipairs(want) do
      if not m:find(w, 1, true) then all = false break end
    end
    if all then return self end
  end
  fail(("expected a denial from %s containing %s, got:\n%s"):format(file,
    #want > 0 and ('"' .. table.concat(want, '", "') .. '"') or "anything",
    describe_result(self.result)))
end

-- blocked(...): no plan, whether a policy denied the task (exit 77) or
-- validation refused the job (exit 68); some message contains every text.
-- For attack spellings that dockerd would read one way and a check another.
function Case:blocked(...)
  if self.result.allowed then
    fail("expected the job to be refused, but it was allowed")
  end
  local want = { ... }
  for _, p in ipairs(self.result.problems) do
    local all = true
    for _, w in ipairs(want) do
      if not p.message:find(w, 1, true) then all = false break end
    end
    if all then return self end
  end
  fail(("expected a refusal containing %s, got:\n%s"):format(
    #want > 0 and ('"' .. table.concat(want, '", "') .. '"') or "anything",
    describe_result(self.result)))
end

function Case:not_denied_by(file)
  local msgs = problems_of(self, file)
  if #msgs > 0 then
    fail(("expected no denial from %s, got:\n  %s"):format(file, table.concat(msgs, "\n  ")))
  end
  return self
end

-- messages(file|nil) -> problem messages (of one policy file when given)
function Case:messages(file)
  if file then return problems_of(self, file) end
  local out = {}
  for _, p in ipairs(self.result.problems) do out[#out + 1] = p.message end
  return out
end

function Case:spec()
  return self.result.spec
end

local function get(t, dotted)
  for seg in dotted:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[math.tointeger(tonumber(seg)) or seg]
  end
  return t
end

-- field(path) -> value at a dotted path of the final spec
function Case:field(dotted)
  return get(self.result.spec, dotted)
end

function Case:has_label(k, v)
  local labels = self.result.spec.Labels or {}
  if labels[k] ~= v then
    fail(('expected label %s = "%s", got "%s"'):format(k, tostring(v), tostring(labels[k])))
  end
  return self
end

-- has(path, value): the final spec's field equals value
function Case:has(dotted, value)
  local got = get(self.result.spec, dotted)
  if got ~= value then
    fail(('expected %s = %s, got %s'):format(dotted, tostring(value), tostring(got)))
  end
  return self
end

-- contains(path, value) / lacks(path, value): list membership in the final spec
function Case:contains(dotted, value)
  for _, x in ipairs(get(self.result.spec, dotted) or {}) do
    if x == value then return self end
  end
  fail(('expected %s to contain "%s"'):format(dotted, tostring(value)))
end

function Case:lacks(dotted, value)
  for _, x in ipairs(get(self.result.spec, dotted) or {}) do
    if x == value then
      fail(('expected %s not to contain "%s"'):format(dotted, tostring(value)))
    end
  end
  return self
end

-- mutated_by(file, path): policy `file` recorded a change of `path`
function Case:mutated_by(file, dotted)
  for _, v in ipairs(self.result.verdicts) do
    if v.policy == file or basename(v.policy) == file then
      for _, m in ipairs(v.mutations) do
        if m.path == dotted then return self end
      end
    end
  end
  fail(("expected %s to change %s"):format(file, dotted))
end

-- whole jobs through the real pipeline ---------------------------------------

kit.SEED = "policykit"

-- kit.job(config, opts) runs a job through driver.plan, exactly as `drvctl
-- plan` and `run` map and judge it (HCL or JSON parsing, normalisation, the
-- mapping to a Docker body, every policy), and returns a case for the first
-- task whose body could be built. Use it for attacks: the job author writes
-- HCL or JSON, not Docker bodies.
--   config: the text inside the task's `config { }` (HCL); image defaults
--     to busybox:1.36 unless the text sets one
--   opts.agent: agent config HCL text (e.g. 'plugin "docker" { config {
--     allow_devices = ["/dev/fuse"] } }')
--   opts.task: extra HCL inside the task block (resources { memory = 5 })
--   opts.tasks: extra task blocks for the same group (siblings)
--   opts.source: a whole job file (HCL or {"Job": ...} JSON) instead
--   opts.path: its file name (default job.hcl, or job.json for JSON)
-- The case's result has allowed, problems, spec (the first task's body as
-- judged), verdicts, and plan/problems as driver.plan returned them.
function kit.job(config, opts)
  opts = opts or {}
  local driver = require("drv.driver")
  local src = opts.source
  if not src then
    if not (config or ""):find("image%s*=") then
      config = 'image = "busybox:1.36"\n' .. (config or "")
    end
    src = table.concat({
      'job "example" {',
      '  group "app" {',
      '    task "web" {',
      '      driver = "docker"',
      '      config {', config, '      }',
      opts.task or "",
      '    }',
      opts.tasks or "",
      '  }',
      '}', "" }, "\n")
  end
  local path = opts.path or (src:match("^%s*{") and "job.json" or "job.hcl")
  local sources = opts.sources or kit.sources()
  local host = {
    default_data_dir = kit.DATA_DIR, cwd = "/", alloc_seed = kit.SEED,
    policies = sources, guard = opts.guard or kit.default_guard,
  }
  local plan, problems = driver.plan(src, path, opts.agent, opts.agent and "agent.hcl" or nil, host)
  local result = { plan = plan, problems = {}, verdicts = {} }
  local cjson = require("cjson")
  if plan then
    result.allowed = true
    local shown = cjson.decode(plan.json)
    result.spec = shown.tasks[1] and shown.tasks[1].body or nil
    result.verdicts = shown.tasks[1] and shown.tasks[1].policies or {}
    result.bodies = {}
    for i, t in ipairs(plan.tasks) do
      result.bodies[i] = t.body
    end
  else
    result.allowed = false
    result.problems = problems or {}
    if problems and problems.json then
      local shown = cjson.decode(problems.json)
      result.spec = shown.tasks[1] and shown.tasks[1].body or nil
      result.verdicts = shown.tasks[1] and shown.tasks[1].policies or {}
    end
  end
  -- problems_of() matches "policies/x.lua: ..." prefixes; admission puts the
  -- task name after the path, which the message search ignores
  return setmetatable({ result = result }, Case)
end

return kit
