-- drvctl policy check: the shipped policies load, and a broken operator
-- policy is reported with its file, under the binary's real budget guard
-- (instruction count hook, one-second clock, counting allocator).
local drv = require("support.drv")

local function policy_dir(files)
  local dir = drv.tmpdir()
  for name, text in pairs(files) do
    drv.write(dir .. "/" .. name, text)
  end
  return dir
end

local CHECKING = [[
return {
  policy_format = 1,
  name = "%s",
  check = function(ctx)
    %s
    return true
  end,
}
]]

describe("drvctl policy check", function()
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  it("accepts the shipped policies and lists them", function()
    local r = drv.drvctl({ "policy", "check" })
    assert.equal(0, r.code, r.output)
    for _, name in ipairs({ "capabilities", "volumes", "privileged", "runtimes" }) do
      assert.matches("ok%s+%S*policies/" .. name .. "%.lua", r.stdout)
    end
  end)

  it("stops an endless loop within about a second and names the file", function()
    local dir = policy_dir({ ["loop.lua"] = CHECKING:format("loop", "while true do end") })
    local t0 = drv.now()
    local r = drv.drvctl({ "policy", "check", dir })
    local secs = drv.now() - t0
    assert.equal(78, r.code, r.output)
    assert.matches(dir .. "/loop.lua", r.stderr, 1, true)
    assert.matches("budget exceeded", r.stderr, 1, true)
    assert.is_true(secs < 3, "took " .. secs .. " s")
  end)

  it("stops endless allocation with the memory budget", function()
    local dir = policy_dir({ ["alloc.lua"] = CHECKING:format("alloc",
      "local t = {} while true do t[#t + 1] = ('x'):rep(4096) .. #t end") })
    local r = drv.drvctl({ "policy", "check", dir })
    assert.equal(78, r.code, r.output)
    assert.matches("alloc.lua", r.stderr, 1, true)
    assert.matches("budget exceeded", r.stderr, 1, true)
  end)

  it("reports a syntax error with file and line", function()
    local dir = policy_dir({ ["broken.lua"] = "return {\n  policy_format = 1,\n  name = = 2,\n}\n" })
    local r = drv.drvctl({ "policy", "check", dir })
    assert.equal(78, r.code, r.output)
    assert.matches(dir .. "/broken.lua:3", r.stderr, 1, true)
  end)

  it("denies every task at plan time when a policy is broken (fail closed)", function()
    local dir = policy_dir({ ["broken.lua"] = "return 42\n" })
    local cfg = dir .. "/agent.hcl"
    drv.write(cfg, 'policy_dir = "' .. dir .. '"\n')
    local r = drv.drvctl({ "plan", "-config", cfg, drv.root .. "/examples/hello.hcl" })
    assert.equal(77, r.code, r.output)
    assert.matches("broken.lua", r.stderr, 1, true)
  end)

  it("lets an operator file override a shipped one by name", function()
    local dir = policy_dir({ ["runtimes.lua"] = CHECKING:format("runtimes", "") })
    local r = drv.drvctl({ "policy", "check", dir })
    assert.equal(0, r.code, r.output)
    assert.matches("ok%s+" .. dir:gsub("%p", "%%%0") .. "/runtimes%.lua", r.stdout)
    assert.not_matches("ok%s+%S*/policies/runtimes%.lua", r.stdout)
  end)
end)
