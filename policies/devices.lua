-- Host devices a task may use.
--
-- Every entry of HostConfig.Devices needs its PathOnHost, exactly as
-- written and already clean (no "..", "//" or trailing "/"), in the agent's
-- allow_devices list. Device cgroup rules and device requests (GPUs), which
-- open device classes rather than paths, are denied outright.
--
-- Deviation from Nomad v0.8.3 (which passed devices through: a host block
-- device could be handed to a job with "rwm"), restore per device with:
--   plugin "docker" { config { allow_devices = ["/dev/fuse"] } }

local path = drv.path

local function quote(s)
  return "\"" .. tostring(s) .. "\""
end

return {
  policy_format = 1,
  name = "devices",
  description = "devices only from allow_devices",

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local allow = {}
    for _, d in ipairs(ctx.agent.allow_devices or {}) do
      allow[d] = true
    end
    local msgs = {}
    local devs = hc.Devices
    if devs ~= nil and type(devs) ~= "table" then
      msgs[#msgs + 1] = "devices must be a list"
      devs = {}
    end
    for _, d in ipairs(devs or {}) do
      local p = type(d) == "table" and d.PathOnHost or d
      if type(p) ~= "string" then
        msgs[#msgs + 1] = "device without a host path: " .. quote(p)
      elseif path.clean(p) ~= p or not path.is_abs(p) then
        msgs[#msgs + 1] = "device host path is not a clean absolute path: " .. quote(p)
      elseif not allow[p] then
        msgs[#msgs + 1] = "device not in allow_devices: " .. quote(p)
      end
    end
    for _, f in ipairs({ "DeviceCgroupRules", "DeviceRequests" }) do
      local v = hc[f]
      if v ~= nil and not (type(v) == "table" and next(v) == nil) then
        msgs[#msgs + 1] = "not allowed: " .. quote("HostConfig." .. f)
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
