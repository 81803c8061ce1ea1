--- Loads a Nomad job (HCL1 or API JSON) into the internal job table.
--
--   job = { name, datacenters, region, meta, constraints, groups = {
--     { name, count, meta, constraints, tasks = {
--       { name, driver, config, env, meta, user, kill_timeout_ms, kill_signal,
--         resources = { cpu, memory, networks = { { mbits, ports = {
--           { label, static } } } } },
--         logs = { max_files, max_file_size },
--         artifacts = { { source, destination, options } },
--         constraints = { { attribute, operator, value } } } } } } }
--
-- HCL and JSON go through the same walker: JSON is first converted to the
-- shape the HCL parser produces, so both give identical tables.
local constraint_check = require("drv.constraint")
local container = require("drv.container")
local schema = require("drv.schema")

local jobspec = {}


local IGNORE = { ignore = true }
local WARN = { ignore = true, warn = true }

local CONSTRAINT = {
  attribute = "string",
  operator = "string",
  value = "scalar",
  version = "string",
  regexp = "string",
  distinct_hosts = "bool",
  distinct_property = "string",
  set_contains = "string",
}

local JOB = {
  datacenters = { list = "string" },
  region = "string",
  meta = { map = "scalar" },
  constraint = { blocks = CONSTRAINT },
  group = "any",
  task = "any",
  type = IGNORE, priority = IGNORE, all_at_once = IGNORE, namespace = IGNORE,
  id = IGNORE,
  update = WARN, periodic = WARN, parameterized = WARN, vault = WARN,
  migrate = WARN, reschedule = WARN, spread = WARN, affinity = WARN,
}

local GROUP = {
  count = "int",
  meta = { map = "scalar" },
  constraint = { blocks = CONSTRAINT },
  task = "any",
  restart = WARN, update = WARN, ephemeral_disk = WARN, vault = WARN,
  migrate = WARN, reschedule = WARN, spread = WARN, affinity = WARN,
}

local RESOURCES = {
  cpu = "int",
  memory = "int",
  network = { blocks = { mbits = "int", port = "any" } },
  iops = WARN, disk = WARN,
}

local TASK = {
  driver = "string",
  config = "any",
  env = { map = "scalar" },
  meta = { map = "scalar" },
  resources = { object = RESOURCES },
  kill_timeout = "string",
  kill_signal = "string",
  user = "string",
  logs = { object = { max_files = "int", max_file_size = "int" } },
  artifact = { blocks = {
    source = "string", destination = "string", options = { map = "scalar" },
    mode = "string",
  } },
  constraint = { blocks = CONSTRAINT },
  service = WARN, template = WARN, vault = WARN, leader = WARN,
  shutdown_delay = WARN, dispatch_payload = WARN, affinity = WARN, spread = WARN,
}

local PORT = { static = "int", to = "int" }

local MIB = 1048576
local DEFAULT_KILL_TIMEOUT_MS = 5000


local function is_null(v)
  return v == nil or type(v) == "userdata"
end


local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end


local function empty_to_nil(s)
  if s == "" then
    return nil
  end
  return s
end


local COMPARISON = { ["="] = true, ["=="] = true, ["!="] = true, ["<"] = true,
  ["<="] = true, [">"] = true, [">="] = true, ["~>"] = true }

-- Where each constraint was written ("file:line:col"); weak, so the job
-- tables stay plain data and HCL and JSON jobs compare equal.
local POSITIONS = setmetatable({}, { __mode = "k" })


---Returns the origin ("file:line:col", or the file name) of a constraint
---of a loaded job.
---@param c table
---@return string|nil
function jobspec.origin(c)
  return POSITIONS[c]
end


---Converts an HCL constraint (or a converted API one) to the internal form.
---`version = "1.2"` and `regexp = "..."` set the operator; a comparison
---operator next to `version` (the spec page's `operator = ">"`,
---`version = "1.2"`) becomes part of the version constraint ("> 1.2").
local function constraint(c)
  local out = {
    attribute = empty_to_nil(c.attribute),
    operator = empty_to_nil(c.operator),
    value = empty_to_nil(c.value),
  }
  if c.version then
    local op = out.operator
    out.operator, out.value = "version", c.version
    if op and COMPARISON[op] and not c.version:match("^%s*[=!<>~]") then
      out.value = op .. " " .. c.version
    end
  elseif c.regexp then
    out.operator, out.value = "regexp", c.regexp
  elseif c.set_contains then
    out.operator, out.value = "set_contains", c.set_contains
  elseif c.distinct_property then
    out.operator, out.attribute = "distinct_property", c.distinct_property
  elseif c.distinct_hosts then
    out.operator = "distinct_hosts"
  end
  out.operator = out.operator or "="
  return out
end


---The walker: turns an HCL-shaped tree into the internal job table.
---src: { tree, path, labels_of(obj), pos(container, key) -> line, col }
local function walk(src)
  local path = src.path
  local problems, warnings = {}, {}
  local origin = setmetatable({}, { __mode = "k" })

  local function linecol(c, k)
    if type(c) ~= "table" then
      return nil
    end
    return src.pos(c, k)
  end

  local function where(c, k)
    local raw = (type(c) == "table" and origin[c]) or c
    local l, col = linecol(raw, k)
    if l then
      return string.format("%s:%d:%d", path, l, col)
    end
    return path
  end

  local function add(kind, origin_s, text)
    problems[#problems + 1] = { kind = kind, message = origin_s .. ": " .. text }
  end

  local function ctx(label, noun)
    return { problems = problems, warnings = warnings, label = label,
             noun = noun or "key", where = where, linecol = linecol,
             origin = origin, name = path }
  end

  local function constraints(list, label)
    local out = {}
    for i, raw in ipairs(list or {}) do
      local c = constraint(raw)
      local at = where(list, i)
      POSITIONS[c] = at
      local ok, err = constraint_check.validate(c)
      if not ok then
        add("type", at, string.format("%s: %s", label, err))
      elseif c.operator == "distinct_hosts" or c.operator == "distinct_property" then
        warnings[#warnings + 1] = string.format(
          "%s: constraint %q in %s is ignored: drvctl places every task on this host",
          at, c.operator, label)
      end
      out[#out + 1] = c
    end
    return out
  end

  -- Returns the objects of a block list (or of a JSON list of objects).
  local function blocks(v, container_t, key, label)
    if is_null(v) then
      return {}
    end
    if type(v) == "table" and (v[1] ~= nil or next(v) == nil) then
      local ok = true
      for _, b in ipairs(v) do
        if type(b) ~= "table" or b[1] ~= nil then
          ok = false
        end
      end
      if ok then
        return v
      end
    end
    add("type", where(container_t, key), string.format(
      "wrong type for key %q in %s: expected block, found %s", key, label, schema.describe(v)))
    return {}
  end

  local function block_name(obj, list, i, what, label)
    local labels = src.labels_of(obj)
    if #labels ~= 1 or labels[1] == "" then
      add("missing", where(list, i), string.format("%s in %s needs exactly one name", what, label))
      return nil
    end
    return labels[1]
  end

  local function load_task(tobj, tlist, i, group_label)
    local name = block_name(tobj, tlist, i, "task", group_label)
    if not name then
      return nil
    end
    local label = string.format("task %q", name)
    local tpos = where(tlist, i)
    local tf = schema.normalize(tobj, { object = TASK }, ctx(label)) or {}
    local task = {
      name = name,
      driver = tf.driver,
      env = tf.env or {},
      meta = tf.meta or {},
      user = tf.user,
      kill_signal = tf.kill_signal,
      kill_timeout_ms = DEFAULT_KILL_TIMEOUT_MS,
      constraints = constraints(tf.constraint, label),
    }
    if tf.kill_timeout then
      local ms = schema.duration_ms(tf.kill_timeout)
      if ms then
        task.kill_timeout_ms = ms
      else
        add("type", where(tobj, "kill_timeout"), string.format(
          "%s: invalid duration for key \"kill_timeout\": %q", label, tf.kill_timeout))
      end
    end

    local res = tf.resources or {}
    local networks = {}
    local seen_labels = {}
    if res.network and #res.network > 1 then
      add("type", where(res.network, 2), string.format(
        "%s: only one network block per task is supported, found %d", label, #res.network))
    end
    for j, net in ipairs(res.network or {}) do
      local reserved, dynamic = {}, {}
      local raw_ports = blocks(net.port, origin[net] or net, "port", label .. " network")
      for k, pobj in ipairs(raw_ports) do
        local plabel = block_name(pobj, raw_ports, k, "port", label .. " network")
        local pf = schema.normalize(pobj, { object = PORT }, ctx(label, "key"),
          string.format("resources.network[%d].port", j)) or {}
        if plabel and seen_labels[plabel] then
          add("type", where(raw_ports, k), string.format(
            "%s: duplicate network port %q", label, plabel))
          plabel = nil
        elseif plabel then
          seen_labels[plabel] = true
        end
        for _, field in ipairs({ "static", "to" }) do
          local v = pf[field]
          if v and (v < 0 or v > 65535) then
            add("type", where(origin[pf] or pobj, field), string.format(
              "%s: port %q %s must be between 0 and 65535, found %d", label,
              plabel or "?", field, v))
            plabel = nil
          end
        end
        if plabel then
          if pf.static and pf.static ~= 0 then
            reserved[#reserved + 1] = { label = plabel, static = pf.static, to = pf.to }
          else
            dynamic[#dynamic + 1] = { label = plabel, to = pf.to }
          end
        end
      end
      table.move(dynamic, 1, #dynamic, #reserved + 1, reserved)
      networks[j] = { mbits = net.mbits or 10, ports = reserved }
    end
    task.resources = { cpu = res.cpu or 100, memory = res.memory or 300, networks = networks }
    if task.resources.memory * MIB >= 1e14 or task.resources.memory < 0 then
      add("type", where(tf.resources, "memory"), string.format(
        "%s: memory out of range: %d", label, task.resources.memory))
    end
    if task.resources.cpu < 0 then
      add("type", where(tf.resources, "cpu"), string.format(
        "%s: cpu out of range: %d", label, task.resources.cpu))
    end

    local logs = tf.logs or {}
    task.logs = { max_files = logs.max_files or 10, max_file_size = logs.max_file_size or 10 }

    task.artifacts = {}
    for j, a in ipairs(tf.artifact or {}) do
      local apos = where(tf.artifact, j)
      if not a.source or a.source == "" then
        add("missing", apos, label .. ' artifact: field "source" is required')
      end
      local dest = a.destination or "local/"
      if container.clean_relative(dest) == nil then
        add("type", where(a, "destination"), string.format(
          "%s artifact destination escapes the task directory: %q", label, dest))
      end
      task.artifacts[j] = { source = a.source, destination = dest, options = a.options or {} }
    end

    if task.driver == nil or task.driver == "" then
      add("missing", tpos, label .. ': field "driver" is required')
      task.config = tf.config
    elseif task.driver ~= "docker" then
      add("driver", where(tobj, "driver"), string.format(
        '%s: driver %q is not supported, drvctl runs only "docker" tasks', label, task.driver))
      task.config = tf.config
    else
      local config = schema.normalize(tf.config, { object = container.SCHEMA },
        ctx(label, "option"), "", tobj, "config")
      container.check(config, { problems = problems, warnings = warnings, label = label,
                                where = where }, tpos)
      task.config = config or {}
    end
    return task
  end

  local function load_tasks(v, c, label)
    local tasks = {}
    local seen = {}
    local list = blocks(v, c, "task", label)
    for i, tobj in ipairs(list) do
      local task = load_task(tobj, list, i, label)
      if task then
        if seen[task.name] then
          add("type", where(list, i), string.format("duplicate task %q in %s", task.name, label))
        end
        seen[task.name] = true
        tasks[#tasks + 1] = task
      end
    end
    return tasks
  end

  local tree = src.tree
  if type(tree) ~= "table" then
    add("type", path, "expected a job")
    return nil, problems
  end
  for _, k in ipairs(sorted_keys(tree)) do
    if k ~= "job" then
      local hint = schema.suggest(tostring(k), { "job" })
      add("unknown", where(tree, k), string.format("unknown key %q%s", tostring(k),
        hint and string.format(', did you mean "%s"?', hint) or ""))
    end
  end
  local jobs = blocks(tree.job, tree, "job", "the file")
  if #jobs == 0 then
    if #problems == 0 then
      add("missing", path, "no job found")
    end
    return nil, problems
  elseif #jobs > 1 then
    add("type", where(jobs, 2), "only one job per file is allowed")
  end
  local jobj = jobs[1]
  local job_name = block_name(jobj, jobs, 1, "job", "the file") or ""
  local jlabel = string.format("job %q", job_name)
  local jf = schema.normalize(jobj, { object = JOB }, ctx(jlabel)) or {}
  local job = {
    name = job_name,
    datacenters = jf.datacenters or {},
    region = jf.region or "global",
    meta = jf.meta or {},
    constraints = constraints(jf.constraint, jlabel),
    groups = {},
  }

  local gseen = {}
  local glist = blocks(jf.group, jobj, "group", jlabel)
  for i, gobj in ipairs(glist) do
    local gname = block_name(gobj, glist, i, "group", jlabel)
    if gname then
      local glabel = string.format("group %q", gname)
      local gf = schema.normalize(gobj, { object = GROUP }, ctx(glabel)) or {}
      local count = gf.count or 1
      if count < 0 then
        add("type", where(gobj, "count"), string.format("%s: count must not be negative: %d", glabel, count))
      end
      if gseen[gname] then
        add("type", where(glist, i), string.format("duplicate group %q in %s", gname, jlabel))
      end
      gseen[gname] = true
      job.groups[#job.groups + 1] = {
        name = gname,
        count = count,
        meta = gf.meta or {},
        constraints = constraints(gf.constraint, glabel),
        tasks = load_tasks(gf.task, gobj, glabel),
      }
    end
  end
  -- A task directly in a job gets an implicit group named after it.
  for _, task in ipairs(load_tasks(jf.task, jobj, jlabel)) do
    if gseen[task.name] then
      add("type", path, string.format("duplicate group %q in %s", task.name, jlabel))
    end
    gseen[task.name] = true
    job.groups[#job.groups + 1] = {
      name = task.name, count = 1, meta = {}, constraints = {}, tasks = { task },
    }
  end

  if #problems > 0 then
    return nil, problems
  end
  return job, warnings, where
end


-- API JSON -> HCL-shaped tree ------------------------------------------------

local function meaningful(v)
  if is_null(v) or v == false or v == "" or v == 0 then
    return false
  end
  return not (type(v) == "table" and next(v) == nil)
end


local function convert_json(root, path)
  local labels = setmetatable({}, { __mode = "k" })
  local problems, warnings = {}, {}

  -- spec values: "key" (copy to HCL key), true (silently ignored),
  -- "warn" (ignored, warned when set), "label", or function(v, out).
  local function fields(src, spec, out, label)
    if type(src) ~= "table" or src[1] ~= nil then
      problems[#problems + 1] = { kind = "type", message = string.format(
        "%s: %s: expected an object, found %s", path, label, schema.describe(src)) }
      return out
    end
    for _, k in ipairs(sorted_keys(src)) do
      local v, s = src[k], spec[k]
      if s == nil then
        local hint = schema.suggest(tostring(k), spec)
        problems[#problems + 1] = { kind = "unknown", message = string.format(
          "%s: unknown key %q in %s%s", path, tostring(k), label,
          hint and string.format(", did you mean %q?", hint) or "") }
      elseif is_null(v) or s == true then
        v = nil -- absent, or known and deliberately ignored
      elseif s == "warn" then
        if meaningful(v) then
          warnings[#warnings + 1] = string.format(
            "%s: key %q in %s is not supported by drvctl and is ignored", path, k, label)
        end
      elseif s == "label" then
        if type(v) == "string" and v ~= "" then
          labels[out] = { v }
        end
      elseif type(s) == "string" then
        out[s] = empty_to_nil(v)
      else
        s(v, out)
      end
    end
    return out
  end

  local function list_of(conv)
    return function(key)
      return function(v, out)
        if type(v) == "table" and (v[1] ~= nil or next(v) == nil) then
          local list = {}
          for i, item in ipairs(v) do
            list[i] = conv(item, i)
          end
          out[key] = list
        else
          out[key] = v
        end
      end
    end
  end

  local constraint_list = list_of(function(c)
    return fields(c, { LTarget = "attribute", RTarget = "value", Operand = "operator" },
      {}, "constraint")
  end)

  local artifact_list = list_of(function(a)
    return fields(a, { GetterSource = "source", GetterOptions = "options",
      RelativeDest = "destination", GetterMode = true, GetterHeaders = "warn" }, {}, "artifact")
  end)

  local function ports(reserved)
    return function(v, out)
      if type(v) ~= "table" then
        out.port = v
        return
      end
      out.port = out.port or {}
      for _, p in ipairs(v) do
        local port = {}
        local tmp = fields(p, { Label = "name", Value = "value", To = "to",
          HostNetwork = true }, {}, "port")
        if reserved then
          port.static = tmp.value
        end
        port.to = (tmp.to ~= 0) and tmp.to or nil
        labels[port] = { tmp.name or "" }
        if reserved then
          -- reserved ports first, in order
          local n = 0
          for _, q in ipairs(out.port) do
            if q.static then
              n = n + 1
            end
          end
          table.insert(out.port, n + 1, port)
        else
          out.port[#out.port + 1] = port
        end
      end
    end
  end

  local network_list = list_of(function(n)
    return fields(n, { MBits = "mbits", ReservedPorts = ports(true),
      DynamicPorts = ports(false), Device = true, CIDR = true, IP = true,
      Mode = "warn", DNS = "warn", Hostname = "warn" }, {}, "network")
  end)

  local function resources(v, out)
    out.resources = fields(v, { CPU = "cpu", MemoryMB = "memory", Networks = network_list("network"),
      DiskMB = true, IOPS = true, MemoryMaxMB = "warn", Devices = "warn", Cores = "warn" },
      {}, "resources")
  end

  local function logs(v, out)
    out.logs = fields(v, { MaxFiles = "max_files", MaxFileSizeMB = "max_file_size" }, {}, "logs")
  end

  local function kill_timeout(v, out)
    if type(v) == "number" and math.tointeger(v) then
      out.kill_timeout = string.format("%dms", math.tointeger(v) // 1000000)
    else
      out.kill_timeout = v
    end
  end

  local task_list = list_of(function(t)
    return fields(t, { Name = "label", Driver = "driver", User = "user", Config = "config",
      Env = "env", Meta = "meta", Constraints = constraint_list("constraint"),
      Resources = resources, KillTimeout = kill_timeout, KillSignal = "kill_signal",
      LogConfig = logs, Artifacts = artifact_list("artifact"),
      Affinities = "warn", Spreads = "warn", Services = "warn", Vault = "warn",
      Templates = "warn", DispatchPayload = "warn", VolumeMounts = "warn",
      Leader = "warn", ShutdownDelay = "warn", Lifecycle = "warn", Kind = true,
      ScalingPolicies = "warn", CSIPluginConfig = "warn", RestartPolicy = "warn",
      Identity = "warn", Identities = "warn", Consul = "warn" }, {}, "task")
  end)

  local group_list = list_of(function(g)
    return fields(g, { Name = "label", Count = "count", Meta = "meta",
      Constraints = constraint_list("constraint"), Tasks = task_list("task"),
      Affinities = "warn", Spreads = "warn", RestartPolicy = "warn",
      ReschedulePolicy = "warn", EphemeralDisk = "warn", Update = "warn",
      Migrate = "warn", Networks = "warn", Services = "warn", Volumes = "warn",
      ShutdownDelay = "warn", StopAfterClientDisconnect = "warn", Scaling = "warn",
      Consul = "warn", MaxClientDisconnect = "warn" }, {}, "group")
  end)

  local job = root
  if type(root) == "table" and root.Job ~= nil then
    job = root.Job
    for _, k in ipairs(sorted_keys(root)) do
      if k ~= "Job" then
        problems[#problems + 1] = { kind = "unknown", message = string.format(
          "%s: unknown key %q next to \"Job\"", path, tostring(k)) }
      end
    end
  end
  local jobj = {}
  local id
  fields(job, { Name = "label", ID = function(v) id = v end, Region = "region",
    Datacenters = "datacenters", Meta = "meta", Constraints = constraint_list("constraint"),
    TaskGroups = group_list("group"),
    Namespace = true, ParentID = true, Type = true, Priority = true, AllAtOnce = true,
    Status = true, StatusDescription = true, Stable = true, Version = true,
    SubmitTime = true, CreateIndex = true, ModifyIndex = true, JobModifyIndex = true,
    Dispatched = true, VaultToken = true, ConsulToken = true, NomadTokenID = true,
    VaultNamespace = true, ConsulNamespace = true, Stop = true, Payload = true,
    Update = "warn", Periodic = "warn", ParameterizedJob = "warn", Affinities = "warn",
    Spreads = "warn", Reschedule = "warn", Migrate = "warn", Multiregion = "warn",
    UI = true, NodePool = true }, jobj, "job")
  if not labels[jobj] and type(id) == "string" and id ~= "" then
    labels[jobj] = { id }
  end
  return { job = { jobj } }, labels, problems, warnings
end


---Loads a job file. Returns the internal job table and the warnings, or
---nil and an array of problems ({ kind, message }).
---The third result on success is where(table, key) -> "file:line:col".
---@param src string file contents
---@param path string file name used in messages
---@return table|nil job
---@return table warnings_or_problems
---@return function|nil where
function jobspec.load(src, path)
  path = path or "job"
  if type(src) ~= "string" then
    return nil, { { kind = "syntax", message = path .. ": no job source" } }
  end
  if src:match("^%s*(.)") == "{" then
    local cjson = require("cjson.safe")
    local root, err = cjson.decode(src)
    if root == nil then
      return nil, { { kind = "syntax", message = string.format("%s: invalid JSON: %s", path, err) } }
    end
    local tree, labels, problems, warnings = convert_json(root, path)
    local job, more, where = walk({
      tree = tree, path = path,
      labels_of = function(o) return labels[o] or {} end,
      pos = function() return nil end,
    })
    if #problems > 0 or job == nil then
      if job == nil then -- else `more` holds warnings (strings), not problems
        table.move(more, 1, #more, #problems + 1, problems)
      end
      return nil, problems
    end
    table.move(more, 1, #more, #warnings + 1, warnings)
    return job, warnings, where
  end
  local hcl = require("drv.hcl")
  local tree, err = hcl.parse(src, path)
  if tree == nil then
    return nil, { { kind = "syntax", message = err } }
  end
  return walk({ tree = tree, path = path, labels_of = hcl.labels, pos = hcl.pos })
end


return jobspec
