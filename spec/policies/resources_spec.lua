local kit = require("policykit")

describe("policies/resources.lua", function()
  it("is off by default", function()
    kit.task({}, { resources = { memory = 100000 } }):allowed()
  end)

  it("allows a task under every maximum once enabled", function()
    kit.task({}, { enable = { "resources" } }):allowed()
  end)

  it("denies memory above the maximum", function()
    kit.task({}, { enable = { "resources" }, resources = { memory = 8192 } })
      :denied_by("resources.lua", 'memory above 4096 MB: "8192"')
  end)

  it("denies cpu above the maximum", function()
    kit.task({}, { enable = { "resources" }, resources = { cpu = 5000 } })
      :denied_by("resources.lua", 'cpu above 4000 MHz: "5000"')
  end)

  it("sets a pids limit on a task without one", function()
    kit.task({}, { enable = { "resources" } }):allowed():has("HostConfig.PidsLimit", 4096)
  end)

  it("denies a pids limit above the maximum", function()
    kit.task({ pids_limit = 100000 }, { enable = { "resources" } })
      :denied_by("resources.lua", 'pids limit above 4096: "100000"')
  end)

  it("takes maximums from the agent's policy_options", function()
    local agent = { policy_options = { resources = { max_memory_mb = 256 } } }
    kit.task({}, { agent = agent, enable = { "resources" } }):denied_by("resources.lua", 'memory above 256 MB: "300"')
  end)
end)
