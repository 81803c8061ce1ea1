-- drvctl version / --help / help run: what a user sees before running anything.
local drv = require("support.drv")

local EXIT_CODES = { 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78 }

local function lists_code(text, code)
  return text:find("%f[%d]" .. code .. "%f[%D]") ~= nil
end

local function assert_lists_exit_codes(r, codes)
  local text = r.stdout .. r.stderr
  for _, code in ipairs(codes) do
    assert.is_true(lists_code(text, code), "exit code " .. code .. " not listed\n" .. r.output)
  end
end

describe("drvctl version", function()
  it("prints the name and version 0.1.0 and exits 0", function()
    local r = drv.drvctl({ "version" })
    assert.equal(0, r.code, r.output)
    assert.matches("^drvctl 0%.1%.0", r.stdout)
  end)
end)

describe("drvctl --help", function()
  it("exits 0", function()
    local r = drv.drvctl({ "--help" })
    assert.equal(0, r.code, r.output)
  end)

  it("names the run and plan commands", function()
    local r = drv.drvctl({ "--help" })
    local text = r.stdout .. r.stderr
    assert.matches("%f[%w]run%f[%W]", text, 1, false, r.output)
    assert.matches("%f[%w]plan%f[%W]", text, 1, false, r.output)
  end)

  it("lists every documented exit code", function()
    assert_lists_exit_codes(drv.drvctl({ "--help" }), EXIT_CODES)
  end)
end)

describe("drvctl help run", function()
  it("exits 0", function()
    local r = drv.drvctl({ "help", "run" })
    assert.equal(0, r.code, r.output)
  end)

  it("lists the exit codes, including 129, 130, 131 and 143 for SIGHUP, SIGINT, SIGQUIT, SIGTERM", function()
    local codes = { table.unpack(EXIT_CODES) }
    codes[#codes + 1] = 129
    codes[#codes + 1] = 130
    codes[#codes + 1] = 131
    codes[#codes + 1] = 143
    assert_lists_exit_codes(drv.drvctl({ "help", "run" }), codes)
  end)

  it("documents the -config and -data-dir flags", function()
    local r = drv.drvctl({ "help", "run" })
    local text = r.stdout .. r.stderr
    assert.is_truthy(text:find("-config", 1, true), r.output)
    assert.is_truthy(text:find("-data-dir", 1, true), r.output)
  end)

  it("documents -json (pull progress as JSON events)", function()
    local r = drv.drvctl({ "help", "run" })
    assert.is_truthy(r.stdout:find("-json", 1, true), r.output)
  end)
end)

describe("drvctl run -h", function()
  it("exits 0 and lists the exit codes", function()
    local r = drv.drvctl({ "run", "-h" })
    assert.equal(0, r.code, r.output)
    assert_lists_exit_codes(r, EXIT_CODES)
  end)
end)
