local cjson = require("cjson")
local driver = require("drv.driver")
local meta = require("drv.meta")
local uuid = require("drv.uuid")

local SEED = "0123456789abcdef0123456789abcdef"
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work", alloc_seed = SEED }


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
