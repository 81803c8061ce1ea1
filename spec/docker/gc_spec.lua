-- drvctl gc and alloc dirs on the real daemon: the records a foreground run
-- writes (<data_dir>/state/allocs/<id>.json), the removal of ended allocs'
-- dirs (disk freed), a run killed with -9 (its container still there: kept,
-- with the docker rm -f command; removed once the container is gone),
-- docker.cleanup.container = false (the exited container stays, gc leaves
-- it and its alloc), and a gc racing a running run (never touches it).
local cjson = require("cjson.safe")
local drv = require("support.drv")

local function rec(data, id)
  local text = drv.read(data .. "/state/allocs/" .. id .. ".json")
  return text and assert(cjson.decode(text)) or nil
end

local function gc(data, extra)
  local args = { "gc", "-data-dir", data }
  for _, a in ipairs(extra or {}) do
    args[#args + 1] = a
  end
  return drv.drvctl(args, { timeout = 120 })
end

-- Bytes used under path (du -sk, in kB).
local function du_kb(path)
  local p = io.popen("du -sk " .. drv.quote(path) .. " 2>/dev/null")
  local s = p:read("l")
  p:close()
  return tonumber(s and s:match("^(%d+)") or "0")
end

local BIG = "head -c 5000000 /dev/zero > /alloc/data/big && echo done"

describe("drvctl gc of alloc dirs", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("removes the alloc dirs and records of two ended runs (disk freed)", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { job = "web", script = BIG })
    for _ = 1, 2 do
      local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 120 })
      assert.equal(0, r.code, r.output)
    end
    local ids = drv.alloc_ids(data)
    assert.equal(2, #ids)
    for _, id in ipairs(ids) do
      local r = rec(data, id)
      assert.equal(1, r.version)
      assert.equal("ended", r.status)
      assert.equal("web", r.job)
      assert.equal(id, r.alloc_id)
      assert.equal("t", r.tasks[1].task)
      assert.equal(0, r.tasks[1].exit_code)
      assert.is_true(r.ended >= r.created and r.created > 0)
      assert.is_true(r.owner.pid > 0 and r.owner.start > 0 and #r.owner.boot > 0)
    end
    assert.is_true(du_kb(data .. "/alloc") >= 9000, "the runs wrote 2 x 5 MB")
    local r = gc(data)
    assert.equal(0, r.code, r.output)
    for _, id in ipairs(ids) do
      assert.matches("gc: removed alloc " .. id:gsub("%-", "%%-") .. ' %(job "web", 5%.%d MB%)',
        r.stdout)
      assert.is_false(drv.exists(data .. "/alloc/" .. id))
      assert.is_nil(rec(data, id))
    end
    assert.matches("gc: removed 2 allocs, 10.%d MB freed; 0 kept", r.stdout)
    assert.is_true(du_kb(data .. "/alloc") < 100)
    -- nothing left: a second gc removes nothing
    r = gc(data, { "-json" })
    assert.equal(0, r.code, r.output)
    assert.same({ removed = {}, kept = {}, freed_bytes = 0 }, cjson.decode(r.stdout))
  end)

  it("keeps the alloc of a run killed with -9 while its container exists, then removes it",
    function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { job = "killed", task = "sleeper",
      script = "echo ready; while :; do sleep 0.1; done" })
    local proc = drv.spawn({ "run", "-data-dir", data, job })
    assert.is_truthy(drv.wait_until(function()
      return proc:stdout():find("sleeper | ready", 1, true) or proc:exited()
    end, 60), proc:stdout() .. proc:stderr())
    local id = drv.alloc_ids(data)[1]
    assert.equal("running", rec(data, id).status)
    assert.equal(proc.pid, rec(data, id).owner.pid)
    -- the run is alive: gc leaves its alloc alone
    local r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.is_true(drv.exists(data .. "/alloc/" .. id .. "/alloc/logs"))
    proc:signal("KILL")
    proc:wait(30)
    local name = "sleeper-" .. id
    assert.equal("running", drv.inspect(name, "container").State.Status)
    r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.matches("gc: kept alloc " .. id, r.stderr, 1, true)
    assert.matches("docker rm -f " .. name, r.stderr, 1, true)
    assert.is_true(drv.exists(data .. "/alloc/" .. id .. "/alloc/logs"))
    assert.is_truthy(rec(data, id))
    -- gc did not remove the container
    assert.equal("running", drv.inspect(name, "container").State.Status)
    assert.equal(0, drv.docker({ "rm", "-f", name }).code)
    r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.matches("gc: removed alloc " .. id, r.stdout, 1, true)
    assert.is_false(drv.exists(data .. "/alloc/" .. id))
    assert.is_nil(rec(data, id))
  end)

  it("keeps exited containers with docker.cleanup.container = false, and gc their allocs",
    function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local cfg = drv.write(dir .. "/agent.hcl",
      'client {\n  options {\n    "docker.cleanup.container" = "false"\n  }\n}\n')
    local job = drv.write_job(dir, { job = "keep", task = "k", script = "echo bye; exit 3" })
    local r = drv.drvctl({ "run", "-config", cfg, "-data-dir", data, job }, { timeout = 120 })
    assert.equal(3, r.code, r.output)
    local id = drv.alloc_ids(data)[1]
    local name = "k-" .. id
    assert.matches("container " .. name .. " kept for inspection", r.stderr, 1, true)
    assert.matches("docker rm " .. name, r.stderr, 1, true)
    local c = assert(drv.inspect(name, "container"), "the container was removed")
    assert.equal("exited", c.State.Status)
    assert.equal(3, c.State.ExitCode)
    local rc = rec(data, id)
    assert.equal("ended", rc.status)
    assert.is_true(rc.keep_containers)
    assert.is_true(rc.tasks[1].kept)
    assert.equal(3, rc.tasks[1].exit_code)
    r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.matches("gc: kept alloc " .. id, r.stderr, 1, true)
    assert.matches("kept for inspection", r.stderr, 1, true)
    assert.matches("docker rm " .. name, r.stderr, 1, true)
    assert.is_true(drv.exists(data .. "/alloc/" .. id .. "/alloc/logs"))
    assert.equal("exited", drv.inspect(name, "container").State.Status)
    assert.equal(0, drv.docker({ "rm", name }).code)
    r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.is_false(drv.exists(data .. "/alloc/" .. id))
  end)

  it("never removes the alloc of a running run, however often gc runs", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { job = "busy", task = "w", kill_timeout = "1s",
      script = "echo ready; i=0; while :; do i=$((i+1)); echo $i > /alloc/data/n; " ..
               "sleep 0.05; done" })
    local proc = drv.spawn({ "run", "-data-dir", data, job })
    assert.is_truthy(drv.wait_until(function()
      return proc:stdout():find("w | ready", 1, true) or proc:exited()
    end, 60), proc:stdout() .. proc:stderr())
    local id = drv.alloc_ids(data)[1]
    for _ = 1, 5 do
      local r = gc(data, { "-orphans" })
      assert.equal(0, r.code, r.output)
      assert.is_nil(r.stdout:find("removed alloc", 1, true), r.output)
      assert.is_true(drv.exists(data .. "/alloc/" .. id .. "/alloc/data/n"))
      assert.is_truthy(rec(data, id))
    end
    assert.is_false(proc:exited())
    proc:signal("INT")
    assert.equal(130, proc:wait(60), proc.output)
    local r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.matches("gc: removed alloc " .. id, r.stdout, 1, true)
    assert.is_false(drv.exists(data .. "/alloc/" .. id))
  end)

  it("removes a hostile task's tree without following its symlinks", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local canary = drv.write(dir .. "/canary", "alive\n")
    local script = table.concat({
      "ln -s " .. dir .. " /alloc/data/out",
      "ln -s / /alloc/data/root",
      "ln -s loop /alloc/data/loop",
      "mkdir -p /alloc/data/ro/x && touch /alloc/data/ro/x/f && chmod 0 /alloc/data/ro/x",
      "chmod 0555 /alloc/data/ro",
      "chown 12345:12345 /alloc/data/ro/x/f 2>/dev/null; echo planted",
    }, " && ")
    local job = drv.write_job(dir, { job = "hostile", script = script })
    local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 120 })
    assert.equal(0, r.code, r.output)
    local id = drv.alloc_ids(data)[1]
    r = gc(data)
    assert.equal(0, r.code, r.output)
    assert.matches("gc: removed alloc " .. id, r.stdout, 1, true)
    assert.is_false(drv.exists(data .. "/alloc/" .. id))
    assert.equal("alive\n", drv.read(canary))
    assert.is_true(drv.exists(dir .. "/data"))
  end)
end)
