local jobspec = require("drv.jobspec")

local FIXTURES = "spec/fixtures/jobs/"


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


local function load_fixture(file)
  local job, res = jobspec.load(read(FIXTURES .. file), file)
  return job, res
end


-- Loads HCL that must be valid; fails the spec with the problems otherwise.
local function valid(src)
  local job, res = jobspec.load(src, "job.hcl")
  if not job then
    local lines = {}
    for _, p in ipairs(res) do
      lines[#lines + 1] = p.message
    end
    error(table.concat(lines, "\n"), 2)
  end
  return job, res
end


local function problems(src, name)
  local job, res = jobspec.load(src, name or "job.hcl")
  assert.is_nil(job)
  return res
end


local function docker_task(config_body, extra)
  return string.format([[
job "j" {
  group "g" {
    task "web" {
      driver = "docker"
      config {
%s
      }
%s
    }
  }
}
]], config_body, extra or "")
end


describe("jobspec.load", function()
  describe("HCL and JSON", function()
    it("give identical internal tables for the same job", function()
      local from_hcl = assert(load_fixture("web.hcl"))
      local from_json = assert(load_fixture("web.json"))
      assert.same(from_hcl, from_json)
    end)

    it("give identical networks, static ports first", function()
      local from_hcl = assert(load_fixture("ports.hcl"))
      local from_json = assert(load_fixture("ports.json"))
      assert.same(from_hcl, from_json)
      assert.same({ { mbits = 20, ports = {
        { label = "db", static = 5432 }, { label = "http" },
      } } }, from_hcl.groups[1].tasks[1].resources.networks)
    end)
  end)

  describe("the internal job", function()
    local job

    before_each(function()
      job = assert(load_fixture("web.hcl"))
    end)

    it("has the job fields", function()
      assert.equal("shop", job.name)
      assert.same({ "dc1" }, job.datacenters)
      assert.equal("europe", job.region)
      assert.same({ owner = "ops" }, job.meta)
      assert.same({ { attribute = "${attr.kernel.name}", operator = "=", value = "linux" } },
        job.constraints)
    end)

    it("has the group fields", function()
      local g = job.groups[1]
      assert.equal("web", g.name)
      assert.equal(3, g.count)
      assert.same({ tier = "front" }, g.meta)
    end)

    it("has the task fields", function()
      local t = job.groups[1].tasks[1]
      assert.equal("frontend", t.name)
      assert.equal("docker", t.driver)
      assert.equal("nobody", t.user)
      assert.equal(90000, t.kill_timeout_ms)
      assert.equal("SIGINT", t.kill_signal)
      assert.same({ cpu = 500, memory = 256, networks = {} }, t.resources)
      assert.same({ max_files = 5, max_file_size = 20 }, t.logs)
      assert.same({ COLOR = "blue", GREETING = "hello from ${NOMAD_GROUP_NAME}" }, t.env)
      assert.same({ { source = "https://example.com/assets.tar.gz", destination = "local/assets",
                      options = { checksum = "sha256:abcd" } } }, t.artifacts)
    end)

    it("keeps the task config normalised", function()
      local c = job.groups[1].tasks[1].config
      assert.same({ app = "shop" }, c.labels)
      assert.same({ nproc = "4242", nofile = "2048:4096" }, c.ulimit)
      assert.same({ disable = true }, c.healthchecks)
      assert.equal("integer", math.type(c.shm_size))
    end)
  end)

  describe("defaults", function()
    local job

    before_each(function()
      job = assert(load_fixture("minimal.hcl"))
    end)

    it("puts a task written directly in the job into a group named after it", function()
      assert.equal(1, #job.groups)
      assert.equal("hello", job.groups[1].name)
      assert.equal(1, job.groups[1].count)
    end)

    it("uses region global", function()
      assert.equal("global", job.region)
    end)

    it("uses Nomad's task defaults", function()
      local t = job.groups[1].tasks[1]
      assert.equal(5000, t.kill_timeout_ms)
      assert.same({ cpu = 100, memory = 300, networks = {} }, t.resources)
      assert.same({ max_files = 10, max_file_size = 10 }, t.logs)
    end)

    it("puts artifacts into local/ by default", function()
      local j = valid(docker_task('image = "x:1"', 'artifact { source = "http://h/x" }'))
      assert.equal("local/", j.groups[1].tasks[1].artifacts[1].destination)
    end)
  end)

  it("parses kill_timeout durations", function()
    local j = valid(docker_task('image = "x:1"', 'kill_timeout = "250ms"'))
    assert.equal(250, j.groups[1].tasks[1].kill_timeout_ms)
  end)

  it("converts JSON KillTimeout nanoseconds to milliseconds", function()
    local job = assert(jobspec.load([[{"Job": {"ID": "j", "TaskGroups": [{"Name": "g",
      "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x:1"},
      "KillTimeout": 1500000000}]}]}}]], "j.json"))
    assert.equal(1500, job.groups[1].tasks[1].kill_timeout_ms)
  end)

  it("normalises a version constraint", function()
    local j = valid([[
job "j" {
  constraint {
    attribute = "${driver.docker.version}"
    operator  = ">"
    version   = "1.2"
  }
  task "t" {
    driver = "docker"
    config { image = "x:1" }
  }
}
]])
    assert.same({ { attribute = "${driver.docker.version}", operator = "version", value = "> 1.2" } },
      j.constraints)
  end)

  it("warns about stanzas drvctl ignores", function()
    local _, warnings = valid(docker_task('image = "x:1"', 'service { name = "web" }'))
    assert.equal(1, #warnings)
    assert.matches('"service" in task "web" is not supported by drvctl and is ignored', warnings[1],
      1, true)
  end)

  describe("problems", function()
    local all

    before_each(function()
      all = assert.is_table(select(2, load_fixture("invalid.hcl")))
    end)

    it("collects all of them", function()
      assert.equal(7, #all)
    end)

    it("reports a wrong count type", function()
      assert.same({ kind = "type", path = "count", message =
        'invalid.hcl:3:5: wrong type for key "count" in group "g": expected integer, found string "two"' },
        all[1])
    end)

    it("reports an unknown config option with a suggestion", function()
      assert.equal("unknown", all[2].kind)
      assert.equal('invalid.hcl:7:9: unknown option "imgae" in task "web" config, did you mean "image"?',
        all[2].message)
    end)

    it("reports a bool given as a string", function()
      assert.equal("type", all[3].kind)
      assert.equal('invalid.hcl:8:9: wrong type for option "tty" in task "web" config: '
        .. 'expected bool, found string "yes"', all[3].message)
    end)

    it("reports a list given as a string", function()
      assert.equal("type", all[4].kind)
      assert.equal('invalid.hcl:9:9: wrong type for option "args" in task "web" config: '
        .. 'expected list of strings, found string "x"', all[4].message)
    end)

    it("reports a missing image at the config block", function()
      assert.same({ kind = "missing",
        message = 'invalid.hcl:6:7: task "web" config: field "image" is required' }, all[5])
    end)

    it("reports a command with extra white space", function()
      assert.same({ kind = "type",
        message = 'invalid.hcl:10:9: task "web" config: command contains extra white space: " x"' },
        all[6])
    end)

    it("refuses a task whose driver is not docker", function()
      assert.same({ kind = "driver", message = 'invalid.hcl:14:7: task "batch": driver "exec" '
        .. 'is not supported, drvctl runs only "docker" tasks' }, all[7])
    end)
  end)

  it("reports an empty command", function()
    local p = problems(docker_task('image = "x:1"\ncommand = ""'))
    assert.equal('job.hcl:7:1: task "web" config: command empty: ""', p[1].message)
  end)

  it("reports a missing config block at the task", function()
    local p = problems('job "j" {\n  task "web" {\n    driver = "docker"\n  }\n}\n')
    assert.same({ { kind = "missing", message = 'job.hcl:2:3: task "web" config: field "image" is required' } }, p)
  end)

  it("reports a missing driver", function()
    local p = problems('job "j" {\n  task "web" {\n    config { image = "x" }\n  }\n}\n')
    assert.same({ { kind = "missing", message = 'job.hcl:2:3: task "web": field "driver" is required' } }, p)
  end)

  it("reports unknown keys in the job stanza", function()
    local p = problems('job "j" {\n  grop "g" {}\n}\n')
    assert.same({ kind = "unknown", path = "grop",
      message = 'job.hcl:2:3: unknown key "grop" in job "j", did you mean "group"?' }, p[1])
  end)

  it("reports unknown keys in the task stanza", function()
    local p = problems(docker_task('image = "x:1"', 'kill_timout = "5s"'))
    assert.equal('job.hcl:8:1: unknown key "kill_timout" in task "web", did you mean "kill_timeout"?',
      p[1].message)
  end)

  it("reports an invalid kill_timeout", function()
    local p = problems(docker_task('image = "x:1"', 'kill_timeout = "5 sec"'))
    assert.same({ { kind = "type",
      message = 'job.hcl:8:1: task "web": invalid duration for key "kill_timeout": "5 sec"' } }, p)
  end)

  it("reports each malformed ulimit with Nomad's text", function()
    local p = problems(docker_task([[
ulimit {
  core   = ""
  nofile = "abc:1234"
  nproc  = "1234:abc"
}
image = "x:1"]]))
    assert.same({
      'job.hcl:7:3: task "web" config: Malformed ulimit specification core: "", cannot be empty',
      'job.hcl:8:3: task "web" config: Malformed soft ulimit nofile: abc:1234',
      'job.hcl:9:3: task "web" config: Malformed hard ulimit nproc: 1234:abc',
    }, { p[1].message, p[2].message, p[3].message })
  end)

  it("accepts SSL with a deprecation warning", function()
    local _, warnings = valid(docker_task('image = "x:1"\nSSL = true'))
    assert.same({ 'job.hcl:7:1: task "web" config option "SSL" is deprecated and has no effect' },
      warnings)
  end)

  it("refuses an artifact destination outside the task directory", function()
    local p = problems(docker_task('image = "x:1"',
      'artifact {\n source = "http://h/x"\n destination = "../../etc"\n}'))
    assert.equal("type", p[1].kind)
  end)

  it("reports HCL syntax errors", function()
    local p = problems('job "j" {\n  task "t" {\n')
    assert.equal("syntax", p[1].kind)
    assert.matches("^job%.hcl:%d+:%d+: ", p[1].message)
  end)

  it("reports JSON syntax errors", function()
    local p = problems('{"Job": {', "job.json")
    assert.equal("syntax", p[1].kind)
    assert.matches("^job%.json: invalid JSON", p[1].message)
  end)

  it("reports unknown JSON keys with a suggestion", function()
    local p = problems('{"Job": {"ID": "j", "TaskGroup": []}}', "job.json")
    assert.same({ kind = "unknown",
      message = 'job.json: Job.TaskGroup: unknown key "TaskGroup" in job, did you mean "TaskGroups"?' },
      p[1])
  end)

  it("reports JSON type errors", function()
    local p = problems([[{"Job": {"ID": "j", "TaskGroups": [{"Name": "g", "Count": "two",
      "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "x", "tty": "yes"}}]}]}}]],
      "job.json")
    assert.same({ "type", "type" }, { p[1].kind, p[2].kind })
  end)

  describe("constraints", function()
    local function job_with(block, level)
      local job = string.format([[
job "j" {
%s
  group "g" {
%s
    task "web" {
      driver = "docker"
      config { image = "x:1" }
%s
    }
  }
}
]], level == "job" and block or "", level == "group" and block or "",
        level == "task" and block or "")
      return job
    end

    it("reads a task constraint with the default operator", function()
      local j = valid(job_with('constraint {\n  attribute = "${attr.kernel.name}"\n  value = "linux"\n}', "task"))
      assert.same({ { attribute = "${attr.kernel.name}", operator = "=", value = "linux" } },
        j.groups[1].tasks[1].constraints)
    end)

    it("reads a group constraint", function()
      local j = valid(job_with('constraint {\n  attribute = "${meta.rack}"\n  operator = "is_set"\n}', "group"))
      assert.same({ { attribute = "${meta.rack}", operator = "is_set" } }, j.groups[1].constraints)
    end)

    it("remembers where each constraint was written", function()
      local j = valid(job_with('  constraint {\n    attribute = "${attr.kernel.name}"\n'
        .. '    value = "linux"\n  }', "job"))
      assert.equal("job.hcl:2:3", jobspec.origin(j.constraints[1]))
    end)

    it("takes the regexp shorthand", function()
      local j = valid(job_with('constraint {\n  attribute = "${attr.cpu.arch}"\n  regexp = "^(amd|arm)64$"\n}', "task"))
      assert.same({ attribute = "${attr.cpu.arch}", operator = "regexp", value = "^(amd|arm)64$" },
        j.groups[1].tasks[1].constraints[1])
    end)

    it("takes the version shorthand as written when it has an operator", function()
      local j = valid(job_with('constraint {\n  attribute = "${attr.driver.docker.version}"\n'
        .. '  version = ">= 1.2, < 3"\n}', "task"))
      assert.equal(">= 1.2, < 3", j.groups[1].tasks[1].constraints[1].value)
    end)

    it("keeps set_contains values", function()
      local j = valid(job_with('constraint {\n  attribute = "${meta.tags}"\n  set_contains = "a,b"\n}', "task"))
      assert.same({ attribute = "${meta.tags}", operator = "set_contains", value = "a,b" },
        j.groups[1].tasks[1].constraints[1])
    end)

    it("accepts distinct_hosts and warns that it is ignored", function()
      local j, warnings = valid(job_with('  constraint {\n    distinct_hosts = true\n  }', "job"))
      assert.equal("distinct_hosts", j.constraints[1].operator)
      assert.same({ 'job.hcl:2:3: constraint "distinct_hosts" in job "j" is ignored: '
        .. "drvctl places every task on this host" }, warnings)
    end)

    it("accepts distinct_property and warns that it is ignored", function()
      local _, warnings = valid(job_with('constraint {\n  distinct_property = "${meta.rack}"\n}', "group"))
      assert.equal(1, #warnings)
      assert.matches('constraint "distinct_property" in group "g" is ignored', warnings[1], 1, true)
    end)

    it("refuses an unknown operator at its position", function()
      local p = problems(job_with('    constraint {\n      attribute = "${attr.kernel.name}"\n'
        .. '      operator = "like"\n      value = "linux"\n    }', "task"))
      assert.same({ { kind = "type",
        message = 'job.hcl:8:5: task "web": unknown constraint operator "like"' } }, p)
    end)

    it("refuses a malformed regexp", function()
      local p = problems(job_with('constraint {\n  attribute = "${attr.cpu.arch}"\n  regexp = "(amd"\n}', "task"))
      assert.equal("type", p[1].kind)
      assert.matches('task "web": invalid regexp "(amd": missing closing )', p[1].message, 1, true)
    end)

    it("refuses a malformed version constraint", function()
      local p = problems(job_with('constraint {\n  attribute = "${attr.driver.docker.version}"\n'
        .. '  version = ">> 1"\n}', "task"))
      assert.matches('task "web": malformed version constraint ">> 1"', p[1].message, 1, true)
    end)

    it("refuses a constraint without a value", function()
      local p = problems(job_with('constraint {\n  attribute = "${attr.kernel.name}"\n}', "task"))
      assert.matches('task "web": constraint operator "=" needs a value', p[1].message, 1, true)
    end)

    it("reads the JSON form", function()
      local j = valid([[{"Job": {"ID": "j", "Constraints": [{"LTarget": "${attr.kernel.name}",
        "RTarget": "linux", "Operand": "="}], "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t",
        "Driver": "docker", "Config": {"image": "x:1"}, "Constraints": [{"LTarget":
        "${attr.driver.docker.version}", "RTarget": ">= 1.2", "Operand": "version"}]}]}]}}]])
      assert.same({ { attribute = "${attr.kernel.name}", operator = "=", value = "linux" } },
        j.constraints)
      assert.same({ { attribute = "${attr.driver.docker.version}", operator = "version",
        value = ">= 1.2" } }, j.groups[1].tasks[1].constraints)
    end)
  end)

  describe("networks", function()
    local function with_resources(body)
      return docker_task('image = "x:1"', "resources {\n" .. body .. "\n}")
    end

    it("refuses a second network block", function()
      local p = problems(with_resources('network {\n  port "a" {}\n}\nnetwork {\n  port "b" {}\n}'))
      assert.same({ { kind = "type", message = 'job.hcl:12:1: task "web": only one network block '
        .. "per task is supported, found 2" } }, p)
    end)

    it("refuses a port label used twice", function()
      local p = problems(with_resources('network {\n  port "a" {}\n  port "a" { static = 80 }\n}'))
      assert.equal(1, #p)
      assert.same({ "type", 'job.hcl:11:3: task "web": duplicate network port "a"' },
        { p[1].kind, p[1].message })
    end)

    it("refuses a static port out of range", function()
      local p = problems(with_resources('network {\n  port "a" { static = 70000 }\n}'))
      assert.same({ "type", 'job.hcl:10:14: task "web": port "a" static must be between 0 and 65535, '
        .. "found 70000" }, { p[1].kind, p[1].message })
    end)
  end)
end)


describe("jobspec.load on hostile job files", function()
  local budget = require("support.budget")
  local cjson = require("cjson")

  local function job_src(opts)
    return string.format([[
job "%s" {
  meta { %s }
  group "%s" {
    count = %s
    task "%s" {
      driver = "docker"
      config {
        image = "%s"
%s
      }
%s
    }
  }
}
]], opts.job or "j", opts.meta or "", opts.group or "g", opts.count or "1", opts.task or "web",
      opts.image or "x:1", opts.config or "", opts.extra or "")
  end

  local function first(src, name)
    local p = problems(src, name)
    return p[1]
  end

  describe("names", function()
    local BAD = { "../../../../tmp/x", "web&platform=x", "a/b", "..", ".hidden", "-x", "a..b",
      "x y", "tab\tx", "new\nline", "é", "", string.rep("a", 129), "a?b", "a#b", "a%2fb" }

    for _, kind in ipairs({ "job", "group", "task" }) do
      it("refuses hostile " .. kind .. " names with file:line:col, exit-68 kind", function()
        for _, name in ipairs(BAD) do
          local p = first(job_src({ [kind] = name:gsub("\\", "\\\\"):gsub("\n", "\\n")
            :gsub("\t", "\\t"):gsub('"', '\\"') }))
          if name == "" then
            assert.equal("missing", p.kind, name)
          else
            assert.equal("type", p.kind, name)
            assert.matches("^job%.hcl:%d+:%d+: " .. kind .. " name not allowed %(", p.message)
            assert.is_truthy(p.message:find(require("drv.util").quote(name), 1, true), p.message)
            assert.is_nil(p.message:find("[%c]"), p.message)
          end
        end
      end)
    end

    it("locates the task name error at the task block", function()
      local p = first(job_src({ task = "../../../../tmp/x" }))
      assert.equal('job.hcl:5:5: task name not allowed (letters, digits, "_", "." and "-", '
        .. 'starting with a letter or digit, no "..", at most 128 bytes): "../../../../tmp/x"',
        p.message)
    end)

    it("keeps the names the v0.8.3 examples use", function()
      for _, name in ipairs({ "redis", "web-1", "cache_2", "example.com", "A9", string.rep("a", 128) }) do
        local job = valid(job_src({ job = name, group = name, task = name }))
        assert.equal(name, job.groups[1].tasks[1].name)
      end
    end)

    it("refuses hostile port labels", function()
      local p = first(job_src({ extra = [[
        resources { network { port "a&b=c" {} } }]] }))
      assert.equal("type", p.kind)
      assert.matches('port label not allowed .*: "a&b=c"$', p.message)
    end)

    it("refuses hostile names in Nomad API JSON, located by JSON path", function()
      local src = cjson.encode({ Job = { ID = "j", TaskGroups = { { Name = "g", Tasks = {
        { Name = "web&platform=x", Driver = "docker", Config = { image = "x:1" } } } } } } })
      local p = first(src, "job.json")
      assert.equal("type", p.kind)
      assert.matches('^job%.json: Job%.TaskGroups%[0%]%.Tasks%[0%]: task name not allowed .*: "web&platform=x"$',
        p.message)
    end)
  end)

  describe("kill_signal", function()
    it("accepts and normalises signal names", function()
      for _, s in ipairs({ "SIGINT", "sigint", "INT", "SIGRTMIN+3", "SIGUSR1" }) do
        local job = valid(job_src({ extra = 'kill_signal = "' .. s .. '"' }))
        local want = s:upper():sub(1, 3) == "SIG" and s:upper() or "SIG" .. s:upper()
        assert.equal(want, job.groups[1].tasks[1].kill_signal)
      end
    end)

    it("refuses unknown signals with a located did-you-mean", function()
      local p = first(job_src({ extra = 'kill_signal = "SIGTREM"' }))
      assert.equal("type", p.kind)
      assert.equal('job.hcl:11:1: task "web": unknown kill_signal (did you mean "SIGTERM"?): "SIGTREM"',
        p.message)
    end)

    it("refuses signals that would inject URL parameters", function()
      for _, s in ipairs({ "SIGTERM&t=0", "9", "SIGKILL ", "" }) do
        local p = first(job_src({ extra = 'kill_signal = "' .. s .. '"' }))
        assert.equal("type", p.kind, s)
        assert.matches("unknown kill_signal", p.message)
      end
    end)
  end)

  describe("count", function()
    it("refuses a count over 500 with its location", function()
      for _, c in ipairs({ "501", "10000000000000" }) do
        local p = budget.within(5000000, first, job_src({ count = c }))
        assert.equal("type", p.kind)
        assert.equal("job.hcl:4:5: group \"g\": count must be at most 500, found " .. c, p.message)
      end
    end)

    it("refuses 1e13 from JSON too, fast", function()
      local src = cjson.encode({ Job = { ID = "j", TaskGroups = { { Name = "g", Count = 1e13,
        Tasks = { { Name = "t", Driver = "docker", Config = { image = "x:1" } } } } } } })
      local p = budget.within(5000000, first, src, "job.json")
      assert.equal("job.json: Job.TaskGroups[0].Count: group \"g\": count must be at most 500, "
        .. "found 10000000000000", p.message)
    end)

    it("caps count x tasks summed over groups", function()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = string.format('task "t%d" { driver = "docker" config { image = "x:1" } }', i)
      end
      local src = 'job "j" {\n group "a" { count = 400\n' .. table.concat(tasks, "\n")
        .. '}\n group "b" { count = 500 task "u" { driver = "docker" config { image = "x:1" } } } }'
      local p = first(src)
      assert.equal("type", p.kind)
      assert.equal('job.hcl:1:1: job "j": too many task instances (count x tasks, summed over '
        .. "groups): at most 500, found 1700", p.message)
      valid((src:gsub("count = 500", "count = 1"):gsub("count = 400", "count = 166")))
    end)
  end)

  describe("strings that become paths, env names, labels or URL parts", function()
    it("refuses meta, env and label keys with = or control characters", function()
      local cases = {
        { meta = '"a=b" = "x"' },
        { extra = 'meta { "x\\ny" = "1" }' },
        { extra = 'env { "PATH=/x" = "1" }' },
        { config = 'labels { "a\\u001bb" = "1" }' },
      }
      for _, opts in ipairs(cases) do
        local p = first(job_src(opts))
        assert.equal("type", p.kind)
        assert.matches("^job%.hcl:%d+:%d+: .* key not allowed", p.message)
        assert.is_nil(p.message:find("[%c]"))
      end
    end)

    it("refuses log sizes of zero, negative or huge", function()
      for _, v in ipairs({ "max_files = 0", "max_files = -1", "max_file_size = 0",
          "max_file_size = 100000000", "max_files = 1001" }) do
        local p = first(job_src({ extra = "logs { " .. v .. " }" }))
        assert.equal("type", p.kind, v)
        assert.matches("^job%.hcl:11:%d+: task \"web\": logs max_", p.message)
      end
    end)

    it("refuses absolute and escaping artifact destinations", function()
      for _, d in ipairs({ "/etc", "../..", "local/../../x", "local/\\u0000x" }) do
        local p = first(job_src({ extra = 'artifact { source = "http://x/y"\n destination = "'
          .. d .. '" }' }))
        assert.equal("type", p.kind, d)
        assert.matches("artifact destination escapes the task directory", p.message)
      end
    end)

    it("refuses image references that would change the URL", function()
      for _, img in ipairs({ "redis?platform=x", "redis#x", "redis x", "redis\\nx", "redis%2f",
          "redis&fromImage=evil", "-redis", "redis:1\\u0000" }) do
        local p = first(job_src({ image = img }))
        assert.equal("type", p.kind, img)
        assert.matches('^job%.hcl:8:9: task "web" config: image reference not allowed', p.message)
        assert.is_nil(p.message:find("[%c]"))
      end
      for _, img in ipairs({ "redis", "redis:7.2", "localhost:5000/a/b:1", "https://r.io/x:1",
          "x@sha256:" .. string.rep("a", 64) }) do
        valid(job_src({ image = img }))
      end
      -- images are not interpolated: a variable can never be a valid reference
      local p = first(job_src({ image = "x:${NOMAD_TASK_NAME}" }))
      assert.equal("type", p.kind)
      assert.matches('^job%.hcl:8:9: task "web" config: invalid image reference .*not interpolated', p.message)
    end)

    it("refuses a negative kill_timeout", function()
      local p = first(job_src({ extra = 'kill_timeout = "-5s"' }))
      assert.matches('invalid duration for key "kill_timeout"', p.message)
    end)
  end)

  describe("an unknown key of 60 KB", function()
    it("is reported without a quadratic did-you-mean", function()
      local key = string.rep("k", 60000)
      local p = budget.within(20000000, first, job_src({ config = key .. " = 1" }))
      assert.equal("unknown", p.kind)
      assert.matches('unknown option "kkkk.*%.%.%." %(60000 bytes%) in task "web"', p.message)
    end)
  end)

  describe("Nomad API JSON with wrong types", function()
    local function base()
      return { Job = { ID = "j", Name = "j", Region = "global", Datacenters = { "dc1" },
        Meta = { a = "1" }, Constraints = { { LTarget = "${attr.kernel.name}", RTarget = "linux",
          Operand = "=" } },
        TaskGroups = { { Name = "g", Count = 1, Meta = { b = "2" }, Constraints = {},
          Tasks = { { Name = "t", Driver = "docker", User = "u", KillSignal = "SIGINT",
            KillTimeout = 5000000000, Config = { image = "x:1" }, Env = { E = "1" },
            Meta = { c = "3" }, Constraints = {},
            LogConfig = { MaxFiles = 2, MaxFileSizeMB = 3 },
            Artifacts = { { GetterSource = "http://x/y", RelativeDest = "local/",
              GetterOptions = { checksum = "md5:00" } } },
            Resources = { CPU = 100, MemoryMB = 64, Networks = { { MBits = 10,
              ReservedPorts = { { Label = "a", Value = 8080, To = 0 } },
              DynamicPorts = { { Label = "b", Value = 0, To = 80 } } } } } } } } } } }
    end

    -- every field convert_json reads, as a path from Job
    local FIELDS = {
      { "Job" }, { "Job", "ID" }, { "Job", "Name" }, { "Job", "Region" }, { "Job", "Datacenters" },
      { "Job", "Meta" }, { "Job", "Constraints" }, { "Job", "Constraints", 1 },
      { "Job", "Constraints", 1, "LTarget" }, { "Job", "Constraints", 1, "RTarget" },
      { "Job", "Constraints", 1, "Operand" }, { "Job", "TaskGroups" },
      { "Job", "TaskGroups", 1 }, { "Job", "TaskGroups", 1, "Name" },
      { "Job", "TaskGroups", 1, "Count" }, { "Job", "TaskGroups", 1, "Meta" },
      { "Job", "TaskGroups", 1, "Constraints" }, { "Job", "TaskGroups", 1, "Tasks" },
    }
    local T = { "Job", "TaskGroups", 1, "Tasks", 1 }
    local function task_field(...)
      local p = { table.unpack(T) }
      for _, k in ipairs({ ... }) do
        p[#p + 1] = k
      end
      FIELDS[#FIELDS + 1] = p
    end
    task_field()
    for _, k in ipairs({ "Name", "Driver", "User", "KillSignal", "KillTimeout", "Config", "Env",
        "Meta", "Constraints", "LogConfig", "Artifacts", "Resources" }) do
      task_field(k)
    end
    task_field("LogConfig", "MaxFiles")
    task_field("LogConfig", "MaxFileSizeMB")
    task_field("Artifacts", 1)
    task_field("Artifacts", 1, "GetterSource")
    task_field("Artifacts", 1, "RelativeDest")
    task_field("Artifacts", 1, "GetterOptions")
    task_field("Config", "image")
    task_field("Env", "E")
    task_field("Meta", "c")
    task_field("Resources", "CPU")
    task_field("Resources", "MemoryMB")
    task_field("Resources", "Networks")
    task_field("Resources", "Networks", 1)
    task_field("Resources", "Networks", 1, "MBits")
    for _, ports in ipairs({ "ReservedPorts", "DynamicPorts" }) do
      task_field("Resources", "Networks", 1, ports)
      task_field("Resources", "Networks", 1, ports, 1)
      task_field("Resources", "Networks", 1, ports, 1, "Label")
      task_field("Resources", "Networks", 1, ports, 1, "Value")
      task_field("Resources", "Networks", 1, ports, 1, "To")
    end

    local SCALAR = { RTarget = true, E = true, c = true }

    local function json_path(p)
      local out = p[1] or "(root)"
      for i = 2, #p do
        if type(p[i]) == "number" then
          out = out .. "[" .. (p[i] - 1) .. "]"
        else
          out = out .. "." .. p[i]
        end
      end
      return out
    end

    it("loads the base job", function()
      local job, res = jobspec.load(cjson.encode(base()), "job.json")
      assert(job, res and res[1] and res[1].message)
    end)

    it("reports every wrong type as a located invalid-value problem, never a Lua error", function()
      local count = 0
      for _, p in ipairs(FIELDS) do
        local wrongs = { "x", 7, true, { 1 }, { k = "v" } }
        for _, bad in ipairs(wrongs) do
          local doc = base()
          local t = doc
          for i = 1, #p - 1 do
            t = t[p[i]]
          end
          local old = t[p[#p]]
          -- a wrong type: anything whose Lua type differs from the valid value
          local differs = type(old) ~= type(bad)
            or (type(old) == "table" and (old[1] ~= nil) ~= (bad[1] ~= nil))
          -- scalar fields (constraint values, meta and env values) take
          -- numbers and bools as their string form, as Nomad does
          if SCALAR[p[#p]] and type(bad) ~= "table" then
            differs = false
          end
          if differs then
            t[p[#p]] = bad
            local ok, job, res = pcall(jobspec.load, cjson.encode(doc), "job.json")
            assert.is_true(ok, json_path(p) .. ": raised " .. tostring(job))
            local where = json_path(p) .. " = " .. cjson.encode(bad)
            assert.is_nil(job, where .. " was accepted")
            local first_p = res[1]
            assert.equal("type", first_p.kind, where .. ": " .. first_p.message)
            -- located: the JSON path of the field (or the list or object holding it)
            local prefix = "job.json: " .. json_path(p)
            local parent = "job.json: " .. json_path({ table.unpack(p, 1, #p - 1) })
            assert.is_truthy(first_p.message:sub(1, #prefix) == prefix
              or first_p.message:sub(1, #parent) == parent, where .. ": " .. first_p.message)
            count = count + 1
          end
        end
      end
      assert.is_true(count > 200)
    end)

    it("locates DynamicPorts = \"x\" and Label = {} (the issue's examples)", function()
      local doc = base()
      doc.Job.TaskGroups[1].Tasks[1].Resources.Networks[1].DynamicPorts = "x"
      local p = first(cjson.encode(doc), "job.json")
      assert.same({ kind = "type", message = "job.json: Job.TaskGroups[0].Tasks[0].Resources"
        .. '.Networks[0].DynamicPorts: wrong type: expected a list of ports, found string "x"' }, p)
      doc = base()
      doc.Job.TaskGroups[1].Tasks[1].Resources.Networks[1].DynamicPorts[1].Label = { a = 1 }
      p = first(cjson.encode(doc), "job.json")
      assert.same({ kind = "type", message = "job.json: Job.TaskGroups[0].Tasks[0].Resources"
        .. ".Networks[0].DynamicPorts[0].Label: wrong type: expected a string, found object" }, p)
    end)
  end)
end)
