-- Host ports per task (on by default; found by the attack corpus).
--
-- Every published port costs the node more than the task pays for: dockerd
-- starts one docker-proxy process per binding (tcp and udp: two per port
-- label), about 3 MB each, in dockerd's cgroup, outside the task's memory
-- and pids limits. A task with 3000 `port` labels started 6000 processes
-- and took a quarter of the dynamic port range from every other job.
--
-- * At most max_ports distinct host ports (HostConfig.PortBindings) per task.
--
-- Deviation from Nomad v0.8.3 (no limit per task), restore with:
--   plugin "docker" { config { policy_options { ports { enabled = false } } } }

return {
  policy_format = 1,
  name = "ports",
  description = "at most max_ports host ports per task",
  settings = {
    max_ports = 32,
  },

  check = function(ctx)
    local pb = (ctx.spec.HostConfig or {}).PortBindings
    if pb == nil then
      return true
    end
    if type(pb) ~= "table" then
      return nil, "PortBindings must be an object"
    end
    local seen, n = {}, 0
    for _, list in pairs(pb) do
      for _, b in ipairs(type(list) == "table" and list or {}) do
        local key = tostring(type(b) == "table" and b.HostIp or "") .. "|"
          .. tostring(type(b) == "table" and b.HostPort or "")
        if not seen[key] then
          seen[key] = true
          n = n + 1
        end
      end
    end
    if n > ctx.settings.max_ports then
      return nil, "more than " .. ctx.settings.max_ports .. " host ports: \"" .. n .. "\""
    end
    return true
  end,
}
