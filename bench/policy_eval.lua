-- bench/policy_eval.lua N: average time of one default-policy evaluation
-- (admission of one planned container), over N tasks, in Lua 5.4 with every
-- shipped policy and a count hook every 1000 instructions, as the binary's
-- guard (drv.core.sandbox_call) installs. Prints one markdown table row.
package.path = "lua/?.lua;spec/?.lua;" .. package.path
local policy = require("drv.policy")
local kit = require("policykit")

local n = tonumber(arg[1]) or 2000

local function guard(fn, ...)
  local count = 0
  debug.sethook(function()
    count = count + 1000
    if count > 50000000 then
      error("budget exceeded: too many instructions", 0)
    end
  end, "", 1000)
  local res = table.pack(pcall(fn, ...))
  debug.sethook()
  return table.unpack(res, 1, res.n)
end

-- every shipped policy, as the binary loads them
local sources = kit.sources({ "policies" })
local set, problems = policy.load(sources, guard)
assert(#problems == 0, problems[1] and problems[1].message)
local ctx = kit.ctx({ image = "drvctl-test/busybox:1", cap_add = { "CHOWN" },
  cap_drop = { "MKNOD" }, volumes = { "local/data:/data" }, labels = { app = "x" } })

for _ = 1, 50 do policy.evaluate(set, ctx, guard) end   -- warm up
local t0 = os.clock()
for _ = 1, n do
  local r = policy.evaluate(set, ctx, guard)
  assert(r.allowed, r.problems[1] and r.problems[1].message)
end
local ms = (os.clock() - t0) * 1000 / n
print(string.format("| default policies, one task (in-process, Lua 5.4) | %d | %.3f ms | | %.3f ms |", n, ms, ms))
