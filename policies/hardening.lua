-- Extra hardening. Shipped OFF: set enabled = true below, or in the agent
-- config:
--   plugin "docker" { config { policy_options { hardening { enabled = true } } } }
-- * adds no-new-privileges to security_opt (and removes
--   no-new-privileges=false in any spelling dockerd parses)
-- Unconfined security_opt values are policies/confinement.lua's concern and
-- devices policies/devices.lua's; both are on by default.

local FALSE = { ["0"] = true, f = true, F = true, FALSE = true, ["false"] = true, False = true }

-- "no-new-privileges:false" -> "no-new-privileges", "false" (dockerd splits
-- at the first '=', else at the first ':'; names are case-sensitive)
local function split_opt(o)
  local k, v = string.match(tostring(o), "^([^=]*)=(.*)$")
  if not k then
    k, v = string.match(tostring(o), "^([^:]*):(.*)$")
  end
  return k or tostring(o), v
end

return {
  policy_format = 1,
  name = "hardening",
  description = "adds no-new-privileges",
  enabled = false,
  settings = {
    no_new_privileges = true,
  },

  mutate = function(ctx)
    if not ctx.settings.no_new_privileges then
      return nil
    end
    local changes, present = {}, false
    for _, o in ipairs((ctx.spec.HostConfig or {}).SecurityOpt or {}) do
      local k, v = split_opt(o)
      if k == "no-new-privileges" then
        if v ~= nil and FALSE[v] then
          changes[#changes + 1] = { op = "remove", path = "HostConfig.SecurityOpt", value = o }
        else
          present = true
        end
      end
    end
    if not present then
      changes[#changes + 1] = { op = "append", path = "HostConfig.SecurityOpt", value = "no-new-privileges" }
    end
    return changes
  end,
}
