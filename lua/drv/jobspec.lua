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
local util = require("drv.util")

local fmt = util.format

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

-- Job, group, task names and port labels become path components (alloc
-- and task dirs), container names, env var names and Engine API URL
-- parameters: Docker's container-name characters only, no "..".
local MAX_NAME = 128
local NAME_RULE = 'letters, digits, "_", "." and "-", starting with a letter or digit, '
  .. 'no "..", at most 128 bytes'
jobspec.MAX_NAME = MAX_NAME

-- Caps that keep planning bounded (README "Limits").
jobspec.MAX_COUNT = 500        -- count of one group
jobspec.MAX_INSTANCES = 500    -- sum over groups of count x tasks (a plan of
                                -- 500 minimal instances takes about 0.7 s here)
jobspec.MAX_LOG_FILES = 1000   -- logs.max_files
jobspec.MAX_LOG_FILE_MB = 10240 -- logs.max_file_size (MB)

-- kill_signal names (Linux), as Docker's /kill?signal= accepts them.
local SIGNALS = {}
for _, name in ipairs({ "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE",
    "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP",
    "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL",
    "PWR", "SYS", "RTMIN", "RTMAX" }) do
  SIGNALS["SIG" .. name] = true
end
for i = 1, 15 do
  SIGNALS["SIGRTMIN+" .. i] = true
  SIGNALS["SIGRTMAX-" .. i] = true
end
jobspec.SIGNALS = SIGNALS


---Returns the canonical signal name ("SIGINT") for a kill_signal as written
---("SIGINT", "sigint", "INT"), or nil when it names no signal.
---@param s string
---@return string|nil
function jobspec.signal(s)
  if type(s) ~= "string" or #s > 16 then
    return nil
  end
  local up = s:upper()
  if up:sub(1, 3) ~= "SIG" then
    up = "SIG" .. up
  end
  if SIGNALS[up] then
    return up
  end
  return nil
end


---True when name is a valid job, group or task name or port label.
---@param name any
---@return boolean
function jobspec.valid_name(name)
  return type(name) == "string" and #name <= MAX_NAME
    and name:find("^[a-zA-Z0-9][a-zA-Z0-9_.%-]*$") ~= nil
    and not name:find("..", 1, true)
end


-- A map key that becomes an environment variable or label name: not
-- empty, no "=", no control characters, valid UTF-8, at most 256 bytes.
local function valid_key(k)
  return type(k) == "string" and k ~= "" and #k <= 256 and not k:find("[%c=]")
    and utf8.len(k) ~= nil
end


local function is_null(v)
  return v == nil or type(v) == "userdata"
end


local sorted_keys = util.sorted_keys


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


-- The walker's state for one tree: problems and warnings, the origin of
-- normalised tables, and the helpers every step reports through.
-- src: { tree, path, labels_of(obj), pos(container, key) -> line, col }
local function new_walker(src)
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
    if src.where then
      return src.where(raw, k)
    end
    local l, col = linecol(raw, k)
    if l then
      return fmt("%s:%d:%d", path, l, col)
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
        add("type", at, fmt("%s: %s", label, err))
      elseif c.operator == "distinct_hosts" or c.operator == "distinct_property" then
        warnings[#warnings + 1] = fmt(
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
    add("type", where(container_t, key), fmt(
      "wrong type for key %q in %s: expected block, found %s", key, label, schema.describe(v)))
    return {}
  end

  local function block_name(obj, list, i, what, label)
    local labels = src.labels_of(obj)
    if #labels ~= 1 or labels[1] == "" then
      add("missing", where(list, i), fmt("%s in %s needs exactly one name", what, label))
      return nil
    end
    local name = labels[1]
    if not jobspec.valid_name(name) then
      add("type", where(list, i), fmt("%s not allowed (%s): %q",
        what == "port" and "port label" or what .. " name", NAME_RULE, name))
      return nil
    end
    return name
  end

  -- Map keys that become env var names (meta, env) or label names.
  local function check_keys(map, what, label)
    for _, k in ipairs(util.sorted_keys(map or {})) do
      if not valid_key(k) then
        add("type", where(map, k), fmt(
          '%s: %s key not allowed (not empty, no "=", no control characters): %q',
          label, what, k))
      end
    end
  end

  return {
    src = src, path = path, problems = problems, warnings = warnings, origin = origin,
    where = where, add = add, ctx = ctx, constraints = constraints, blocks = blocks,
    block_name = block_name, check_keys = check_keys,
  }
end


-- resources { cpu memory network { port ... } } -> task.resources
local function task_resources(w, task, tf, label)
  local where, add, ctx, origin, blocks = w.where, w.add, w.ctx, w.origin, w.blocks
  local block_name = w.block_name
  local res = tf.resources or {}
  local networks = {}
  local seen_labels = {}
  if res.network and #res.network > 1 then
    add("type", where(res.network, 2), fmt(
      "%s: only one network block per task is supported, found %d", label, #res.network))
  end
  for j, net in ipairs(res.network or {}) do
    local reserved, dynamic = {}, {}
    local raw_ports = blocks(net.port, origin[net] or net, "port", label .. " network")
    for k, pobj in ipairs(raw_ports) do
      local plabel = block_name(pobj, raw_ports, k, "port", label .. " network")
      local pf = schema.normalize(pobj, { object = PORT }, ctx(label, "key"),
        fmt("resources.network[%d].port", j)) or {}
      if plabel and seen_labels[plabel] then
        add("type", where(raw_ports, k), fmt(
          "%s: duplicate network port %q", label, plabel))
        plabel = nil
      elseif plabel then
        seen_labels[plabel] = true
      end
      for _, field in ipairs({ "static", "to" }) do
        local v = pf[field]
        if v and (v < 0 or v > 65535) then
          add("type", where(origin[pf] or pobj, field), fmt(
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
    add("type", where(tf.resources, "memory"), fmt(
      "%s: memory out of range: %d", label, task.resources.memory))
  end
  if task.resources.cpu < 0 then
    add("type", where(tf.resources, "cpu"), fmt(
      "%s: cpu out of range: %d", label, task.resources.cpu))
  end
end


-- logs { max_files max_file_size } -> task.logs
local function task_logs(w, task, tf, label)
  local where, add = w.where, w.add
  local logs = tf.logs or {}
  task.logs = { max_files = logs.max_files or 10, max_file_size = logs.max_file_size or 10 }
  for key, max in pairs({ max_files = jobspec.MAX_LOG_FILES,
                          max_file_size = jobspec.MAX_LOG_FILE_MB }) do
    local v = task.logs[key]
    if v < 1 or v > max then
      add("type", where(tf.logs, key), fmt("%s: logs %s must be between 1 and %d, found %d",
        label, key, max, v))
    end
  end
end


-- artifact blocks -> task.artifacts
local function task_artifacts(w, task, tf, label)
  local where, add, origin = w.where, w.add, w.origin
  task.artifacts = {}
  for j, a in ipairs(tf.artifact or {}) do
    local apos = where(tf.artifact, j)
    if not a.source or a.source == "" then
      add("missing", apos, label .. ' artifact: field "source" is required')
    end
    local dest = a.destination or "local/"
    if dest:sub(1, 1) == "/" or dest:find("%c") or container.clean_relative(dest) == nil then
      add("type", where(a, "destination"), fmt(
        "%s artifact destination escapes the task directory: %q", label, dest))
    end
    task.artifacts[j] = { source = a.source, destination = dest, options = a.options or {} }
    origin[task.artifacts[j]] = origin[a] or a   -- positions for later messages
  end
end


-- The driver and its config: only "docker" tasks get their config
-- normalised and checked (container.SCHEMA, container.check).
local function task_config(w, task, tf, tobj, tpos, label)
  local where, add, ctx, check_keys = w.where, w.add, w.ctx, w.check_keys
  local problems, warnings = w.problems, w.warnings
  if task.driver == nil or task.driver == "" then
    add("missing", tpos, label .. ': field "driver" is required')
    task.config = tf.config
  elseif task.driver ~= "docker" then
    add("driver", where(tobj, "driver"), fmt(
      '%s: driver %q is not supported, drvctl runs only "docker" tasks', label, task.driver))
    task.config = tf.config
  else
    local config = schema.normalize(tf.config, { object = container.SCHEMA },
      ctx(label, "option"), "", tobj, "config")
    container.check(config, { problems = problems, warnings = warnings, label = label,
                              where = where }, tpos)
    -- the image reference is checked by container.check (drv.imageref)
    if config and type(config.labels) == "table" then
      check_keys(config.labels, "label", label .. " config")
    end
    task.config = config or {}
  end
end


local function load_task(w, tobj, tlist, i, group_label)
  local where, add, ctx = w.where, w.add, w.ctx
  local constraints, block_name, check_keys = w.constraints, w.block_name, w.check_keys
  local name = block_name(tobj, tlist, i, "task", group_label)
  if not name then
    return nil
  end
  local label = fmt("task %q", name)
  local tpos = where(tlist, i)
  local tf = schema.normalize(tobj, { object = TASK }, ctx(label)) or {}
  check_keys(tf.env, "env", label)
  check_keys(tf.meta, "meta", label)
  local kill_signal = tf.kill_signal
  if kill_signal ~= nil then
    kill_signal = jobspec.signal(tf.kill_signal)
    if not kill_signal then
      local hint = util.suggest(tf.kill_signal:upper(), SIGNALS)
      add("type", where(tobj, "kill_signal"), fmt("%s: unknown kill_signal%s: %q", label,
        hint and fmt(' (did you mean "%s"?)', hint) or "", tf.kill_signal))
    end
  end
  local task = {
    name = name,
    driver = tf.driver,
    env = tf.env or {},
    meta = tf.meta or {},
    user = tf.user,
    kill_signal = kill_signal,
    kill_timeout_ms = DEFAULT_KILL_TIMEOUT_MS,
    constraints = constraints(tf.constraint, label),
  }
  if tf.kill_timeout then
    local ms = schema.duration_ms(tf.kill_timeout)
    if ms and ms >= 0 then
      task.kill_timeout_ms = ms
    else
      add("type", where(tobj, "kill_timeout"), fmt(
        "%s: invalid duration for key \"kill_timeout\": %q", label, tf.kill_timeout))
    end
  end
  task_resources(w, task, tf, label)
  task_logs(w, task, tf, label)
  task_artifacts(w, task, tf, label)
  task_config(w, task, tf, tobj, tpos, label)
  return task
end


local function load_tasks(w, v, c, label)
  local where, add, blocks = w.where, w.add, w.blocks
  local tasks = {}
  local seen = {}
  local list = blocks(v, c, "task", label)
  for i, tobj in ipairs(list) do
    local task = load_task(w, tobj, list, i, label)
    if task then
      if seen[task.name] then
        add("type", where(list, i), fmt("duplicate task %q in %s", task.name, label))
      end
      seen[task.name] = true
      tasks[#tasks + 1] = task
    end
  end
  return tasks
end


---The walker: turns an HCL-shaped tree into the internal job table.
---src: { tree, path, labels_of(obj), pos(container, key) -> line, col }
local function walk(src)
  local w = new_walker(src)
  local path, problems, warnings = w.path, w.problems, w.warnings
  local where, add, ctx, blocks = w.where, w.add, w.ctx, w.blocks
  local block_name, check_keys, constraints = w.block_name, w.check_keys, w.constraints

  local tree = src.tree
  if type(tree) ~= "table" then
    add("type", path, "expected a job")
    return nil, problems
  end
  for _, k in ipairs(sorted_keys(tree)) do
    if k ~= "job" then
      local hint = util.suggest(tostring(k), { "job" })
      add("unknown", where(tree, k), fmt("unknown key %q%s", tostring(k),
        hint and fmt(', did you mean "%s"?', hint) or ""))
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
  local jlabel = fmt("job %q", job_name)
  local jf = schema.normalize(jobj, { object = JOB }, ctx(jlabel)) or {}
  check_keys(jf.meta, "meta", jlabel)
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
      local glabel = fmt("group %q", gname)
      local gf = schema.normalize(gobj, { object = GROUP }, ctx(glabel)) or {}
      check_keys(gf.meta, "meta", glabel)
      local count = gf.count or 1
      if count < 0 then
        add("type", where(gobj, "count"), fmt("%s: count must not be negative: %d", glabel, count))
        count = 0
      elseif count > jobspec.MAX_COUNT then
        add("type", where(gobj, "count"), fmt("%s: count must be at most %d, found %d",
          glabel, jobspec.MAX_COUNT, count))
        count = 0
      end
      if gseen[gname] then
        add("type", where(glist, i), fmt("duplicate group %q in %s", gname, jlabel))
      end
      gseen[gname] = true
      job.groups[#job.groups + 1] = {
        name = gname,
        count = count,
        meta = gf.meta or {},
        constraints = constraints(gf.constraint, glabel),
        tasks = load_tasks(w, gf.task, gobj, glabel),
      }
    end
  end
  -- A task directly in a job gets an implicit group named after it.
  for _, task in ipairs(load_tasks(w, jf.task, jobj, jlabel)) do
    if gseen[task.name] then
      add("type", path, fmt("duplicate group %q in %s", task.name, jlabel))
    end
    gseen[task.name] = true
    job.groups[#job.groups + 1] = {
      name = task.name, count = 1, meta = {}, constraints = {}, tasks = { task },
    }
  end

  local instances = 0
  for _, g in ipairs(job.groups) do
    instances = instances + g.count * #g.tasks
  end
  if instances > jobspec.MAX_INSTANCES then
    add("type", where(jobs, 1), fmt(
      "%s: too many task instances (count x tasks, summed over groups): at most %d, found %d",
      jlabel, jobspec.MAX_INSTANCES, instances))
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


-- Where each converted table came from in the JSON document:
-- JPOS[t] = { self = "Job.TaskGroups[0]", keys = { count = "Job.TaskGroups[0].Count" } }.
local JPOS = setmetatable({}, { __mode = "k" })


-- A JSON path step: .Name for plain keys, ["..."] (escaped) for others.
local function step(at, k)
  if type(k) == "number" then
    return fmt("%s[%d]", at, k - 1)
  elseif type(k) == "string" and #k <= 64 and k:find("^[%a_][%w_]*$") then
    return at .. "." .. k
  end
  return at .. "[" .. util.quote(k, 64) .. "]"
end


-- Records the JSON path of t and of everything under it (values the
-- converter copies as they are: Config, Env, Meta...).
local function register(t, at)
  if type(t) ~= "table" or JPOS[t] then
    return
  end
  local keys = {}
  JPOS[t] = { self = at, keys = keys }
  for k, v in pairs(t) do
    local p = step(at, k)
    keys[k] = p
    register(v, p)
  end
end


local function json_where(path, c, k)
  local info = type(c) == "table" and JPOS[c]
  if not info then
    return path
  end
  return path .. ": " .. ((k ~= nil and info.keys[k]) or info.self)
end


local function is_object(v)
  return type(v) == "table" and (v[1] == nil)
end


local function is_list(v)
  return type(v) == "table" and (v[1] ~= nil or next(v) == nil)
end


-- The state of one JSON conversion: labels of converted objects, problems,
-- warnings, and the helpers that convert with positions (JPOS).
local function new_converter(path)
  local labels = setmetatable({}, { __mode = "k" })
  local problems, warnings = {}, {}

  local function wrong(at, expected, v)
    problems[#problems + 1] = { kind = "type", message = fmt(
      "%s: %s: wrong type: expected %s, found %s", path, at, expected, schema.describe(v)) }
  end

  -- A fresh converted table, registered at `at`.
  local function new(at)
    local t = {}
    JPOS[t] = { self = at, keys = {} }
    return t
  end

  -- spec values: "key" (copy to HCL key), true (silently ignored),
  -- "warn" (ignored, warned when set), "label", or function(v, out, at).
  local function fields(src, spec, out, label, at)
    if not is_object(src) then
      wrong(at, "an object", src)
      return out
    end
    local keys = JPOS[out].keys
    for _, k in ipairs(sorted_keys(src)) do
      local v, s = src[k], spec[k]
      local kat = step(at, k)
      if s == nil then
        local hint = util.suggest(tostring(k), spec)
        problems[#problems + 1] = { kind = "unknown", message = fmt(
          "%s: %s: unknown key %q in %s%s", path, kat, tostring(k), label,
          hint and fmt(", did you mean %q?", hint) or "") }
      elseif is_null(v) or s == true then -- luacheck: ignore 542
        -- absent, or known and deliberately ignored
      elseif s == "warn" then
        if meaningful(v) then
          warnings[#warnings + 1] = fmt(
            "%s: %s: key %q in %s is not supported by drvctl and is ignored", path, kat, k, label)
        end
      elseif s == "label" then
        if type(v) ~= "string" then
          wrong(kat, "a string", v)
        elseif v ~= "" then
          labels[out] = { v }
        end
      elseif type(s) == "string" then
        out[s] = empty_to_nil(v)
        keys[s] = kat
        register(v, kat)
      else
        s(v, out, kat)
      end
    end
    return out
  end

  local function list_of(conv)
    return function(key)
      return function(v, out, at)
        if not is_list(v) then
          wrong(at, "a list", v)
          return
        end
        local list = new(at)
        for i, item in ipairs(v) do
          local iat = step(at, i)
          list[i] = conv(item, iat)
          JPOS[list].keys[i] = iat
        end
        out[key] = list
        JPOS[out].keys[key] = at
      end
    end
  end

  return { path = path, labels = labels, problems = problems, warnings = warnings,
           wrong = wrong, new = new, fields = fields, list_of = list_of }
end


-- ReservedPorts / DynamicPorts -> port blocks of the network (reserved
-- ports first, in order).
local function json_ports(cv, reserved)
  local wrong, new, fields, labels = cv.wrong, cv.new, cv.fields, cv.labels
  return function(v, out, at)
    if not is_list(v) then
      wrong(at, "a list of ports", v)
      return
    end
    out.port = out.port or new(at)
    JPOS[out].keys.port = JPOS[out].keys.port or at
    for i, p in ipairs(v) do
      local pat = step(at, i)
      local tmp = fields(p, { Label = "name", Value = "value", To = "to",
        HostNetwork = true }, new(pat), "port", pat)
      local port = new(pat)
      local tkeys = JPOS[tmp].keys
      if tmp.name ~= nil and type(tmp.name) ~= "string" then
        wrong(tkeys.name, "a string", tmp.name)
      end
      for _, f in ipairs({ "value", "to" }) do
        if tmp[f] ~= nil and type(tmp[f]) ~= "number" then
          wrong(tkeys[f], "a number", tmp[f])
          tmp[f] = nil
        end
      end
      if reserved then
        port.static = tmp.value
        JPOS[port].keys.static = tkeys.value
      end
      port.to = (tmp.to ~= 0) and tmp.to or nil
      JPOS[port].keys.to = tkeys.to
      labels[port] = { type(tmp.name) == "string" and tmp.name or "" }
      local list = out.port
      local n = #list
      if reserved then
        -- reserved ports first, in order
        n = 0
        for _, q in ipairs(list) do
          if q.static then
            n = n + 1
          end
        end
      end
      table.insert(list, n + 1, port)
      local lkeys = JPOS[list].keys
      for j = 1, #list do
        lkeys[j] = JPOS[list[j]].self
      end
    end
  end
end


-- The converter of a TaskGroups list (with its Tasks, Resources, ...),
-- and of a Constraints list.
local function json_group_list(cv)
  local wrong, new, fields, list_of = cv.wrong, cv.new, cv.fields, cv.list_of
  local constraint_list = list_of(function(c, at)
    return fields(c, { LTarget = "attribute", RTarget = "value", Operand = "operator" },
      new(at), "constraint", at)
  end)

  local artifact_list = list_of(function(a, at)
    return fields(a, { GetterSource = "source", GetterOptions = "options",
      RelativeDest = "destination", GetterMode = true, GetterHeaders = "warn" },
      new(at), "artifact", at)
  end)

  local network_list = list_of(function(n, at)
    return fields(n, { MBits = "mbits", ReservedPorts = json_ports(cv, true),
      DynamicPorts = json_ports(cv, false), Device = true, CIDR = true, IP = true,
      Mode = "warn", DNS = "warn", Hostname = "warn" }, new(at), "network", at)
  end)

  local function resources(v, out, at)
    out.resources = fields(v, { CPU = "cpu", MemoryMB = "memory",
      Networks = network_list("network"), DiskMB = true, IOPS = true,
      MemoryMaxMB = "warn", Devices = "warn", Cores = "warn" }, new(at), "resources", at)
    JPOS[out].keys.resources = at
  end

  local function logs(v, out, at)
    out.logs = fields(v, { MaxFiles = "max_files", MaxFileSizeMB = "max_file_size" },
      new(at), "logs", at)
    JPOS[out].keys.logs = at
  end

  local function kill_timeout(v, out, at)
    if type(v) == "number" then
      local ns = math.tointeger(v)
      if not ns or ns < 0 or ns >= 1e18 then
        wrong(at, "a duration in nanoseconds (a non-negative integer)", v)
        return
      end
      out.kill_timeout = fmt("%dms", ns // 1000000)
    elseif type(v) == "string" then
      out.kill_timeout = v
    else
      wrong(at, "a duration in nanoseconds", v)
      return
    end
    JPOS[out].keys.kill_timeout = at
  end

  local task_list = list_of(function(t, at)
    return fields(t, { Name = "label", Driver = "driver", User = "user", Config = "config",
      Env = "env", Meta = "meta", Constraints = constraint_list("constraint"),
      Resources = resources, KillTimeout = kill_timeout, KillSignal = "kill_signal",
      LogConfig = logs, Artifacts = artifact_list("artifact"),
      Affinities = "warn", Spreads = "warn", Services = "warn", Vault = "warn",
      Templates = "warn", DispatchPayload = "warn", VolumeMounts = "warn",
      Leader = "warn", ShutdownDelay = "warn", Lifecycle = "warn", Kind = true,
      ScalingPolicies = "warn", CSIPluginConfig = "warn", RestartPolicy = "warn",
      Identity = "warn", Identities = "warn", Consul = "warn" }, new(at), "task", at)
  end)

  local group_list = list_of(function(g, at)
    return fields(g, { Name = "label", Count = "count", Meta = "meta",
      Constraints = constraint_list("constraint"), Tasks = task_list("task"),
      Affinities = "warn", Spreads = "warn", RestartPolicy = "warn",
      ReschedulePolicy = "warn", EphemeralDisk = "warn", Update = "warn",
      Migrate = "warn", Networks = "warn", Services = "warn", Volumes = "warn",
      ShutdownDelay = "warn", StopAfterClientDisconnect = "warn", Scaling = "warn",
      Consul = "warn", MaxClientDisconnect = "warn" }, new(at), "group", at)
  end)
  return group_list, constraint_list
end


local function convert_json(root, path)
  local cv = new_converter(path)
  local labels, problems, warnings, wrong, new = cv.labels, cv.problems, cv.warnings, cv.wrong,
    cv.new
  local fields = cv.fields
  local group_list, constraint_list = json_group_list(cv)

  local job, jat = root, "(root)"
  if is_object(root) and root.Job ~= nil then
    job, jat = root.Job, "Job"
    for _, k in ipairs(sorted_keys(root)) do
      if k ~= "Job" then
        problems[#problems + 1] = { kind = "unknown", message = fmt(
          "%s: %s: unknown key %q next to \"Job\"", path, step("(root)", k), tostring(k)) }
      end
    end
  end
  local jobj = new(jat)
  local id
  local function job_id(v, _, at)
    if type(v) ~= "string" then
      wrong(at, "a string", v)
    else
      id = v
    end
  end
  fields(job, { Name = "label", ID = job_id, Region = "region",
    Datacenters = "datacenters", Meta = "meta", Constraints = constraint_list("constraint"),
    TaskGroups = group_list("group"),
    Namespace = true, ParentID = true, Type = true, Priority = true, AllAtOnce = true,
    Status = true, StatusDescription = true, Stable = true, Version = true,
    SubmitTime = true, CreateIndex = true, ModifyIndex = true, JobModifyIndex = true,
    Dispatched = true, VaultToken = true, ConsulToken = true, NomadTokenID = true,
    VaultNamespace = true, ConsulNamespace = true, Stop = true, Payload = true,
    Update = "warn", Periodic = "warn", ParameterizedJob = "warn", Affinities = "warn",
    Spreads = "warn", Reschedule = "warn", Migrate = "warn", Multiregion = "warn",
    UI = true, NodePool = true }, jobj, "job", jat)
  if not labels[jobj] and type(id) == "string" and id ~= "" then
    labels[jobj] = { id }
  end
  local jobs = { jobj }
  local tree = { job = jobs }
  JPOS[jobs] = { self = jat, keys = { jat } }
  JPOS[tree] = { self = "(root)", keys = { job = jat } }
  return tree, labels, problems, warnings
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
      return nil, { { kind = "syntax", message = fmt("%s: invalid JSON: %s", path, err) } }
    end
    local tree, labels, problems, warnings = convert_json(root, path)
    local job, more, where = walk({
      tree = tree, path = path,
      labels_of = function(o) return labels[o] or {} end,
      pos = function() return nil end,
      where = function(c, k) return json_where(path, c, k) end,
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
