-- drvctl logs against real foreground runs: -tail after the run ended, -f
-- started while the task runs (every line once, in order, across a
-- rotation, ending with the run), and a task that swaps its own log file
-- for a symlink to a host file.
local drv = require("support.drv")

local ROTATE = "logs {\n  max_files = 10\n  max_file_size = 1\n}"

local function none_left()
  assert.same({}, drv.containers({ "label=" .. drv.label }))
end

local function log_files(logs, prefix)
  local files = {}
  for _, name in ipairs(drv.ls(logs)) do
    if name:sub(1, #prefix) == prefix then
      files[#files + 1] = name
    end
  end
  return files
end

describe("drvctl logs", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("-tail 5 after the run ended prints exactly the last 5 lines", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    -- about 2 MB: two files of at most 1 MB
    local job = drv.write_job(dir, { task = "web", script = "seq 1 300000", task_extra = ROTATE })
    local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 120 })
    assert.equal(0, r.code, r.stderr)
    none_left()
    local alloc = drv.alloc_ids(data)[1]
    local logs = data .. "/alloc/" .. alloc .. "/alloc/logs"
    assert.is_true(#log_files(logs, "web.stdout.") >= 2, "no rotation")
    local t = drv.drvctl({ "logs", "-data-dir", data, "-tail", "5", alloc:sub(1, 8), "web" })
    assert.equal(0, t.code, t.output)
    assert.equal("299996\n299997\n299998\n299999\n300000\n", t.stdout)
    -- and everything, in order
    local all = drv.drvctl({ "logs", "-data-dir", data, alloc, "web" })
    assert.equal(0, all.code, all.stderr)
    local n, bad = 0, nil
    for line in all.stdout:gmatch("[^\n]+") do
      n = n + 1
      if not bad and tonumber(line) ~= n then
        bad = string.format("line %d is %q", n, line)
      end
    end
    assert.is_nil(bad)
    assert.equal(300000, n)
  end)

  it("-f started while the task runs prints every line once, in order, across rotation",
    function()
      local dir = drv.tmpdir()
      local data = dir .. "/data"
      -- 40000 lines of 41 bytes (1.6 MB: a rotation), in two bursts with
      -- pauses, so the follower starts mid-run and waits for more
      local script = "echo start; sleep 3; "
        .. "awk 'BEGIN{for(i=1;i<=20000;i++) printf \"line %08d padding-padding-padding\\n\", i}'; "
        .. "sleep 2; "
        .. "awk 'BEGIN{for(i=20001;i<=40000;i++) printf \"line %08d padding-padding-padding\\n\", i}'; "
        .. "sleep 1; echo end"
      local job = drv.write_job(dir, { task = "web", script = script, task_extra = ROTATE })
      local run = drv.spawn({ "run", "-data-dir", data, job })
      assert.is_truthy(drv.wait_until(function()
        return run:stdout():find("web | start", 1, true) or run:exited()
      end, 60), run:stderr())
      assert.is_false(run:exited(), run:stderr())
      local alloc = drv.alloc_ids(data)[1]
      local follow = drv.spawn({ "logs", "-data-dir", data, "-f", alloc:sub(1, 6), "web" })
      -- it follows: it printed the start, and waits for the rest
      assert.is_truthy(drv.wait_until(function()
        return follow:stdout():find("start\n", 1, true) or follow:exited()
      end, 30), follow:stderr())
      assert.is_false(follow:exited(), follow:stderr())
      assert.is_nil(follow:stdout():find("end\n", 1, true))
      assert.equal(0, run:wait(120), run.output)
      -- the follower ends by itself once the run has closed the files
      assert.equal(0, follow:wait(20), follow:stderr())
      local out = follow:stdout()
      local lines = {}
      for line in out:gmatch("[^\n]*\n") do
        lines[#lines + 1] = line
      end
      assert.equal(40002, #lines, out:sub(1, 200))
      assert.equal("start\n", lines[1])
      assert.equal("end\n", lines[40002])
      local bad
      for i = 1, 40000 do
        if lines[i + 1] ~= string.format("line %08d padding-padding-padding\n", i) then
          bad = string.format("line %d is %q", i + 1, lines[i + 1])
          break
        end
      end
      assert.is_nil(bad)
      local logs = data .. "/alloc/" .. alloc .. "/alloc/logs"
      assert.is_true(#log_files(logs, "web.stdout.") >= 2, "no rotation")
      none_left()
    end)

  it("does not print a host file a task linked in place of its own log file", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local secret = drv.write(drv.tmpdir() .. "/host-secret", "HOST SECRET CONTENT\n")
    -- the task sees /alloc/logs: it replaces its stdout file by a symlink
    -- to a host path (resolved on the host by whoever opens it as root)
    local job = drv.write_job(dir, { task = "evil", script = "echo mine; "
      .. "rm -f /alloc/logs/evil.stdout.0 /alloc/logs/evil.stderr.0; "
      .. "ln -s " .. secret .. " /alloc/logs/evil.stdout.0; "
      .. "ln -s " .. secret .. " /alloc/logs/evil.stderr.0; echo after" })
    local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    local alloc = drv.alloc_ids(data)[1]
    local logs = data .. "/alloc/" .. alloc .. "/alloc/logs"
    -- the attack took place: the log file is now a symlink to the host file
    assert.equal(0, drv.sh("test -L " .. drv.quote(logs .. "/evil.stdout.0")).code)
    for _, args in ipairs({ {}, { "-tail", "5" }, { "-stderr" }, { "-f" } }) do
      local cmd = { "logs", "-data-dir", data }
      for _, a in ipairs(args) do
        cmd[#cmd + 1] = a
      end
      cmd[#cmd + 1] = alloc
      cmd[#cmd + 1] = "evil"
      local l = drv.drvctl(cmd, { timeout = 20 })
      assert.equal(77, l.code, l.output)
      assert.is_nil(l.stdout:find("HOST SECRET", 1, true), l.output)
      assert.matches("symbolic link", l.stderr, 1, true)
    end
    none_left()
  end)
end)
