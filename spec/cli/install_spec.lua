-- make install: an installed drvctl finds its Lua modules and the shipped
-- policies under its prefix, away from the source tree; DESTDIR stages.
-- Builds into a temporary BUILD/BIN so ./drvctl is left alone.
local drv = require("support.drv")

describe("make install", function()
  local tmp, prefix, installed

  lazy_setup(function()
    tmp = drv.tmpdir()
    prefix = tmp .. "/prefix"
    local r = drv.sh(string.format("make -s BUILD=%s BIN=%s PREFIX=%s install",
      drv.quote(tmp .. "/build"), drv.quote(tmp .. "/build/drvctl"), drv.quote(prefix)),
      { timeout = 300 })
    assert.equal(0, r.code, r.output)
    installed = prefix .. "/bin/drvctl"
  end)

  lazy_teardown(drv.cleanup)

  it("installs the binary, the Lua modules and the policies", function()
    assert.is_true(drv.exists(installed))
    assert.is_true(drv.exists(prefix .. "/share/drvctl/lua/drv/driver.lua"))
    assert.is_true(drv.exists(prefix .. "/share/drvctl/policies/capabilities.lua"))
  end)

  it("installs the man page, and uninstall removes it", function()
    local page = prefix .. "/share/man/man1/drvctl.1"
    assert.is_true(drv.exists(page))
    local stage = tmp .. "/uninst"
    local mk = "make -s BUILD=%s BIN=%s PREFIX=/usr DESTDIR=%s %s"
    local r = drv.sh(string.format(mk, drv.quote(tmp .. "/build"), drv.quote(tmp .. "/build/drvctl"),
      drv.quote(stage), "install"), { timeout = 300 })
    assert.equal(0, r.code, r.output)
    assert.is_true(drv.exists(stage .. "/usr/share/man/man1/drvctl.1"))
    r = drv.sh(string.format(mk, drv.quote(tmp .. "/build"), drv.quote(tmp .. "/build/drvctl"),
      drv.quote(stage), "uninstall"), { timeout = 300 })
    assert.equal(0, r.code, r.output)
    assert.is_false(drv.exists(stage .. "/usr/share/man/man1/drvctl.1"))
    assert.is_false(drv.exists(stage .. "/usr/bin/drvctl"))
  end)

  it("installs the Lua modules precompiled and the policies as text", function()
    assert.equal("\27Lua", drv.read(prefix .. "/share/drvctl/lua/drv/driver.lua"):sub(1, 4))
    assert.matches("^%-%-", drv.read(prefix .. "/share/drvctl/policies/capabilities.lua"))
  end)

  it("plans a job from another directory with the installed modules and policies", function()
    local job = drv.write(tmp .. "/hello.hcl", drv.read(drv.root .. "/examples/hello.hcl"))
    local r = drv.sh(drv.quote(installed) .. " plan " .. drv.quote(job),
      { cwd = tmp, env = { DOCKER_HOST = "unix:///nonexistent.sock" } })
    assert.equal(0, r.code, r.output)
    assert.matches(prefix .. "/share/drvctl/policies/capabilities.lua", r.stdout, 1, true)
  end)

  it("checks the installed policies", function()
    local r = drv.sh(drv.quote(installed) .. " policy check", { cwd = tmp })
    assert.equal(0, r.code, r.output)
    assert.matches("ok%s+" .. prefix:gsub("%p", "%%%0") .. "/share/drvctl/policies/volumes%.lua", r.stdout)
  end)

  it("stages under DESTDIR without touching PREFIX", function()
    local stage = tmp .. "/stage"
    local r = drv.sh(string.format("make -s BUILD=%s BIN=%s PREFIX=/opt/drvctl DESTDIR=%s install",
      drv.quote(tmp .. "/build"), drv.quote(tmp .. "/build/drvctl"), drv.quote(stage)),
      { timeout = 300 })
    assert.equal(0, r.code, r.output)
    assert.is_true(drv.exists(stage .. "/opt/drvctl/bin/drvctl"))
    assert.is_true(drv.exists(stage .. "/opt/drvctl/share/drvctl/lua/drv/hcl.lua"))
    assert.is_true(drv.exists(stage .. "/opt/drvctl/share/man/man1/drvctl.1"))
    assert.is_false(drv.exists("/opt/drvctl"))
  end)
end)
