-- The embedded Lua VM: no io, os or debug library, LUA_PATH ignored, no
-- "./?.lua" on the module path (a root-run drvctl in a hostile working
-- directory must not load code from it), and a Lua error becomes a message
-- with a traceback instead of a crash. Checked with a stand-in drv.driver
-- module given through -lua-dir.
local drv = require("support.drv")

local PROBE = [[
local M = {}
function M.agent()
  return { data_dir = "/tmp/none", endpoint = "unix:///nonexistent.sock" }
end
function M.plan()
  local seen = {
    "io=" .. type(io), "os=" .. type(os), "debug=" .. type(debug),
    "path=" .. package.path, "cpath=" .. package.cpath,
  }
  local ok = pcall(require, "planted")
  seen[#seen + 1] = "planted=" .. tostring(ok)
  return nil, { { kind = "type", message = table.concat(seen, " | ") } }
end
return M
]]

describe("the embedded Lua VM", function()
  local dir, lua_dir

  before_each(function()
    drv.require_binary()
    dir = drv.tmpdir()
    lua_dir = dir .. "/lua"
    os.execute("mkdir -p " .. drv.quote(lua_dir .. "/drv"))
    drv.write(lua_dir .. "/drv/driver.lua", PROBE)
    -- a module planted in the working directory and on LUA_PATH
    drv.write(dir .. "/planted.lua", "error('planted code ran')\n")
    drv.write(dir .. "/job.hcl", "job \"x\" {}\n")
  end)

  after_each(drv.cleanup)

  local function probe()
    local r = drv.sh(drv.quote(drv.bin) .. " plan -lua-dir " .. drv.quote(lua_dir) .. " job.hcl",
      { cwd = dir, env = { LUA_PATH = dir .. "/?.lua", LUA_PATH_5_4 = dir .. "/?.lua",
        LUA_INIT = "error('LUA_INIT ran')" } })
    return r
  end

  it("opens no io, os or debug library", function()
    local r = probe()
    assert.equal(68, r.code, r.output)
    assert.matches("io=nil | os=nil | debug=nil", r.stderr, 1, true)
  end)

  it("has no relative entries on its module paths and ignores LUA_PATH", function()
    local r = probe()
    local path = r.stderr:match("path=([^|]*) |")
    assert.is_string(path, r.output)
    for entry in path:gmatch("[^;]+") do
      assert.equal("/", entry:sub(1, 1), "relative entry " .. entry)
      assert.not_equal(dir .. "/?.lua", entry, "LUA_PATH was honoured")
    end
  end)

  it("does not load a module planted in the working directory", function()
    local r = probe()
    assert.matches("planted=false", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("planted code ran", 1, true))
  end)

  it("turns a Lua error into a message with a traceback, exit 70", function()
    drv.write(lua_dir .. "/drv/driver.lua",
      "return { agent = function() return {} end, plan = function() local t = nil; return t.x end }\n")
    local r = drv.sh(drv.quote(drv.bin) .. " plan -lua-dir " .. drv.quote(lua_dir) .. " job.hcl",
      { cwd = dir })
    assert.equal(70, r.code, r.output)
    assert.matches("attempt to index a nil value", r.stderr, 1, true)
    assert.matches("stack traceback", r.stderr, 1, true)
  end)
end)
