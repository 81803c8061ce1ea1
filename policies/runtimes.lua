-- OCI runtimes a task may select (task config `runtime`, HostConfig.Runtime).
-- The agent's allow_runtimes list (ctx.agent.allow_runtimes) replaces the
-- default below. A task that names no runtime gets the daemon's default.
--
-- Newer Nomad allows runc and nvidia by default; drvctl allows runc only.
-- To allow nvidia as well:
--   plugin "docker" { config { allow_runtimes = ["runc", "nvidia"] } }

return {
  policy_format = 1,
  name = "runtimes",
  description = "the container runtime must be in allow_runtimes",
  settings = {
    default_allow = { "runc" },
  },

  check = function(ctx)
    local rt = (ctx.spec.HostConfig or {}).Runtime
    if rt == nil or rt == "" then
      return true
    end
    local allow = ctx.agent.allow_runtimes or ctx.settings.default_allow
    for _, a in ipairs(allow) do
      if a == rt then
        return true
      end
    end
    return nil, "runtime not in allow_runtimes: \"" .. tostring(rt) .. "\""
  end,
}
