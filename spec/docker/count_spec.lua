-- count = 3: three instances of a group run at once, each its own alloc.
local drv = require("support.drv")

describe("a group with count = 3", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  -- Starts the count fixture; returns proc, data dir and the running
  -- containers once three run (or whatever ran when the wait gave up).
  local function start(sleep)
    local dir = drv.tmpdir()
    local job = drv.fixture("docker/count.hcl", dir, { SLEEP = sleep })
    local proc = drv.spawn({ "run", "-data-dir", dir .. "/data", job })
    local running = drv.wait_until(function()
      local ids = drv.containers({ "status=running" })
      return #ids == 3 and ids
    end, 30) or drv.containers({ "status=running" })
    return proc, dir .. "/data", running
  end

  -- Stops a started run gracefully (containers go with it).
  local function stop(proc)
    proc:signal("INT")
    proc:wait(30)
  end

  it("starts three containers at once", function()
    local proc, _, running = start(10)
    assert.equal(3, #running, proc:stdout() .. proc:stderr())
    stop(proc)
  end)

  it("gives each instance its own alloc id and alloc dir", function()
    local proc, data, running = start(10)
    local allocs = {}
    for _, id in ipairs(running) do
      allocs[#allocs + 1] = assert(drv.inspect(id, "container")).Config.Labels["drvctl.alloc_id"]
    end
    table.sort(allocs)
    assert.equal(3, #allocs, proc:stdout() .. proc:stderr())
    assert.is_true(allocs[1] ~= allocs[2] and allocs[2] ~= allocs[3])
    assert.same(allocs, drv.alloc_ids(data))
    stop(proc)
  end)

  it("exits 0 once all three succeeded and leaves no container", function()
    local proc = start(2)
    local code = proc:wait(60)
    assert.equal(0, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
  end)

  it("prints each instance's output", function()
    local proc = start(1)
    proc:wait(60)
    for i = 0, 2 do
      assert.is_truthy(proc:stdout():find("napper | up " .. i, 1, true), proc.output)
    end
  end)
end)
