local kit = require("policykit")

describe("policies/runtimes.lua", function()
  it("allows a task that names no runtime", function()
    kit.task({}):not_denied_by("runtimes.lua")
  end)

  it("allows runc by default", function()
    kit.task({ runtime = "runc" }):allowed()
  end)

  it("denies nvidia by default", function()
    kit.task({ runtime = "nvidia" }):denied_by("runtimes.lua", 'runtime not in allow_runtimes: "nvidia"')
  end)

  it("allows what the agent's allow_runtimes lists", function()
    kit.task({ runtime = "nvidia" }, { agent = { allow_runtimes = { "runc", "nvidia" } } }):allowed()
  end)
end)
