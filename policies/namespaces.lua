-- Network, pid and ipc namespaces a task may join.
--
-- * network_mode: "bridge", "none" and "default" only (an unset mode is the
--   daemon's bridge). "host" needs allow_network_modes = ["host"] (a task on
--   the host network reaches every loopback-only service of the host). A
--   user-defined network needs its exact name in allow_networks (a job that
--   joins another network, with network_aliases and ipv4_address, answers
--   for another service's name); Docker also resolves networks by ID and ID
--   prefix, so only the exact listed name passes.
-- * network_mode, pid_mode, ipc_mode = "container:<name>": only the
--   container of another task of the same allocation, named exactly
--   "{task}-{alloc_id}" as drvctl names it (ctx.siblings). Docker resolves
--   <name> by name, "/name", ID and ID prefix, so anything but that exact
--   name is denied; allow_container_namespaces = true allows any container.
-- * NetworkingConfig.EndpointsConfig may only name the network the task
--   joins (and it must be allowed as above).
-- Host pid/ipc/uts/userns modes are policies/privileged.lua's concern.
--
-- Deviations from Nomad v0.8.3 (which passed every mode to Docker):
--   plugin "docker" { config { allow_network_modes = ["host"] } }
--   plugin "docker" { config { allow_networks = ["internal-net"] } }
--   plugin "docker" { config { allow_container_namespaces = true } }

local BUILTIN = { bridge = true, none = true, default = true }

local function quote(s)
  return "\"" .. tostring(s) .. "\""
end

local function member(list, v)
  for _, x in ipairs(list or {}) do
    if x == v then
      return true
    end
  end
  return false
end

-- container:<name> -> nil | msg
local function container_target(ctx, field, value)
  local target = string.sub(value, #"container:" + 1)
  if ctx.agent.allow_container_namespaces == true then
    return nil
  end
  for _, s in ipairs(ctx.siblings or {}) do
    if s == target then
      return nil
    end
  end
  return field .. " may only join a container of the same allocation: " .. quote(value)
end

return {
  policy_format = 1,
  name = "namespaces",
  description = "network_mode bridge/none/default, listed networks, container: only within the allocation",

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    local allow_modes = ctx.agent.allow_network_modes or {}
    local allow_nets = ctx.agent.allow_networks or {}

    local mode = hc.NetworkMode
    local joined = nil          -- network the endpoint config may name
    if mode == nil or mode == "" then
      joined = "bridge"
    elseif type(mode) ~= "string" then
      msgs[#msgs + 1] = "network_mode must be a string: " .. quote(mode)
    elseif BUILTIN[mode] then
      joined = mode
    elseif mode == "host" then
      if not member(allow_modes, "host") then
        msgs[#msgs + 1] = "network_mode not in allow_network_modes: \"host\""
      end
    elseif string.sub(mode, 1, 10) == "container:" then
      msgs[#msgs + 1] = container_target(ctx, "network_mode", mode)
    elseif member(allow_nets, mode) then
      joined = mode
    else
      msgs[#msgs + 1] = "network not in allow_networks: " .. quote(mode)
    end

    for _, m in ipairs({ { "PidMode", "pid_mode" }, { "IpcMode", "ipc_mode" } }) do
      local v = hc[m[1]]
      if type(v) == "string" and string.lower(string.sub(string.gsub(v, "^%s+", ""), 1, 10)) == "container:" then
        if string.sub(v, 1, 10) ~= "container:" then
          msgs[#msgs + 1] = m[2] .. " not allowed: " .. quote(v)
        else
          msgs[#msgs + 1] = container_target(ctx, m[2], v)
        end
      end
    end

    local ncfg = ctx.spec.NetworkingConfig
    if ncfg ~= nil then
      local eps = type(ncfg) == "table" and ncfg.EndpointsConfig or nil
      if eps ~= nil and type(eps) ~= "table" then
        msgs[#msgs + 1] = "NetworkingConfig.EndpointsConfig must be an object"
      else
        for name in pairs(eps or {}) do
          if name ~= joined then
            msgs[#msgs + 1] = "endpoint config names a network the task does not join: " .. quote(name)
          end
        end
      end
    end

    local out = {}
    for _, m in pairs(msgs) do
      out[#out + 1] = m
    end
    table.sort(out)
    if #out > 0 then
      return nil, out
    end
    return true
  end,
}
