-- Image references end to end on the real daemon: the container is created
-- with the image as the job wrote it (https:// dropped), spellings Docker
-- normalises find the same local image, and a reference Docker would refuse
-- creates nothing. A job that pulls from the test registry on 127.0.0.1
-- runs under the agent config that allows it (support.agentconf).
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")

-- Starts `drvctl run` of a one-task job whose task prints "ready" and
-- sleeps; returns proc and the running container's inspect document.
-- With trusted_registry, under the agent config that allows pulls from
-- 127.0.0.1.
local function start(t, trusted_registry)
  local dir = drv.tmpdir()
  t.task = t.task or "web"
  t.script = "echo ready; while :; do sleep 0.1; done"
  local job = drv.write_job(dir, t)
  local args = { "run", "-data-dir", dir .. "/data", job }
  if trusted_registry then
    table.insert(args, 2, "-config")
    table.insert(args, 3, agentconf.trusted_registry(dir))
  end
  local proc = drv.spawn(args)
  local ready = drv.wait_until(function()
    return proc:stdout():find(t.task .. " | ready", 1, true) or proc:exited()
  end, 60)
  assert.is_truthy(ready, "task never printed ready\n" .. proc:stdout() .. proc:stderr())
  assert.is_false(proc:exited(), "drvctl exited early\n" .. proc:stdout() .. proc:stderr())
  local ids = drv.containers({ "status=running" })
  assert.equal(1, #ids, proc:stderr())
  return proc, assert(drv.inspect(ids[1], "container"))
end

local function stop(proc)
  proc:signal("INT")
  assert.equal(130, proc:wait(60), proc:stderr())
  assert.same({}, drv.containers())
end

local function image_id(ref)
  return assert(drv.inspect(ref, "image")).Id
end

describe("image references", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("drops a leading https:// and creates the container with the image as written", function()
    local proc, c = start({ image = "https://" .. drv.IMAGE })
    assert.equal(drv.IMAGE, c.Config.Image)
    assert.equal(image_id(drv.IMAGE), c.Image)
    stop(proc)
  end)

  it("finds the local image under Docker's normalised spellings", function()
    for _, spelling in ipairs({ "docker.io/" .. drv.IMAGE, "index.docker.io/" .. drv.IMAGE }) do
      local proc, c = start({ image = spelling })
      assert.equal(spelling, c.Config.Image)
      assert.equal(image_id(drv.IMAGE), c.Image)
      stop(proc)
    end
  end)

  it("refuses a reference Docker would refuse before anything is created (exit 68)", function()
    for _, bad in ipairs({ drv.IMAGE:upper(), "http://" .. drv.IMAGE, drv.IMAGE .. "@sha256:abc",
        drv.IMAGE:gsub(":.*", "") .. ":" }) do
      local dir = drv.tmpdir()
      local job = drv.write_job(dir, { image = bad, script = "true" })
      local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 30 })
      assert.equal(68, r.code, r.output)
      assert.truthy(r.stderr:find("invalid image reference", 1, true), r.stderr)
      assert.same({}, drv.containers())
      assert.same({}, drv.alloc_ids(dir .. "/data"), bad)
    end
  end)

end)


describe("image references to a registry", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  -- A pushed image keeps its tag and gains its digest locally: references by
  -- digest, by tag and digest, and by a non-latest tag behind https:// are
  -- present, so nothing is asked of the registry.
  it("uses a present digest or non-latest tag without asking the registry", function()
    local reg = registry.start()
    local img = registry.image{ marker = "ref-" .. drv.run_id }
    local ref, digest = reg:push(img, "rsx/ref:1")
    assert.matches("^sha256:%x+$", digest)
    local repo = reg.host .. "/rsx/ref"
    local id = image_id(ref)
    for _, image in ipairs({ repo .. "@" .. digest, repo .. ":1@" .. digest, "https://" .. ref }) do
      local mark = reg:mark()
      local proc, c = start({ image = image })
      assert.equal((image:gsub("^https://", "")), c.Config.Image)
      assert.equal(id, c.Image)
      stop(proc)
      assert.equal(0, reg:requests("/v2/rsx/ref/", mark, true), image)
    end
  end)

  it("pulls an absent image named with https://, by digest, and by tag and digest", function()
    local reg = registry.start()
    local img = registry.image{ marker = "pull-" .. drv.run_id }
    local ref, digest = reg:push(img, "rsx/pull:1")
    local repo = reg.host .. "/rsx/pull"
    local id = image_id(ref)
    registry.remove_image(img)
    -- every local name of the image (localhost:PORT/... included)
    local function remove()
      drv.docker({ "rmi", "-f", id }, { may_fail = true })
    end
    drv.on_cleanup(remove)
    local cases = {
      -- image, the manifest reference the pull must ask for
      { "https://" .. ref, "1" },
      { repo .. "@" .. digest, digest },
      { repo .. ":1@" .. digest, digest },
      { "localhost:" .. reg.port .. "/rsx/pull:1", "1" },
    }
    for _, c in ipairs(cases) do
      remove()
      assert.is_nil(drv.inspect(id, "image"), c[1])
      local mark = reg:mark()
      local proc, ctr = start({ image = c[1] }, true)
      assert.equal((c[1]:gsub("^https://", "")), ctr.Config.Image)
      assert.equal(id, ctr.Image, c[1])
      stop(proc)
      if c[2] == "1" then
        assert.is_true(reg:manifest_requests("rsx/pull", c[2], mark) >= 1, c[1])
      else
        -- dockerd 20.10 keeps manifests it pulled in its content store and
        -- answers a digest from there when it still has it, so the
        -- digest's manifest request may or may not reach the registry; the
        -- layers were removed with the image and are fetched again
        assert.is_true(reg:requests("/v2/rsx/pull/blobs/", mark, true) >= 1, c[1])
        assert.equal(0, reg:manifest_requests("rsx/pull", "1", mark), c[1])
      end
    end
  end)

  it("fails fast with exit 73 for a well-formed digest the registry does not have", function()
    local reg = registry.start()
    local img = registry.image{ marker = "nodigest-" .. drv.run_id }
    reg:push(img, "rsx/nd:1", { untag = true })
    local missing = "sha256:" .. string.rep("0", 64)
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { image = reg.host .. "/rsx/nd@" .. missing, script = "true" })
    local mark = reg:mark()
    local r = drv.drvctl({ "run", "-config", agentconf.trusted_registry(dir), "-data-dir",
      dir .. "/data", job }, { timeout = 120 })
    assert.equal(73, r.code, r.output)
    assert.truthy(r.stderr:find(reg.host .. "/rsx/nd@" .. missing, 1, true), r.stderr)
    assert.same({}, drv.containers())
    -- not found is not retried: one manifest request per attempt of dockerd
    assert.is_true(reg:manifest_requests("rsx/nd", missing, mark) <= 2, reg:log())
  end)

  it("pulls with the task's auth block (server_address with a scheme and a path); "
    .. "the password shows nowhere", function()
    local password = "pw-" .. drv.run_id:gsub("%-", "")
    local reg = registry.start{ tls = true, users = { robot = password } }
    local img = registry.image{ marker = "auth-" .. drv.run_id }
    local ref = reg:push(img, "rsx/auth:1")
    local id = image_id(ref)
    registry.remove_image(img)
    reg:delete_local(ref)
    drv.on_cleanup(function()
      drv.docker({ "rmi", "-f", id }, { may_fail = true })
    end)
    assert.is_nil(drv.inspect(id, "image"))
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { image = "https://" .. ref, script = "echo pulled",
      config = string.format('auth {\n  username = "robot"\n  password = "%s"\n'
        .. '  server_address = "https://%s/v2/"\n}', password, reg.host) })
    local mark = reg:mark()
    local r = drv.drvctl({ "run", "-config", agentconf.trusted_registry(dir), "-data-dir", data,
      job }, { timeout = 120 })
    assert.equal(0, r.code, r.output)
    assert.truthy(r.stdout:find("t | pulled", 1, true), r.output)
    assert.equal(1, reg:manifest_requests("rsx/auth", "1", mark))
    assert.is_nil(r.output:find(password, 1, true))
    local grep = drv.sh("grep -rlF " .. drv.quote(password) .. " " .. drv.quote(data),
      { shell = true })
    assert.equal("", grep.stdout, "password found in " .. grep.stdout)
    local plan = drv.drvctl({ "plan", "-data-dir", data, job })
    assert.equal(0, plan.code, plan.output)
    assert.is_nil(plan.output:find(password, 1, true))
  end)
end)
