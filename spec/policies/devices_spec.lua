-- policies/devices.lua, as attacks: a host block device handed to a job
-- with "rwm" is the host's disk; only devices the operator lists pass.
local kit = require("policykit")

local function agent(line)
  return 'plugin "docker" { config { ' .. line .. ' } }'
end

local function device(host_path, perms)
  return ('devices = [{ host_path = "%s"%s }]'):format(host_path,
    perms and (', cgroup_permissions = "%s"'):format(perms) or "")
end

local FUSE = { agent = agent('allow_devices = ["/dev/fuse"]') }

describe("policies/devices.lua", function()
  it("denies a host block device by default", function()
    kit.job(device("/dev/sda", "rwm")):denied_by("devices.lua", 'device not in allow_devices: "/dev/sda"')
  end)

  for _, p in ipairs({ "/dev/fuse", "/dev/null", "/dev/mem", "/dev/kmsg", "/dev/nvme0n1" }) do
    it(("denies %s without allow_devices"):format(p), function()
      kit.job(device(p)):denied_by("devices.lua", p)
    end)
  end

  it("denies a read-only device too (\"r\" still reads the disk)", function()
    kit.job(device("/dev/sda", "r")):denied_by("devices.lua", "/dev/sda")
  end)

  it("allows a listed device", function()
    kit.job(device("/dev/fuse"), FUSE):allowed()
      :has("HostConfig.Devices.1.PathOnHost", "/dev/fuse")
  end)

  it("allows a listed device under another container path", function()
    kit.job('devices = [{ host_path = "/dev/fuse", container_path = "/dev/f" }]', FUSE):allowed()
  end)

  local tricks = { "/dev/fuse/../sda", "/dev//fuse", "/dev/fuse/", "/dev/./fuse", "dev/fuse",
                   "/DEV/FUSE", "/dev/fuse ", " /dev/fuse", "/dev/fuse\\u0000" }
  for _, p in ipairs(tricks) do
    it(("refuses %q when only /dev/fuse is allowed"):format(p), function()
      kit.job(device(p), FUSE):blocked()
    end)
  end

  it("refuses one forbidden device among allowed ones", function()
    kit.job('devices = [{ host_path = "/dev/fuse" }, { host_path = "/dev/sda" }]', FUSE)
      :denied_by("devices.lua", '"/dev/sda"')
  end)

  it("refuses the device's host path through a bind mount or volume instead", function()
    kit.job('volumes = ["/dev/sda:/dev/sda"]', FUSE):denied_by("volumes.lua", "/dev/sda")
    kit.job([[
      mount {
        type = "bind"
        source = "/dev"
        target = "/hostdev"
      }
    ]], FUSE):denied_by("volumes.lua", "/dev")
  end)

  it("denies device cgroup rules and requests set by a mutation", function()
    local sources = kit.sources()
    sources[#sources + 1] = { path = "ops/zz-rules.lua", source = [[
      return { policy_format = 1, name = "zz-rules",
        mutate = function()
          return { { op = "set", path = "HostConfig.DeviceCgroupRules", value = { "b *:* rwm" } } }
        end }
    ]] }
    kit.job("", { sources = sources }):denied_by("devices.lua", "DeviceCgroupRules")
  end)

  it("refuses an allow_devices entry outside /dev or not clean", function()
    for _, bad in ipairs({ "/etc/shadow", "/dev/../etc/shadow", "dev/fuse", "/dev/fuse/" }) do
      local c = kit.job(device("/dev/fuse"), { agent = agent(('allow_devices = ["%s"]'):format(bad)) })
      assert.is_nil(c.result.plan, bad)
      assert.matches("allow_devices: must be a clean absolute path under /dev/",
        c.result.problems[1].message, 1, true)
    end
  end)
end)
