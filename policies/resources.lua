-- Upper bounds on what one task may reserve. Shipped OFF: set enabled = true
-- below, or in the agent config:
--   plugin "docker" { config { policy_options { resources { enabled = true
--     max_memory_mb = 2048 } } } }
-- cpu is in MHz (Docker CpuShares), memory in MB (Docker Memory, bytes).
-- A task without a pids limit gets max_pids (mutate); one above is denied.

local MiB = 1024 * 1024

local function num(x)
  return tostring(math.tointeger(x) or x)
end

return {
  policy_format = 1,
  name = "resources",
  description = "cpu, memory and pids per task stay under the configured maximum",
  enabled = false,
  settings = {
    max_cpu = 4000,
    max_memory_mb = 4096,
    max_pids = 4096,
  },

  mutate = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    if (hc.PidsLimit == nil or hc.PidsLimit <= 0) and ctx.settings.max_pids > 0 then
      return { { op = "set", path = "HostConfig.PidsLimit", value = ctx.settings.max_pids } }
    end
    return nil
  end,

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local s = ctx.settings
    local msgs = {}
    local cpu = hc.CpuShares or 0
    if cpu > s.max_cpu then
      msgs[#msgs + 1] = "cpu above " .. s.max_cpu .. " MHz: \"" .. num(cpu) .. "\""
    end
    local mem = hc.Memory or 0
    if mem <= 0 then
      msgs[#msgs + 1] = "memory limit required: \"HostConfig.Memory\""
    elseif mem > s.max_memory_mb * MiB then
      msgs[#msgs + 1] = "memory above " .. s.max_memory_mb .. " MB: \""
        .. num(mem // MiB) .. "\""
    end
    local pids = hc.PidsLimit or 0
    if s.max_pids > 0 and (pids <= 0 or pids > s.max_pids) then
      msgs[#msgs + 1] = "pids limit above " .. s.max_pids .. ": \"" .. num(pids) .. "\""
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
