-- policies/confinement.lua, as attacks: every spelling of "turn confinement
-- off" that dockerd parses (or that a lenient check might misread) must be
-- refused; only no-new-privileges passes by default.
local kit = require("policykit")

local function agent(line)
  return 'plugin "docker" { config { ' .. line .. ' } }'
end

local function opt(o)
  return ('security_opt = ["%s"]'):format(o)
end

describe("policies/confinement.lua", function()
  for _, o in ipairs({ "no-new-privileges", "no-new-privileges=true", "no-new-privileges:true",
                       "no-new-privileges=1", "no-new-privileges=false" }) do
    it(("allows %q"):format(o), function()
      kit.job(opt(o)):allowed():contains("HostConfig.SecurityOpt", o)
    end)
  end

  local attacks = {
    -- seccomp off, or a profile the job chooses (a path reads a host file)
    "seccomp=unconfined", "seccomp:unconfined", "Seccomp=Unconfined", "SECCOMP=UNCONFINED",
    "seccomp=Unconfined", "seccomp= unconfined", "seccomp =unconfined", "seccomp=unconfined ",
    "seccomp=/etc/docker/seccomp-permissive.json", "seccomp:/tmp/profile.json",
    'seccomp={\\"defaultAction\\":\\"SCMP_ACT_ALLOW\\"}', "seccomp=builtin",
    -- apparmor off or another profile
    "apparmor=unconfined", "apparmor:unconfined", "AppArmor=unconfined", "apparmor=docker-privileged",
    -- SELinux off or another type/user/role/level
    "label=disable", "label:disable", "disable", "label=type:spc_t", "label:type:unconfined_t",
    "label=user:system_u", "label=role:system_r", "label=level:s0:c1,c2",
    -- masked /proc and /sys paths, writable cgroups
    "systempaths=unconfined", "systempaths:unconfined", "writable-cgroups=true",
    -- no-new-privileges with a value dockerd cannot parse, keys it does not know
    "no-new-privileges=maybe", "no-new-privileges=yes", "No-New-Privileges=true",
    "no-new-privileges=true=false", "unknown-key=1",
  }
  for _, o in ipairs(attacks) do
    it(("refuses %q"):format(o), function()
      kit.job(opt(o)):blocked("security_opt")
    end)
  end

  it("names the option it denies", function()
    kit.job(opt("seccomp:unconfined"))
      :denied_by("confinement.lua", 'security_opt not in allow_security_opt: "seccomp:unconfined"')
  end)

  it("refuses an unconfined option hidden after an allowed one", function()
    kit.job('security_opt = ["no-new-privileges", "apparmor=unconfined"]')
      :denied_by("confinement.lua", '"apparmor=unconfined"')
  end)

  it("allows exactly the listed option, in either separator", function()
    local a = { agent = agent('allow_security_opt = ["seccomp=unconfined"]') }
    kit.job(opt("seccomp=unconfined"), a):allowed()
    kit.job(opt("seccomp:unconfined"), a):allowed()
    kit.job(opt("apparmor=unconfined"), a):denied_by("confinement.lua", '"apparmor=unconfined"')
    kit.job(opt("Seccomp=unconfined"), a):blocked("security_opt")
  end)

  it("refuses an allow_security_opt entry with spaces in the agent config", function()
    local c = kit.job(opt("seccomp=unconfined"),
      { agent = agent('allow_security_opt = ["seccomp = unconfined"]') })
    assert.is_nil(c.result.plan)
    assert.matches('allow_security_opt: must be one security_opt without spaces', c.result.problems[1].message, 1, true)
  end)
end)
