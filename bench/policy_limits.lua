-- bench/policy_limits.lua: how long the policy budget takes to stop hostile
-- policy code, and how long a huge padded capability name takes to judge.
-- These wall-clock checks used to live in the unit specs (spec/unit/
-- policy_spec.lua, spec/policies/capabilities_spec.lua), which now check
-- only the outcome. CPU seconds (os.clock) per case; exits 1 when a case
-- takes 1 s or more (the goal: a loaded machine stays far below that).
--
-- Usage (from the repository root): lua5.4 bench/policy_limits.lua
package.path = "lua/?.lua;spec/?.lua;" .. package.path
local policy = require("drv.policy")
local kit = require("policykit")

local LIMIT = 1.0

local function checking(path, body)
  return { path = "policies/" .. path, source = "return { policy_format = 1, name = '"
    .. path:gsub("%.lua$", "") .. "', check = function(ctx)\n" .. body .. "\nend }" }
end

local function evaluate(source, guard)
  local set, problems = policy.load({ source }, guard)
  assert(#problems == 0, problems[1] and problems[1].message)
  return policy.evaluate(set, kit.ctx(), guard)
end

local cases = {
  { "endless loop stopped", function()
      local r = evaluate(checking("loop.lua", "while true do end"), kit.default_guard)
      assert(not r.allowed and r.problems[1].message:find("budget exceeded", 1, true))
    end },
  { "endless allocation stopped", function()
      local r = evaluate(checking("alloc.lua",
        "local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end"), kit.default_guard)
      assert(not r.allowed and r.problems[1].message:find("budget exceeded", 1, true))
    end },
  { "doubling concatenation stopped (8 MiB heap limit)", function()
      local r = evaluate(checking("double.lua",
        "local s = ('x'):rep(1000000) for i = 1, 40 do s = s .. s end return true"),
        kit.guard({ memory_kb = 8 * 1024 }))
      assert(not r.allowed and r.problems[1].message:find("budget exceeded", 1, true))
    end },
  { "400 kB padded cap_add name judged", function()
      kit.task({ cap_add = { (" "):rep(200000) .. "SYS_ADMIN" .. (" "):rep(200000) } })
        :denied_by("capabilities.lua", '"SYS_ADMIN"')
    end },
}

local slow = 0
print("| case | CPU seconds |")
print("|---|---|")
for _, c in ipairs(cases) do
  local t0 = os.clock()
  c[2]()
  local secs = os.clock() - t0
  print(string.format("| %s | %.3f%s |", c[1], secs, secs >= LIMIT and " (over 1 s)" or ""))
  if secs >= LIMIT then
    slow = slow + 1
  end
end
os.exit(slow == 0 and 0 or 1)
