-- spec/support/agentconf.lua: agent config files for the Docker specs.
--
--   local drv = require("support.drv")
--   local agentconf = require("support.agentconf")
--
--   -- a job that pulls from the spec's own registry on 127.0.0.1
--   -- (support.registry) needs the operator's opt-in: by default drvctl
--   -- refuses pulls from loopback/private registries (exit 77,
--   -- core/image/regcheck.h)
--   local conf = agentconf.trusted_registry(dir)          -- dir/agent.hcl
--   drv.drvctl({ "run", "-config", conf, "-data-dir", dir .. "/data", job })
--
--   -- with more settings: HCL appended to the same file (a second
--   -- plugin "docker" block only overrides the keys it sets)
--   local conf = agentconf.trusted_registry(dir,
--     'plugin "docker" { config { pull_activity_timeout = "1s" } }')
--
--   -- just the text, to put into a config of your own
--   agentconf.TRUSTED_REGISTRY
local drv = require("support.drv")

local M = {}

-- The agent config that lets jobs pull from registries on loopback and
-- private addresses (the test registries listen on 127.0.0.1).
M.TRUSTED_REGISTRY = [[
plugin "docker" {
  config {
    allow_private_registries = true
  }
}
]]

-- M.TRUSTED_REGISTRY followed by `extra` (HCL text, or nil).
function M.trusted_registry_text(extra)
  if extra == nil or extra == "" then
    return M.TRUSTED_REGISTRY
  end
  return M.TRUSTED_REGISTRY .. extra .. (extra:sub(-1) == "\n" and "" or "\n")
end

-- Writes M.trusted_registry_text(extra) to dir/name (default "agent.hcl")
-- and returns its path, for `drvctl run -config PATH`.
function M.trusted_registry(dir, extra, name)
  return drv.write(dir .. "/" .. (name or "agent.hcl"), M.trusted_registry_text(extra))
end

return M
