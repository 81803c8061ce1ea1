-- The port ledger of a real run: a count = 2 job records each alloc's ports
-- under its own alloc id (state/ports-<alloc_id>.json), owned by the drvctl
-- process (pid and start time), while it runs; the records go when it ends.
local drv = require("support.drv")

-- /proc/<pid>/stat field 22 (start time in clock ticks since boot).
local function start_time(pid)
  local stat = drv.read("/proc/" .. pid .. "/stat") or ""
  local rest = stat:match("^%d+ %b() (.*)$") or ""
  local fields = {}
  for f in rest:gmatch("%S+") do
    fields[#fields + 1] = f
  end
  return tonumber(fields[20])     -- rest starts at field 3
end

-- name -> text of every port record in data/state.
local function records(data)
  local out = {}
  for _, name in ipairs(drv.ls(data .. "/state")) do
    if name:match("^ports%-") then
      out[name] = drv.read(data .. "/state/" .. name) or ""
    end
  end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

describe("the port ledger of a count = 2 run", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("holds one record per alloc, naming that alloc's container port, while it runs", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { count = 2, script = "sleep 60", kill_timeout = "1s",
      task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n    port "admin" {}\n  }\n}' })
    local proc = drv.spawn({ "run", "-data-dir", data, job })
    local running = drv.wait_until(function()
      local ids = drv.containers({ "status=running" })
      return #ids == 2 and ids
    end, 30)
    assert.is_truthy(running, proc:stderr())
    local recs = records(data)
    assert.equal(2, count(recs), proc:stderr())

    local owner = string.format('"owner":{"pid":%d,"start":%d}', proc.pid, start_time(proc.pid))
    for _, id in ipairs(running) do
      local c = assert(drv.inspect(id, "container"))
      local alloc = c.Config.Labels["drvctl.alloc_id"]
      assert.matches(drv.UUID_PATTERN, alloc)
      local text = recs["ports-" .. alloc .. ".json"]
      assert.is_truthy(text, "no record for alloc " .. alloc)
      assert.is_truthy(text:find('"alloc_id":"' .. alloc .. '"', 1, true), text)
      assert.is_truthy(text:find(owner, 1, true), text .. "\nwant " .. owner)
      -- the host ports Docker bound for this container are this record's
      local bound = {}
      for _, b in pairs(c.HostConfig.PortBindings) do
        bound[tonumber(b[1].HostPort)] = true
      end
      local recorded = {}
      for port, key in text:gmatch('{"port":(%d+),"key":"([^"]*)"}') do
        recorded[tonumber(port)] = true
        assert.equal(alloc, key:match("^[^/]+"), text)
      end
      assert.equal(2, count(recorded), text)
      assert.same(bound, recorded)
    end
    -- the two allocs never share a port
    local all = {}
    for _, text in pairs(recs) do
      for port in text:gmatch('{"port":(%d+)') do
        assert.is_nil(all[port], "port " .. port .. " recorded twice")
        all[port] = true
      end
    end

    proc:signal("INT")
    assert.equal(130, proc:wait(30), proc.output or proc:stderr())
    assert.same({}, records(data), proc.output)
  end)

  it("reclaims the records of a run killed with -9 on the next run", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { count = 2, script = "sleep 60", kill_timeout = "1s",
      task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n  }\n}' })
    local proc = drv.spawn({ "run", "-data-dir", data, job })
    assert.is_truthy(drv.wait_until(function()
      return #drv.containers({ "status=running" }) == 2
    end, 30), proc:stderr())
    local before = records(data)
    assert.equal(2, count(before))
    proc:signal("KILL")
    proc:wait(10)
    for _, id in ipairs(drv.containers()) do
      drv.docker({ "rm", "-f", id })
    end
    -- the records outlive the killed owner ...
    assert.same(before, records(data))
    -- ... and the next run reserving ports takes them back
    local job2 = drv.write_job(dir, { script = "true",
      task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n  }\n}' }, "job2.hcl")
    local r = drv.drvctl({ "run", "-data-dir", data, job2 })
    assert.equal(0, r.code, r.output)
    assert.same({}, records(data), r.output)
  end)
end)
