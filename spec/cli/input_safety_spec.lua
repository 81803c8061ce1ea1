-- Input the C side must not take at face value: a NUL byte in a job or
-- agent config file (C strings end there, so what follows used to vanish
-- unseen), and Docker endpoints without a host or with another scheme.
local drv = require("support.drv")

local NO_DOCKER = { DOCKER_HOST = "unix:///nonexistent.sock" }

local function assert_has(haystack, needle, r)
  assert.is_truthy(haystack:find(needle, 1, true),
    string.format("expected %q in stderr\n%s", needle, r.output))
end

-- Writes `text` to dir/name and plans it (with `config` as agent config).
local function plan_text(name, text, config, env)
  local dir = drv.tmpdir()
  local job = drv.write(dir .. "/" .. name, text)
  local args = { "plan", "-data-dir", dir .. "/data" }
  if config then
    args[#args + 1] = "-config"
    args[#args + 1] = drv.write(dir .. "/agent.hcl", config)
  end
  args[#args + 1] = job
  return drv.drvctl(args, { env = env or NO_DOCKER })
end

describe("a NUL byte in an input file", function()
  after_each(drv.cleanup)

  it("in an HCL job, followed by garbage, exits 65 naming file:line:col", function()
    local text = drv.job({ task = "web" })
    local r = plan_text("job.hcl", text .. "\0garbage {{{ \"", nil)
    local line = select(2, text:gsub("\n", "")) + 1
    assert.equal(65, r.code, r.output)
    assert_has(r.stderr, "job.hcl:" .. line .. ":1: NUL byte in job file", r)
    assert.equal("", r.stdout, r.output)
  end)

  it("in the middle of a line gives that line and column", function()
    local text = drv.job({ task = "web" })
    local at = text:find('driver = "docker"', 1, true)
    local line, col = drv.position(text, 'driver = "docker"')
    local r = plan_text("job.hcl", text:sub(1, at - 1) .. "\0" .. text:sub(at), nil)
    assert.equal(65, r.code, r.output)
    assert_has(r.stderr, string.format("job.hcl:%d:%d: NUL byte", line, col), r)
  end)

  it("in a JSON job, after a complete object, exits 65", function()
    -- lua-cjson stops at a NUL: the garbage after it was never looked at
    local r = plan_text("job.json", '{"Job": {"ID": "x"}}\0{ garbage', nil)
    assert.equal(65, r.code, r.output)
    assert_has(r.stderr, "job.json:1:21: NUL byte in job file", r)
  end)

  it("in the agent config exits 78 naming the file", function()
    local r = plan_text("job.hcl", drv.job({ task = "web" }),
      'data_dir = "/tmp/x"\n\0client { garbage')
    assert.equal(78, r.code, r.output)
    assert_has(r.stderr, "agent.hcl:2:1: NUL byte in agent config", r)
  end)
end)

describe("a Docker endpoint", function()
  after_each(drv.cleanup)

  local function options(endpoint)
    return string.format('client {\n  options {\n    "docker.endpoint" = %s\n  }\n}\n',
      drv.hcl_string(endpoint))
  end

  for _, ep in ipairs({ "tcp://", "tcp://:2375", "tcp://host", "tcp://host:0",
                        "tcp://host:65536", "http://127.0.0.1:2375", "unix://relative.sock" }) do
    it(string.format("%q in docker.endpoint exits 78 naming the field and value", ep), function()
      local r = plan_text("job.hcl", drv.job({ task = "web" }), options(ep))
      assert.equal(78, r.code, r.output)
      assert_has(r.stderr, "docker.endpoint", r)
      assert_has(r.stderr, string.format("%q", ep), r)
    end)
  end

  it("from DOCKER_HOST exits 78 naming DOCKER_HOST", function()
    local r = plan_text("job.hcl", drv.job({ task = "web" }), nil, { DOCKER_HOST = "tcp://" })
    assert.equal(78, r.code, r.output)
    assert_has(r.stderr, 'DOCKER_HOST: invalid Docker endpoint', r)
    assert_has(r.stderr, '"tcp://"', r)
  end)

  it("refused for run too, before any container exists", function()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { task = "web", script = "true" })
    local cfg = drv.write(dir .. "/agent.hcl", options("tcp://"))
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", "-config", cfg, job })
    assert.equal(78, r.code, r.output)
    assert.same({}, drv.containers_if_docker(), r.output)
  end)

  it("that is valid but unreachable still lets plan work", function()
    local r = plan_text("job.hcl", drv.job({ task = "web" }), options("tcp://127.0.0.1:1"))
    assert.equal(0, r.code, r.output)
  end)
end)
