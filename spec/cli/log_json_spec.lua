-- -log-json / DRVCTL_LOG_FORMAT=json: every diagnostic on stderr is one JSON
-- object per line with ts, level and msg; msg is the text form's message
-- without its "drvctl: " prefix.
local drv = require("support.drv")
local cjson = require("cjson")

-- Two problems in one job, one quoting a control character and invalid UTF-8.
local BROKEN = 'job "x" {\n group "g" {\n  task "../t\27[2J\255" {\n   driver = "docker"\n'
  .. '   config {\n    image = "busybox"\n   }\n  }\n  task "ok" {\n   driver = "docker"\n'
  .. '   config {\n    image = "busybox"\n    port_map = 7\n   }\n  }\n }\n}\n'

local function lines(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do
    t[#t + 1] = l
  end
  return t
end

local function check_json_lines(stderr, output)
  local got = {}
  for _, l in ipairs(lines(stderr)) do
    local ok, v = pcall(cjson.decode, l)
    assert.is_true(ok, "not JSON: " .. l .. "\n" .. output)
    assert.equal("table", type(v), output)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", v.ts, 1, output)
    assert.is_truthy(({ debug = true, info = true, warn = true, error = true })[v.level], output)
    assert.equal("string", type(v.msg), output)
    got[#got + 1] = v
  end
  return got
end

describe("drvctl -log-json", function()
  after_each(drv.cleanup)

  local function plan(dir, extra, opts)
    local job = dir .. "/broken.hcl"
    drv.write(job, BROKEN)
    local args = { "plan", "-data-dir", dir .. "/data" }
    for _, a in ipairs(extra) do
      args[#args + 1] = a
    end
    args[#args + 1] = job
    return drv.drvctl(args, opts)
  end

  it("prints each problem of a broken job as a JSON line equal to the text form", function()
    local dir = drv.tmpdir()
    local human = plan(dir, {})
    local js = plan(dir, { "-log-json" })
    assert.equal(68, human.code, human.output)
    assert.equal(human.code, js.code, js.output)
    local hl = lines(human.stderr)
    assert.is_true(#hl >= 2, human.output)
    local got = check_json_lines(js.stderr, js.output)
    assert.equal(#hl, #got, js.output)
    for i, l in ipairs(hl) do
      assert.equal("drvctl: ", l:sub(1, 8), human.output)
      assert.equal("error", got[i].level, js.output)
      assert.equal(l:sub(9), got[i].msg, js.output)
    end
    -- no raw control byte reaches the terminal in either form
    assert.is_nil(js.stderr:find("[%z\1-\9\11-\31\127]"), js.output)
    assert.is_nil(human.stderr:find("[%z\1-\9\11-\31\127]"), human.output)
    assert.equal("", js.stdout, js.output)
  end)

  it("is also turned on by DRVCTL_LOG_FORMAT=json", function()
    local dir = drv.tmpdir()
    local job = dir .. "/broken.hcl"
    drv.write(job, BROKEN)
    local r = drv.sh("env DRVCTL_LOG_FORMAT=json " .. drv.quote(drv.bin) .. " plan -data-dir "
      .. drv.quote(dir .. "/data") .. " " .. drv.quote(job))
    assert.equal(68, r.code, r.output)
    local got = check_json_lines(r.stderr, r.output)
    assert.is_true(#got >= 2, r.output)
  end)

  it("is accepted by every command", function()
    local dir = drv.tmpdir()
    -- a missing job file: an error message through the same formatter
    local r = drv.drvctl({ "run", "-log-json", "-data-dir", dir .. "/data", dir .. "/nope.hcl" })
    assert.equal(66, r.code, r.output)
    local got = check_json_lines(r.stderr, r.output)
    assert.equal(1, #got, r.output)
    assert.equal("error", got[1].level)
    assert.is_truthy(got[1].msg:find("nope.hcl", 1, true), r.output)
    for _, cmd in ipairs({ { "plan" }, { "policy", "check" }, { "fingerprint" }, { "gc" }, { "logs" } }) do
      local h = drv.drvctl({ cmd[1], cmd[2] or "-log-json", cmd[2] and "-log-json" or "-h", "-h" })
      assert.equal(0, h.code, h.output)
    end
  end)
end)
