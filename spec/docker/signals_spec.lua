-- drvctl run while its task runs: the container as Docker sees it, and
-- stopping it with SIGINT / SIGTERM (graceful, kill_timeout, second SIGINT).
local drv = require("support.drv")

-- Starts `drvctl run` of a one-task job in the background and waits until
-- the task printed "ready" (so its traps are installed).
-- Returns proc, data dir, job options used.
local function start(t)
  local dir = drv.tmpdir()
  local data = dir .. "/data"
  t.task = t.task or "sleeper"
  local job = drv.write_job(dir, t)
  local proc = drv.spawn({ "run", "-data-dir", data, job })
  local ready = drv.wait_until(function()
    return proc:stdout():find(t.task .. " | ready", 1, true) or proc:exited()
  end, 30)
  assert.is_truthy(ready, "task never printed ready\n" .. proc:stdout() .. proc:stderr())
  assert.is_false(proc:exited(), "drvctl exited early\n" .. proc:stdout() .. proc:stderr())
  return proc, data
end

-- Signals proc and returns its exit code and the seconds it took to exit.
local function stop(proc, sig, timeout)
  local t0 = drv.now()
  proc:signal(sig)
  local code = proc:wait(timeout or 30)
  return code, drv.now() - t0
end

local SLEEP = "echo ready; while :; do sleep 0.1; done"
local IGNORE_TERM = "trap '' TERM INT; echo ready; while :; do sleep 0.1; done"

describe("a running task", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("runs in a container named <task>-<alloc_id>", function()
    local proc, data = start({ script = SLEEP, kill_timeout = "1s" })
    local ids = drv.containers({ "status=running" })
    assert.equal(1, #ids)
    local alloc = drv.alloc_ids(data)[1]
    local c = assert(drv.inspect(ids[1], "container"))
    assert.equal("/sleeper-" .. alloc, c.Name)
    stop(proc, "INT")
  end)

  it("carries the drvctl.job, group, task and alloc_id labels and the job's labels", function()
    local proc, data = start({ job = "labelled", group = "grp", script = SLEEP,
      kill_timeout = "1s", labels = { team = "spec" } })
    local ids = drv.containers({ "status=running" })
    assert.equal(1, #ids)
    local labels = assert(drv.inspect(ids[1], "container")).Config.Labels
    local want = {
      ["drvctl.job"] = "labelled",
      ["drvctl.group"] = "grp",
      ["drvctl.task"] = "sleeper",
      ["drvctl.alloc_id"] = drv.alloc_ids(data)[1],
      [drv.LABEL_KEY] = drv.run_id,
      team = "spec",
    }
    for k, v in pairs(want) do
      assert.equal(v, labels[k], "label " .. k)
    end
    stop(proc, "INT")
  end)

  it("stops on SIGINT, exits 130 and leaves no container", function()
    local proc = start({ script = SLEEP, kill_timeout = "5s" })
    local code = stop(proc, "INT")
    assert.equal(130, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
  end)

  it("stops on SIGTERM, exits 143 and leaves no container", function()
    local proc = start({ script = SLEEP, kill_timeout = "5s" })
    local code = stop(proc, "TERM")
    assert.equal(143, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
  end)

  it("stops on SIGHUP (closed terminal), exits 129 and leaves no container", function()
    local proc = start({ script = SLEEP, kill_timeout = "5s" })
    local code = stop(proc, "HUP")
    assert.equal(129, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
    assert.is_truthy(proc:stderr():find("SIGHUP received: stopping tasks", 1, true), proc.output)
  end)

  it("stops on SIGQUIT, exits 131 and leaves no container", function()
    local proc = start({ script = SLEEP, kill_timeout = "5s" })
    local code = stop(proc, "QUIT")
    assert.equal(131, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
  end)

  it("stops on SIGHUP with the task's kill_signal, its output going nowhere", function()
    -- a dropped SSH session: stdout and stderr are a closed pipe (EPIPE)
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { task = "sleeper", kill_signal = "SIGUSR1", kill_timeout = "5s",
      script = "trap 'echo got-usr1 > $NOMAD_ALLOC_DIR/data/sig; exit 0' USR1; "
        .. "echo ready; while :; do echo tick; sleep 0.1; done" })
    local data = dir .. "/data"
    local pidfile = dir .. "/pid"
    -- drvctl's output goes through a pipe whose reader is gone
    local inner = string.format("echo $$ > %s; exec %s run -data-dir %s %s 2>&1",
      drv.quote(pidfile), drv.quote(drv.bin), drv.quote(data), drv.quote(job))
    local p = assert(io.popen(string.format("cd %s && sh -c %s | head -c 1 >/dev/null",
      drv.quote(drv.root), drv.quote(inner)), "r"))
    local pid = drv.wait_until(function() return tonumber(drv.read(pidfile) or "") end, 10)
    assert.is_truthy(pid)
    assert.is_truthy(drv.wait_until(function() return #drv.containers({ "status=running" }) == 1 end, 30))
    drv.sleep(0.5)   -- the reader has gone; drvctl keeps running
    assert.is_truthy(drv.exists("/proc/" .. pid), "drvctl died when its output pipe closed")
    os.execute("kill -HUP " .. pid)
    assert.is_truthy(drv.wait_until(function()
      local st = drv.read("/proc/" .. pid .. "/stat")
      return st == nil or st:match("^%d+ %b() ([ZX])")
    end, 30), "drvctl did not exit after SIGHUP")
    p:close()
    local alloc = drv.alloc_ids(data)[1]
    assert.equal("got-usr1\n", drv.read(data .. "/alloc/" .. alloc .. "/alloc/data/sig"))
    assert.same({}, drv.containers())
  end)

  it("waits kill_timeout for a task that ignores the signal, then kills it", function()
    local proc = start({ script = IGNORE_TERM, kill_timeout = "2s" })
    local code, took = stop(proc, "INT")
    assert.equal(130, code, proc.output)
    assert.is_true(took >= 1.5, string.format("exited after %.2fs, before kill_timeout", took))
    assert.is_true(took <= 4, string.format("took %.2fs, more than kill_timeout + 2s", took))
    assert.same({}, drv.containers(), proc.output)
  end)

  it("sends kill_signal to the task on SIGINT", function()
    local proc, data = start({ kill_signal = "SIGUSR1", kill_timeout = "5s",
      script = "trap 'echo got-usr1 > $NOMAD_ALLOC_DIR/data/sig; exit 0' USR1; " .. SLEEP })
    local code = stop(proc, "INT")
    assert.equal(130, code, proc.output)
    local alloc = drv.alloc_ids(data)[1]
    assert.equal("got-usr1\n", drv.read(data .. "/alloc/" .. alloc .. "/alloc/data/sig"), proc.output)
  end)

  it("kills at once on a second SIGINT", function()
    local proc = start({ script = IGNORE_TERM, kill_timeout = "60s" })
    local t0 = drv.now()
    proc:signal("INT")
    drv.sleep(0.5)
    proc:signal("INT")
    local code = proc:wait(30)
    local took = drv.now() - t0
    assert.equal(130, code, proc.output)
    assert.is_true(took <= 4, string.format("took %.2fs after two SIGINTs", took))
    assert.same({}, drv.containers(), proc.output)
  end)
end)
