-- Regression specs for what the fuzzers (fuzz/, `make fuzz`) found. Each
-- case is the minimised reproducer of one finding; fuzz/README.md says how
-- to turn a finding into a case here.
local driver = require("drv.driver")
local jobspec = require("drv.jobspec")

local ROOT = debug.getinfo(1, "S").source:gsub("^@", ""):gsub("/?spec/unit/fuzz_regressions_spec%.lua$", "")
if ROOT == "" then
  ROOT = "."
end
local targets = dofile(ROOT .. "/fuzz/lua/targets.lua")

-- ARCHITECTURE §10: a plan or a documented error within a second; counted
-- in VM instructions (the fuzzer's budget), not wall-clock time.
local BUDGET = 20000000

local NODE = { ["kernel.name"] = "linux", ["cpu.arch"] = "amd64", ["unique.hostname"] = "node-a" }
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work",
  alloc_seed = "0123456789abcdef0123456789abcdef", node = NODE }


-- Every problem is a { kind = string, message = string } table.
local function assert_problems(problems)
  assert.is_table(problems)
  assert.is_true(#problems > 0)
  for i, p in ipairs(problems) do
    assert.is_table(p, "problem " .. i .. " is a " .. type(p) .. ": " .. tostring(p))
    assert.is_string(p.kind)
    assert.is_string(p.message)
    assert.are_not.equal("internal", p.kind)
  end
end


describe("fuzz regressions", function()
  -- fuzz/findings plan-contract-926295fd: a JSON job with both an error and a
  -- warning returned the warning (a plain string) among its problems.
  it("a JSON job's warnings are not mixed into its problems", function()
    local src = [[
{"Job": {"ID": "j", "Bogus": 1, "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t",
 "Driver": "docker", "Config": {"image": "busybox", "dns_servers": [""]}}]}]}}]]
    local job, problems = jobspec.load(src, "job.json")
    assert.is_nil(job)
    assert_problems(problems)
    assert.are.equal('job.json: Job.Bogus: unknown key "Bogus" in job', problems[1].message)
    local plan, problems2 = driver.plan(src, "job.json", nil, nil, HOST)
    assert.is_nil(plan)
    assert_problems(problems2)
  end)


  -- Every committed fuzz seed (and reproducer) keeps its entry point's
  -- contract within the budget.
  local CORPUS = { hcl = "plan", json = "plan", interp = "interp", constraint = "constraint",
    decode = "decode" }
  for dir, target in pairs(CORPUS) do
    local p = io.popen('ls -1 "' .. ROOT .. "/fuzz/corpus/" .. dir .. '" 2>/dev/null')
    local names = {}
    for name in p:lines() do
      names[#names + 1] = name
    end
    p:close()
    table.sort(names)
    for _, name in ipairs(names) do
      it("fuzz/corpus/" .. dir .. "/" .. name .. " keeps the " .. target .. " contract", function()
        local f = assert(io.open(ROOT .. "/fuzz/corpus/" .. dir .. "/" .. name, "rb"))
        local input = f:read("a")
        f:close()
        local count = 0
        debug.sethook(function() count = count + 1000 end, "", 1000)
        local ok, res = pcall(targets.TARGETS[target], input)
        if target == "plan" and ok and res == nil then
          ok, res = pcall(targets.TARGETS.hcl, input:match("^%s*{") and "" or input)
        end
        debug.sethook()
        assert.is_true(ok, tostring(res))
        assert.is_nil(res)
        assert.is_true(count <= BUDGET, count .. " instructions")
      end)
    end
  end
end)
