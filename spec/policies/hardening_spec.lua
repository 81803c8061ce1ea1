local kit = require("policykit")

local on = { enable = { "hardening" } }

describe("policies/hardening.lua", function()
  it("is off by default", function()
    kit.task({ security_opt = { "seccomp=unconfined" } }):allowed()
      :lacks("HostConfig.SecurityOpt", "no-new-privileges")
  end)

  it("adds no-new-privileges once enabled", function()
    kit.task({}, on):allowed():contains("HostConfig.SecurityOpt", "no-new-privileges")
  end)

  it("replaces no-new-privileges=false", function()
    kit.task({ security_opt = { "no-new-privileges=false" } }, on):allowed()
      :lacks("HostConfig.SecurityOpt", "no-new-privileges=false")
      :contains("HostConfig.SecurityOpt", "no-new-privileges")
  end)

  for _, opt in ipairs({ "seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", " AppArmor:Unconfined " }) do
    it(("denies security_opt %q"):format(opt), function()
      kit.task({ security_opt = { opt } }, on):denied_by("hardening.lua", "security_opt not allowed")
    end)
  end

  it("denies a device outside allow_devices", function()
    kit.task({ devices = { { host_path = "/dev/sda1" } } }, on)
      :denied_by("hardening.lua", 'device not in allow_devices: "/dev/sda1"')
  end)

  it("allows a device from allow_devices", function()
    local agent = { policy_options = { hardening = { allow_devices = { "/dev/fuse" } } } }
    kit.task({ devices = { { host_path = "/dev/fuse" } } }, { agent = agent, enable = { "hardening" } })
      :allowed()
  end)

  it("denies a device path that only looks allowed", function()
    local agent = { policy_options = { hardening = { allow_devices = { "/dev/fuse" } } } }
    kit.task({ devices = { { host_path = "/dev/fuse/../sda" } } }, { agent = agent, enable = { "hardening" } })
      :denied_by("hardening.lua", "/dev/fuse/../sda")
  end)
end)
