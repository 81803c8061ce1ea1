local kit = require("policykit")

describe("policies/registries.lua", function()
  it("is off by default", function()
    kit.task({ image = "evil.example.com/x:1" }):allowed()
  end)

  it("allows Docker Hub images once enabled", function()
    kit.task({ image = "redis:7" }, { enable = { "registries" } }):allowed()
  end)

  it("denies another registry once enabled", function()
    kit.task({ image = "https://evil.example.com:5000/x:1" }, { enable = { "registries" } })
      :denied_by("registries.lua", '"evil.example.com:5000"')
  end)

  it("allows a registry from the agent's allow list, wildcards included", function()
    local agent = { policy_options = { registries = { allow = { "*.example.com" } } } }
    kit.task({ image = "r.example.com/x:1" }, { agent = agent, enable = { "registries" } }):allowed()
  end)

  it("takes a first component with an uppercase letter as a registry host, as Docker does", function()
    -- Docker pulls "Internal/x:1" from the host "Internal", not from docker.io
    kit.task({ image = "Internal/x:1" }, { enable = { "registries" } })
      :denied_by("registries.lua", '"internal"')
    kit.task({ image = "localhost/x:1" }, { enable = { "registries" } })
      :denied_by("registries.lua", '"localhost"')
    kit.task({ image = "library/redis:7" }, { enable = { "registries" } }):allowed()
  end)
end)
