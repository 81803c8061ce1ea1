-- drvctl run in the foreground against the real Docker daemon: output,
-- exit codes, logs, the alloc dir, cleanup of the container.
local drv = require("support.drv")
local agentconf = require("support.agentconf")

-- Runs a one-task job (drv.job options t) to completion; with
-- trusted_registry, under an agent config that allows pulls from
-- 127.0.0.1 (support.agentconf).
-- Returns the result, the data dir and the single alloc id (or nil).
local function run(t, trusted_registry)
  local dir = drv.tmpdir()
  local data = dir .. "/data"
  local job = drv.write_job(dir, t)
  local args = { "run", "-data-dir", data, job }
  if trusted_registry then
    table.insert(args, 2, "-config")
    table.insert(args, 3, agentconf.trusted_registry(dir))
  end
  local r = drv.drvctl(args, { timeout = 90 })
  local ids = drv.alloc_ids(data)
  return r, data, ids[1]
end

local function has_line(text, line)
  for l in text:gmatch("[^\n]*") do
    if l == line then
      return true
    end
  end
  return false
end

describe("drvctl run", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("exits 0 when the task succeeds", function()
    local r = run({ script = "true" })
    assert.equal(0, r.code, r.output)
  end)

  it("exits with the task's exit code", function()
    local r = run({ script = "exit 3" })
    assert.equal(3, r.code, r.output)
  end)

  it("prints the task's stdout lines as '<task> | line' on stdout", function()
    local r = run({ task = "greet", script = "echo hello; echo world" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "greet | hello"), r.output)
    assert.is_true(has_line(r.stdout, "greet | world"), r.output)
  end)

  it("prints the task's stderr lines as '<task> | line' on stderr only", function()
    local r = run({ task = "greet", script = "echo oops >&2" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stderr, "greet | oops"), r.output)
    assert.is_falsy(r.stdout:find("oops", 1, true), r.output)
  end)

  it("gives the task the NOMAD_* environment of its allocation", function()
    local r, _, alloc = run({ job = "envjob", task = "greet",
      script = "echo task=$NOMAD_TASK_NAME alloc=$NOMAD_ALLOC_ID job=$NOMAD_JOB_NAME" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout,
      string.format("greet | task=greet alloc=%s job=envjob", alloc)), r.output)
  end)

  it("writes stdout to alloc/logs/<task>.stdout.0 and stderr to <task>.stderr.0", function()
    local r, data, alloc = run({ task = "greet", script = "echo to-out; echo to-err >&2" })
    assert.equal(0, r.code, r.output)
    local logs = data .. "/alloc/" .. alloc .. "/alloc/logs/"
    assert.equal("to-out\n", drv.read(logs .. "greet.stdout.0"), r.output)
    assert.equal("to-err\n", drv.read(logs .. "greet.stderr.0"), r.output)
  end)

  it("keeps every line of a long output, in order", function()
    local r, data, alloc = run({ task = "counter", script = "seq 1 5000" })
    assert.equal(0, r.code, r.output)
    local log = drv.read(data .. "/alloc/" .. alloc .. "/alloc/logs/counter.stdout.0") or ""
    local want = {}
    for i = 1, 5000 do
      want[i] = tostring(i)
    end
    assert.equal(table.concat(want, "\n") .. "\n", log)
  end)

  it("makes a file written to $NOMAD_ALLOC_DIR appear under the data dir", function()
    local r, data, alloc = run({ script = "echo shared > $NOMAD_ALLOC_DIR/data/out.txt" })
    assert.equal(0, r.code, r.output)
    assert.equal("shared\n", drv.read(data .. "/alloc/" .. alloc .. "/alloc/data/out.txt"), r.output)
  end)

  it("makes a file written to $NOMAD_TASK_DIR appear in the task's local dir", function()
    local r, data, alloc = run({ task = "t", script = "echo mine > $NOMAD_TASK_DIR/x.txt" })
    assert.equal(0, r.code, r.output)
    assert.equal("mine\n", drv.read(data .. "/alloc/" .. alloc .. "/t/local/x.txt"), r.output)
  end)

  it("removes the container after the task exits", function()
    local r = run({ script = "true" })
    assert.equal(0, r.code, r.output)
    assert.same({}, drv.containers(), r.output)
  end)

  it("removes the container of a failed task too", function()
    local r = run({ script = "exit 3" })
    assert.equal(3, r.code, r.output)
    assert.same({}, drv.containers(), r.output)
  end)

  it("keeps the alloc dir after the task exits", function()
    local r, data, alloc = run({ script = "true" })
    assert.equal(0, r.code, r.output)
    assert.matches(drv.UUID_PATTERN, alloc or "", r.output)
    assert.is_true(drv.exists(data .. "/alloc/" .. alloc .. "/alloc/logs"), r.output)
  end)

  it("exits 73 when the image is absent and cannot be pulled", function()
    -- nothing listens on port 1 (pulls from 127.0.0.1 are allowed here: by
    -- default they are refused with 77, see registry_private_spec.lua)
    local image = "127.0.0.1:1/drvctl-test/absent:" .. drv.run_id
    local r = run({ image = image, script = "true" }, true)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find(image, 1, true), r.output)
    assert.same({}, drv.containers(), r.output)
  end)
end)
