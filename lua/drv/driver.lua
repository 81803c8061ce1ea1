--- The single entry module C calls (contract B): agent, plan, decode.
local agent = require("drv.agent")
local constraint = require("drv.constraint")
local container = require("drv.container")
local jobspec = require("drv.jobspec")
local ports = require("drv.ports")
local util = require("drv.util")
local uuid = require("drv.uuid")

local driver = {}


local EMPTY_ARRAY = {} -- identity marker: encodes as [] in plan JSON


---Parses the agent config (nil source: defaults) into the flat agent table.
---@param agent_src string|nil
---@param agent_path string|nil
---@param host table
---@return table|nil agent
---@return table|nil problems
function driver.agent(agent_src, agent_path, host)
  return agent.load(agent_src, agent_path, host or {})
end


local cjson_encode = require("cjson").encode

local s_find, s_format, s_gsub, s_rep = string.find, string.format, string.gsub, string.rep
local m_type = math.type

-- cjson escapes "/" as "\/"; plan output keeps it plain. `strs` caches the
-- encoding of each string for one driver.pretty call (keys repeat a lot).
local function encode_string(s, strs)
  local e = strs[s]
  if e == nil then
    e = cjson_encode(s)
    if s_find(e, "/", 1, true) then
      e = s_gsub(e, "\\/", "/")
    end
    strs[s] = e
  end
  return e
end


local PADS = setmetatable({}, { __index = function(t, n)
  local p = s_rep("  ", n)
  t[n] = p
  return p
end })

-- Appends v's indented JSON to out (n: its length so far); returns the new n.
local function encode_pretty(v, indent, out, n, strs)
  local t = type(v)
  if t == "string" then
    n = n + 1
    out[n] = encode_string(v, strs)
  elseif t == "table" then
    if v == EMPTY_ARRAY then
      n = n + 1
      out[n] = "[]"
      return n
    elseif next(v) == nil then
      n = n + 1
      out[n] = "{}"
      return n
    end
    local pad = PADS[indent + 1]
    local close
    if v[1] ~= nil then
      n = n + 1
      out[n] = "[\n"
      local len = #v
      for i = 1, len do
        n = n + 1
        out[n] = pad
        n = encode_pretty(v[i], indent + 1, out, n, strs)
        n = n + 1
        out[n] = (i < len) and ",\n" or "\n"
      end
      close = "]"
    else
      local keys, len = {}, 0
      for k in next, v do
        len = len + 1
        keys[len] = type(k) == "string" and k or tostring(k)
      end
      table.sort(keys)
      n = n + 1
      out[n] = "{\n"
      for i = 1, len do
        local name = keys[i]
        out[n + 1] = pad
        out[n + 2] = encode_string(name, strs)
        out[n + 3] = ": "
        n = encode_pretty(v[name], indent + 1, out, n + 3, strs)
        n = n + 1
        out[n] = (i < len) and ",\n" or "\n"
      end
      close = "}"
    end
    out[n + 1] = PADS[indent]
    out[n + 2] = close
    n = n + 2
  elseif t == "number" then
    n = n + 1
    out[n] = m_type(v) == "integer" and s_format("%d", v) or cjson_encode(v)
  elseif t == "boolean" then
    n = n + 1
    out[n] = v and "true" or "false"
  else
    n = n + 1
    out[n] = "null"
  end
  return n
end


---Encodes a table as indented JSON with sorted keys ([] for EMPTY_ARRAY),
---in Lua: the reference for drv.core's C encoder, and what runs without it.
---@param v any
---@return string
function driver.pretty_lua(v)
  local out = {}
  encode_pretty(v, 0, out, 0, {})
  return table.concat(out) .. "\n"
end


local core_ok, core = pcall(require, "drv.core")
local c_pretty = core_ok and type(core) == "table" and core.pretty or nil

---Encodes a table as indented JSON with sorted keys ([] for EMPTY_ARRAY):
---drv.core.pretty in the binary (the same text, written in C; `plan` prints
---about 9 KB per task), else driver.pretty_lua.
---@param v any
---@return string
function driver.pretty(v)
  if c_pretty then
    return c_pretty(v, EMPTY_ARRAY)
  end
  return driver.pretty_lua(v)
end

driver.EMPTY_ARRAY = EMPTY_ARRAY


local ADMISSION = "drv.admission"


---The policy module. A tree without it plans nothing: policies are not
---optional (a missing module once planned privileged jobs as allowed).
---@return table|nil module
---@return table|nil problems
local function admission()
  local ok, mod = pcall(require, ADMISSION)
  if ok and type(mod) == "table" and mod.prepare and mod.apply and mod.check then
    return mod
  end
  local why = ok and "it does not export prepare, apply and check" or tostring(mod)
  if not ok and why:find("module '" .. ADMISSION .. "' not found", 1, true) then
    why = "the module is missing from the Lua tree"
  end
  return nil, { { kind = "internal", message = "lua: drv.admission: " .. why
    .. "; refusing to plan without the policy engine" } }
end


-- A policy verdict as plan JSON shows it: lists stay lists when empty.
local function show_verdict(v)
  local out = {}
  for k, x in pairs(v) do
    out[k] = x
  end
  for _, k in ipairs({ "messages", "mutations" }) do
    if type(out[k]) == "table" and next(out[k]) == nil then
      out[k] = EMPTY_ARRAY
    end
  end
  return out
end


local function show_verdicts(list)
  if not list or #list == 0 then
    return EMPTY_ARRAY
  end
  local out = {}
  for i, v in ipairs(list) do
    out[i] = show_verdict(v)
  end
  return out
end


---The fields of a planned task that leave Lua: the one list to edit when a
---plan field is added. Each row is { name, lua type, core =, shown = }:
---  core   core/lua/script.c read_task reads it, by this name, from the entry
---         in driver.plan's `tasks` into core/plan/plan.h's plan_task (string ->
---         char *, number -> long/long long, boolean -> int, table -> an
---         array C walks). C reads nothing else from the entry; the other
---         entry fields (alloc_name, ports, auth, image_pull_timeout_ms, ...)
---         serve Lua callers and the specs.
---  shown  `drvctl plan` prints it in the task's JSON object.
---Besides these, the printed task holds what the driver computes per run:
---body (the create body as a table, not JSON), ports, policies, verdict.
---Every listed field is type-checked before it leaves Lua.
driver.PLAN_FIELDS = {
  { "job", "string", core = true, shown = true },
  { "group", "string", core = true, shown = true },
  { "task", "string", core = true, shown = true },
  { "alloc_id", "string", core = true, shown = true },
  { "alloc_index", "number", shown = true },
  { "name", "string", core = true, shown = true },      -- container name
  { "image", "string", core = true, shown = true },
  { "load", "string", core = true, shown = true },
  { "pull", "string", core = true, shown = true },
  { "image_repo", "string", core = true, shown = true },      -- drv.imageref
  { "image_tag", "string", core = true, shown = true },       -- tag or digest
  { "image_registry", "string", core = true, shown = true },
  { "image_pull_timeout_ms", "number", core = true, shown = true },
  { "pull_activity_timeout_ms", "number", core = true, shown = true },
  { "auth_soft_fail", "boolean", core = true },
  -- config { auth {} }: read by C, never shown, never in state files
  { "auth_username", "string", core = true },
  { "auth_password", "string", core = true },
  { "auth_email", "string", core = true },
  { "auth_server", "string", core = true },
  { "body", "string", core = true },                    -- create body, JSON
  { "kill_signal", "string", core = true, shown = true },
  { "kill_timeout_ms", "number", core = true, shown = true },
  { "tty", "boolean", core = true },
  { "alloc_dir", "string", core = true },
  { "log_dir", "string", core = true },
  { "log_max_files", "number", core = true },
  { "log_max_file_size", "number", core = true },
  { "dirs", "table", core = true },
  { "pins", "table", core = true, shown = true },      -- set by drv.admission
  { "binds_dir", "string", core = true },               -- set by drv.admission
  { "artifacts", "table", core = true },
}


-- export(entry) -> the shown fields of entry, after checking the type of
-- every PLAN_FIELDS field it has: a mismatch is a bug in the driver,
-- raised as an internal error rather than handed to C.
local function export(entry)
  local shown = {}
  for _, f in ipairs(driver.PLAN_FIELDS) do
    local name, want = f[1], f[2]
    local v = entry[name]
    if v ~= nil then
      if type(v) ~= want then
        error(string.format("lua: plan field %q: expected %s, found %s", name, want, type(v)), 0)
      end
      if f.shown then
        shown[name] = v
      end
    end
  end
  return shown
end


local function append(dst, src)
  table.move(src, 1, #src, #dst + 1, dst)
  return dst
end


local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do
    out[k] = v
  end
  return out
end


---The node attributes constraints and policies see: host.node plus the
---attributes that come from the agent config.
---@param host table
---@param a table agent
---@return table attrs name -> string
function driver.node_attributes(host, a)
  local attrs = copy(host.node)
  local options = a.options or {}
  attrs["driver.docker.volumes.enabled"] = tostring(options.volumes_enabled == true)
  attrs["driver.docker.privileged.enabled"] = tostring(options.privileged_enabled == true)
  if a.cpu_total_compute then
    attrs["cpu.totalcompute"] = string.format("%d", a.cpu_total_compute)
  end
  return attrs
end


local function is_docker_attribute(name)
  return name == "driver.docker" or (name ~= nil and name:sub(1, 14) == "driver.docker.")
end


---Checks the job, group and task constraints of every task against the node.
local function check_constraints(job, job_path, attrs, a, host, warn)
  local problems = {}
  local node = {
    ["unique.name"] = a.name or attrs["unique.hostname"],
    datacenter = a.datacenter,
    class = a.node_class,
  }
  local meta = a.meta or {}
  -- One regexp work budget for the whole job, and each constraint object
  -- (a job or group constraint is shared by all its tasks) checked once.
  local budget = { steps = constraint.MATCH_BUDGET }
  local results = {}
  for _, group in ipairs(job.groups) do
    for _, task in ipairs(group.tasks) do
      for _, level in ipairs({ job.constraints, group.constraints, task.constraints }) do
        for _, c in ipairs(level or {}) do
          local at = jobspec.origin(c) or job_path
          local skip
          for _, target in ipairs({ c.attribute, c.value }) do
            local name = constraint.attribute_name(target)
            if name and attrs[name] == nil then
              if host.node == nil then
                skip = "node facts unavailable"
              elseif host.docker_facts ~= true and is_docker_attribute(name) then
                skip = "docker facts unavailable"
              end
            end
          end
          if skip then
            warn(string.format("%s: task %q: constraint not checked, %s: %s",
              at, task.name, skip, constraint.describe(c)))
          else
            local r = results[c]
            if not r then
              r = { constraint.check(c, attrs, meta, node, budget) }
              results[c] = r
            end
            local ok, msg = r[1], r[2]
            if not ok then
              problems[#problems + 1] = {
                kind = (ok == false) and "constraint" or "type",
                message = string.format("%s: task %q: %s", at, task.name, msg),
              }
            end
          end
        end
      end
    end
  end
  return problems
end


---Checks port_map against the task's network ports.
local function check_port_map(job, job_path, warn)
  local problems = {}
  for _, group in ipairs(job.groups) do
    for _, task in ipairs(group.tasks) do
      local port_map = (task.config or {}).port_map
      if port_map and next(port_map) ~= nil then
        local labels = {}
        for _, p in ipairs(ports.of(task)) do
          labels[p.label] = true
        end
        if #task.resources.networks == 0 then
          problems[#problems + 1] = { kind = "type", message = string.format(
            "%s: task %q: trying to map ports but no network interface is available",
            job_path, task.name) }
        else
          for _, k in ipairs(util.sorted_keys(port_map)) do
            if not labels[k] then
              warn(util.format("%s: task %q: port_map label has no network port: %q",
                job_path, task.name, k))
            end
          end
        end
      end
    end
  end
  return problems
end


-- Plans one task of one group instance into st (the state driver.plan
-- shares with it): its port requests (pass 1) or ports (pass 2), its
-- container, the admission verdict, st.tasks and st.shown.
local function plan_task(st, group, task, task_index, index, alloc_id, alloc_name)
  local host, a, adm, attrs, job, job_path = st.host, st.agent, st.adm, st.attrs, st.job, st.job_path
  local problems, requests, tasks, shown = st.problems, st.requests, st.tasks, st.shown
  local pass1, warn, where, network_ip = st.pass1, st.warn, st.where, st.network_ip
  local allocated = {}
  for _, req in ipairs(ports.requests({ { alloc_id = alloc_id, task = task } })) do
    requests[#requests + 1] = req
    if not pass1 then
      local port = host.ports[req.key]
      if port == nil then
        problems[#problems + 1] = { kind = "internal", message = string.format(
          "%s: task %q: no port allocated for %q", job_path, task.name, req.key) }
      else
        allocated[req.label] = math.tointeger(port) or port
      end
    end
  end
  local assigned = ports.assign(task, (task.config or {}).port_map, allocated, network_ip)
  local entry, body, unknown = container.build({
    job = job, group = group, task = task, agent = a,
    alloc_id = alloc_id, alloc_index = index, alloc_name = alloc_name,
    ports = assigned, node = copy(attrs), job_path = job_path, where = where,
    skip_body_json = true,   -- the body becomes JSON below, after admission
  })
  if entry == nil then
    st.denials = false
    append(problems, body)   -- build failed: body holds its problems
    return
  end
  for _, ref in ipairs(unknown) do
    warn(util.format("%s: task %q: unknown variable left as written: %q",
      job_path, task.name, ref))
  end
  local policies = EMPTY_ARRAY
  local verdict = "allowed"
  if adm then
    local safe_name = task.name:gsub("/", "_")
    local siblings = {}
    for _, other in ipairs(group.tasks) do
      if other ~= task then
        siblings[#siblings + 1] = other.name:gsub("/", "_") .. "-" .. alloc_id
      end
    end
    local body2, verdicts, denied_verdicts, judged = adm.apply(entry, body, {
      task = task, agent = a, node = attrs, host = host,
      alloc_dir = entry.alloc_dir, task_dir = entry.alloc_dir .. "/" .. safe_name,
      alloc_id = alloc_id, siblings = siblings, task_index = task_index,
    })
    if body2 == nil then
      append(problems, verdicts or {})
      for _, p in ipairs(verdicts or {}) do
        st.denials = st.denials and p.kind == "denied"
      end
      policies = show_verdicts(denied_verdicts)
      body = judged or body
      verdict = "denied"
    else
      body = body2
      policies = show_verdicts(verdicts)
    end
  end
  -- the one place a create body becomes JSON (after every mutation); C's
  -- first pass never reads it
  if st.validate_only then
    return   -- C's first pass reads only the port requests and the problems
  end
  body = container.strip(body)
  entry.body = container.encode(body, true)
  entry.ports = assigned.host_ports
  tasks[#tasks + 1] = entry
  local show = export(entry)
  show.body = body
  show.ports = next(assigned.host_ports) and assigned.host_ports or nil
  show.policies = policies
  show.verdict = verdict
  shown[#shown + 1] = show
end


-- The last job parsed, for C's second pass over the same text: parsing and
-- validating is a third of a plan. Nothing after jobspec.load writes into
-- the job's tables (mapping and policies work on copies), so the same tables
-- serve both passes.
local last_job

local function load_job(src, path)
  local c = last_job
  if c and c.src == src and c.path == path then
    return c.job, c.res, c.where
  end
  local job, res, where = jobspec.load(src, path)
  if job then
    last_job = { src = src, path = path, job = job, res = res, where = where }
  end
  return job, res, where
end


---Loads the job and agent config and maps every task instance to its
---container (contract B `plan`). Called twice by C (contracts2): pass 1
---(host.ports nil) returns port_requests with 0 placeholders, pass 2 uses
---host.ports = { [key] = port }.
---@param job_src string
---@param job_path string
---@param agent_src string|nil
---@param agent_path string|nil
---@param host table
---@return table|nil plan
---@return table|nil problems
function driver.plan(job_src, job_path, agent_src, agent_path, host)
  host = host or {}
  local a, problems = agent.load(agent_src, agent_path, host)
  if not a then
    return nil, problems
  end
  job_path = job_path or "job"
  local job, res, where = load_job(job_src, job_path)
  if not job then
    return nil, res
  end
  local warnings = {}
  local seen = {}
  local function warn(msg)
    if not seen[msg] then
      seen[msg] = true
      warnings[#warnings + 1] = msg
    end
  end
  for _, w in ipairs(res) do
    warn(w)
  end

  -- host.skip_policies: C's first pass only validates and collects port
  -- requests; the second pass, which always follows, judges every task
  local adm, aerr = admission()
  if not adm then
    return nil, aerr
  end
  if host.skip_policies then
    adm = nil
  else
    local ok, perr = adm.prepare(host, a)
    if ok == nil then
      return nil, perr or { { kind = "internal", message = "lua: drv.admission: prepare failed" } }
    end
  end

  local attrs = driver.node_attributes(host, a)
  problems = check_constraints(job, job_path, attrs, a, host, warn)
  append(problems, check_port_map(job, job_path, warn))
  if #problems > 0 then
    return nil, problems
  end

  local pass1 = host.ports == nil
  -- C's first pass (no ports, no policies): its bodies and JSON are never
  -- used, only the port requests and the problems
  local validate_only = pass1 and host.skip_policies
  local tasks, shown, requests = {}, {}, {}
  local st = {
    host = host, agent = a, adm = adm, attrs = attrs, job = job, job_path = job_path,
    where = where, warn = warn, pass1 = pass1, network_ip = host.network_ip or "127.0.0.1",
    problems = problems, requests = requests, tasks = tasks, shown = shown,
    denials = true,   -- every problem so far is a policy denial
    validate_only = validate_only,
  }
  local n = 0
  for _, group in ipairs(job.groups) do
    for index = 0, group.count - 1 do
      n = n + 1
      local alloc_id = uuid.alloc_id(host.alloc_seed, n)
      local alloc_name = string.format("%s.%s[%d]", job.name, group.name, index)
      for task_index, task in ipairs(group.tasks) do
        plan_task(st, group, task, task_index, index, alloc_id, alloc_name)
      end
    end
  end
  -- C wants a string; pass 1's is never printed, nor `run`'s (skip_json)
  local json = ""
  if not host.skip_json and (not validate_only or (#problems > 0 and st.denials)) then
    json = driver.pretty({
      job = job.name,
      warnings = (#warnings > 0) and warnings or EMPTY_ARRAY,
      tasks = (#shown > 0) and shown or EMPTY_ARRAY,
      port_requests = pass1 and ((#requests > 0) and requests or EMPTY_ARRAY) or nil,
    })
  end
  if #problems > 0 then
    if st.denials then
      -- only policy denials: `plan` still prints every verdict
      problems.json = json
    end
    return nil, problems
  end
  return {
    warnings = warnings,
    tasks = tasks,
    port_requests = requests,
    json = json,
  }
end


---Validates policy sources (`drvctl policy check`): true or nil, problems.
---With an agent config, its policy_options are checked against the set.
---@param sources table array of { path=, source= }
---@param agent_src string|nil agent config text
---@param agent_path string|nil
---@return boolean|nil ok
---@return table|nil problems
function driver.check_policies(sources, agent_src, agent_path, host)
  local adm, aerr = admission()
  if not adm then
    return nil, aerr
  end
  local a
  if agent_src ~= nil then
    local problems
    a, problems = agent.load(agent_src, agent_path, host or {})
    if not a then
      return nil, problems
    end
  end
  return adm.check(sources, nil, a)
end


local function str(v)
  if type(v) == "string" then
    return v
  end
  return nil
end


-- The value when it is a non-empty string, else nil.
local function nonempty_string(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil
end


local function int(v)
  if type(v) == "number" then
    return math.tointeger(v)
  end
  return nil
end


local function tbl(v)
  if type(v) == "table" then
    return v
  end
  return {}
end


local DECODERS = {
  create = function(t)
    local warnings = {}
    for _, w in ipairs(tbl(t.Warnings)) do
      if type(w) == "string" then
        warnings[#warnings + 1] = w
      end
    end
    if not nonempty_string(t.Id) then
      return nil, "docker: create response has no container id"
    end
    return { id = t.Id, warnings = warnings }
  end,
  wait = function(t)
    local code = int(t.StatusCode)
    if code == nil then
      return nil, "docker: wait response has no exit code"
    end
    return { exit_code = code, error = nonempty_string(tbl(t.Error).Message) }
  end,
  container_inspect = function(t)
    local s = tbl(t.State)
    return {
      id = str(t.Id),
      running = s.Running == true,
      status = str(s.Status),
      exit_code = int(s.ExitCode) or 0,
      oom_killed = s.OOMKilled == true,
      error = nonempty_string(s.Error),
    }
  end,
  image_inspect = function(t)
    return { id = str(t.Id), stop_signal = nonempty_string(tbl(t.Config).StopSignal) }
  end,
  stream_line = function(t)
    local detail = tbl(t.errorDetail)
    local progress = tbl(t.progressDetail)
    return {
      error = nonempty_string(detail.message) or nonempty_string(t.error),
      status = str(t.status),
      stream = str(t.stream),
      id = str(t.id),
      current = int(progress.current),
      total = int(progress.total),
    }
  end,
  network = function(t)
    local config = tbl(tbl(t.IPAM).Config)
    return { gateway = nonempty_string(tbl(config[1]).Gateway) }
  end,
  load_manifest = function(t)
    return require("drv.imagetar").check(t)
  end,
  version = function(t)
    return {
      version = str(t.Version),
      api_version = str(t.ApiVersion),
      min_api_version = str(t.MinAPIVersion),
      os = str(t.Os),
      arch = str(t.Arch),
      kernel = str(t.KernelVersion),
    }
  end,
}


---Registry credentials for a pull (drv.registryauth), called by
---core/image/auth.c: op "resolve" decides the first source that answers,
---op "helper_output" reads a credential helper's answer.
---@param op string "resolve"|"helper_output"
---@param fields table flat table of strings (see drv.registryauth)
---@return table|nil {header=, helper=, input=, source=}
---@return string|nil message
function driver.registry_auth(op, fields)
  local registryauth = require("drv.registryauth")
  if op == "resolve" then
    return registryauth.resolve(fields)
  elseif op == "helper_output" then
    return registryauth.helper_output(fields)
  end
  return nil, util.format("unknown registry auth operation %q", tostring(op))
end


---Interprets a Docker Engine API response body (contract B).
---@param op string "error"|"create"|"wait"|"container_inspect"|"image_inspect"|"stream_line"|"version"|"network"|"load_manifest"
---@param status integer HTTP status
---@param body string|nil raw response text
---@return table|nil result
---@return string|nil message
function driver.decode(op, status, body)
  local cjson = require("cjson.safe")
  body = body or ""
  if op == "error" then
    local t = cjson.decode(body)
    local msg = type(t) == "table" and nonempty_string(t.message) or util.trim(body)
    -- Docker's messages echo job text (image names, env keys): one line,
    -- no control characters, bounded
    msg = util.sanitize(msg, 1024)
    if msg == "" then
      msg = string.format("HTTP status %s", tostring(status))
    end
    return { message = msg }
  end
  local fn = DECODERS[op]
  if not fn then
    return nil, util.format("unknown decode operation %q", tostring(op))
  end
  local t = cjson.decode(body)
  if type(t) ~= "table" then
    local text = util.trim(body)
    if #text > 200 then
      text = text:sub(1, 200) .. "..."
    end
    return nil, util.format("docker: invalid %s response: %q", op, text)
  end
  return fn(t)
end


return driver
