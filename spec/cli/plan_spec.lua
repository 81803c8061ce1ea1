-- drvctl plan: the exact container a run would create, as JSON; no Docker
-- daemon needed and nothing changed on disk or in Docker.
local cjson = require("cjson.safe")
local drv = require("support.drv")

local NO_DOCKER = { DOCKER_HOST = "unix:///nonexistent.sock" }

-- Plans cli/valid.hcl with count instances; returns the decoded plan, the
-- result and the data dir. Runs with no reachable Docker daemon unless
-- opts.env says otherwise.
local function plan(count, opts)
  opts = opts or {}
  local dir = drv.tmpdir()
  local data = dir .. "/data"
  local job = drv.fixture("cli/valid.hcl", dir, { COUNT = count or 1 })
  local r = drv.drvctl({ "plan", "-data-dir", data, job }, { env = opts.env or NO_DOCKER })
  assert.equal(0, r.code, r.output)
  local p, err = cjson.decode(r.stdout)
  assert.is_table(p, "plan output is not JSON (" .. tostring(err) .. ")\n" .. r.output)
  assert.is_table(p.tasks, "plan has no tasks array\n" .. r.output)
  return p, r, data
end

-- The create body of a plan task (an object; tolerate a JSON string).
local function body(task)
  local b = task.body
  if type(b) == "string" then
    b = assert(cjson.decode(b))
  end
  assert.is_table(b, "task has no body")
  return b
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do
    s[v] = true
  end
  return s
end

describe("drvctl plan", function()
  after_each(drv.cleanup)

  it("prints JSON with one task per task and instance", function()
    local p = plan(1)
    assert.equal(1, #p.tasks)
  end)

  it("works with no Docker daemon", function()
    local _, r = plan(1, { env = NO_DOCKER })
    assert.equal(0, r.code, r.output)
  end)

  it("names the task, its image and the pull decision", function()
    local t = plan(1).tasks[1]
    assert.equal("web", t.task or t.name:match("^(.-)%-"))
    assert.equal(drv.IMAGE, t.image)
    assert.equal("missing", t.pull)
  end)

  it("gives the task a UUID alloc id", function()
    local t = plan(1).tasks[1]
    assert.matches(drv.UUID_PATTERN, t.alloc_id)
  end)

  it("names the container <task>-<alloc_id>", function()
    local t = plan(1).tasks[1]
    assert.equal("web-" .. t.alloc_id, t.name)
  end)

  it("puts the image and command into the create body", function()
    local b = body(plan(1).tasks[1])
    assert.equal(drv.IMAGE, b.Image)
    assert.same({ "sh", "-c", "echo hi" }, b.Cmd)
  end)

  it("labels the container with job, group, task, alloc id and the job's labels", function()
    local t = plan(1).tasks[1]
    local labels = body(t).Labels
    assert.is_table(labels)
    assert.equal("valid", labels["drvctl.job"])
    assert.equal("g", labels["drvctl.group"])
    assert.equal("web", labels["drvctl.task"])
    assert.equal(t.alloc_id, labels["drvctl.alloc_id"])
    assert.equal(drv.run_id, labels[drv.LABEL_KEY])
  end)

  it("binds the alloc, local and secrets dirs under the data dir, pinned", function()
    local p, _, data = plan(1)
    local t = p.tasks[1]
    local binds = set_of((body(t).HostConfig or {}).Binds)
    local alloc = data .. "/alloc/" .. t.alloc_id
    -- Docker gets staging paths under data_dir/binds; `pins` says what each holds
    local staging = data .. "/binds/" .. t.alloc_id .. "-1-"
    assert.is_true(binds[staging .. "0:/alloc"], cjson.encode(binds))
    assert.is_true(binds[staging .. "1:/local"], cjson.encode(binds))
    assert.is_true(binds[staging .. "2:/secrets"], cjson.encode(binds))
    assert.same({ alloc .. "/alloc", alloc .. "/web/local", alloc .. "/web/secrets" },
      { t.pins[1].source, t.pins[2].source, t.pins[3].source })
  end)

  it("sets the NOMAD_* environment and the task env", function()
    local t = plan(1).tasks[1]
    local env = set_of(body(t).Env)
    for _, kv in ipairs({
      "NOMAD_ALLOC_DIR=/alloc", "NOMAD_TASK_DIR=/local", "NOMAD_SECRETS_DIR=/secrets",
      "NOMAD_ALLOC_ID=" .. t.alloc_id, "NOMAD_ALLOC_INDEX=0", "NOMAD_ALLOC_NAME=valid.g[0]",
      "NOMAD_TASK_NAME=web", "NOMAD_GROUP_NAME=g", "NOMAD_JOB_NAME=valid",
      "SPEC_ENV=from-job",
    }) do
      assert.is_true(env[kv], kv .. " missing from " .. cjson.encode(body(t).Env))
    end
  end)

  it("never passes the host environment", function()
    local dir = drv.tmpdir()
    local job = drv.fixture("cli/valid.hcl", dir, { COUNT = 1 })
    local r = drv.drvctl({ "plan", "-data-dir", dir .. "/data", job },
      { env = { DOCKER_HOST = NO_DOCKER.DOCKER_HOST, DRVCTL_SPEC_HOST_ONLY = "leak" } })
    assert.equal(0, r.code, r.output)
    assert.is_falsy(r.stdout:find("DRVCTL_SPEC_HOST_ONLY", 1, true), r.output)
  end)

  it("plans one task per instance with distinct alloc ids for count = 3", function()
    local p = plan(3)
    assert.equal(3, #p.tasks)
    local ids = set_of({ p.tasks[1].alloc_id, p.tasks[2].alloc_id, p.tasks[3].alloc_id })
    local n = 0
    for _ in pairs(ids) do
      n = n + 1
    end
    assert.equal(3, n)
  end)

  it("numbers the instances 0, 1, 2 in NOMAD_ALLOC_INDEX", function()
    local p = plan(3)
    local seen = {}
    for _, t in ipairs(p.tasks) do
      for _, kv in ipairs(body(t).Env) do
        local i = kv:match("^NOMAD_ALLOC_INDEX=(%d+)$")
        if i then
          seen[#seen + 1] = tonumber(i)
        end
      end
    end
    table.sort(seen)
    assert.same({ 0, 1, 2 }, seen)
  end)

  it("creates nothing in the data dir", function()
    local _, _, data = plan(1)
    assert.same({}, drv.alloc_ids(data))
  end)

  it("creates no container", function()
    local _, r = plan(1, { env = {} })
    assert.same({}, drv.containers_if_docker(), r.output)
  end)

  it("decides to always pull an image tagged latest", function()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { image = "busybox:latest", script = "true" })
    local r = drv.drvctl({ "plan", "-data-dir", dir .. "/data", job }, { env = NO_DOCKER })
    assert.equal(0, r.code, r.output)
    local p = assert(cjson.decode(r.stdout), r.output)
    assert.equal("always", p.tasks[1].pull)
  end)

  describe("when a policy denies", function()
    local function plan_denied(config)
      local dir = drv.tmpdir()
      local job = drv.write_job(dir, { config = config, script = "true" })
      local r = drv.drvctl({ "plan", "-data-dir", dir .. "/data", job }, { env = NO_DOCKER })
      return r, dir
    end

    it("exits 77 and still prints the full JSON with every verdict", function()
      local r = plan_denied('network_mode = "host"')
      assert.equal(77, r.code, r.output)
      local p = cjson.decode(r.stdout)
      assert.is_table(p, "no JSON on stdout\n" .. r.output)
      local t = p.tasks[1]
      assert.equal("denied", t.verdict)
      assert.equal("host", body(t).HostConfig.NetworkMode)
      local by_name = {}
      for _, v in ipairs(t.policies) do
        by_name[v.name] = v
      end
      for _, name in ipairs({ "capabilities", "namespaces", "privileged", "volumes", "logging" }) do
        assert.is_table(by_name[name], name .. " verdict missing\n" .. r.stdout)
      end
      assert.is_false(by_name.namespaces.allowed)
      assert.same({ 'network_mode not in allow_network_modes: "host"' }, by_name.namespaces.messages)
      assert.is_true(by_name.privileged.allowed)
    end)

    it("prints the denials on stderr, not in the JSON stream", function()
      local r = plan_denied('security_opt = ["seccomp=unconfined"]')
      assert.equal(77, r.code, r.output)
      assert.matches('policies/confinement.lua: task "t": security_opt not in allow_security_opt',
        r.stderr, 1, true)
      assert.is_table(cjson.decode(r.stdout), r.output)
    end)

    it("shows empty lists of a verdict as []", function()
      local r = plan_denied('devices = [{ host_path = "/dev/sda" }]')
      assert.equal(77, r.code, r.output)
      assert.matches('"mutations": []', r.stdout, 1, true)
    end)

    it("prints no JSON for a job that does not validate (exit 68)", function()
      local r = plan_denied('oom_score_adj = -5000')
      assert.equal(68, r.code, r.output)
      assert.equal("", r.stdout)
    end)
  end)
end)
