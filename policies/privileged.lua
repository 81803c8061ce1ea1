-- Privileged containers and host namespaces.
--
-- privileged = true needs docker.privileged.enabled (allow_privileged).
--
-- Deviation from Nomad v0.8.3 (GH-28190, fixed in Nomad 2.0): host pid_mode,
-- ipc_mode, uts_mode and userns_mode (and Docker's cgroupns "host") also
-- need privileged containers to be allowed; v0.8.3 documented this for
-- pid/ipc/uts but never enforced it. The old behaviour, for these modes,
-- comes back only together with privileged containers:
--   client { options { "docker.privileged.enabled" = "true" } }
-- or by setting enabled = false below (or policy_options { privileged {
-- enabled = false } } in the agent config), which also lets privileged
-- containers through.

local MODES = {
  { field = "PidMode", option = "pid_mode" },
  { field = "IpcMode", option = "ipc_mode" },
  { field = "UTSMode", option = "uts_mode" },
  { field = "UsernsMode", option = "userns_mode" },
  { field = "CgroupnsMode", option = "cgroupns_mode" },
}

local function is_host(v)
  return type(v) == "string" and string.lower((string.gsub(v, "%s", ""))) == "host"
end

return {
  policy_format = 1,
  name = "privileged",
  description = "privileged mode and host namespaces need docker.privileged.enabled",

  check = function(ctx)
    if ctx.agent.privileged_enabled == true then
      return true
    end
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    if hc.Privileged == true then
      msgs[#msgs + 1] = "docker.privileged.enabled is false; cannot run a privileged container: \"privileged = true\""
    end
    for _, m in ipairs(MODES) do
      if is_host(hc[m.field]) then
        msgs[#msgs + 1] = "docker.privileged.enabled is false; cannot share a host namespace: \""
          .. m.option .. " = " .. hc[m.field] .. "\""
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
