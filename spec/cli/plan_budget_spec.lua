-- The instruction budget of a plan (core/lua/script.c, lcore.c): pass 1
-- counts every Lua instruction; pass 2 counts only its policies' (it runs
-- without a per-instruction hook outside them), and still fails the whole
-- plan with "job too large to plan" when they exceed the budget, even
-- though each policy call's error is caught by the sandbox.
local drv = require("support.drv")

local BURN = [[
return {
  policy_format = 1,
  name = "burn",
  check = function(ctx)
    local x = 0
    for i = 1, 300000 do x = x + i end
    return true
  end,
}
]]

local function setup(count)
  local dir, policies = drv.tmpdir(), drv.tmpdir()
  drv.write(policies .. "/burn.lua", BURN)
  drv.write(dir .. "/agent.hcl", ('policy_dir = "%s"\n'):format(policies))
  local job = drv.write_job(dir, { count = count })
  return dir, job
end

describe("the plan budget", function()
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  local NO_DOCKER = { env = { DOCKER_HOST = "unix:///nonexistent.sock" }, timeout = 30 }

  it("fails a plan whose policies need more than the budget (exit 68, every instance counted)", function()
    -- 60 instances x about 300k instructions in `burn`: more than 15 million
    local dir, job = setup(60)
    local t0 = drv.now()
    local r = drv.drvctl({ "plan", "-config", dir .. "/agent.hcl", "-data-dir", dir .. "/data", job }, NO_DOCKER)
    assert.equal(68, r.code, r.output)
    assert.matches("job too large to plan: it needs more than 15 million Lua instructions", r.stderr, 1, true)
    assert.not_matches("denied", r.stderr, 1, true)
    assert.is_true(drv.now() - t0 < 10, r.output)
  end)

  it("plans the same job with fewer instances", function()
    local dir, job = setup(10)
    local r = drv.drvctl({ "plan", "-config", dir .. "/agent.hcl", "-data-dir", dir .. "/data", job }, NO_DOCKER)
    assert.equal(0, r.code, r.output)
    assert.matches('"name": "burn"', r.stdout, 1, true)
  end)
end)
