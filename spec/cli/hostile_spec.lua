-- drvctl plan on job files written to hurt: names that become paths or URL
-- parameters, inputs that used to make planning slow (regexps, counts,
-- long lines, long keys) and JSON with wrong types. Each gets its
-- documented exit code and a message naming file:line:col (or the JSON
-- path), never an internal error (70) or a hang (the 20 s timeout turns
-- a hang into exit 124; the old code took minutes on several of these).
local drv = require("support.drv")

local NO_DOCKER = { DOCKER_HOST = "unix:///nonexistent.sock" }

local function plan_text(name, text)
  local dir = drv.tmpdir()
  local job = drv.write(dir .. "/" .. name, text)
  local r = drv.drvctl({ "plan", "-data-dir", dir .. "/data", job },
    { env = NO_DOCKER, timeout = 20 })
  return r, dir
end

local function task_job(task_name, extra, config)
  return string.format([[
job "j" {
  group "g" {
    task "%s" {
      driver = "docker"
      config {
        image = "drvctl-test/busybox:1"
%s
      }
%s
    }
  }
}
]], task_name, config or "", extra or "")
end

local function expect(r, code, pattern)
  assert.equal(code, r.code, r.output)
  assert.matches(pattern, r.stderr, 1, false, r.output)
  -- every message line starts with its origin: nothing forged a line
  for line in r.stderr:gmatch("[^\n]+") do
    assert.is_nil(line:find("[%c]"), "control character in " .. line)
  end
end

describe("drvctl plan on hostile job files", function()
  after_each(drv.cleanup)

  it("refuses a task name that climbs out of data_dir (exit 68, file:line:col)", function()
    local r, dir = plan_text("climb.hcl", task_job("../../../../tmp/x"))
    expect(r, 68, 'climb%.hcl:3:5: task name not allowed %(.*%): "%.%./%.%./%.%./%.%./tmp/x"')
    assert.is_false(drv.exists(dir .. "/data/alloc"))
  end)

  it("refuses a task name that injects a query parameter", function()
    local r = plan_text("amp.hcl", task_job("web&platform=x"))
    expect(r, 68, 'amp%.hcl:3:5: task name not allowed %(.*%): "web&platform=x"')
  end)

  it("escapes a newline in a name instead of printing a second message line", function()
    local r = plan_text("nl.hcl", task_job("a\\ndrvctl: all good"))
    expect(r, 68, 'nl%.hcl:3:5: task name not allowed %(.*%): "a\\ndrvctl: all good"')
  end)

  it("refuses an unknown kill_signal with a did-you-mean", function()
    local r = plan_text("sig.hcl", task_job("web", 'kill_signal = "SIGTREM"'))
    expect(r, 68, 'sig%.hcl:9:1: task "web": unknown kill_signal %(did you mean "SIGTERM"%?%): "SIGTREM"')
  end)

  it("refuses an image reference with URL syntax", function()
    local r = plan_text("img.hcl", task_job("web", nil, ""):gsub("busybox:1", "busybox:1?platform=x"))
    expect(r, 68, 'img%.hcl:6:9: task "web" config: image reference not allowed .*: '
      .. '"drvctl%-test/busybox:1%?platform=x"')
  end)

  it("refuses an absolute artifact destination", function()
    local r = plan_text("art.hcl", task_job("web",
      'artifact {\n source = "http://127.0.0.1:1/x"\n destination = "/etc"\n}'))
    expect(r, 68, 'art%.hcl:11:2: task "web" artifact destination escapes the task directory: "/etc"')
  end)

  it("refuses count = 1e13 at once", function()
    local r = plan_text("count.hcl", (task_job("web"):gsub('group "g" {', 'group "g" {\n    count = 10000000000000')))
    expect(r, 68, 'count%.hcl:3:5: group "g": count must be at most 500, found 10000000000000')
  end)

  it("stops a plan that would need more than its instruction budget (exit 68, not a hang)", function()
    -- 500 instances is within the cap, but each maps a 1500-entry env map:
    -- the plan stops at the budget with a clear error (pass 1, which counts
    -- every instruction; 60 entries, the old size, now plan in time)
    local env = {}
    for i = 1, 1500 do
      env[i] = string.format('      K%d = "v%d"', i, i)
    end
    local r = plan_text("heavy.hcl", (task_job("web"):gsub('group "g" {', 'group "g" {\n    count = 500')
      :gsub('driver = "docker"', 'driver = "docker"\n    env {\n' .. table.concat(env, "\n") .. "\n    }", 1)))
    expect(r, 68, "heavy%.hcl: job too large to plan: it needs more than 15 million Lua instructions")
  end)

  it("refuses 5,000 tasks on one line with the cap", function()
    local t = {}
    for i = 1, 5000 do
      t[i] = string.format('task "t%d" { driver = "docker" config { image = "x:1" } }', i)
    end
    local r = plan_text("wide.hcl", 'job "j" { group "g" { ' .. table.concat(t, " ") .. " } }")
    expect(r, 68, 'wide%.hcl:1:1: job "j": too many task instances %(count x tasks, summed over '
      .. "groups%): at most 500, found 5000")
  end)

  it("reports a 60 KB unknown key quickly (exit 67), its quote cut short", function()
    local key = string.rep("k", 60000)
    local r = plan_text("key.hcl", task_job("web", nil, key .. " = 1"))
    expect(r, 67, 'key%.hcl:7:1: unknown option "kkkk[k]*%.%.%." %(60000 bytes%) in task "web"')
    assert.is_true(#r.stderr < 4000, r.stderr:sub(1, 200))
  end)

  it("plans a catastrophic-backtracking regexp constraint to its verdict (exit 76)", function()
    local r = plan_text("re.hcl", task_job("web", [[
constraint {
  attribute = "]] .. string.rep("a", 40) .. [["
  regexp = "^(.|.|.|.|.|.|.|.)*Z"
}]]))
    expect(r, 76, 're%.hcl:9:1: task "web": constraint not met: .*%^%(%.|%.|%.|%.|%.|%.|%.|%.%)%*Z')
  end)

  it("refuses a regexp whose repeats expand too far (exit 68)", function()
    local r = plan_text("re2.hcl", task_job("web", [[
constraint {
  attribute = "${attr.kernel.name}"
  regexp = "(a{1000}){1000}"
}]]))
    expect(r, 68, 're2%.hcl:9:1: task "web": invalid regexp "%(a{1000}%){1000}": expression too large')
  end)

  describe("Nomad API JSON with wrong types (exit 68, located by JSON path)", function()
    local function json_job(ports)
      return '{"Job": {"ID": "j", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "web", '
        .. '"Driver": "docker", "Config": {"image": "drvctl-test/busybox:1"}, '
        .. '"Resources": {"CPU": 100, "MemoryMB": 64, "Networks": [{"MBits": 10, '
        .. '"DynamicPorts": ' .. ports .. "}]}}]}]}}"
    end

    it('DynamicPorts = "x"', function()
      local r = plan_text("dp.json", json_job('"x"'))
      expect(r, 68, "dp%.json: Job%.TaskGroups%[0%]%.Tasks%[0%]%.Resources%.Networks%[0%]%."
        .. 'DynamicPorts: wrong type: expected a list of ports, found string "x"')
    end)

    it("Label = {}", function()
      local r = plan_text("label.json", json_job('[{"Label": {"a": 1}}]'))
      expect(r, 68, "label%.json: Job%.TaskGroups%[0%]%.Tasks%[0%]%.Resources%.Networks%[0%]%."
        .. "DynamicPorts%[0%]%.Label: wrong type: expected a string, found object")
    end)

    it("a task name that climbs out of data_dir", function()
      local r = plan_text("name.json", (json_job("[]"):gsub('"web"', '"../../x"')))
      expect(r, 68, 'name%.json: Job%.TaskGroups%[0%]%.Tasks%[0%]: task name not allowed %(.*%): "%.%./%.%./x"')
    end)
  end)
end)
