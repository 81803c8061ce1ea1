local kit = require("policykit")

local NODE = { ["memory.totalbytes"] = tostring(8 * 1024 * kit.MiB), ["cpu.totalcompute"] = "4200" }

describe("policies/capacity.lua", function()
  it("allows a task that fits on the node", function()
    kit.task({}, { node = NODE, resources = { cpu = 4200, memory = 8192 } }):allowed()
  end)

  it("denies memory above the node's total", function()
    kit.task({}, { node = NODE, resources = { memory = 50000000 } })
      :denied_by("capacity.lua", "memory above the node's 8192 MB: \"50000000\"")
  end)

  it("denies a memory_hard_limit (HostConfig.Memory) above the node's total", function()
    kit.task({}, { node = NODE, spec = function(s)
      s.HostConfig.Memory = 50000000 * kit.MiB
      s.HostConfig.MemoryReservation = 300 * kit.MiB
    end }):denied_by("capacity.lua", 'memory above the node\'s 8192 MB: "50000000"')
  end)

  it("denies cpu above the node's total compute", function()
    kit.task({}, { node = NODE, resources = { cpu = 200000 } })
      :denied_by("capacity.lua", 'cpu above the node\'s 4200 MHz: "200000"')
  end)

  it("does not check facts the node does not know", function()
    kit.task({}, { resources = { cpu = 200000, memory = 50000000 } }):not_denied_by("capacity.lua")
    kit.task({}, { node = { ["memory.totalbytes"] = "garbage" }, resources = { memory = 50000000 } })
      :not_denied_by("capacity.lua")
  end)

  it("can be turned off", function()
    kit.task({}, { node = NODE, resources = { memory = 50000000 },
      agent = { policy_options = { capacity = { enabled = false } } } }):not_denied_by("capacity.lua")
  end)
end)
