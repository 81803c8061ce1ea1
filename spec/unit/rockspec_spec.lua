-- The rockspec ships every module under lua/drv and matches drv.meta.
local meta = require("drv.meta")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function load_rockspec()
  local env = {}
  local chunk = assert(load(read("rockspec/drvctl-scm-1.rockspec"), "rockspec", "t", env))
  chunk()
  return env
end

describe("rockspec/drvctl-scm-1.rockspec", function()
  local rock = load_rockspec()

  it("is named after drv.meta", function()
    assert.equal(meta.name, rock.package)
  end)

  it("lists every module in lua/drv and only files that exist", function()
    local listed = {}
    for name, path in pairs(rock.build.modules) do
      assert.is_truthy(io.open(path, "rb"), "missing file " .. path)
      listed[path] = name
    end
    local p = io.popen("ls lua/drv/*.lua")
    for path in p:lines() do
      assert.is_truthy(listed[path], "module not in the rockspec: " .. path)
    end
    p:close()
  end)
end)
