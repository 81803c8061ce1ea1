-- spec/helper.lua: loaded by busted before every spec file (see .busted).
--
-- Pure unit specs need nothing from here; it only makes lua/ and spec/
-- resolvable from any working directory, and, when a spec used
-- spec/support/drv.lua, removes whatever that run left behind (containers
-- labelled with the run id, temp dirs, background drvctl processes) once the
-- whole suite ends, as a safety net behind each spec's after_each.
local root = debug.getinfo(1, "S").source:gsub("^@", ""):gsub("/?spec/helper%.lua$", "")
if root == "" then
  root = "."
end
package.path = table.concat({
  root .. "/lua/?.lua", root .. "/lua/?/init.lua", root .. "/spec/?.lua", package.path,
}, ";")

local ok, busted = pcall(require, "busted")
if ok and type(busted.subscribe) == "function" then
  busted.subscribe({ "suite", "end" }, function()
    local support = package.loaded["support.drv"]
    if support then
      pcall(support.cleanup)
    end
    return nil, true
  end)
end
