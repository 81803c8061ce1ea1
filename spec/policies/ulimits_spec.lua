local kit = require("policykit")

local function ulimits(list)
  return { spec = function(s) s.HostConfig.Ulimits = list end }
end

describe("policies/ulimits.lua", function()
  it("allows ulimits that raise no priority", function()
    kit.task({}, ulimits({ { Name = "nofile", Soft = 1024, Hard = 4096 },
      { Name = "rtprio", Soft = 0, Hard = 0 }, { Name = "nice", Soft = 0, Hard = 0 } })):allowed()
  end)

  it("denies rtprio above 0 (SCHED_FIFO without CAP_SYS_NICE)", function()
    kit.task({}, ulimits({ { Name = "rtprio", Soft = 99, Hard = 99 } }))
      :denied_by("ulimits.lua", 'ulimit rtprio above 0: "rtprio=99:99"')
    kit.task({}, ulimits({ { Name = "rtprio", Soft = 0, Hard = 99 } })):denied_by("ulimits.lua", "rtprio")
  end)

  it("denies nice above 0, and both in any case or padding", function()
    kit.task({}, ulimits({ { Name = "nice", Soft = 40, Hard = 40 } })):denied_by("ulimits.lua", "nice")
    kit.task({}, ulimits({ { Name = "RTPRIO", Soft = 1, Hard = 1 } })):denied_by("ulimits.lua", '"RTPRIO=1:1"')
    kit.task({}, ulimits({ { Name = " Nice ", Soft = 1, Hard = 1 } })):denied_by("ulimits.lua", "nice")
  end)

  it("denies values that are not numbers", function()
    kit.task({}, ulimits({ { Name = "rtprio", Soft = "99", Hard = 99 } })):denied_by("ulimits.lua", "rtprio")
  end)

  it("takes maximums from policy_options", function()
    local agent = { policy_options = { ulimits = { max = { rtprio = 10, nice = 0 } } } }
    kit.task({}, { agent = agent, spec = ulimits({ { Name = "rtprio", Soft = 10, Hard = 10 } }).spec })
      :not_denied_by("ulimits.lua")
  end)
end)
