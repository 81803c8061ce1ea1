-- Volumes that the policy allowed because they lie inside the alloc dir are
-- checked again with realpath(3) just before the container is created, after
-- artifacts are in place: an artifact that plants a symlink to /etc must not
-- turn `local/evil:/x` into a bind of the host's /etc.
local drv = require("support.drv")

describe("bind sources inside the alloc dir", function()
  local dir, archive

  before_each(function()
    drv.require_binary()
    drv.require_docker()
    dir = drv.tmpdir()
    -- an archive with a symlink to /etc and an ordinary directory
    local r = drv.sh("mkdir -p src/ok && echo fine > src/ok/file && ln -s /etc src/evil"
      .. " && tar -C src -czf art.tar.gz evil ok", { cwd = dir, shell = true })
    assert.equal(0, r.code, r.output)
    archive = dir .. "/art.tar.gz"
  end)

  after_each(drv.cleanup)

  local function run(volume, script)
    local job = drv.write(dir .. "/job.hcl", drv.job({
      task_extra = string.format('artifact {\n  source = "file://%s"\n}', archive),
      config = string.format("volumes = [%s]", drv.hcl_string(volume)),
      script = script or "cat /x/file",
    }))
    local agent = drv.write(dir .. "/agent.hcl", string.format(
      "client {\n  artifact {\n    local_dirs = [%s]\n  }\n}\n", drv.hcl_string(dir)))
    return drv.drvctl({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
      { timeout = 60 })
  end

  it("are denied when a planted symlink leads outside (exit 77, no container)", function()
    local r = run("local/evil:/x", "cat /x/hostname")
    assert.equal(77, r.code, r.output)
    assert.matches("policies/volumes.lua", r.stderr, 1, true)
    assert.matches('resolves outside the alloc dir: "/etc"', r.stderr, 1, true)
    assert.same({}, drv.containers({ "label=" .. drv.label }))
  end)

  it("are denied when a missing path lies below a planted symlink", function()
    local r = run("local/evil/not-yet:/x")
    assert.equal(77, r.code, r.output)
    assert.matches('resolves outside the alloc dir: "/etc"', r.stderr, 1, true)
  end)

  it("are mounted when they resolve inside", function()
    local r = run("local/ok:/x")
    assert.equal(0, r.code, r.output)
    assert.matches("t | fine", r.stdout, 1, true)
  end)
end)
