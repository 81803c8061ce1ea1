local kit = require("policykit")

local on = { enable = { "hardening" } }

describe("policies/hardening.lua", function()
  it("is off by default", function()
    kit.task({}):allowed():lacks("HostConfig.SecurityOpt", "no-new-privileges")
  end)

  it("adds no-new-privileges once enabled", function()
    kit.task({}, on):allowed():contains("HostConfig.SecurityOpt", "no-new-privileges")
      :mutated_by("hardening.lua", "HostConfig.SecurityOpt")
  end)

  for _, o in ipairs({ "no-new-privileges=false", "no-new-privileges:false", "no-new-privileges=0",
                       "no-new-privileges=False", "no-new-privileges:F" }) do
    it(("replaces %q"):format(o), function()
      kit.task({ security_opt = { o } }, on):allowed()
        :lacks("HostConfig.SecurityOpt", o)
        :contains("HostConfig.SecurityOpt", "no-new-privileges")
    end)
  end

  it("keeps an explicit no-new-privileges=true without adding a second", function()
    local c = kit.task({ security_opt = { "no-new-privileges=true" } }, on):allowed()
    assert.same({ "no-new-privileges=true" }, c:field("HostConfig.SecurityOpt"))
  end)

  it("refuses the old allow_devices setting (devices.lua and allow_devices own it now)", function()
    kit.task({}, { agent = { policy_options = { hardening = { allow_devices = { "/dev/fuse" } } } } })
      :denied_by("hardening.lua", 'unknown policy option "allow_devices"')
  end)
end)
