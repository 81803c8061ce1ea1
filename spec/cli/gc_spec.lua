-- drvctl gc: its flags, help and exit codes without a Docker daemon (the
-- removals themselves: core/tests/test_imagerefs.c and
-- spec/docker/image_cleanup_spec.lua).
local drv = require("support.drv")

local NO_DOCKER = { env = { DOCKER_HOST = "unix:///nonexistent/docker.sock" } }

-- A record with one image due long ago, as a run would have left it.
local function due_record(data_dir)
  assert(os.execute("mkdir -m 700 -p " .. drv.quote(data_dir .. "/state")))
  drv.write(data_dir .. "/state/images.json",
    '{"version":1,"images":[{"refs":["drvctl-spec/never:1"],"id":"sha256:0000",' ..
    '"acquired":true,"holders":[],"released":1}]}\n')
end

describe("drvctl gc", function()
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  it("has help that says what it collects", function()
    local r = drv.drvctl({ "gc", "-h" })
    assert.equal(0, r.code, r.output)
    assert.matches("docker.cleanup.image.delay", r.stdout, 1, true)
    assert.matches("<data_dir>/state/allocs/", r.stdout, 1, true)
    assert.matches("-orphans", r.stdout, 1, true)
    local top = drv.drvctl({ "--help" })
    assert.matches("gc [-config FILE] [-data-dir DIR]", top.stdout, 1, true)
  end)

  it("refuses arguments and unknown flags (64)", function()
    assert.equal(64, drv.drvctl({ "gc", "job.hcl" }).code)
    assert.equal(64, drv.drvctl({ "gc", "-detach" }).code)
  end)

  it("exits 0 without asking Docker when nothing was ever recorded", function()
    local dir = drv.tmpdir()
    local r = drv.drvctl({ "gc", "-data-dir", dir .. "/d" }, NO_DOCKER)
    assert.equal(0, r.code, r.output)
    assert.equal("", r.stderr)
    assert.is_false(drv.exists(dir .. "/d/state"))
  end)

  it("exits 69 with a due removal and no Docker, and keeps the record", function()
    local dir = drv.tmpdir()
    due_record(dir)
    local r = drv.drvctl({ "gc", "-data-dir", dir }, NO_DOCKER)
    assert.equal(69, r.code, r.output)
    assert.matches("docker", r.stderr)
    assert.matches("drvctl-spec/never:1", drv.read(dir .. "/state/images.json"), 1, true)
  end)

  it("removes nothing when docker.cleanup.image is false", function()
    local dir = drv.tmpdir()
    due_record(dir)
    local cfg = drv.write(dir .. "/agent.hcl",
      'client {\n  options {\n    "docker.cleanup.image" = "false"\n  }\n}\n')
    local r = drv.drvctl({ "gc", "-config", cfg, "-data-dir", dir }, NO_DOCKER)
    assert.equal(0, r.code, r.output)
    assert.matches("docker.cleanup.image is false", r.stderr, 1, true)
    assert.matches("drvctl-spec/never:1", drv.read(dir .. "/state/images.json"), 1, true)
  end)

  it("keeps alloc dirs without a record unless -orphans, without asking Docker", function()
    local dir = drv.tmpdir()
    local id = "0a1b2c3d-0000-4000-8000-000000000001"
    assert(os.execute("mkdir -p " .. drv.quote(dir .. "/alloc/" .. id .. "/alloc/logs")))
    local r = drv.drvctl({ "gc", "-data-dir", dir }, NO_DOCKER)
    assert.equal(0, r.code, r.output)
    assert.matches("alloc dir without a record left in place", r.stderr, 1, true)
    assert.matches(id, r.stderr, 1, true)
    assert.is_true(drv.exists(dir .. "/alloc/" .. id .. "/alloc/logs"))
    -- with -orphans it is a candidate: Docker must say no container of it
    -- exists, and there is none to ask here: kept, 69
    r = drv.drvctl({ "gc", "-orphans", "-data-dir", dir }, NO_DOCKER)
    assert.equal(69, r.code, r.output)
    assert.matches("not removed: docker did not list their containers", r.stderr, 1, true)
    assert.is_true(drv.exists(dir .. "/alloc/" .. id .. "/alloc/logs"))
  end)

  it("keeps an ended alloc when Docker cannot be asked (69)", function()
    local dir = drv.tmpdir()
    local id = "0a1b2c3d-0000-4000-8000-000000000002"
    assert(os.execute("mkdir -p " .. drv.quote(dir .. "/alloc/" .. id .. "/web/local")))
    assert(os.execute("mkdir -m 700 -p " .. drv.quote(dir .. "/state/allocs")))
    drv.write(dir .. "/state/allocs/" .. id .. ".json",
      '{"version":1,"alloc_id":"' .. id .. '","job":"web","group":"g",' ..
      '"owner":{"pid":1,"start":1,"boot":"x"},"created":1,"status":"ended","ended":2,' ..
      '"keep_containers":false,"tasks":[{"task":"web","container":"web-' .. id .. '",' ..
      '"exit_code":0}]}\n')
    local r = drv.drvctl({ "gc", "-data-dir", dir }, NO_DOCKER)
    assert.equal(69, r.code, r.output)
    assert.is_true(drv.exists(dir .. "/alloc/" .. id .. "/web/local"))
    assert.is_true(drv.exists(dir .. "/state/allocs/" .. id .. ".json"))
  end)

  it("exits 78 for a bad agent config", function()
    local dir = drv.tmpdir()
    local cfg = drv.write(dir .. "/agent.hcl",
      'client {\n  options {\n    "docker.cleanup.image.delay" = "soon"\n  }\n}\n')
    local r = drv.drvctl({ "gc", "-config", cfg, "-data-dir", dir }, NO_DOCKER)
    assert.equal(78, r.code, r.output)
  end)
end)
