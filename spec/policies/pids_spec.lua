local kit = require("policykit")

describe("policies/pids.lua", function()
  it("gives a task without pids_limit the default limit", function()
    kit.task({}):allowed():has("HostConfig.PidsLimit", 4096)
  end)

  it("keeps a limit under the maximum", function()
    kit.task({ pids_limit = 64 }):allowed():has("HostConfig.PidsLimit", 64)
  end)

  it("denies -1 and 0 (unlimited in Docker)", function()
    kit.task({ pids_limit = -1 }):denied_by("pids.lua", "pids_limit", '"-1"')
    kit.task({ pids_limit = 0 }):denied_by("pids.lua", "pids_limit", '"0"')
  end)

  it("denies a limit above max_pids", function()
    kit.task({ pids_limit = 100000000 }):denied_by("pids.lua", 'pids_limit above 4096: "100000000"')
  end)

  it("denies a limit that is not an integer", function()
    kit.task({}, { spec = function(s) s.HostConfig.PidsLimit = 1.5 end })
      :denied_by("pids.lua", "pids_limit must be an integer")
    kit.task({}, { spec = function(s) s.HostConfig.PidsLimit = "-1" end })
      :denied_by("pids.lua", "pids_limit must be an integer")
  end)

  it("takes its numbers from policy_options and can be turned off", function()
    local agent = { policy_options = { pids = { default_pids = 100, max_pids = 200 } } }
    kit.task({}, { agent = agent }):allowed():has("HostConfig.PidsLimit", 100)
    kit.task({ pids_limit = 300 }, { agent = agent }):denied_by("pids.lua", 'pids_limit above 200: "300"')
    kit.task({ pids_limit = -1 }, { agent = { policy_options = { pids = { enabled = false } } } })
      :not_denied_by("pids.lua")
  end)
end)
