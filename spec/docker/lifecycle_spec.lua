-- Lifecycle paths beyond the plain run: the image's STOPSIGNAL as the default
-- kill signal, a failing task stopping its siblings, an interrupt during an
-- image load, log rotation while running, a container that cannot start, and
-- a Nomad API JSON job end to end. Each leaves no container behind.
local drv = require("support.drv")

local function none_left()
  assert.same({}, drv.containers({ "label=" .. drv.label }))
end

describe("task lifecycle", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("sends the image's STOPSIGNAL when the job sets no kill_signal", function()
    local dir = drv.tmpdir()
    local tag = "drvctl-test/stopsignal:" .. drv.run_id:sub(1, 8)
    os.execute("mkdir -p " .. drv.quote(dir .. "/ctx"))
    drv.write(dir .. "/ctx/Dockerfile", "FROM " .. drv.IMAGE .. "\nSTOPSIGNAL SIGUSR1\n")
    local b = drv.docker({ "build", "-q", "--label", drv.label, "-t", tag, dir .. "/ctx" })
    assert.equal(0, b.code, b.output)
    drv.on_cleanup(function() drv.docker({ "rmi", "-f", tag }) end)
    local job = drv.write_job(dir, { image = tag, task = "s",
      script = "trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.1; done" })
    local proc = drv.spawn({ "run", "-data-dir", dir .. "/data", job })
    assert.is_truthy(drv.wait_until(function()
      return proc:stdout():find("s | ready", 1, true) or proc:exited()
    end, 30), proc:stderr())
    proc:signal("INT")
    assert.equal(130, proc:wait(30))
    assert.matches("s | got-usr1", proc.output, 1, true)
    none_left()
  end)

  it("stops the other tasks when one cannot start, exiting with its code", function()
    local dir = drv.tmpdir()
    local job = drv.write(dir .. "/job.hcl", string.format([[
job "two" {
  group "g" {
    task "sleeper" {
      driver = "docker"
      kill_timeout = "2s"
      config {
        image = %q
        command = "sh"
        args = ["-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
        labels { %q = %q }
      }
    }
    task "broken" {
      driver = "docker"
      config {
        image = "drvctl-test/absent:%s"
        labels { %q = %q }
      }
    }
  }
}
]], drv.IMAGE, drv.LABEL_KEY, drv.run_id, drv.run_id:sub(1, 8), drv.LABEL_KEY, drv.run_id))
    local t0 = drv.now()
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(73, r.code, r.output)
    assert.is_true(drv.now() - t0 < 15, r.output)
    assert.matches('task "broken"', r.stderr, 1, true)
    none_left()
  end)

  it("stops cleanly when interrupted while an image loads", function()
    local dir = drv.tmpdir()
    -- a large, valid image archive: the test image plus 64 MiB of random data
    local tag = "drvctl-test/bigload:" .. drv.run_id:sub(1, 8)
    os.execute("mkdir -p " .. drv.quote(dir .. "/ctx"))
    drv.write(dir .. "/ctx/Dockerfile", "FROM " .. drv.IMAGE .. "\nCOPY blob /blob\n")
    local r = drv.sh("head -c 67108864 /dev/urandom > ctx/blob && docker build -q --label "
      .. drv.quote(drv.label) .. " -t " .. tag .. " ctx >/dev/null && docker save -o img.tar "
      .. tag .. " && docker rmi -f " .. tag .. " >/dev/null",
      { cwd = dir, shell = true, timeout = 120 })
    assert.equal(0, r.code, r.output)
    drv.on_cleanup(function() drv.docker({ "rmi", "-f", tag }) end)
    local job = drv.write_job(dir, { image = tag, task = "big", script = "echo should-not-run",
      config = 'load = "img.tar"',
      task_extra = string.format('artifact {\n  source = "file://%s/img.tar"\n}', dir) })
    local agent = drv.write(dir .. "/agent.hcl", string.format(
      "client {\n  artifact {\n    local_dirs = [%s]\n  }\n}\n", drv.hcl_string(dir)))
    local proc = drv.spawn({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
      { env = { DRVCTL_LOG = "debug" } })
    assert.is_truthy(drv.wait_until(function()
      return proc:stderr():find("loading image", 1, true) or proc:exited()
    end, 60), proc:stderr())
    proc:signal("INT")
    local code = proc:wait(30)
    assert.is_true(code == 130, proc.output)
    assert.is_nil(proc.output:find("should-not-run", 1, true))
    none_left()
  end)

  it("collects every line of a fast writer, in order, across json-file rotations", function()
    -- 300000 lines (about 2 MB of output, more than the container's own
    -- json-file log keeps): drvctl attaches to the container's output, so
    -- nothing is lost when Docker rotates its log file
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { task = "fast", script = "seq 1 300000",
      task_extra = "logs {\n  max_files = 10\n  max_file_size = 1\n}" })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 120 })
    assert.equal(0, r.code, r.stderr)
    local logs = dir .. "/data/alloc/" .. drv.alloc_ids(dir .. "/data")[1] .. "/alloc/logs"
    local text = drv.read(logs .. "/fast.stdout.0") .. (drv.read(logs .. "/fast.stdout.1") or "")
    local n, bad = 0, nil
    for line in text:gmatch("[^\n]+") do
      n = n + 1
      if not bad and tonumber(line) ~= n then
        bad = string.format("line %d is %q", n, line)
      end
    end
    assert.is_nil(bad)
    assert.equal(300000, n)
  end)

  it("rotates the log files while the task writes", function()
    local dir = drv.tmpdir()
    -- 3 MiB of output with 1 MB files and at most 2 files kept
    local job = drv.write_job(dir, { task = "chatty",
      script = "i=0; while [ $i -lt 3072 ]; do head -c 1023 /dev/zero | tr '\\\\0' x; echo; i=$((i+1)); done",
      task_extra = "logs {\n  max_files = 2\n  max_file_size = 1\n}" })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(0, r.code, r.stderr)
    local logs = dir .. "/data/alloc/" .. drv.alloc_ids(dir .. "/data")[1] .. "/alloc/logs"
    local files = {}
    for _, name in ipairs(drv.ls(logs)) do
      if name:match("^chatty%.stdout%.%d+$") then
        files[#files + 1] = name
      end
    end
    table.sort(files)
    assert.same({ "chatty.stdout.1", "chatty.stdout.2" }, files)
    assert.equal(1048576, #drv.read(logs .. "/chatty.stdout.1"))
  end)

  it("exits 75 with Docker's reason when the container cannot start, and removes it", function()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { task = "noexec", config = 'command = "/nonexistent"' })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(75, r.code, r.output)
    assert.matches("start container", r.stderr, 1, true)
    assert.matches("/nonexistent", r.stderr, 1, true)
    none_left()
  end)

  it("runs a Nomad API JSON job", function()
    local dir = drv.tmpdir()
    local job = drv.write(dir .. "/job.json", string.format([[
{"Job": {"ID": "api", "Name": "api", "Datacenters": ["dc1"],
  "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [{
    "Name": "t", "Driver": "docker",
    "Config": {"image": %q, "command": "sh", "args": ["-c", "echo from-json $NOMAD_JOB_NAME"],
               "labels": [{%q: %q}]},
    "Resources": {"CPU": 100, "MemoryMB": 64},
    "KillTimeout": 2000000000}]}]}}
]], drv.IMAGE, drv.LABEL_KEY, drv.run_id))
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.matches("t | from-json api", r.stdout, 1, true)
    none_left()
  end)
end)
