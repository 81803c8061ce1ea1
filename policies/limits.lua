-- Lower bounds every task keeps (on by default; policies/resources.lua,
-- shipped off, holds the upper bounds).
--
-- * Memory (resources.memory, or memory_hard_limit when set) at least
--   min_memory_mb MB, and MemoryReservation, when set, too: Nomad's minimum
--   is 10 MB, and memory = 0 gave an unlimited container. MemorySwap must
--   equal Memory (no swap), as the driver sets it.
-- * OomScoreAdj not below min_oom_score_adj (0): a negative value makes the
--   kernel kill host processes before the task.
--
-- Deviation from Nomad v0.8.3 (which passed oom_score_adj through):
--   plugin "docker" { config { policy_options { limits { min_oom_score_adj = -1000 } } } }

local MiB = 1024 * 1024

local function num(x)
  return tostring(math.tointeger(x) or x)
end

return {
  policy_format = 1,
  name = "limits",
  description = "memory of at least 10 MB, no swap, no negative oom_score_adj",
  settings = {
    min_memory_mb = 10,
    min_oom_score_adj = 0,
  },

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local s = ctx.settings
    local msgs = {}
    local min = s.min_memory_mb * MiB
    local mem = hc.Memory
    if type(mem) ~= "number" or mem < min then
      msgs[#msgs + 1] = "memory below the minimum of " .. num(s.min_memory_mb) .. " MB: \""
        .. (type(mem) == "number" and num(mem // MiB) or tostring(mem)) .. "\""
    end
    local res = hc.MemoryReservation
    if res ~= nil and (type(res) ~= "number" or res < min) then
      msgs[#msgs + 1] = "memory reservation below the minimum of " .. num(s.min_memory_mb)
        .. " MB: \"" .. (type(res) == "number" and num(res // MiB) or tostring(res)) .. "\""
    end
    if hc.MemorySwap ~= nil and hc.MemorySwap ~= mem then
      msgs[#msgs + 1] = "memory swap must equal the memory limit: \"" .. tostring(hc.MemorySwap) .. "\""
    end
    local oom = hc.OomScoreAdj
    if oom ~= nil and (type(oom) ~= "number" or oom < s.min_oom_score_adj) then
      msgs[#msgs + 1] = "oom_score_adj below " .. num(s.min_oom_score_adj) .. ": \"" .. tostring(num(oom)) .. "\""
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
