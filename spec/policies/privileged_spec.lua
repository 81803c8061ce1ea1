local kit = require("policykit")

describe("policies/privileged.lua", function()
  it("denies privileged = true by default", function()
    kit.task({ privileged = true })
      :denied_by("privileged.lua", "docker.privileged.enabled is false", '"privileged = true"')
  end)

  it("allows privileged = true when the agent enables it", function()
    kit.task({ privileged = true }, { agent = { privileged_enabled = true } }):allowed()
  end)

  for _, mode in ipairs({ "pid_mode", "ipc_mode", "uts_mode", "userns_mode" }) do
    it("denies " .. mode .. " = host without privileged allowed", function()
      kit.task({ [mode] = "host" }):denied_by("privileged.lua", '"' .. mode .. ' = host"')
    end)
  end

  it("denies host mode written in another case", function()
    kit.task({ pid_mode = "HOST" }):denied_by("privileged.lua", "pid_mode")
  end)

  it("allows pid_mode = host when privileged is allowed", function()
    kit.task({ pid_mode = "host" }, { agent = { privileged_enabled = true } }):allowed()
  end)

  it("leaves container:<name> namespaces to namespaces.lua", function()
    kit.task({ ipc_mode = "container:db" }):not_denied_by("privileged.lua")
      :denied_by("namespaces.lua", "ipc_mode")
  end)

  it("reports privileged and every host mode together", function()
    local case = kit.task({ privileged = true, pid_mode = "host", ipc_mode = "host" }):denied()
    assert.equal(3, #case:messages("privileged.lua"))
  end)

  describe("attacks through the job file", function()
    local ENABLED = 'client { options { "docker.privileged.enabled" = "true" } }'

    it("denies privileged = true in HCL", function()
      kit.job("privileged = true"):denied_by("privileged.lua", '"privileged = true"')
    end)

    it("refuses privileged written as a string or number", function()
      for _, v in ipairs({ '"true"', '"1"', "1", '"TRUE"' }) do
        kit.job("privileged = " .. v):blocked()
      end
    end)

    it("refuses privileged behind a duplicate JSON key", function()
      kit.job(nil, { source = [[
{"Job": {"ID": "example", "Name": "example", "TaskGroups": [{"Name": "app", "Count": 1,
 "Tasks": [{"Name": "web", "Driver": "docker",
   "Config": {"image": "busybox:1.36", "privileged": false, "privileged": true}}]}]}}
]] }):blocked()
    end)

    for _, mode in ipairs({ "pid_mode", "ipc_mode", "uts_mode", "userns_mode", "cgroupns" }) do
      for _, v in ipairs({ "host", "HOST", "Host", " host", "host " }) do
        it(("refuses %s = %q"):format(mode, v), function()
          kit.job(('%s = "%s"'):format(mode, v)):blocked()
        end)
      end
    end

    it("allows the host pid namespace with the documented line", function()
      kit.job('pid_mode = "host"', { agent = ENABLED }):allowed():has("HostConfig.PidMode", "host")
    end)

    it("refuses privileged set through the agent's policy_options typo", function()
      local c = kit.job("privileged = true", { agent =
        'plugin "docker" { config { policy_options { privilegd { enabled = false } } } }' })
      assert.is_nil(c.result.plan)
      assert.matches('unknown policy "privilegd", did you mean "privileged"?',
        c.result.problems[1].message, 1, true)
    end)
  end)
end)
