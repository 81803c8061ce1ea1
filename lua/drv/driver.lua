--- The single entry module C calls (contract B): agent, plan, decode.
local agent = require("drv.agent")
local container = require("drv.container")
local jobspec = require("drv.jobspec")
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


local function encode_string(s)
  local cjson = require("cjson")
  return (cjson.encode(s):gsub("\\/", "/"))
end


local function encode_pretty(v, indent, out)
  local t = type(v)
  if t == "table" then
    local pad = string.rep("  ", indent + 1)
    if v == EMPTY_ARRAY then
      out[#out + 1] = "[]"
    elseif next(v) == nil then
      out[#out + 1] = "{}"
    elseif v[1] ~= nil then
      out[#out + 1] = "[\n"
      for i, item in ipairs(v) do
        out[#out + 1] = pad
        encode_pretty(item, indent + 1, out)
        out[#out + 1] = (i < #v) and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("  ", indent) .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      out[#out + 1] = "{\n"
      for i, k in ipairs(keys) do
        out[#out + 1] = pad .. encode_string(k) .. ": "
        encode_pretty(v[k], indent + 1, out)
        out[#out + 1] = (i < #keys) and ",\n" or "\n"
      end
      out[#out + 1] = string.rep("  ", indent) .. "}"
    end
  elseif t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "number" then
    out[#out + 1] = math.type(v) == "integer" and string.format("%d", v)
      or require("cjson").encode(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  else
    out[#out + 1] = "null"
  end
  return out
end


---Encodes a table as indented JSON with sorted keys ([] for EMPTY_ARRAY).
---@param v any
---@return string
function driver.pretty(v)
  return table.concat(encode_pretty(v, 0, {})) .. "\n"
end


---Loads the job and agent config and maps every task instance to its
---container (contract B `plan`).
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
  local job, res = jobspec.load(job_src, job_path)
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

  local tasks, shown = {}, {}
  local n = 0
  for _, group in ipairs(job.groups) do
    for index = 0, group.count - 1 do
      n = n + 1
      local alloc_id = uuid.alloc_id(host.alloc_seed, n)
      local alloc_name = string.format("%s.%s[%d]", job.name, group.name, index)
      for _, task in ipairs(group.tasks) do
        local entry, body, unknown = container.build({
          job = job, group = group, task = task, agent = a,
          alloc_id = alloc_id, alloc_index = index, alloc_name = alloc_name,
        })
        for _, ref in ipairs(unknown) do
          warn(string.format("%s: task %q: unknown variable left as written: %q",
            job_path, task.name, ref))
        end
        for _, net in ipairs(task.resources.networks) do
          if #net.ports > 0 then
            warn(string.format("%s: task %q: network ports are not published yet",
              job_path, task.name))
          end
        end
        tasks[#tasks + 1] = entry
        shown[#shown + 1] = {
          name = entry.name,
          job = entry.job,
          group = entry.group,
          task = entry.task,
          alloc_id = entry.alloc_id,
          alloc_index = entry.alloc_index,
          image = entry.image,
          pull = entry.pull,
          load = entry.load,
          body = body,
          kill_signal = entry.kill_signal,
          kill_timeout_ms = entry.kill_timeout_ms,
          policies = EMPTY_ARRAY,
        }
      end
    end
  end
  local plan = {
    warnings = warnings,
    tasks = tasks,
  }
  plan.json = driver.pretty({
    job = job.name,
    warnings = (#warnings > 0) and warnings or EMPTY_ARRAY,
    tasks = (#shown > 0) and shown or EMPTY_ARRAY,
  })
  return plan
end


local function trim(s)
  return (s:match("^%s*(.-)%s*$"))
end


local function str(v)
  if type(v) == "string" then
    return v
  end
  return nil
end


local function non_empty(v)
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
    if not non_empty(t.Id) then
      return nil, "docker: create response has no container id"
    end
    return { id = t.Id, warnings = warnings }
  end,
  wait = function(t)
    local code = int(t.StatusCode)
    if code == nil then
      return nil, "docker: wait response has no exit code"
    end
    return { exit_code = code, error = non_empty(tbl(t.Error).Message) }
  end,
  container_inspect = function(t)
    local s = tbl(t.State)
    return {
      id = str(t.Id),
      running = s.Running == true,
      status = str(s.Status),
      exit_code = int(s.ExitCode) or 0,
      oom_killed = s.OOMKilled == true,
      error = non_empty(s.Error),
    }
  end,
  image_inspect = function(t)
    return { id = str(t.Id), stop_signal = non_empty(tbl(t.Config).StopSignal) }
  end,
  stream_line = function(t)
    local detail = tbl(t.errorDetail)
    local progress = tbl(t.progressDetail)
    return {
      error = non_empty(detail.message) or non_empty(t.error),
      status = str(t.status),
      stream = str(t.stream),
      id = str(t.id),
      current = int(progress.current),
      total = int(progress.total),
    }
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


---Interprets a Docker Engine API response body (contract B).
---@param op string "error"|"create"|"wait"|"container_inspect"|"image_inspect"|"stream_line"|"version"
---@param status integer HTTP status
---@param body string|nil raw response text
---@return table|nil result
---@return string|nil message
function driver.decode(op, status, body)
  local cjson = require("cjson.safe")
  body = body or ""
  if op == "error" then
    local t = cjson.decode(body)
    local msg = type(t) == "table" and non_empty(t.message) or trim(body)
    if msg == "" then
      msg = string.format("HTTP status %s", tostring(status))
    end
    return { message = msg }
  end
  local fn = DECODERS[op]
  if not fn then
    return nil, string.format("unknown decode operation %q", tostring(op))
  end
  local t = cjson.decode(body)
  if type(t) ~= "table" then
    local text = trim(body)
    if #text > 200 then
      text = text:sub(1, 200) .. "..."
    end
    return nil, string.format("docker: invalid %s response: %q", op, text)
  end
  return fn(t)
end


return driver
