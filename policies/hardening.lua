-- Extra hardening. Shipped OFF: set enabled = true below, or in the agent
-- config:
--   plugin "docker" { config { policy_options { hardening { enabled = true
--     allow_devices = ["/dev/fuse"] } } } }
-- * adds no-new-privileges to security_opt (and removes no-new-privileges=false)
-- * denies seccomp=unconfined and apparmor=unconfined
-- * denies devices whose host path is not in allow_devices

local path = drv.path

-- "seccomp:unconfined", " Seccomp=Unconfined " -> "seccomp", "unconfined"
local function split_opt(o)
  o = string.lower((string.gsub(tostring(o), "%s", "")))
  local at = string.find(o, "[=:]")
  if not at then
    return o, nil
  end
  return string.sub(o, 1, at - 1), string.sub(o, at + 1)
end

return {
  policy_format = 1,
  name = "hardening",
  description = "no-new-privileges, no unconfined seccomp or apparmor, allowed devices only",
  enabled = false,
  settings = {
    no_new_privileges = true,
    allow_devices = {},
  },

  mutate = function(ctx)
    if not ctx.settings.no_new_privileges then
      return nil
    end
    local changes, present = {}, false
    for _, o in ipairs((ctx.spec.HostConfig or {}).SecurityOpt or {}) do
      local k, v = split_opt(o)
      if k == "no-new-privileges" then
        if v == nil or v == "true" then
          present = true
        else
          changes[#changes + 1] = { op = "remove", path = "HostConfig.SecurityOpt", value = o }
        end
      end
    end
    if not present then
      changes[#changes + 1] = { op = "append", path = "HostConfig.SecurityOpt", value = "no-new-privileges" }
    end
    return changes
  end,

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    for _, o in ipairs(hc.SecurityOpt or {}) do
      local k, v = split_opt(o)
      if (k == "seccomp" or k == "apparmor") and v == "unconfined" then
        msgs[#msgs + 1] = "security_opt not allowed: \"" .. o .. "\""
      end
    end
    local allow = {}
    for _, d in ipairs(ctx.settings.allow_devices) do
      allow[path.clean(d)] = true
    end
    for _, d in ipairs(hc.Devices or {}) do
      local p = type(d) == "table" and d.PathOnHost or d
      if type(p) ~= "string" or not allow[path.clean(p)] then
        msgs[#msgs + 1] = "device not in allow_devices: \"" .. tostring(p) .. "\""
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
