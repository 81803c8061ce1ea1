-- Image cleanup on the real daemon with a local registry: an image drvctl
-- pulled is removed docker.cleanup.image.delay after its last task ended
-- (the foreground run waits for a delay of up to 10 s), kept with cleanup
-- off, never removed when it was there before; a longer delay is recorded
-- in <data_dir>/state/images.json and carried out by `drvctl gc` once due,
-- a task using the image within the delay cancels the removal, several tags
-- are removed by id (forced), an image a container uses is kept, and the
-- references of a run killed with -9 count as released.
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")
local cjson = require("cjson.safe")

local function present(ref)
  return drv.inspect(ref, "image") ~= nil
end

-- An image only in the registry (no local copy): returns its reference.
local function remote_only(reg, repo)
  local name = registry.image{ marker = repo .. "-" .. drv.run_id }
  local ref = reg:push(name, repo, { untag = true })
  registry.remove_image(name)
  assert.is_false(present(ref), "the pushed image is still local: " .. ref)
  return ref
end

-- An agent config with these client options that also allows pulls from
-- the registry on 127.0.0.1 (support.agentconf); `drvctl gc` pulls
-- nothing, only its cleanup options matter there.
local function agent_config(dir, options)
  local lines = { "client {", "  options {" }
  for k, v in pairs(options) do
    lines[#lines + 1] = string.format("    %s = %s", drv.hcl_string(k), drv.hcl_string(v))
  end
  lines[#lines + 1] = "  }"
  lines[#lines + 1] = "}"
  return agentconf.trusted_registry(dir, table.concat(lines, "\n") .. "\n",
    "agent-" .. tostring(#drv.ls(dir)) .. ".hcl")
end

local function run(dir, data_dir, cfg, image, script, count)
  local job = drv.write_job(dir, { image = image, script = script or "cat /marker", count = count },
    "job-" .. tostring(#drv.ls(dir)) .. ".hcl")
  return drv.drvctl({ "run", "-config", cfg, "-data-dir", data_dir, job }, { timeout = 120 })
end

local function record(data_dir)
  local text = drv.read(data_dir .. "/state/images.json")
  if not text then
    return nil
  end
  return assert(cjson.decode(text))
end

-- The record's entry naming ref, or nil.
local function entry(data_dir, ref)
  local rec = record(data_dir)
  for _, e in ipairs(rec and rec.images or {}) do
    for _, r in ipairs(e.refs) do
      if r == ref then
        return e
      end
    end
  end
  return nil
end

local function gc(cfg, data_dir)
  return drv.drvctl({ "gc", "-config", cfg, "-data-dir", data_dir }, { timeout = 120 })
end

describe("image cleanup", function()
  local reg

  setup(function()
    drv.require_docker()
    reg = registry.start{ shared = true }
  end)
  teardown(function()
    if reg then
      reg:stop()
    end
  end)
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  it("removes a pulled image once the run ends and the delay passed", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/clean:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "1s" })
    local mark = reg:mark()
    local r = run(dir, data, cfg, ref)
    assert.equal(0, r.code, r.output)
    assert.equal(1, reg:manifest_requests("rsx/clean", "1", mark))   -- pulled
    assert.matches("rsx/clean:1-" .. drv.run_id, r.stdout, 1, true)
    assert.is_nil(r.stderr:find("warning", 1, true), r.output)
    -- the run waited out the delay and removed it before exiting
    assert.is_false(present(ref), r.output)
    assert.is_nil(entry(data, ref))
    assert.equal(0, #drv.containers())
  end)

  it("counts every instance of a count = 3 group and removes the image after the last", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/three:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "1s" })
    local mark = reg:mark()
    local r = run(dir, data, cfg, ref, "cat /marker; sleep 1", 3)
    assert.equal(0, r.code, r.output)
    assert.equal(1, reg:manifest_requests("rsx/three", "1", mark))   -- one pull for three
    local _, n = r.stdout:gsub("rsx/three:1%-" .. drv.run_id:gsub("%-", "%%-"), "")
    assert.equal(3, n, r.output)
    assert.is_false(present(ref), r.output)
    assert.is_nil(record(data))
  end)

  it("keeps a pulled image when docker.cleanup.image is false", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/keep:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image"] = "false",
      ["docker.cleanup.image.delay"] = "1s" })
    local r = run(dir, data, cfg, ref)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))
    assert.is_nil(record(data))        -- nothing counted
    -- nor does gc remove it
    r = gc(agent_config(dir, { ["docker.cleanup.image.delay"] = "1s" }), data)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))
  end)

  it("never removes an image that was there before the run", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local name = registry.image{ marker = "before-" .. drv.run_id }
    local ref = reg:push(name, "rsx/before:1")   -- the local tag stays: present
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "1s" })
    local mark = reg:mark()
    local r = run(dir, data, cfg, ref)
    assert.equal(0, r.code, r.output)
    assert.equal(0, reg:manifest_requests("rsx/before", "1", mark))   -- not pulled
    assert.is_true(present(ref))
    assert.is_nil(entry(data, ref))
    r = gc(cfg, data)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))
  end)

  it("records a longer delay, cancels it on reuse, and gc removes it once due", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/later:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "11s" })

    local r = run(dir, data, cfg, ref)
    local ended = drv.now()
    assert.equal(0, r.code, r.output)
    -- not waited for: recorded as due, with no holder left
    assert.is_true(present(ref))
    local e = entry(data, ref)
    assert.is_table(e, r.output)
    assert.is_true(e.acquired)
    assert.equal(0, #e.holders)
    assert.is_true(e.released > 0)
    assert.matches("^sha256:%x+$", e.id)
    -- too early for gc
    r = gc(cfg, data)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))

    -- a second run uses it within the delay (present, not pulled again):
    -- that cancels the removal and starts the delay anew when it ends
    drv.sleep(3)
    local mark = reg:mark()
    r = run(dir, data, cfg, ref)
    local ended2 = drv.now()
    assert.equal(0, r.code, r.output)
    assert.equal(0, reg:manifest_requests("rsx/later", "1", mark))
    local e2 = entry(data, ref)
    assert.is_table(e2)
    assert.is_true(e2.acquired)         -- still the image drvctl pulled
    assert.is_true(e2.released > e.released)

    -- the first removal would be due now: kept
    drv.sleep(math.max(0, ended + 11.5 - drv.now()))
    r = gc(cfg, data)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))

    -- the second one is due: gc removes it
    drv.sleep(math.max(0, ended2 + 11.5 - drv.now()))
    r = gc(cfg, data)
    assert.equal(0, r.code, r.output)
    assert.is_false(present(ref), r.output)
    assert.is_nil(entry(data, ref))
  end)

  it("removes an image with several tags, all its own, by id, forced, once it is due", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local name = registry.image{ marker = "rsx/tags-" .. drv.run_id }
    local ref1 = reg:push(name, "rsx/tags:1", { untag = true })
    local ref2 = reg:push(name, "rsx/tags:2", { untag = true })
    registry.remove_image(name)
    assert.is_false(present(ref1))
    assert.is_false(present(ref2))
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "11s" })
    assert.equal(0, run(dir, data, cfg, ref1).code)
    local r = run(dir, data, cfg, ref2)
    assert.equal(0, r.code, r.output)
    local id = drv.inspect(ref1, "image").Id
    assert.equal(id, drv.inspect(ref2, "image").Id)
    -- due for a gc whose config has no delay (the delay of the process
    -- that looks at the record counts)
    r = gc(agent_config(dir, { ["docker.cleanup.image.delay"] = "0s" }), data)
    assert.equal(0, r.code, r.output)
    assert.is_false(present(ref1), r.output)
    assert.is_false(present(ref2), r.output)
    assert.is_false(present(id))
    assert.is_nil(record(data))
  end)

  it("takes only its own name off an image that also has a name it did not pull", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/tags:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "11s" })
    local r = run(dir, data, cfg, ref)
    assert.equal(0, r.code, r.output)
    local id = entry(data, ref).id
    -- the operator names the image too, after drvctl pulled it
    local alias = reg.host .. "/rsx/tags:alias"
    drv.docker({ "tag", ref, alias })
    assert.equal(id, drv.inspect(alias, "image").Id)
    r = gc(agent_config(dir, { ["docker.cleanup.image.delay"] = "0s" }), data)
    assert.equal(0, r.code, r.output)
    assert.is_false(present(ref), r.output)
    assert.is_true(present(alias), r.output)
    assert.equal(id, drv.inspect(alias, "image").Id)
    assert.is_nil(record(data))
  end)

  it("releases the references of a run killed with -9 (gc removes the image)", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/killed:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "0s" })
    local job = drv.write_job(dir, { image = ref, script = "echo up; sleep 300" }, "killed.hcl")
    local p = drv.spawn({ "run", "-config", cfg, "-data-dir", data, job })
    assert.is_true(drv.wait_until(function() return p:stdout():find("up", 1, true) ~= nil end, 60),
      p:stderr())
    local e = entry(data, ref)
    assert.is_table(e)
    assert.equal(1, #e.holders)
    assert.equal(p.pid, e.holders[1].pid)
    assert.is_true(p:signal("KILL"))
    assert.equal(137, p:wait(10))
    -- the record still names the dead run as holder: nothing is due
    assert.equal(1, #entry(data, ref).holders)
    -- remove the container it left behind (else the image counts as used)
    local left = drv.containers()
    assert.equal(1, #left)
    drv.docker({ "rm", "-f", "-v", left[1] })
    -- gc finds the holder's process gone: released, due (delay 0), removed
    local r = gc(cfg, data)
    assert.equal(0, r.code, r.output)
    assert.is_false(present(ref), r.output)
    assert.is_nil(record(data))
  end)

  it("keeps an image a container still uses, even a stopped one not made by drvctl", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local ref = remote_only(reg, "rsx/used:1")
    local cfg = agent_config(dir, { ["docker.cleanup.image.delay"] = "11s" })
    local r = run(dir, data, cfg, ref)
    assert.equal(0, r.code, r.output)
    local c = drv.docker({ "create", "--label", drv.label, ref, "true" })
    local cid = c.stdout:match("%x+")
    r = gc(agent_config(dir, { ["docker.cleanup.image.delay"] = "0s" }), data)
    assert.equal(0, r.code, r.output)
    assert.is_true(present(ref))
    assert.is_table(entry(data, ref))   -- kept for later
    drv.docker({ "rm", "-f", cid })
  end)
end)
