local kit = require("policykit")

describe("policies/privileged.lua", function()
  it("denies privileged = true by default", function()
    kit.task({ privileged = true }):denied_by("privileged.lua", "docker.privileged.enabled is false", '"privileged = true"')
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

  it("allows sharing another container's namespace", function()
    kit.task({ ipc_mode = "container:db" }):not_denied_by("privileged.lua")
  end)

  it("reports privileged and every host mode together", function()
    local case = kit.task({ privileged = true, pid_mode = "host", ipc_mode = "host" }):denied()
    assert.equal(3, #case:messages("privileged.lua"))
  end)
end)
