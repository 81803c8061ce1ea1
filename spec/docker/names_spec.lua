-- Names become paths (alloc and task dirs) and Engine API URL parameters
-- (the container name in POST /containers/create?name=...). A hostile
-- name must be refused before anything is created: no directory outside
-- data_dir, no container, exit 68 naming file:line:col.
local drv = require("support.drv")

local function run(task_name)
  local dir = drv.tmpdir()
  local data = dir .. "/data"
  local job = drv.write_job(dir, { task = task_name, script = "echo should-not-run" })
  local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 60 })
  return r, dir, data
end

describe("drvctl run with hostile names", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it('refuses task "../../../../tmp/x": exit 68, nothing created outside data_dir', function()
    -- data_dir/alloc/<id>/<task> with this name resolves to /tmp/tmp/<marker>
    -- (four levels up from the alloc dir is /tmp: /tmp/drvctl-spec.X/data/alloc/<id>)
    local marker = "drvctl-escape-" .. drv.run_id
    for _, name in ipairs({ "../../../../tmp/x", "../../../../tmp/" .. marker }) do
      local r, dir, data = run(name)
      assert.equal(68, r.code, r.output)
      assert.matches("job%.hcl:%d+:%d+: task name not allowed %(.*%): "
        .. require("drv.util").quote(name):gsub("%p", "%%%0") .. "\n", r.stderr)
      assert.is_false(drv.exists("/tmp/tmp/" .. marker))
      assert.is_false(drv.exists("/tmp/" .. marker))
      assert.same({}, drv.ls(data .. "/alloc"), "an alloc dir was created")
      for _, entry in ipairs(drv.ls(dir)) do
        assert.is_truthy(entry == "data" or entry == "job.hcl", "created " .. dir .. "/" .. entry)
      end
      assert.same({}, drv.containers(), "a container was created")
    end
  end)

  it('refuses task "web&platform=x": exit 68, no container with the run label', function()
    local r = run("web&platform=x")
    assert.equal(68, r.code, r.output)
    assert.matches('job%.hcl:%d+:%d+: task name not allowed %(.*%): "web&platform=x"\n', r.stderr)
    assert.same({}, drv.containers(), "a container was created")
    assert.same({}, drv.containers({ "name=web" }), "a container was created")
  end)

  it('refuses job and group names that climb ("../x") the same way', function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    for _, t in ipairs({ { job = "../x" }, { group = "../../y" } }) do
      t.script = "true"
      local job = drv.write_job(dir, t)
      local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 60 })
      assert.equal(68, r.code, r.output)
      assert.matches("name not allowed", r.stderr)
      assert.same({}, drv.containers(), "a container was created")
      assert.same({}, drv.ls(data .. "/alloc"))
    end
  end)
end)
