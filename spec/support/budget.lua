--- Runs a function under a Lua instruction budget (debug.sethook count):
--- an input that makes the code under test slow (quadratic or exponential)
--- fails the spec with "instruction budget exceeded" instead of hanging
--- it. Deterministic: no wall clock.
local M = {}


---Calls fn(...) with at most `limit` VM instructions; raises when exceeded.
---Returns fn's results.
---@param limit integer
---@param fn function
function M.within(limit, fn, ...)
  local hit = false
  debug.sethook(function()
    hit = true
    debug.sethook()
    error("instruction budget exceeded (" .. limit .. ")", 0)
  end, "", limit)
  local res = table.pack(pcall(fn, ...))
  debug.sethook()
  if not res[1] then
    error(hit and ("instruction budget exceeded (" .. limit .. ")") or res[2], 2)
  end
  return table.unpack(res, 2, res.n)
end


return M
