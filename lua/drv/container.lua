--- Task config schema, its checks, and the mapping of one task instance to
--- a Docker `POST /containers/create` body (ARCHITECTURE §7).
local interp = require("drv.interp")

local container = {}


local MIB = 1048576
local MAX_INT = 1e14

local MOUNT = {
  type = "string",
  target = "string",
  source = "string",
  readonly = "bool",
  bind_options = { object = { propagation = "string" } },
  tmpfs_options = { object = { size = "int", mode = "int" } },
  volume_options = { object = {
    no_copy = "bool",
    labels = { map = "scalar" },
    driver_config = { object = { name = "string", options = { map = "scalar" } } },
  } },
}

local STRINGS = { list = "string" }

--- Every option of the docker task `config {}` block (spec page and the
--- reference §1 table), with its type.
container.SCHEMA = {
  image = "string",
  image_pull_timeout = "string",
  args = STRINGS,
  command = "string",
  entrypoint = STRINGS,
  auth = { object = {
    username = "string", password = "string", email = "string", server_address = "string",
  } },
  auth_soft_fail = "bool",
  cap_add = STRINGS,
  cap_drop = STRINGS,
  cgroupns = "string",
  container_exists_attempts = "int",
  cpu_hard_limit = "bool",
  cpu_cfs_period = "int",
  cpuset_cpus = "string",
  devices = { blocks = {
    host_path = "string", container_path = "string", cgroup_permissions = "string",
  } },
  dns_servers = STRINGS,
  dns_search_domains = STRINGS,
  dns_options = STRINGS,
  extra_hosts = STRINGS,
  force_pull = "bool",
  group_add = { list = "scalar" },
  healthchecks = { object = { disable = "bool" } },
  hostname = "string",
  init = "bool",
  interactive = "bool",
  ipc_mode = "string",
  ipv4_address = "string",
  ipv6_address = "string",
  isolation = "string",
  labels = { map = "scalar" },
  load = "string",
  logging = { object = { type = "string", driver = "string", config = { map = "scalar" } } },
  mac_address = "string",
  memory_hard_limit = "int",
  mount = { blocks = MOUNT },
  mounts = { blocks = MOUNT },
  network_aliases = STRINGS,
  network_mode = "string",
  oom_score_adj = "int",
  pids_limit = "int",
  pid_mode = "string",
  ports = STRINGS,
  port_map = { map = "int" },
  privileged = "bool",
  readonly_rootfs = "bool",
  runtime = "string",
  security_opt = STRINGS,
  shm_size = "int",
  storage_opt = { map = "scalar" },
  sysctl = { map = "scalar" },
  tty = "bool",
  ulimit = { map = "scalar" },
  uts_mode = "string",
  userns_mode = "string",
  volumes = STRINGS,
  volume_driver = "string",
  work_dir = "string",
  advertise_ipv6_address = "bool",
  SSL = "bool",
  ssl = "bool",
}

--- Options that are valid but not mapped yet. Plans that use them fail
--- rather than silently ignore them. The first group widens privileges and
--- waits for the policy engine; shrink this table as mappings land.
container.UNSUPPORTED = {
  -- privilege-widening, gated by policies once those are integrated
  privileged = true, cap_add = true, cap_drop = true, volumes = true,
  volume_driver = true, mounts = true, mount = true, devices = true,
  pid_mode = true, ipc_mode = true, uts_mode = true, userns_mode = true,
  security_opt = true, network_mode = true, runtime = true,
  -- not mapped yet
  auth = true, auth_soft_fail = true, cgroupns = true,
  container_exists_attempts = true, cpu_hard_limit = true,
  cpu_cfs_period = true, cpuset_cpus = true, image_pull_timeout = true,
  ipv4_address = true, ipv6_address = true, isolation = true,
  memory_hard_limit = true, network_aliases = true, ports = true,
  port_map = true, advertise_ipv6_address = true,
}


local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end


---Parses one ulimit entry ("soft[:hard]") as Nomad does.
---@param name string
---@param value string
---@return table|nil ulimit { Name, Soft, Hard }
---@return string|nil err exact Nomad text
function container.parse_ulimit(name, value)
  if value == "" then
    return nil, string.format('Malformed ulimit specification %s: "", cannot be empty', name)
  end
  local soft_s, hard_s = value:match("^([^:]*):(.*)$")
  if not soft_s then
    soft_s, hard_s = value, value
  end
  local soft = soft_s:match("^%d+$") and math.tointeger(tonumber(soft_s))
  if not soft or soft >= MAX_INT then
    return nil, string.format("Malformed soft ulimit %s: %s", name, value)
  end
  local hard = hard_s:match("^%d+$") and math.tointeger(tonumber(hard_s))
  if not hard or hard >= MAX_INT then
    return nil, string.format("Malformed hard ulimit %s: %s", name, value)
  end
  return { Name = name, Soft = soft, Hard = hard }
end


---Checks a normalised docker task config for the semantic rules of the
---reference (required image, command form, ulimits, unsupported options).
---ctx: problems, warnings, label (`task "web"`), where(container, key).
---@param config table normalised config
---@param ctx table
---@param task_where string position of the task (used when config is absent)
function container.check(config, ctx, task_where)
  local problems, warnings = ctx.problems, ctx.warnings
  local function at(key)
    return ctx.where(config, key)
  end
  local function add(kind, origin, text)
    problems[#problems + 1] = { kind = kind, message = origin .. ": " .. text }
  end
  if config == nil or config.image == nil or config.image == "" then
    local origin = task_where
    if config ~= nil then
      origin = config.image and at("image") or ctx.where(config)
    end
    add("missing", origin, ctx.label .. ' config: field "image" is required')
  end
  if config == nil then
    return
  end
  for _, key in ipairs(sorted_keys(config)) do
    if container.UNSUPPORTED[key] then
      add("type", at(key), string.format('%s config option %q is not supported yet',
        ctx.label, key))
    end
  end
  local cmd = config.command
  if cmd ~= nil then
    if cmd == "" then
      add("type", at("command"), ctx.label .. ' config: command empty: ""')
    elseif cmd:match("^%s*(.-)%s*$") ~= cmd then
      add("type", at("command"), string.format(
        "%s config: command contains extra white space: %q", ctx.label, cmd))
    end
  end
  if config.ulimit then
    for _, name in ipairs(sorted_keys(config.ulimit)) do
      local _, err = container.parse_ulimit(name, config.ulimit[name])
      if err then
        add("type", ctx.where(config.ulimit, name), ctx.label .. " config: " .. err)
      end
    end
  end
  for _, key in ipairs({ "SSL", "ssl" }) do
    if config[key] ~= nil then
      warnings[#warnings + 1] = string.format(
        "%s: %s config option %q is deprecated and has no effect", at(key), ctx.label, key)
    end
  end
end


---Returns the pull decision for an image reference.
---@param image string
---@param force boolean|nil
---@return string "always"|"missing"
function container.pull_policy(image, force)
  if force then
    return "always"
  end
  if image:find("@", 1, true) then
    return "missing"
  end
  local last = image:match("([^/]*)$")
  local tag = last:match(":([^:]*)$")
  if tag == nil or tag == "" or tag == "latest" then
    return "always"
  end
  return "missing"
end


---Strips a leading "https://" from an image reference.
---@param image string
---@return string
function container.image_name(image)
  return (image:gsub("^https://", ""))
end


local function clean_env_key(k)
  return (k:gsub("[^%w_]", "_"))
end


---Normalises a relative path ("local/", "./x/../y") and tells whether it
---stays inside its base directory.
---@param rel string
---@return string|nil path without leading or trailing slashes ("" for base)
function container.clean_relative(rel)
  local parts = {}
  for part in rel:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then
        return nil
      end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end


local function sub_path(base, rel)
  if rel == nil or rel == "" then
    return base
  end
  return base .. "/" .. rel
end


---Builds the environment of a task instance (ARCHITECTURE §7).
---@return table env map, table vars map used for interpolation
local function environment(inst, unknown)
  local job, group, task, agent = inst.job, inst.group, inst.task, inst.agent
  local env = {
    NOMAD_ALLOC_DIR = "/alloc",
    NOMAD_TASK_DIR = "/local",
    NOMAD_SECRETS_DIR = "/secrets",
    NOMAD_ALLOC_ID = inst.alloc_id,
    NOMAD_ALLOC_NAME = inst.alloc_name,
    NOMAD_ALLOC_INDEX = string.format("%d", inst.alloc_index),
    NOMAD_TASK_NAME = task.name,
    NOMAD_GROUP_NAME = group.name,
    NOMAD_JOB_NAME = job.name,
    NOMAD_DC = agent.datacenter or "dc1",
    NOMAD_REGION = job.region or agent.region or "global",
    NOMAD_CPU_LIMIT = string.format("%d", task.resources.cpu),
    NOMAD_MEMORY_LIMIT = string.format("%d", task.resources.memory),
  }
  local meta = {}
  for _, m in ipairs({ job.meta or {}, group.meta or {}, task.meta or {} }) do
    for k, v in pairs(m) do
      meta[k] = v
    end
  end
  for k, v in pairs(meta) do
    local key = clean_env_key(k)
    env["NOMAD_META_" .. key] = v
    env["NOMAD_META_" .. key:upper()] = v
  end
  local vars = {}
  for k, v in pairs(env) do
    vars[k] = v
  end
  vars["node.datacenter"] = env.NOMAD_DC
  vars["node.region"] = agent.region or "global"
  vars["node.unique.name"] = agent.name
  for k, v in pairs(agent.meta or {}) do
    vars["meta." .. k] = v
  end
  for _, k in ipairs(sorted_keys(task.env or {})) do
    local v = interp.expand(task.env[k], vars, unknown)
    env[k] = v
  end
  for k, v in pairs(env) do
    vars[k] = v
  end
  return env, vars
end


local function non_empty(list)
  if list and #list > 0 then
    return list
  end
  return nil
end


local function copy_map(m)
  if not m or next(m) == nil then
    return nil
  end
  local out = {}
  for k, v in pairs(m) do
    out[k] = v
  end
  return out
end


---Maps one task instance to its plan entry and Docker create body.
---inst: job, group, task (internal tables), alloc_id, alloc_index,
---alloc_name, agent (contract B flat agent with options).
---@param inst table
---@return table entry plan task entry (body is a JSON string)
---@return table body the create body as a table
---@return string[] unknown variable references left as written
function container.build(inst)
  local cjson = require("cjson")
  local job, group, task, agent = inst.job, inst.group, inst.task, inst.agent
  local config = task.config or {}
  local options = agent.options or {}
  local unknown = {}
  local safe_name = task.name:gsub("/", "_")
  local alloc_dir = agent.data_dir .. "/alloc/" .. inst.alloc_id
  local task_dir = alloc_dir .. "/" .. safe_name
  local env, vars = environment(inst, unknown)

  local image = container.image_name(config.image)
  local body = { Image = image }

  local args = config.args and interp.expand_list(config.args, vars, unknown) or {}
  if config.command then
    local cmd = { interp.expand(config.command, vars, unknown) }
    table.move(args, 1, #args, 2, cmd)
    body.Cmd = cmd
  else
    body.Cmd = non_empty(args)
  end
  if config.entrypoint then
    body.Entrypoint = non_empty(interp.expand_list(config.entrypoint, vars, unknown))
  end
  if config.work_dir then
    body.WorkingDir = interp.expand(config.work_dir, vars, unknown)
  end
  if config.hostname then
    body.Hostname = interp.expand(config.hostname, vars, unknown)
  end
  body.User = task.user
  local env_list = {}
  for _, k in ipairs(sorted_keys(env)) do
    env_list[#env_list + 1] = k .. "=" .. env[k]
  end
  body.Env = env_list

  local labels = {}
  for k, v in pairs(config.labels or {}) do
    labels[k] = interp.expand(v, vars, unknown)
  end
  labels["drvctl.job"] = job.name
  labels["drvctl.group"] = group.name
  labels["drvctl.task"] = task.name
  labels["drvctl.alloc_id"] = inst.alloc_id
  body.Labels = labels
  body.Tty = config.tty == true
  body.OpenStdin = config.interactive == true
  body.MacAddress = config.mac_address
  if config.healthchecks and config.healthchecks.disable then
    body.Healthcheck = { Test = { "NONE" } }
  end

  local suffix = options.volumes_selinuxlabel and (":" .. options.volumes_selinuxlabel) or ""
  local hc = {
    Binds = {
      alloc_dir .. "/alloc:/alloc" .. suffix,
      task_dir .. "/local:/local" .. suffix,
      task_dir .. "/secrets:/secrets" .. suffix,
    },
    Memory = math.tointeger(task.resources.memory * MIB),
    CpuShares = math.tointeger(task.resources.cpu),
  }
  hc.MemorySwap = hc.Memory
  if config.logging then
    local lc = config.logging
    hc.LogConfig = { Type = lc.type or lc.driver or "", Config = copy_map(lc.config) }
  else
    hc.LogConfig = { Type = "json-file", Config = { ["max-size"] = "2m", ["max-file"] = "2" } }
  end
  hc.Dns = non_empty(config.dns_servers)
  hc.DnsSearch = non_empty(config.dns_search_domains)
  hc.DnsOptions = non_empty(config.dns_options)
  hc.ExtraHosts = non_empty(config.extra_hosts)
  hc.Sysctls = copy_map(config.sysctl)
  if config.ulimit then
    local ulimits = {}
    for _, name in ipairs(sorted_keys(config.ulimit)) do
      ulimits[#ulimits + 1] = assert(container.parse_ulimit(name, config.ulimit[name]))
    end
    hc.Ulimits = non_empty(ulimits)
  end
  if config.shm_size and config.shm_size ~= 0 then
    hc.ShmSize = config.shm_size
  end
  if config.readonly_rootfs then
    hc.ReadonlyRootfs = true
  end
  if config.init then
    hc.Init = true
  end
  if config.oom_score_adj and config.oom_score_adj ~= 0 then
    hc.OomScoreAdj = config.oom_score_adj
  end
  hc.PidsLimit = config.pids_limit
  hc.GroupAdd = non_empty(config.group_add)
  hc.StorageOpt = copy_map(config.storage_opt)
  body.HostConfig = hc

  local kill_ms = task.kill_timeout_ms
  local max_kill = agent.max_kill_timeout_ms or 30000
  if kill_ms > max_kill then
    kill_ms = max_kill
  end
  if kill_ms <= 0 then
    kill_ms = 1000
  end

  local artifacts = {}
  for _, a in ipairs(task.artifacts or {}) do
    local opts = a.options or {}
    artifacts[#artifacts + 1] = {
      source = a.source,
      dest_dir = sub_path(task_dir, container.clean_relative(a.destination)),
      checksum = opts.checksum,
      archive = opts.archive,
    }
  end

  local entry = {
    job = job.name,
    group = group.name,
    task = task.name,
    alloc_id = inst.alloc_id,
    alloc_index = inst.alloc_index,
    alloc_name = inst.alloc_name,
    name = safe_name .. "-" .. inst.alloc_id,
    image = image,
    load = config.load and (task_dir .. "/local/" .. config.load) or nil,
    pull = container.pull_policy(image, config.force_pull),
    body = cjson.encode(body),
    kill_signal = task.kill_signal,
    kill_timeout_ms = kill_ms,
    tty = body.Tty,
    alloc_dir = alloc_dir,
    dirs = {
      alloc_dir,
      alloc_dir .. "/alloc",
      alloc_dir .. "/alloc/logs",
      alloc_dir .. "/alloc/data",
      alloc_dir .. "/alloc/tmp",
      task_dir,
      task_dir .. "/local",
      task_dir .. "/secrets",
    },
    log_dir = alloc_dir .. "/alloc/logs",
    log_max_files = task.logs.max_files,
    log_max_file_size = math.tointeger(task.logs.max_file_size * MIB),
    artifacts = artifacts,
  }
  return entry, body, unknown
end


return container
