-- A signal always ends `drvctl run`, even when Docker stops answering:
-- the stop is bounded, the exit code is 128 + the signal, and every
-- container that may be left behind is named with the command that
-- removes it. Docker is replaced by spec/fixtures/docker/fake_docker.py on
-- a unix socket (client.options "docker.endpoint"): one that never
-- answers, one that answers only /_ping, and a proxy in front of the real
-- daemon that freezes while a task runs.
local drv = require("support.drv")

local REAL_SOCKET = "/var/run/docker.sock"
local BOUND = 20   -- generous: the stop itself is bounded by a few seconds

-- Starts the fake in `mode`; returns its socket path and request log path.
local function fake(dir, mode, extra)
  local sock, log = dir .. "/docker.sock", dir .. "/requests.log"
  drv.write(log, "")
  local args = { "python3", drv.root .. "/spec/fixtures/docker/fake_docker.py", mode, sock, log }
  for _, a in ipairs(extra or {}) do
    args[#args + 1] = a
  end
  local quoted = {}
  for i, a in ipairs(args) do
    quoted[i] = drv.quote(a)
  end
  local p = assert(io.popen(table.concat(quoted, " ") .. " </dev/null >" .. drv.quote(dir .. "/fake.out")
    .. " 2>&1 & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start the fake docker")
  drv.on_cleanup(function()
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  end)
  assert.is_truthy(drv.wait_until(function() return drv.exists(sock) end, 10),
    "fake docker did not listen: " .. (drv.read(dir .. "/fake.out") or ""))
  return sock, log
end

local function agent_config(dir, sock)
  return drv.write(dir .. "/agent.hcl", string.format(
    'client {\n  network_interface = "lo"\n  options {\n    "docker.endpoint" = "unix://%s"\n  }\n}\n', sock))
end

local function spawn_run(dir, sock, t)
  t.task = t.task or "sleeper"
  local job = drv.write_job(dir, t)
  return drv.spawn({ "run", "-config", agent_config(dir, sock), "-data-dir", dir .. "/data", job })
end

-- Signals proc; returns its exit code (nil when it did not exit in BOUND s).
local function signal_and_wait(proc, sig)
  assert.is_false(proc:exited(), "drvctl exited before the signal\n" .. proc:stdout() .. proc:stderr())
  proc:signal(sig)
  return proc:wait(BOUND)
end

local function seen(log, pattern)
  return (drv.read(log) or ""):find(pattern)
end

describe("drvctl run against a Docker that does not answer", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  for _, c in ipairs({ { "INT", 130 }, { "TERM", 143 }, { "HUP", 129 } }) do
    local sig, want = c[1], c[2]

    it("exits " .. want .. " on SIG" .. sig .. " while the ping hangs", function()
      local dir = drv.tmpdir()
      local sock, log = fake(dir, "silent")
      local proc = spawn_run(dir, sock, { script = "sleep 60" })
      assert.is_truthy(drv.wait_until(function() return seen(log, "/_ping") end, 10), proc:stderr())
      assert.equal(want, signal_and_wait(proc, sig), proc.output or proc:stderr())
    end)

    it("exits " .. want .. " on SIG" .. sig .. " while the create hangs, naming the container", function()
      local dir = drv.tmpdir()
      local sock, log = fake(dir, "ping")
      local proc = spawn_run(dir, sock, { script = "sleep 60" })
      assert.is_truthy(drv.wait_until(function() return seen(log, "/containers/create") end, 15),
        proc:stderr())
      local code = signal_and_wait(proc, sig)
      assert.equal(want, code, proc.output or proc:stderr())
      local alloc = drv.alloc_ids(dir .. "/data")[1]
      local name = "sleeper-" .. alloc
      -- it tried to remove the container by name, then said what is left
      assert.is_truthy(seen(log, "DELETE [^ ]*/containers/" .. name:gsub("%-", "%%-")), proc.output)
      assert.is_truthy(proc:stderr():find("container " .. name .. " may still exist", 1, true), proc.output)
      assert.is_truthy(proc:stderr():find("docker rm -f " .. name, 1, true), proc.output)
    end)
  end

  it("releases the port reservations of a run whose container may be left", function()
    local dir = drv.tmpdir()
    local sock, log = fake(dir, "ping")
    local proc = spawn_run(dir, sock, { script = "sleep 60",
      task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n  }\n}' })
    assert.is_truthy(drv.wait_until(function() return seen(log, "/containers/create") end, 15),
      proc:stderr())
    local ledger = dir .. "/data/state"
    local reserved = {}
    for _, name in ipairs(drv.ls(ledger)) do
      if name:match("^ports%-.+%.json$") then
        reserved[#reserved + 1] = name
      end
    end
    assert.equal(1, #reserved, "no port reserved while the create hangs")
    assert.equal(130, signal_and_wait(proc, "INT"), proc.output or proc:stderr())
    assert.is_false(drv.exists(ledger .. "/" .. reserved[1]), proc.output)
    assert.is_truthy(proc:stderr():find("port reservations are released", 1, true), proc.output)
  end)

  it("a second SIGINT gives up sooner while the create hangs", function()
    local dir = drv.tmpdir()
    local sock, log = fake(dir, "ping")
    local proc = spawn_run(dir, sock, { script = "sleep 60" })
    assert.is_truthy(drv.wait_until(function() return seen(log, "/containers/create") end, 15),
      proc:stderr())
    proc:signal("INT")
    drv.sleep(0.3)
    proc:signal("INT")
    assert.equal(130, proc:wait(BOUND), proc.output or proc:stderr())
    assert.is_truthy(proc:stderr():find("may still exist", 1, true), proc.output)
  end)

  it("exits 130 on SIGINT when Docker freezes while the task runs, naming what is left", function()
    local dir = drv.tmpdir()
    local freeze = dir .. "/freeze"
    local sock = fake(dir, "proxy", { REAL_SOCKET, freeze })
    local proc = spawn_run(dir, sock, { script = "echo ready; sleep 600", kill_timeout = "1s" })
    assert.is_truthy(drv.wait_until(function()
      return proc:stdout():find("sleeper | ready", 1, true) or proc:exited()
    end, 30), proc:stdout() .. proc:stderr())
    local ids = drv.containers({ "status=running" })
    assert.equal(1, #ids, proc:stderr())
    drv.write(freeze, "")
    local code = signal_and_wait(proc, "INT")
    assert.equal(130, code, proc.output or proc:stderr())
    local name = "sleeper-" .. drv.alloc_ids(dir .. "/data")[1]
    assert.is_truthy(proc:stderr():find("docker rm -f " .. name, 1, true), proc.output)
    -- what it named is really there (the real daemon never got the stop)
    local c = assert(drv.inspect(ids[1], "container"))
    assert.equal("/" .. name, c.Name)
  end)
end)
