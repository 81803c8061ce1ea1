-- ulimits that raise a task's scheduling priority (on by default; found by
-- the attack corpus).
--
-- RLIMIT_RTPRIO lets a process without CAP_SYS_NICE switch itself to
-- SCHED_FIFO/SCHED_RR: a real-time busy loop runs before every ordinary
-- process of the node (CpuShares do not apply to real-time tasks unless the
-- kernel has RT group scheduling, which Debian's does not). RLIMIT_NICE
-- lets it renice below 0. Both stay at max (0 by default); soft and hard
-- values are checked, names in any case (dockerd upper-cases them).
--
-- Deviation from Nomad v0.8.3 (which passed every ulimit through), restore
-- with:
--   plugin "docker" { config { policy_options { ulimits { enabled = false } } } }

return {
  policy_format = 1,
  name = "ulimits",
  description = "no ulimit raising rtprio or nice above the configured maximum",
  settings = {
    max = { rtprio = 0, nice = 0 },
  },

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    for _, u in ipairs(hc.Ulimits or {}) do
      local name = type(u) == "table" and u.Name or nil
      local key = string.lower((string.gsub(tostring(name), "%s", "")))
      local max = ctx.settings.max[key]
      if max ~= nil then
        for _, v in ipairs({ u.Soft, u.Hard }) do
          if type(v) ~= "number" or v < 0 or v > max then
            msgs[#msgs + 1] = "ulimit " .. key .. " above " .. tostring(max) .. ": \""
              .. tostring(name) .. "=" .. tostring(math.tointeger(u.Soft) or u.Soft) .. ":"
              .. tostring(math.tointeger(u.Hard) or u.Hard) .. "\""
            break
          end
        end
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
