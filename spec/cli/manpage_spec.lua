-- drvctl(1): built by `make` from the text of --help and `drvctl help CMD`;
-- renders without warnings and covers every command, flag and exit code.
local drv = require("support.drv")

local PAGE = drv.root .. "/build/drvctl.1"

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

describe("the drvctl(1) man page", function()
  local help, roff, text

  lazy_setup(function()
    local r = drv.sh("make -s build/drvctl.1", { cwd = drv.root, timeout = 300 })
    assert.equal(0, r.code, r.output)
    help = drv.drvctl({ "--help" }).stdout
    roff = read(PAGE)
    -- -ww: every warning; -z: no output, only diagnostics
    local w = drv.sh("groff -man -Tutf8 -ww -z " .. drv.quote(PAGE))
    assert.equal(0, w.code, w.output)
    assert.equal("", w.stderr, w.output)
    local m = drv.sh("groff -man -Tutf8 -P-cbou " .. drv.quote(PAGE))
    assert.equal(0, m.code, m.output)
    assert.equal("", m.stderr, m.output)
    text = m.stdout
  end)

  lazy_teardown(drv.cleanup)

  it("is a section 1 page with the standard sections", function()
    assert.matches('^%.TH DRVCTL 1 ', roff)
    for _, sec in ipairs({ "NAME", "SYNOPSIS", "COMMANDS", "OPTIONS", "EXIT STATUS",
      "ENVIRONMENT", "FILES" }) do
      assert.is_truthy(roff:find("\n.SH " .. sec .. "\n", 1, true), "no section " .. sec)
      assert.is_truthy(text:find("\n" .. sec .. "\n", 1, true), "not rendered: " .. sec)
    end
  end)

  it("describes every command --help lists, with its own help text", function()
    local block = help:match("\nCommands:\n(.-)\n\n")
    assert.is_truthy(block, help)
    local n = 0
    for line in block:gmatch("[^\n]+") do
      local cmd = assert(line:match("^  (%S+)"), line)
      n = n + 1
      assert.is_truthy(roff:find("\n.SS " .. cmd .. "\n", 1, true), "no command " .. cmd)
      local h = drv.drvctl({ "help", cmd }).stdout
      local first = h:match("^Usage: [^\n]*\n\n([^\n]+)")
      if first then
        -- the first line of its description, as it is in the roff source
        local plain = roff:gsub("\\%-", "-"):gsub("\\e", "\\")
        assert.is_truthy(plain:find("\n" .. first .. "\n", 1, true), cmd .. ": missing " .. first)
      end
    end
    assert.is_true(n >= 6, block)
  end)

  it("lists every global flag and every exit code of --help", function()
    for flag in help:gmatch("\n  (%-[%a%-]+)") do
      assert.is_truthy(text:find(flag, 1, true), "missing flag " .. flag)
    end
    local codes = help:match("\nExit codes:\n(.*)$")
    local n = 0
    for code, desc in codes:gmatch("%s*(%d[%d%-]*)%s+([^\n]+)") do
      n = n + 1
      assert.is_truthy(roff:find("\n.B " .. code:gsub("%-", "\\-") .. "\n", 1, true), "code " .. code)
      local word = desc:match("^(%S+)")
      assert.is_truthy(text:find(word, 1, true), "missing " .. desc)
    end
    assert.is_true(n >= 20, codes)
  end)

  it("renders with man -l", function()
    local r = drv.sh("env MANWIDTH=80 MANPAGER=cat man -l " .. drv.quote(PAGE))
    assert.equal(0, r.code, r.output)
    assert.equal("", r.stderr, r.output)
    assert.is_truthy(r.stdout:find("DRVCTL(1)", 1, true), r.output)
  end)
end)
