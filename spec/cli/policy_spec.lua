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

  -- a copy of the Lua tree without drv.admission (the binary's policies stay)
  local function lua_without_admission()
    local dir = drv.tmpdir() .. "/lua"
    local r = drv.sh("cp -r " .. drv.quote(drv.root .. "/lua") .. " " .. drv.quote(dir)
      .. " && rm -f " .. drv.quote(dir .. "/drv/admission.lua"))
    assert.equal(0, r.code, r.output)
    return dir
  end

  it("fails when the Lua tree has no admission module", function()
    local r = drv.drvctl({ "policy", "check", "-lua-dir", lua_without_admission() })
    assert.are_not.equal(0, r.code, r.output)
    assert.not_matches("policies valid", r.stdout)
    assert.matches("drv.admission", r.stderr, 1, true)
  end)

  it("refuses to plan a privileged job when the Lua tree has no admission module", function()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { config = "privileged = true", script = "true" })
    local r = drv.drvctl({ "plan", "-lua-dir", lua_without_admission(), "-data-dir", dir .. "/data", job })
    assert.are_not.equal(0, r.code, r.output)
    assert.equal("", r.stdout)
    assert.matches("refusing to plan without the policy engine", r.stderr, 1, true)
  end)

  describe("policy_options in the agent config (-config)", function()
    local function config(text)
      local dir = drv.tmpdir()
      drv.write(dir .. "/agent.hcl", text)
      return dir .. "/agent.hcl", dir
    end

    it("names an unknown policy with a did-you-mean", function()
      local cfg = config('plugin "docker" { config { policy_options { registres { enabled = true } } } }\n')
      local r = drv.drvctl({ "policy", "check", "-config", cfg })
      assert.equal(78, r.code, r.output)
      assert.matches('unknown policy "registres", did you mean "registries"?', r.stderr, 1, true)
    end)

    it("names an unknown setting with a did-you-mean", function()
      local cfg = config('plugin "docker" { config { policy_options { resources { max_memory = 1 } } } }\n')
      local r = drv.drvctl({ "policy", "check", "-config", cfg })
      assert.equal(78, r.code, r.output)
      assert.matches('unknown policy option "max_memory", did you mean "max_memory_mb"?', r.stderr, 1, true)
    end)

    it("fails plan and run the same way", function()
      local cfg, dir = config('plugin "docker" { config { policy_options { privilegd { enabled = false } } } }\n')
      local job = drv.write_job(dir, { config = "privileged = true", script = "true" })
      for _, cmd in ipairs({ "plan", "run" }) do
        local r = drv.drvctl({ cmd, "-config", cfg, "-data-dir", dir .. "/data", job })
        assert.equal(78, r.code, cmd .. "\n" .. r.output)
        assert.matches('unknown policy "privilegd", did you mean "privileged"?', r.stderr, 1, true)
      end
    end)

    it("accepts known policies and settings", function()
      local cfg = config('plugin "docker" { config { policy_options { limits { min_oom_score_adj = -10 } } } }\n')
      local r = drv.drvctl({ "policy", "check", "-config", cfg })
      assert.equal(0, r.code, r.output)
    end)
  end)
end)
