-- Linux capabilities a task may hold.
--
-- The whitelist is the agent's docker.caps.whitelist (client options) or
-- allow_caps (plugin "docker" config), passed in as ctx.agent.caps_whitelist.
-- Names are normalised ("sys_admin", " CAP_SYS_ADMIN " -> "SYS_ADMIN"); "ALL"
-- in the whitelist allows everything, "ALL" in cap_add needs it.
--
-- The effective set is Docker's defaults + cap_add - cap_drop; every member
-- must be whitelisted, and every missing one is listed.
--
-- Deviation from Nomad v0.8.3 (CVE-2021-32575): the default whitelist has no
-- NET_RAW, and Docker defaults the whitelist lacks are appended to CapDrop,
-- so tasks run without NET_RAW unless the operator allows it. The old
-- behaviour comes back with this agent config line:
--   client { options { "docker.caps.whitelist" = "CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE" } }

local caps = drv.caps

local function whitelist(ctx)
  local w = ctx.agent.caps_whitelist
  if w == nil then
    w = ctx.settings.default_whitelist
  end
  return w
end

return {
  policy_format = 1,
  name = "capabilities",
  description = "effective capabilities must lie within docker.caps.whitelist",
  settings = {
    -- used when the agent sets no whitelist
    default_whitelist = {
      "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
      "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
      "SYS_CHROOT",
    },
    -- what Docker grants a container that adds and drops nothing
    docker_defaults = {
      "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
      "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP",
      "SETUID", "SYS_CHROOT",
    },
  },

  -- drop the Docker defaults the whitelist does not allow
  mutate = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local drop = caps.to_drop(whitelist(ctx), hc.CapAdd, hc.CapDrop,
      ctx.settings.docker_defaults)
    if #drop == 0 then
      return nil
    end
    return { { op = "append", path = "HostConfig.CapDrop", value = drop } }
  end,

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local msgs = {}
    local w, werrs = caps.list(whitelist(ctx))
    for _, e in ipairs(werrs) do
      msgs[#msgs + 1] = "docker.caps.whitelist: " .. e
    end
    for _, field in ipairs({ "CapAdd", "CapDrop" }) do
      local _, errs = caps.list(hc[field])
      for _, e in ipairs(errs) do
        msgs[#msgs + 1] = (field == "CapAdd" and "cap_add: " or "cap_drop: ") .. e
      end
    end
    local missing = caps.missing(hc.CapAdd, hc.CapDrop, w,
      ctx.settings.docker_defaults)
    if #missing > 0 then
      msgs[#msgs + 1] = "capabilities not in docker.caps.whitelist: "
        .. caps.quote_list(missing)
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
