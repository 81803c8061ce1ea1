-- A task must fit on this node (on by default; found by the attack corpus).
--
-- Nomad v0.8.3 never handed the driver a task larger than the node: the
-- scheduler refused the placement ("resources exhausted"). drvctl has no
-- scheduler, so without this policy `resources { memory = 50000000 }` or
-- memory_hard_limit = 50000000 became a 50 TB memory limit (none at all: the
-- task can take the node's memory), and cpu = 200000 became CpuShares that
-- starve every other task.
--
-- * HostConfig.Memory (resources.memory, or memory_hard_limit when set) and
--   MemoryReservation at most the node's memory.totalbytes.
-- * CpuShares at most the node's cpu.totalcompute (MHz).
-- A node fact that is unknown (plan without /proc) is not checked.
-- One task at a time: several tasks together may still ask for more than
-- the node has (Nomad's sum over allocations is not modelled).
--
-- Turn it off with:
--   plugin "docker" { config { policy_options { capacity { enabled = false } } } }

local MiB = 1024 * 1024

local function fact(ctx, key)
  local v = tonumber((ctx.node or {})[key])
  if v and v > 0 then
    return v
  end
  return nil
end

local function num(x)
  return tostring(math.tointeger(x) or x)
end

return {
  policy_format = 1,
  name = "capacity",
  description = "a task's memory and cpu fit on this node (memory.totalbytes, cpu.totalcompute)",

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    local total = fact(ctx, "memory.totalbytes")
    if total then
      for _, f in ipairs({ { "Memory", "memory" }, { "MemoryReservation", "memory reservation" } }) do
        local v = hc[f[1]]
        if type(v) == "number" and v > total then
          msgs[#msgs + 1] = f[2] .. " above the node's " .. num(total // MiB) .. " MB: \""
            .. num(v // MiB) .. "\""
        end
      end
    end
    local mhz = fact(ctx, "cpu.totalcompute")
    local cpu = hc.CpuShares
    if mhz and type(cpu) == "number" and cpu > mhz then
      msgs[#msgs + 1] = "cpu above the node's " .. num(mhz) .. " MHz: \"" .. num(cpu) .. "\""
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
