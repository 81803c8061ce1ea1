local kit = require("policykit")

-- n port labels, each bound for tcp and udp on its own host port
local function ports(n, ip)
  return { spec = function(s)
    local pb = {}
    for i = 1, n do
      local b = { { HostIp = ip or "10.0.0.1", HostPort = tostring(20000 + i) } }
      pb[(8000 + i) .. "/tcp"] = b
      pb[(8000 + i) .. "/udp"] = b
    end
    s.HostConfig.PortBindings = pb
  end }
end

describe("policies/ports.lua", function()
  it("allows a task without ports and one with up to 32", function()
    kit.task({}):allowed()
    kit.task({}, ports(32)):allowed()
  end)

  it("denies more than 32 host ports (tcp and udp of one label count once)", function()
    kit.task({}, ports(33)):denied_by("ports.lua", 'more than 32 host ports: "33"')
    kit.task({}, ports(3000)):denied_by("ports.lua", '"3000"')
  end)

  it("counts one host port on two addresses twice", function()
    kit.task({}, { spec = function(s)
      local pb = {}
      for i = 1, 17 do
        pb[(8000 + i) .. "/tcp"] = { { HostIp = "10.0.0.1", HostPort = tostring(20000 + i) },
          { HostIp = "10.0.0.2", HostPort = tostring(20000 + i) } }
      end
      s.HostConfig.PortBindings = pb
    end }):denied_by("ports.lua", '"34"')
  end)

  it("denies PortBindings that are not an object", function()
    kit.task({}, { spec = function(s) s.HostConfig.PortBindings = "80:80" end })
      :denied_by("ports.lua", "PortBindings must be an object")
  end)

  it("takes max_ports from policy_options and can be turned off", function()
    kit.task({}, { agent = { policy_options = { ports = { max_ports = 2 } } }, spec = ports(3).spec })
      :denied_by("ports.lua", 'more than 2 host ports: "3"')
    kit.task({}, { agent = { policy_options = { ports = { enabled = false } } }, spec = ports(100).spec })
      :not_denied_by("ports.lua")
  end)
end)
