-- `load`: the image comes from a `docker save` tarball fetched as a file://
-- artifact (checksum verified), not from a registry. Local artifact sources
-- need the operator's client.artifact.local_dirs.
local drv = require("support.drv")

-- Saves the test image under a unique tag to dir/img.tar and removes the
-- tag, so the image is absent until drvctl loads it. Returns tag, tar path
-- and its sha256.
local function prepare(dir)
  local tag = "drvctl-test/loadme:" .. drv.run_id
  drv.on_cleanup(function()
    drv.docker({ "rmi", "-f", tag }, { may_fail = true })
  end)
  drv.docker({ "tag", drv.IMAGE, tag })
  local tar = dir .. "/img.tar"
  drv.docker({ "save", "-o", tar, tag })
  drv.docker({ "rmi", tag })
  local sum = drv.sh("sha256sum " .. drv.quote(tar)).stdout:match("^(%x+)")
  assert.is_truthy(sum)
  return tag, tar, sum
end

local function run(dir, vars)
  local job = drv.fixture("docker/load.hcl", dir, vars)
  local agent = drv.write(dir .. "/agent.hcl", string.format(
    "client {\n  artifact {\n    local_dirs = [%s]\n  }\n}\n", drv.hcl_string(dir)))
  return drv.drvctl({ "run", "-config", agent, "-data-dir", dir .. "/data", job }, { timeout = 90 })
end

describe("config.load with a file:// artifact", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("loads the image and runs the task", function()
    local dir = drv.tmpdir()
    local tag, tar, sum = prepare(dir)
    local r = run(dir, { SOURCE = "file://" .. tar, CHECKSUM = "sha256:" .. sum, LOAD_IMAGE = tag })
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find("loaded | loaded image runs", 1, true), r.output)
  end)

  it("exits 74 and starts nothing when the checksum does not match", function()
    local dir = drv.tmpdir()
    local tag, tar = prepare(dir)
    local r = run(dir, { SOURCE = "file://" .. tar, CHECKSUM = "sha256:" .. string.rep("0", 64),
      LOAD_IMAGE = tag })
    assert.equal(74, r.code, r.output)
    assert.same({}, drv.containers(), r.output)
    assert.is_nil(drv.inspect(tag, "image"))
  end)

  it("refuses an archive that an earlier artifact planted as a symlink (exit 77, nothing loaded)", function()
    -- the artifact unpacks `img.tar -> <a host file>`; the host file is a
    -- valid image archive, so following the link would load and run it
    local dir = drv.tmpdir()
    local tag, tar = prepare(dir)
    local r0 = drv.sh("mkdir -p plant && ln -s " .. drv.quote(tar) .. " plant/img.tar"
      .. " && tar -C plant -czf plant.tar.gz img.tar", { cwd = dir, shell = true })
    assert.equal(0, r0.code, r0.output)
    local sum = drv.sh("sha256sum " .. drv.quote(dir .. "/plant.tar.gz")).stdout:match("^(%x+)")
    local r = run(dir, { SOURCE = "file://" .. dir .. "/plant.tar.gz", CHECKSUM = "sha256:" .. sum,
      LOAD_IMAGE = tag })
    assert.equal(77, r.code, r.output)
    assert.matches("image archive has a symbolic link in its path", r.stderr, 1, true)
    assert.is_falsy(r.stdout:find("loaded image runs", 1, true), r.output)
    assert.same({}, drv.containers(), r.output)
    assert.is_nil(drv.inspect(tag, "image"))
  end)
end)
