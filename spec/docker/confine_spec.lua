-- Bind sources under the data dir (the alloc/local/secrets binds, job
-- `volumes` and `mount` blocks with relative sources) are opened beneath the
-- alloc dir without following symlinks and pinned by a bind mount onto
-- data_dir/binds/<alloc>-<task>-<n>, which is what Docker gets (issue 7,
-- item 1; the race itself is bindrace_spec.lua). An artifact that plants a
-- symlink must not turn `local/evil:/x` into a bind of a host directory, no
-- mount may outlive the container's start or the run, and where mount(2) is not permitted such binds
-- are refused, never handed to Docker unpinned. The data dir and its
-- alloc/, binds/ and state/ are 0700 (item 9a).
local drv = require("support.drv")

-- Mount points (field 5 of mountinfo) at or below `dir`.
local function mounts_under(dir)
  local out = {}
  local f = assert(io.open("/proc/self/mountinfo", "rb"))
  for line in f:lines() do
    local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
    if mp and (mp == dir or mp:sub(1, #dir + 1) == dir .. "/") then
      out[#out + 1] = mp
    end
  end
  f:close()
  return out
end

local function mode(path)
  return drv.sh("stat -c %a " .. drv.quote(path)).stdout:match("%d+")
end

describe("bind sources under the data dir", function()
  local dir, archive, data

  before_each(function()
    drv.require_binary()
    drv.require_docker()
    dir = drv.tmpdir()
    data = dir .. "/data"
    drv.on_cleanup(function()
      for _, mp in ipairs(mounts_under(dir)) do
        os.execute("umount -l " .. drv.quote(mp) .. " 2>/dev/null")
      end
    end)
    -- an archive with a symlink that leads out of the alloc dir (to a
    -- directory of the spec's, holding a secret), a symlink that stays
    -- inside, and an ordinary directory
    local r = drv.sh("mkdir -p outside src/ok && echo secret > outside/secret"
      .. " && echo fine > src/ok/file && ln -s " .. drv.quote(dir .. "/outside") .. " src/evil"
      .. " && ln -s ok src/inner && tar -C src -czf art.tar.gz evil inner ok",
      { cwd = dir, shell = true })
    assert.equal(0, r.code, r.output)
    archive = dir .. "/art.tar.gz"
  end)

  after_each(drv.cleanup)

  local function job(volume, script, extra)
    return drv.write(dir .. "/job.hcl", drv.job({
      task_extra = string.format('artifact {\n  source = "file://%s"\n}', archive),
      config = (volume and string.format("volumes = [%s]\n", drv.hcl_string(volume)) or "")
        .. (extra or ""),
      script = script or "cat /x/file",
    }))
  end

  -- the artifacts come from the spec's dir: the operator lists it
  local function agent()
    return drv.write(dir .. "/agent.hcl", string.format(
      "client {\n  artifact {\n    local_dirs = [%s]\n  }\n}\n", drv.hcl_string(dir)))
  end

  local function run(volume, script, extra)
    return drv.drvctl({ "run", "-config", agent(), "-data-dir", data, job(volume, script, extra) },
      { timeout = 60 })
  end

  -- nothing pinned is left: no mount under the spec's dir, no staging entry
  local function nothing_left()
    assert.same({}, mounts_under(dir))
    assert.same({}, drv.ls(data .. "/binds"))
    assert.same({}, drv.containers({ "label=" .. drv.label }))
  end

  it("are denied when a planted symlink leads outside (exit 77, no container)", function()
    local r = run("local/evil:/x", "cat /x/secret")
    assert.equal(77, r.code, r.output)
    assert.matches('task "t": bind source has a symbolic link in its path, and bind sources '
      .. "are opened without following symlinks: \"" .. data .. "/alloc/", r.stderr, 1, true)
    assert.matches('/t/local/evil"', r.stderr, 1, true)
    assert.not_matches("secret", r.stdout, 1, true)
    nothing_left()
  end)

  it("are denied, and nothing is made, when a missing path lies below a planted symlink", function()
    local r = run("local/evil/not-yet:/x")
    assert.equal(77, r.code, r.output)
    assert.matches('/t/local/evil"', r.stderr, 1, true)
    assert.is_false(drv.exists(dir .. "/outside/not-yet"))
    nothing_left()
  end)

  it("are denied when they are symlinks even to a place inside the alloc dir", function()
    local r = run("local/inner:/x")
    assert.equal(77, r.code, r.output)
    assert.matches('/t/local/inner"', r.stderr, 1, true)
    nothing_left()
  end)

  it("are mounted from the staging path, which names the opened directory", function()
    local r = run("local/ok:/x", "cat /x/file; grep -E ' /(x|alloc|local|secrets) ' /proc/self/mountinfo")
    assert.equal(0, r.code, r.output)
    assert.matches("t | fine", r.stdout, 1, true)
    -- the container's mounts show the original directories (the staging
    -- paths were bind mounts of them)
    assert.matches("/t/local/ok /x ", r.stdout, 1, true)
    assert.matches("/alloc /alloc ", r.stdout, 1, true)
    nothing_left()
  end)

  it("create a missing volume source beneath the alloc dir, as Docker did", function()
    local r = run("../alloc/data/new/deeper:/x", "echo made > /x/f")
    assert.equal(0, r.code, r.output)
    local id = drv.alloc_ids(data)[1]
    assert.equal("made\n", drv.read(data .. "/alloc/" .. id .. "/alloc/data/new/deeper/f"))
    nothing_left()
  end)

  it("of mount blocks are pinned too; a missing one is an error (exit 75)", function()
    local ok = run(nil, "cat /y/file", 'mount {\n  type = "bind"\n  source = "local/ok"\n'
      .. '  target = "/y"\n  readonly = true\n}\n')
    assert.equal(0, ok.code, ok.output)
    assert.matches("t | fine", ok.stdout, 1, true)
    nothing_left()
    local missing = run(nil, "true", 'mount {\n  type = "bind"\n  source = "local/absent"\n'
      .. '  target = "/y"\n}\n')
    assert.equal(75, missing.code, missing.output)
    assert.matches('bind source does not exist: "' .. data .. "/alloc/", missing.stderr, 1, true)
    nothing_left()
    local evil = run(nil, "true", 'mount {\n  type = "bind"\n  source = "local/evil"\n'
      .. '  target = "/y"\n}\n')
    assert.equal(77, evil.code, evil.output)
    nothing_left()
  end)

  it("are refused where mount(2) is not permitted, never handed to Docker unpinned", function()
    -- root without CAP_SYS_ADMIN: Docker is reachable, mounting is not
    local j = job("local/ok:/x")
    local r = drv.sh("setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin "
      .. drv.quote(drv.bin) .. " run -config " .. drv.quote(agent()) .. " -data-dir " .. drv.quote(data)
      .. " " .. drv.quote(j),
      { timeout = 60 })
    assert.equal(77, r.code, r.output)
    assert.matches('task "t": cannot pin bind source "' .. data .. "/alloc/", r.stderr, 1, true)
    assert.matches("mount(2) is not permitted here (Operation not permitted)", r.stderr, 1, true)
    assert.matches("never handed to Docker unpinned", r.stderr, 1, true)
    nothing_left()
  end)

  it("are released once the container started, which keeps its own binds", function()
    local j = job("local/ok:/x", "echo up; sleep 2; cat /x/file; sleep 300")
    local p = drv.spawn({ "run", "-config", agent(), "-data-dir", data, j })
    assert.truthy(drv.wait_until(function()
      return p:stdout():find("t | up", 1, true)
    end, 60), p:stderr())
    assert.truthy(drv.wait_until(function()
      return #mounts_under(data .. "/binds") == 0 and #drv.ls(data .. "/binds") == 0
    end, 10), table.concat(mounts_under(data .. "/binds"), "\n"))
    -- the staging paths are gone; the container still sees the directory
    assert.truthy(drv.wait_until(function()
      return p:stdout():find("t | fine", 1, true)
    end, 30), p:stdout())
    p:signal("INT")
    assert.equal(130, p:wait(60), p.output)
    nothing_left()
  end)

  it("leave no mount behind when SIGINT comes while they are pinned", function()
    -- pins are made before create; create answers 404 for an image that
    -- `load` brings, so they stay while a large archive loads
    local tag = "drvctl-test/pinload:" .. drv.run_id:sub(1, 8)
    os.execute("mkdir -p " .. drv.quote(dir .. "/ctx"))
    drv.write(dir .. "/ctx/Dockerfile", "FROM " .. drv.IMAGE .. "\nCOPY blob /blob\n")
    local r = drv.sh("head -c 67108864 /dev/urandom > ctx/blob && docker build -q --label "
      .. drv.quote(drv.label) .. " -t " .. tag .. " ctx >/dev/null && docker save -o img.tar "
      .. tag .. " && docker rmi -f " .. tag .. " >/dev/null",
      { cwd = dir, shell = true, timeout = 120 })
    assert.equal(0, r.code, r.output)
    drv.on_cleanup(function() drv.docker({ "rmi", "-f", tag }, { may_fail = true }) end)
    local j = drv.write(dir .. "/job.hcl", drv.job({ image = tag, script = "echo should-not-run",
      config = 'load = "img.tar"\nvolumes = ["../alloc/data/x:/x"]',
      task_extra = string.format('artifact {\n  source = "file://%s/img.tar"\n}', dir) }))
    local p = drv.spawn({ "run", "-config", agent(), "-data-dir", data, j },
      { env = { DRVCTL_LOG = "debug" } })
    assert.truthy(drv.wait_until(function()
      return p:stderr():find("loading image", 1, true) or p:exited()
    end, 60), p:stderr())
    -- alloc, local, secrets and /x are pinned while the image loads
    local pinned = #mounts_under(data .. "/binds")
    p:signal("INT")
    assert.equal(130, p:wait(60), p.output)
    assert.equal(4, pinned, p.output)
    assert.is_nil(p.output:find("should-not-run", 1, true))
    nothing_left()
  end)
end)

describe("the data dir", function()
  local dir

  before_each(function()
    drv.require_binary()
    drv.require_docker()
    dir = drv.tmpdir()
  end)

  after_each(drv.cleanup)

  it("is 0700 with alloc/, binds/ and state/, fixed when wider, and closed to other users", function()
    local data = dir .. "/data"
    assert.equal(0, drv.sh("mkdir -p " .. drv.quote(data .. "/alloc") .. " && chmod 0755 "
      .. drv.quote(data) .. " " .. drv.quote(data .. "/alloc")).code)
    -- the issue's attack: a task leaves a setuid-root busybox in the alloc dir
    local j = drv.write_job(dir, { script = "cp /bin/busybox /alloc/data/bb && chmod 4755 /alloc/data/bb" })
    local r = drv.drvctl({ "run", "-data-dir", data, j }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.matches('"' .. data .. '" had mode 0755; set to 0700', r.stderr, 1, true)
    for _, sub in ipairs({ "", "/alloc", "/binds", "/state" }) do
      assert.equal("700", mode(data .. sub), sub)
    end
    local bb = data .. "/alloc/" .. drv.alloc_ids(data)[1] .. "/alloc/data/bb"
    assert.equal("4755", mode(bb))
    -- another host user can neither list the data dir nor run the binary
    -- (through sh: setpriv itself still holds root's capabilities when it
    -- execs its argument)
    local nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "
    local ls = drv.sh(nobody .. drv.quote("ls " .. drv.quote(data)))
    assert.are_not.equal(0, ls.code)
    assert.matches("Permission denied", ls.output, 1, true)
    local ex = drv.sh(nobody .. drv.quote(drv.quote(bb) .. " id -u"))
    assert.are_not.equal(0, ex.code)
    assert.matches("Permission denied", ex.output, 1, true)
  end)
end)
