-- A pids limit on every task (on by default; found by the attack corpus).
--
-- * A task without pids_limit gets default_pids (mutate).
-- * pids_limit -1 or 0 (Docker: unlimited) and values above max_pids are
--   denied.
-- Without a limit one task's fork bomb takes every pid of the node (
-- kernel.pid_max is 32768 on a small machine) and nothing else can start,
-- not even drvctl's own cleanup. policies/resources.lua (shipped off) caps
-- pids too; when an operator enables it, its max_pids mutation applies
-- first to limits <= 0.
--
-- Deviation from Nomad v0.8.3 (which set no pids limit), restore with:
--   plugin "docker" { config { policy_options { pids { enabled = false } } } }

local function num(x)
  return tostring(math.tointeger(x) or x)
end

return {
  policy_format = 1,
  name = "pids",
  description = "every task runs under a pids limit of at most max_pids",
  settings = {
    default_pids = 4096,
    max_pids = 4096,
  },

  mutate = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    if hc.PidsLimit == nil then
      return { { op = "set", path = "HostConfig.PidsLimit", value = ctx.settings.default_pids } }
    end
    return nil
  end,

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local p = hc.PidsLimit
    local max = ctx.settings.max_pids
    if type(p) ~= "number" or math.tointeger(p) == nil then
      return nil, "pids_limit must be an integer: \"" .. tostring(p) .. "\""
    end
    if p <= 0 then
      return nil, "pids_limit must be between 1 and " .. num(max)
        .. " (0 and -1 mean unlimited): \"" .. num(p) .. "\""
    end
    if p > max then
      return nil, "pids_limit above " .. num(max) .. ": \"" .. num(p) .. "\""
    end
    return true
  end,
}
