-- Every shipped example is valid: `drvctl plan` accepts each job in
-- examples/, alone and with examples/agent.hcl as agent config.
local drv = require("support.drv")

local NO_DOCKER = { DOCKER_HOST = "unix:///nonexistent.sock" }

local jobs = {}
for _, name in ipairs(drv.ls(drv.root .. "/examples")) do
  if name:match("%.hcl$") and name ~= "agent.hcl" then
    jobs[#jobs + 1] = name
  end
end

describe("examples", function()
  after_each(drv.cleanup)

  it("include hello.hcl", function()
    assert.is_true(drv.exists(drv.root .. "/examples/hello.hcl"))
  end)

  for _, name in ipairs(jobs) do
    it(name .. " plans cleanly", function()
      local dir = drv.tmpdir()
      local r = drv.drvctl({ "plan", "-data-dir", dir, "examples/" .. name }, { env = NO_DOCKER })
      assert.equal(0, r.code, r.output)
    end)

    it(name .. " plans cleanly with examples/agent.hcl", function()
      local dir = drv.tmpdir()
      local r = drv.drvctl({ "plan", "-config", "examples/agent.hcl", "-data-dir", dir,
        "examples/" .. name }, { env = NO_DOCKER })
      assert.equal(0, r.code, r.output)
    end)
  end
end)
