-- Bad input: each gets its documented exit code, a message that names the
-- file (and line:col and field where there is one), and creates no container.
local drv = require("support.drv")

-- Runs `drvctl run` on a fixture copied into a fresh temp dir.
local function run_fixture(name, vars, opts)
  local dir = drv.tmpdir()
  local job, text = drv.fixture("cli/" .. name, dir, vars)
  local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, opts)
  return r, text, dir
end

local function assert_no_containers(r)
  local ids = drv.containers_if_docker()
  assert.same({}, ids, "containers were created\n" .. r.output)
end

local function assert_has(haystack, needle, r)
  assert.is_truthy(haystack:find(needle, 1, true),
    string.format("expected %q in stderr\n%s", needle, r.output))
end

describe("drvctl run with bad input", function()
  after_each(drv.cleanup)

  describe("a job file that does not exist", function()
    it("exits 66", function()
      local dir = drv.tmpdir()
      local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", dir .. "/nope.hcl" })
      assert.equal(66, r.code, r.output)
    end)

    it("names the file", function()
      local dir = drv.tmpdir()
      local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", dir .. "/nope.hcl" })
      assert_has(r.stderr, "nope.hcl", r)
    end)
  end)

  describe("an HCL syntax error", function()
    it("exits 65", function()
      local r = run_fixture("syntax_error.hcl")
      assert.equal(65, r.code, r.output)
    end)

    it("names file:line:col", function()
      local r, text = run_fixture("syntax_error.hcl")
      local line = drv.position(text, "count = = 1")
      assert.matches("syntax_error%.hcl:" .. line .. ":%d+", r.stderr, 1, false, r.output)
    end)

    it("creates no container", function()
      assert_no_containers(run_fixture("syntax_error.hcl"))
    end)
  end)

  describe("an unknown config option", function()
    it("exits 67", function()
      local r = run_fixture("unknown_option.hcl")
      assert.equal(67, r.code, r.output)
    end)

    it("names file:line:col of the option and quotes it", function()
      local r, text = run_fixture("unknown_option.hcl")
      local line, col = drv.position(text, "comand =")
      assert_has(r.stderr, string.format("unknown_option.hcl:%d:%d", line, col), r)
      assert_has(r.stderr, '"comand"', r)
    end)

    it("suggests the closest known option", function()
      local r = run_fixture("unknown_option.hcl")
      assert_has(r.stderr, 'did you mean "command"', r)
    end)

    it("creates no container", function()
      assert_no_containers(run_fixture("unknown_option.hcl"))
    end)
  end)

  describe("a value of the wrong type", function()
    it("exits 68", function()
      local r = run_fixture("wrong_type.hcl")
      assert.equal(68, r.code, r.output)
    end)

    it("names file:line and the field", function()
      local r, text = run_fixture("wrong_type.hcl")
      local line = drv.position(text, "force_pull =")
      assert.matches("wrong_type%.hcl:" .. line .. ":%d+", r.stderr, 1, false, r.output)
      assert_has(r.stderr, "force_pull", r)
    end)

    it("creates no container", function()
      assert_no_containers(run_fixture("wrong_type.hcl"))
    end)
  end)

  describe("a docker task without image", function()
    it("exits 71", function()
      local r = run_fixture("missing_image.hcl")
      assert.equal(71, r.code, r.output)
    end)

    it("names the file and the missing field", function()
      local r = run_fixture("missing_image.hcl")
      assert_has(r.stderr, "missing_image.hcl", r)
      assert_has(r.stderr, "image", r)
    end)

    it("creates no container", function()
      assert_no_containers(run_fixture("missing_image.hcl"))
    end)
  end)

  describe("a task for another driver", function()
    it("exits 72", function()
      local r = run_fixture("exec_driver.hcl")
      assert.equal(72, r.code, r.output)
    end)

    it("names file:line and quotes the driver", function()
      local r, text = run_fixture("exec_driver.hcl")
      local line = drv.position(text, 'driver = "exec"')
      assert.matches("exec_driver%.hcl:" .. line .. ":%d+", r.stderr, 1, false, r.output)
      assert_has(r.stderr, '"exec"', r)
    end)
  end)

  describe("an unreachable Docker daemon", function()
    local env = { DOCKER_HOST = "unix:///nonexistent.sock" }

    it("exits 69", function()
      local r = run_fixture("valid.hcl", { COUNT = 1 }, { env = env })
      assert.equal(69, r.code, r.output)
    end)

    it("names the endpoint and tells how to start Docker", function()
      local r = run_fixture("valid.hcl", { COUNT = 1 }, { env = env })
      assert_has(r.stderr, "/nonexistent.sock", r)
      assert.matches("[Ss]tart", r.stderr, 1, false, r.output)
    end)

    it("leaves no alloc directory behind", function()
      local r, _, dir = run_fixture("valid.hcl", { COUNT = 1 }, { env = env })
      assert.same({}, drv.alloc_ids(dir .. "/data"), r.output)
    end)
  end)
end)

describe("drvctl usage errors", function()
  after_each(drv.cleanup)

  it("exits 64 for an unknown flag and names it", function()
    local dir = drv.tmpdir()
    local job = drv.fixture("cli/valid.hcl", dir, { COUNT = 1 })
    local r = drv.drvctl({ "run", "-bogus-flag", job })
    assert.equal(64, r.code, r.output)
    assert_has(r.stderr, "bogus-flag", r)
  end)

  it("exits 64 for an unknown command", function()
    local r = drv.drvctl({ "frobnicate" })
    assert.equal(64, r.code, r.output)
  end)

  it("exits 64 when run has no job file", function()
    local r = drv.drvctl({ "run" })
    assert.equal(64, r.code, r.output)
  end)

  it("exits 64 when run has two job files", function()
    local dir = drv.tmpdir()
    local job = drv.fixture("cli/valid.hcl", dir, { COUNT = 1 })
    local r = drv.drvctl({ "run", job, job })
    assert.equal(64, r.code, r.output)
  end)
end)
