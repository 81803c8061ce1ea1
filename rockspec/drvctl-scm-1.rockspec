-- drvctl as a rock: the pure-Lua part (job mapping, policy engine, test kit).
-- The `drvctl` binary embeds Lua and is built and installed with `make
-- install`; this rock lets operators run the policy test kit and the mapping
-- modules under their own Lua 5.4 and busted.
rockspec_format = "3.0"
package = "drvctl"
version = "scm-1"
source = {
  url = "git+file:///drvctl",
}
description = {
  summary = "Docker task driver with Nomad's docker driver semantics: Lua mapping and policies",
  license = "MPL-2.0",
}
dependencies = {
  "lua >= 5.4, < 5.5",
  "lua-cjson",
}
test_dependencies = {
  "busted",
}
build = {
  type = "builtin",
  modules = {
    ["drv.admission"] = "lua/drv/admission.lua",
    ["drv.agent"] = "lua/drv/agent.lua",
    ["drv.caps"] = "lua/drv/caps.lua",
    ["drv.constraint"] = "lua/drv/constraint.lua",
    ["drv.container"] = "lua/drv/container.lua",
    ["drv.driver"] = "lua/drv/driver.lua",
    ["drv.hcl"] = "lua/drv/hcl.lua",
    ["drv.imageref"] = "lua/drv/imageref.lua",
    ["drv.imagetar"] = "lua/drv/imagetar.lua",
    ["drv.interp"] = "lua/drv/interp.lua",
    ["drv.jobspec"] = "lua/drv/jobspec.lua",
    ["drv.meta"] = "lua/drv/meta.lua",
    ["drv.path"] = "lua/drv/path.lua",
    ["drv.policy"] = "lua/drv/policy.lua",
    ["drv.ports"] = "lua/drv/ports.lua",
    ["drv.registryauth"] = "lua/drv/registryauth.lua",
    ["drv.sandbox"] = "lua/drv/sandbox.lua",
    ["drv.schema"] = "lua/drv/schema.lua",
    ["drv.util"] = "lua/drv/util.lua",
    ["drv.uuid"] = "lua/drv/uuid.lua",
    policykit = "spec/policykit.lua",
  },
  copy_directories = { "policies" },
}
test = {
  type = "busted",
}
