local cjson = require("cjson")
local container = require("drv.container")
local driver = require("drv.driver")
local meta = require("drv.meta")
local uuid = require("drv.uuid")

local SEED = "0123456789abcdef0123456789abcdef"
local NODE = { ["kernel.name"] = "linux", ["cpu.arch"] = "amd64", ["unique.hostname"] = "node-a" }
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work", alloc_seed = SEED, node = NODE }


-- HOST with some fields replaced (false removes a field).
local function host_with(extra)
  local h = {}
  for k, v in pairs(HOST) do
    h[k] = v
  end
  for k, v in pairs(extra) do
    if v == false then
      h[k] = nil
    else
      h[k] = v
    end
  end
  return h
end


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


local function plan_of(file, agent_src)
  local plan, problems = driver.plan(read("spec/fixtures/jobs/" .. file), file, agent_src,
    agent_src and "agent.hcl" or nil, HOST)
  assert(plan, problems and problems[1] and problems[1].message)
  return plan
end


describe("drv.meta", function()
  it("names the program and its version", function()
    assert.same({ name = "drvctl", version = "0.1.0" }, meta)
  end)
end)


describe("uuid.alloc_id", function()
  it("is shaped like a version 4 UUID", function()
    local id = uuid.alloc_id(SEED, 7)
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", id)
  end)

  it("is deterministic", function()
    assert.equal(uuid.alloc_id(SEED, 3), uuid.alloc_id(SEED, 3))
  end)

  it("differs per instance and per seed", function()
    assert.not_equal(uuid.alloc_id(SEED, 1), uuid.alloc_id(SEED, 2))
    assert.not_equal(uuid.alloc_id(SEED, 1), uuid.alloc_id(string.rep("f", 32), 1))
  end)
end)


describe("driver.PLAN_FIELDS", function()
  it("names each field once, with a Lua type", function()
    local seen = {}
    for _, f in ipairs(driver.PLAN_FIELDS) do
      assert.is_nil(seen[f[1]], f[1])
      seen[f[1]] = true
      assert.is_truthy(({ string = 1, number = 1, boolean = 1, table = 1 })[f[2]], f[1])
    end
  end)

  it("decides what the plan prints for a task: its shown fields and the per-run ones", function()
    local plan = plan_of("ports.hcl")
    local entry, printed = plan.tasks[1], cjson.decode(plan.json).tasks[1]
    local want = { body = true, ports = true, policies = true, verdict = true }
    for _, f in ipairs(driver.PLAN_FIELDS) do
      if f.shown and entry[f[1]] ~= nil then
        want[f[1]] = true
        assert.same(entry[f[1]], printed[f[1]], f[1])
      end
    end
    local got = {}
    for k in pairs(printed) do
      got[k] = true
    end
    assert.same(want, got)
  end)

  it("gives C every core field of a planned task, with its type", function()
    local entry = plan_of("web.hcl").tasks[1]
    for _, f in ipairs(driver.PLAN_FIELDS) do
      if f.core and entry[f[1]] ~= nil then
        assert.equal(f[2], type(entry[f[1]]), f[1])
      end
    end
    for _, name in ipairs({ "job", "name", "image", "body", "alloc_dir", "log_dir", "dirs" }) do
      assert.is_not_nil(entry[name], name)
    end
  end)
end)


describe("driver.plan", function()
  it("makes one task per group instance with distinct alloc ids and names", function()
    local plan = plan_of("web.hcl")
    assert.equal(3, #plan.tasks)
    local ids, names = {}, {}
    for i, t in ipairs(plan.tasks) do
      ids[t.alloc_id] = true
      names[t.name] = true
      assert.equal(i - 1, t.alloc_index)
      assert.equal(string.format("shop.web[%d]", i - 1), t.alloc_name)
      assert.equal("frontend-" .. t.alloc_id, t.name)
    end
    local n_ids, n_names = 0, 0
    for _ in pairs(ids) do n_ids = n_ids + 1 end
    for _ in pairs(names) do n_names = n_names + 1 end
    assert.same({ 3, 3 }, { n_ids, n_names })
  end)

  it("gives every group instance its own alloc id across groups", function()
    local plan = assert(driver.plan([[
job "j" {
  group "a" {
    task "t" {
      driver = "docker"
      config { image = "x:1" }
    }
  }
  group "b" {
    task "t" {
      driver = "docker"
      config { image = "x:1" }
    }
  }
}
]], "j.hcl", nil, nil, HOST))
    assert.not_equal(plan.tasks[1].alloc_id, plan.tasks[2].alloc_id)
  end)

  it("shares the alloc id between tasks of one group instance", function()
    local plan = assert(driver.plan([[
job "j" {
  group "g" {
    task "a" {
      driver = "docker"
      config { image = "x:1" }
    }
    task "b" {
      driver = "docker"
      config { image = "x:1" }
    }
  }
}
]], "j.hcl", nil, nil, HOST))
    assert.equal(plan.tasks[1].alloc_id, plan.tasks[2].alloc_id)
    assert.not_equal(plan.tasks[1].name, plan.tasks[2].name)
  end)

  it("carries the body as a JSON string", function()
    local plan = plan_of("web.hcl")
    assert.equal("string", type(plan.tasks[1].body))
    assert.equal("registry.example.com/shop/web:1.4", cjson.decode(plan.tasks[1].body).Image)
  end)

  it("prints the plan as JSON with the body as an object", function()
    local plan = plan_of("web.hcl")
    local shown = cjson.decode(plan.json)
    assert.equal("shop", shown.job)
    assert.equal(3, #shown.tasks)
    local t = shown.tasks[2]
    assert.same(cjson.decode(plan.tasks[2].body), t.body)
    assert.same({ plan.tasks[2].name, plan.tasks[2].alloc_id, "missing", "SIGINT", 30000 },
      { t.name, t.alloc_id, t.pull, t.kill_signal, t.kill_timeout_ms })
  end)

  it("prints empty policy lists as []", function()
    local plan = plan_of("minimal.hcl")
    assert.matches('"policies": %[%]', plan.json)
  end)

  it("prints the same plan twice", function()
    assert.equal(plan_of("web.hcl").json, plan_of("web.json").json)
  end)

  it("uses the agent's data dir and max_kill_timeout", function()
    local plan = plan_of("web.hcl", 'data_dir = "/srv/d"\nmax_kill_timeout = "2m"\n')
    assert.equal("/srv/d/alloc/" .. plan.tasks[1].alloc_id, plan.tasks[1].alloc_dir)
    assert.equal(90000, plan.tasks[1].kill_timeout_ms)
  end)

  it("pulls untagged images always", function()
    assert.equal("always", plan_of("minimal.hcl").tasks[1].pull)
  end)

  it("warns once per unknown variable", function()
    local plan = assert(driver.plan([[
job "j" {
  group "g" {
    count = 2
    task "t" {
      driver = "docker"
      config {
        image = "x:1"
        args  = ["${NOPE}"]
      }
    }
  }
}
]], "j.hcl", nil, nil, HOST))
    assert.same({ 'j.hcl: task "t": unknown variable left as written: "${NOPE}"' }, plan.warnings)
  end)

  it("returns the job's problems", function()
    local plan, problems = driver.plan(read("spec/fixtures/jobs/invalid.hcl"), "invalid.hcl",
      nil, nil, HOST)
    assert.is_nil(plan)
    assert.equal(7, #problems)
  end)

  it("returns the agent's problems first", function()
    local plan, problems = driver.plan(read("spec/fixtures/jobs/minimal.hcl"), "minimal.hcl",
      'bogus = 1\n', "agent.hcl", HOST)
    assert.is_nil(plan)
    assert.equal("config", problems[1].kind)
  end)
end)


local function job_with_constraint(block)
  return string.format([[
job "j" {
  group "g" {
    task "web" {
      driver = "docker"
      config { image = "x:1" }
%s
    }
  }
}
]], block)
end


local function first_problem(src, host, agent_src)
  local plan, problems = driver.plan(src, "job.hcl", agent_src, agent_src and "agent.hcl", host)
  assert.is_nil(plan)
  return problems[1]
end


describe("driver.plan passes", function()
  local src = read("spec/fixtures/jobs/ports.hcl")
  local alloc = uuid.alloc_id(SEED, 1)

  it("asks for every port in pass 1", function()
    local plan = assert(driver.plan(src, "ports.hcl", nil, nil, HOST))
    assert.same({
      { key = alloc .. "/t/db", alloc_id = alloc, task = "t", label = "db", static = 5432 },
      { key = alloc .. "/t/http", alloc_id = alloc, task = "t", label = "http" },
    }, plan.port_requests)
  end)

  it("shows the port requests in the pass 1 plan JSON", function()
    local plan = assert(driver.plan(src, "ports.hcl", nil, nil, HOST))
    assert.same({ alloc .. "/t/db", alloc .. "/t/http" }, {
      cjson.decode(plan.json).port_requests[1].key, cjson.decode(plan.json).port_requests[2].key })
  end)

  it("has no port requests for a job without ports", function()
    local plan = plan_of("minimal.hcl")
    assert.same({}, plan.port_requests)
    assert.matches('"port_requests": %[%]', plan.json)
  end)

  it("uses 0 placeholders in pass 1", function()
    local plan = assert(driver.plan(src, "ports.hcl", nil, nil, HOST))
    assert.same({ db = 0, http = 0 }, plan.tasks[1].ports)
  end)

  it("uses the allocated ports in pass 2", function()
    local plan = assert(driver.plan(src, "ports.hcl", nil, nil, host_with({
      ports = { [alloc .. "/t/db"] = 5432, [alloc .. "/t/http"] = 23456 }, docker_facts = true })))
    assert.same({ db = 5432, http = 23456 }, plan.tasks[1].ports)
    local shown = cjson.decode(plan.json)
    assert.same({ db = 5432, http = 23456 }, shown.tasks[1].ports)
    assert.is_nil(shown.port_requests)
  end)

  it("keeps the alloc ids between the passes", function()
    local one = assert(driver.plan(src, "ports.hcl", nil, nil, HOST))
    local two = assert(driver.plan(src, "ports.hcl", nil, nil, host_with({
      ports = { [alloc .. "/t/db"] = 5432, [alloc .. "/t/http"] = 23456 } })))
    assert.equal(one.tasks[1].alloc_id, two.tasks[1].alloc_id)
    assert.equal(one.port_requests[2].key, two.port_requests[2].key)
  end)

  it("reports a port missing from pass 2 as an internal error", function()
    local p = first_problem(src, host_with({ ports = { [alloc .. "/t/db"] = 5432 } }))
    assert.same({ kind = "internal",
      message = string.format('job.hcl: task "t": no port allocated for "%s/t/http"', alloc) }, p)
  end)

  describe("container inputs", function()
    local build

    before_each(function()
      build = spy.on(container, "build")
    end)

    after_each(function()
      container.build:revert()
    end)

    it("passes the assigned ports to container.build", function()
      assert(driver.plan(src, "ports.hcl", nil, nil, host_with({ network_ip = "10.0.0.5",
        ports = { [alloc .. "/t/db"] = 5432, [alloc .. "/t/http"] = 23456 } })))
      local inst = build.calls[1].vals[1]
      assert.same({ "23456", "10.0.0.5:5432" },
        { inst.ports.env.NOMAD_PORT_http, inst.ports.env.NOMAD_ADDR_db })
      assert.same({ { HostIp = "10.0.0.5", HostPort = "23456" } }, inst.ports.bindings["23456/udp"])
      assert.same({}, inst.ports.exposed["5432/tcp"])
    end)

    it("passes the node attributes with the agent's to container.build", function()
      assert(driver.plan(src, "ports.hcl", 'client {\n  cpu_total_compute = 4000\n}\n',
        "agent.hcl", HOST))
      local node = build.calls[1].vals[1].node
      assert.same({ "linux", "false", "false", "4000" }, { node["kernel.name"],
        node["driver.docker.volumes.enabled"], node["driver.docker.privileged.enabled"],
        node["cpu.totalcompute"] })
    end)

    it("passes an empty node without host facts", function()
      assert(driver.plan(src, "ports.hcl", nil, nil, host_with({ node = false })))
      assert.equal("false", build.calls[1].vals[1].node["driver.docker.volumes.enabled"])
      assert.is_nil(build.calls[1].vals[1].node["kernel.name"])
    end)
  end)

  it("refuses port_map without a network", function()
    local p = first_problem([[
job "j" {
  task "web" {
    driver = "docker"
    config {
      image = "x:1"
      port_map { http = 80 }
    }
  }
}
]], HOST)
    assert.same({ kind = "type",
      message = 'job.hcl: task "web": trying to map ports but no network interface is available' }, p)
  end)

  it("warns about a port_map label without a port", function()
    local plan = assert(driver.plan([[
job "j" {
  task "web" {
    driver = "docker"
    config {
      image = "x:1"
      port_map { http = 80, admin = 81 }
    }
    resources {
      network {
        port "http" {}
      }
    }
  }
}
]], "job.hcl", nil, nil, HOST))
    assert.same({ 'job.hcl: task "web": port_map label has no network port: "admin"' }, plan.warnings)
  end)
end)


describe("driver.plan constraints", function()
  it("refuses a job whose constraint the node does not meet", function()
    local p = first_problem(read("spec/fixtures/jobs/web.hcl"),
      host_with({ node = { ["kernel.name"] = "windows" } }))
    assert.same({ kind = "constraint", message = 'job.hcl:10:3: task "frontend": constraint not met: '
      .. '${attr.kernel.name} = "linux" (actual: "windows")' }, p)
  end)

  it("names the task for a task constraint", function()
    local p = first_problem(job_with_constraint(
      '      constraint {\n        attribute = "${attr.cpu.arch}"\n        value = "arm64"\n      }'), HOST)
    assert.same({ kind = "constraint", message = 'job.hcl:6:7: task "web": constraint not met: '
      .. '${attr.cpu.arch} = "arm64" (actual: "amd64")' }, p)
  end)

  it("plans a job whose constraints are met", function()
    local plan = plan_of("web.hcl")
    assert.equal(3, #plan.tasks)
  end)

  it("skips Docker constraints with a warning when Docker was not asked", function()
    local plan = assert(driver.plan(job_with_constraint(
      '      constraint {\n        attribute = "${driver.docker.version}"\n        operator = ">"\n'
      .. '        version = "1.2"\n      }'), "job.hcl", nil, nil, HOST))
    assert.same({ 'job.hcl:6:7: task "web": constraint not checked, docker facts unavailable: '
      .. '${driver.docker.version} version "> 1.2"' }, plan.warnings)
  end)

  it("checks Docker constraints once Docker facts are in", function()
    local node = { ["driver.docker"] = "1", ["driver.docker.version"] = "1.1.0" }
    local p = first_problem(job_with_constraint(
      '      constraint {\n        attribute = "${driver.docker.version}"\n        operator = ">"\n'
      .. '        version = "1.2"\n      }'), host_with({ node = node, docker_facts = true }))
    assert.same({ "constraint", 'job.hcl:6:7: task "web": constraint not met: '
      .. '${driver.docker.version} version "> 1.2" (actual: "1.1.0")' }, { p.kind, p.message })
  end)

  it("meets the spec page's docker version example on Docker 20.10", function()
    local node = { ["driver.docker"] = "1", ["driver.docker.version"] = "20.10.24+dfsg1" }
    assert(driver.plan(job_with_constraint(
      '      constraint {\n        attribute = "${driver.docker.version}"\n        operator = ">"\n'
      .. '        version = "1.2"\n      }'), "job.hcl", nil, nil,
      host_with({ node = node, docker_facts = true })))
  end)

  it("fails a missing Docker attribute once Docker facts are in", function()
    local p = first_problem(job_with_constraint(
      '      constraint {\n        attribute = "${attr.driver.docker}"\n        value = "1"\n      }'),
      host_with({ docker_facts = true }))
    assert.equal("constraint", p.kind)
  end)

  it("skips every attribute constraint with a warning without node facts", function()
    local plan = assert(driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil,
      host_with({ node = false })))
    assert.same({ 'web.hcl:10:3: task "frontend": constraint not checked, node facts unavailable: '
      .. '${attr.kernel.name} = "linux"' }, { plan.warnings[1] })
  end)

  it("sees the privileged option as an attribute", function()
    local src = job_with_constraint('      constraint {\n        attribute = '
      .. '"${attr.driver.docker.privileged.enabled}"\n        value = "true"\n      }')
    assert.equal("constraint", first_problem(src, HOST).kind)
    assert(driver.plan(src, "job.hcl", 'client {\n  options {\n    "docker.privileged.enabled" = "true"\n'
      .. '  }\n}\n', "agent.hcl", HOST))
  end)

  it("sees the agent's node class and meta", function()
    local src = job_with_constraint('      constraint {\n        attribute = "${node.class}"\n'
      .. '        value = "batch"\n      }\n      constraint {\n        attribute = "${meta.rack}"\n'
      .. '        value = "r12"\n      }')
    assert(driver.plan(src, "job.hcl", 'client {\n  node_class = "batch"\n  meta {\n    rack = "r12"\n'
      .. '  }\n}\n', "agent.hcl", HOST))
    assert.equal('job.hcl:6:7: task "web": constraint not met: ${node.class} = "batch" (actual: unset)',
      first_problem(src, HOST).message)
  end)

  it("reads cpu.totalcompute from the agent", function()
    local src = job_with_constraint('      constraint {\n        attribute = "${attr.cpu.totalcompute}"\n'
      .. '        operator = ">="\n        value = "3000"\n      }')
    assert(driver.plan(src, "job.hcl", 'client {\n  cpu_total_compute = 4000\n}\n', "agent.hcl", HOST))
  end)
end)


describe("driver.plan policy hook", function()
  local saved, calls

  before_each(function()
    saved = package.loaded["drv.admission"]
    calls = {}
  end)

  after_each(function()
    package.loaded["drv.admission"] = saved
  end)

  local function fake(apply, prepare)
    package.loaded["drv.admission"] = {
      prepare = prepare or function(host, a)
        calls[#calls + 1] = { "prepare", host, a }
        return true
      end,
      apply = apply or function(entry, body, ctx)
        calls[#calls + 1] = { "apply", entry, body, ctx }
        body.Labels.policed = "yes"
        return body, { { policy = "p.lua", verdict = "allow" } }
      end,
      check = function(sources)
        calls[#calls + 1] = { "check", sources }
        return nil, { { kind = "denied", message = "p.lua: broken" } }
      end,
    }
  end

  it("prepares the policies once per plan", function()
    fake()
    assert(driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST))
    local n = 0
    for _, c in ipairs(calls) do
      n = n + ((c[1] == "prepare") and 1 or 0)
    end
    assert.equal(1, n)
  end)

  it("applies the policies to every instance with its context", function()
    fake()
    local plan = assert(driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST))
    local applied = {}
    for _, c in ipairs(calls) do
      if c[1] == "apply" then
        applied[#applied + 1] = c
      end
    end
    assert.equal(3, #applied)
    local ctx = applied[2][4]
    assert.same({ "frontend", plan.tasks[2].alloc_dir, plan.tasks[2].alloc_dir .. "/frontend", "linux" },
      { ctx.task.name, ctx.alloc_dir, ctx.task_dir, ctx.node["kernel.name"] })
    assert.equal(HOST, ctx.host)
    assert.equal("/var/lib/drvctl", ctx.agent.data_dir)
  end)

  it("uses the body the policies return", function()
    fake()
    local plan = assert(driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST))
    assert.equal("yes", cjson.decode(plan.tasks[1].body).Labels.policed)
    assert.equal("yes", cjson.decode(plan.json).tasks[1].body.Labels.policed)
  end)

  it("shows the verdicts in the plan JSON", function()
    fake()
    local plan = assert(driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST))
    assert.same({ { policy = "p.lua", verdict = "allow" } }, cjson.decode(plan.json).tasks[1].policies)
  end)

  it("fails the plan with the problems of a refusal", function()
    fake(function()
      return nil, { { kind = "denied", message = 'p.lua: host path not allowed: "/etc"' } }
    end)
    local plan, problems = driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.same({ kind = "denied", message = 'p.lua: host path not allowed: "/etc"' }, problems[1])
  end)

  it("fails the plan when the policy set does not load", function()
    fake(nil, function()
      return nil, { { kind = "syntax", message = "p.lua:1: unexpected symbol" } }
    end)
    local plan, problems = driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.same({ { kind = "syntax", message = "p.lua:1: unexpected symbol" } }, problems)
  end)

  it("delegates check_policies", function()
    fake()
    local ok, problems = driver.check_policies({ { path = "p.lua", source = "x" } })
    assert.is_nil(ok)
    assert.equal("p.lua: broken", problems[1].message)
    assert.equal("p.lua", calls[1][2][1].path)
  end)

  -- a Lua tree without drv.admission once planned privileged jobs (exit 0)
  -- and `policy check` said the policies were valid: both must fail
  local function without_admission(fn)
    local path, cpath = package.path, package.cpath
    package.loaded["drv.admission"] = nil
    package.path, package.cpath = "", ""
    local r = table.pack(pcall(fn))
    package.path, package.cpath = path, cpath
    return table.unpack(r, 1, r.n)
  end

  it("refuses check_policies without the admission module", function()
    local ok, r, problems = without_admission(function()
      return driver.check_policies({})
    end)
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("internal", problems[1].kind)
    assert.matches("drv.admission", problems[1].message, 1, true)
  end)

  it("refuses to plan a privileged job without the admission module", function()
    local job = read("spec/fixtures/jobs/web.hcl"):gsub('image%s*=%s*"([^"]*)"', 'image = "%1"\nprivileged = true', 1)
    local ok, plan, problems = without_admission(function()
      return driver.plan(job, "web.hcl", nil, nil, HOST)
    end)
    assert.is_true(ok, tostring(plan))
    assert.is_nil(plan)
    assert.matches("refusing to plan without the policy engine", problems[1].message, 1, true)
  end)

  it("refuses a module that lacks apply", function()
    package.loaded["drv.admission"] = { prepare = function() return true end }
    local plan, problems = driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.equal("internal", problems[1].kind)
  end)

  it("prints the plan JSON with the verdicts when a policy denies", function()
    fake(function(_, body)
      return nil, { { kind = "denied", message = 'p.lua: task "web": no' } },
        { { policy = "p.lua", name = "p", allowed = false, messages = { "no" }, mutations = {} } },
        body
    end)
    local plan, problems = driver.plan(read("spec/fixtures/jobs/web.hcl"), "web.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    local shown = assert(cjson.decode(problems.json))
    assert.equal("denied", shown.tasks[1].verdict)
    assert.same({ { policy = "p.lua", name = "p", allowed = false, messages = { "no" },
      mutations = {} } }, shown.tasks[1].policies)
    assert.matches('"mutations": []', problems.json, 1, true)
  end)
end)


describe("driver.plan body encoding", function()
  local kit = require("policykit")

  -- a policy that empties lists; cjson would send {} for them, which
  -- dockerd refuses for list fields (HTTP 500 on "Dns": {})
  local EMPTIER = { path = "ops/zz-empty.lua", source = [[
    return { policy_format = 1, name = "zz-empty",
      mutate = function(ctx)
        local hc = ctx.spec.HostConfig
        return {
          { op = "remove", path = "HostConfig.Dns", value = hc.Dns },
          { op = "remove", path = "HostConfig.CapAdd", value = hc.CapAdd },
          { op = "set", path = "HostConfig.Sysctls", value = {} },
          { op = "set", path = "HostConfig.Ulimits", value = {} },
        }
      end }
  ]] }

  it("drops lists and maps a policy emptied, in the body sent and the plan JSON", function()
    local sources = kit.sources()
    sources[#sources + 1] = EMPTIER
    local job = [[
job "e" {
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image = "busybox:1"
        dns_servers = ["127.0.0.1"]
        cap_add = ["CHOWN"]
      }
    }
  }
}
]]
    local plan = assert(driver.plan(job, "e.hcl", nil, nil, { default_data_dir = "/var/lib/drvctl",
      alloc_seed = SEED, policies = sources, guard = kit.default_guard }))
    local sent = plan.tasks[1].body
    assert.is_nil(sent:find('"Dns"', 1, true), sent)
    assert.is_nil(sent:find('"CapAdd"', 1, true), sent)
    assert.is_nil(sent:find('"Sysctls"', 1, true), sent)
    assert.is_nil(sent:find("{}", 1, true), sent)
    assert.is_nil(plan.json:find('"Dns"', 1, true))
    local hc = cjson.decode(sent).HostConfig
    assert.same({ "NET_RAW" }, hc.CapDrop)
  end)

  it("keeps the empty objects ExposedPorts needs", function()
    local out = cjson.decode(container.encode({ ExposedPorts = { ["80/tcp"] = {} },
      HostConfig = { Dns = {}, Binds = { "/a:/b" } } }))
    assert.same({ ExposedPorts = { ["80/tcp"] = {} }, HostConfig = { Binds = { "/a:/b" } } }, out)
  end)
end)


describe("driver.agent", function()
  it("returns defaults without a config", function()
    local a = assert(driver.agent(nil, nil, HOST))
    assert.equal("unix:///var/run/docker.sock", a.endpoint)
  end)
end)


describe("driver.decode", function()
  describe("error", function()
    it("takes the message of a JSON error body", function()
      assert.same({ message = "No such image: rsx/nosuch:9" },
        driver.decode("error", 404, '{"message":"No such image: rsx/nosuch:9"}\n'))
    end)

    it("returns a plain text body trimmed", function()
      local text = "client version 1.11 is too old. Minimum supported API version is 1.12, "
        .. "please upgrade your client to a newer version"
      assert.same({ message = text }, driver.decode("error", 400, text .. "\n"))
    end)

    it("names the status of an empty body", function()
      assert.same({ message = "HTTP status 500" }, driver.decode("error", 500, ""))
    end)
  end)

  it("decodes a create response", function()
    assert.same({ id = "5bce1d", warnings = { "Published ports are discarded when using host network mode" } },
      driver.decode("create", 201,
        '{"Id":"5bce1d","Warnings":["Published ports are discarded when using host network mode"]}'))
  end)

  it("decodes a create response with null warnings", function()
    assert.same({ id = "5bce1d", warnings = {} },
      driver.decode("create", 201, '{"Id":"5bce1d","Warnings":null}'))
  end)

  it("decodes a wait response with an integer exit code", function()
    local r = driver.decode("wait", 200, '{"Error":null,"StatusCode":3}')
    assert.same({ exit_code = 3 }, r)
    assert.equal("integer", math.type(r.exit_code))
  end)

  it("decodes a wait error", function()
    assert.same({ exit_code = 137, error = "oops" },
      driver.decode("wait", 200, '{"Error":{"Message":"oops"},"StatusCode":137}'))
  end)

  it("decodes a container inspect", function()
    local body = '{"Id":"abc","State":{"Status":"running","Running":true,"Paused":false,'
      .. '"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":13590,"ExitCode":0,"Error":"",'
      .. '"StartedAt":"2026-11-28T00:16:43.658111475Z","FinishedAt":"0001-01-01T00:00:00Z"}}'
    assert.same({ id = "abc", running = true, status = "running", exit_code = 0, oom_killed = false },
      driver.decode("container_inspect", 200, body))
  end)

  it("decodes an OOM-killed container", function()
    local r = driver.decode("container_inspect", 200,
      '{"State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}}')
    assert.same({ false, "exited", 137, true }, { r.running, r.status, r.exit_code, r.oom_killed })
  end)

  it("decodes an image inspect with a stop signal", function()
    assert.same({ id = "sha256:aa", stop_signal = "SIGQUIT" },
      driver.decode("image_inspect", 200, '{"Id":"sha256:aa","Config":{"StopSignal":"SIGQUIT"}}'))
  end)

  it("decodes an image inspect without a stop signal", function()
    assert.same({ id = "sha256:aa" },
      driver.decode("image_inspect", 200, '{"Id":"sha256:aa","Config":{"StopSignal":""}}'))
  end)

  describe("stream_line", function()
    it("reads a progress line", function()
      assert.same({ status = "Downloading", id = "9a04c67580ee", current = 32768, total = 3001130 },
        driver.decode("stream_line", 200, '{"status":"Downloading","progressDetail":'
          .. '{"current":32768,"total":3001130},"progress":"[>   ]  32.77kB/3.001MB",'
          .. '"id":"9a04c67580ee"}'))
    end)

    it("reads an error line", function()
      assert.same({ error = "unknown blob" }, driver.decode("stream_line", 200,
        '{"errorDetail":{"message":"unknown blob"},"error":"unknown blob"}'))
    end)

    it("reads a load result", function()
      assert.same({ stream = "Loaded image: rsx/busybox:1\n" },
        driver.decode("stream_line", 200, '{"stream":"Loaded image: rsx/busybox:1\\n"}'))
    end)
  end)

  it("decodes the bridge network's gateway", function()
    assert.same({ gateway = "172.17.0.1" }, driver.decode("network", 200,
      '{"Name":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"172.17.0.0/16",'
      .. '"Gateway":"172.17.0.1"}]}}'))
  end)

  it("decodes a bridge network without a gateway", function()
    assert.same({}, driver.decode("network", 200, '{"Name":"bridge","IPAM":{"Config":[]}}'))
    assert.same({}, driver.decode("network", 200, '{"Name":"bridge","IPAM":{"Config":null}}'))
  end)

  it("decodes a version response", function()
    assert.same({ version = "20.10.24+dfsg1", api_version = "1.41", min_api_version = "1.12",
      os = "linux", arch = "amd64", kernel = "6.1.0-13-amd64" },
      driver.decode("version", 200, '{"Version":"20.10.24+dfsg1","ApiVersion":"1.41",'
        .. '"MinAPIVersion":"1.12","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0-13-amd64"}'))
  end)

  it("returns a message for a body that is not JSON", function()
    local r, msg = driver.decode("create", 201, "  unexpected EOF \n")
    assert.is_nil(r)
    assert.equal('docker: invalid create response: "unexpected EOF"', msg)
  end)

  it("refuses an unknown operation", function()
    local r, msg = driver.decode("bogus", 200, "{}")
    assert.is_nil(r)
    assert.equal('unknown decode operation "bogus"', msg)
  end)
end)


describe("driver on hostile input", function()
  local budget = require("support.budget")

  it("trims a Docker body padded with 60 KB of spaces in linear time", function()
    -- `^%s*(.-)%s*$` needed 142 s for this body (inside one C call: the
    -- old code never reaches the budget check, it hangs)
    local pad = string.rep(" ", 60000)
    local r = budget.within(2000000, driver.decode, "error", 500, pad .. "boom" .. pad)
    assert.same({ message = "boom" }, r)
    local ok, err = budget.within(2000000, driver.decode, "create", 201, pad .. "x" .. pad)
    assert.is_nil(ok)
    assert.equal('docker: invalid create response: "x"', err)
  end)

  it("keeps a Docker error message on one line", function()
    local r = driver.decode("error", 400, '{"message":"invalid env \\"A\\u001b[2J\\nB\\""}')
    assert.equal('invalid env "A\\x1b[2J\\nB"', r.message)
  end)

  local function one_line(n, body)
    local t = {}
    for i = 1, n do
      t[i] = string.format('task "t%d" {%s}', i, body)
    end
    return 'job "j" { group "g" { ' .. table.concat(t, " ") .. " } }"
  end

  it("plans 1,000 tasks written on one line within an instruction budget", function()
    local src = one_line(1000, ' driver = "docker" config { image = "x:1" } ')
    local plan, problems = budget.within(40000000, driver.plan, src, "long.hcl", nil, nil, HOST)
    assert(plan, problems and problems[1] and problems[1].message)
    assert.equal(1000, #plan.tasks)
  end)

  it("refuses 5,000 tasks on one line with a located error within the budget", function()
    local src = one_line(5000, ' driver = "docker" config { image = "x:1" } ')
    local plan, problems = budget.within(60000000, driver.plan, src, "long.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.equal('long.hcl:1:1: job "j": too many task instances (count x tasks, summed over '
      .. "groups): at most 1000, found 5000", problems[1].message)
  end)

  it("reports 5,000 broken tasks on one 60 KB line, each located, within the budget", function()
    local src = one_line(5000, "")
    local plan, problems = budget.within(20000000, driver.plan, src, "long.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.equal(5000 + 1, #problems) -- each task's missing driver, then the cap
    local col = src:find('task "t5000"', 1, true)
    assert.equal('long.hcl:1:' .. col .. ': task "t5000": field "driver" is required',
      problems[5000].message)
  end)

  it("checks a regexp constraint shared by many tasks once, within one budget", function()
    local tasks = {}
    for i = 1, 200 do
      tasks[i] = string.format('task "t%d" { driver = "docker" config { image = "x:1" } }', i)
    end
    local src = 'job "j" {\n constraint {\n attribute = "' .. string.rep("a", 5000)
      .. '"\n regexp = "' .. string.rep(".*", 300) .. 'Z"\n }\n group "g" {\n'
      .. table.concat(tasks, "\n") .. "\n}\n}"
    local plan, problems = budget.within(300000000, driver.plan, src, "re.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.matches('^re%.hcl:2:2: task "t1": invalid constraint: regexp ".*": matching needs more '
      .. "than %d+ steps", problems[1].message)
  end)
end)
