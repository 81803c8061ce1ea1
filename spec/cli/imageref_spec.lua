-- drvctl plan: image references (drv.imageref), the pull decision, the
-- pull timeouts, and registry credentials that never show.
local cjson = require("cjson.safe")
local drv = require("support.drv")

local NO_DOCKER = { DOCKER_HOST = "unix:///nonexistent.sock" }
local DIGEST = "sha256:" .. string.rep("0123456789abcdef", 4)
local PASSWORD = "pw-Zq8v3-never-shown"

-- plain-text replace (no patterns)
local function replace(s, old, new)
  local i, j = assert(s:find(old, 1, true))
  return s:sub(1, i - 1) .. new .. s:sub(j + 1)
end

local function job(config, task_extra)
  return string.format([[
job "j" {
  datacenters = ["dc1"]
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
]], config, task_extra or "")
end

local function plan_text(text, args)
  local dir = drv.tmpdir()
  local path = drv.write(dir .. "/job.hcl", text)
  local argv = { "plan", "-data-dir", dir .. "/data" }
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
  end
  argv[#argv + 1] = path
  return drv.drvctl(argv, { env = NO_DOCKER, timeout = 20 }), dir
end

local function plan(text, args)
  local r = plan_text(text, args)
  assert.equal(0, r.code, r.output)
  local p = cjson.decode(r.stdout)
  assert.is_table(p, r.output)
  return p.tasks[1], r
end


describe("drvctl plan: image references", function()
  after_each(drv.cleanup)

  it("shows the normalised repository, the tag, the registry and the pull decision", function()
    local cases = {
      { 'image = "redis"', "redis", "docker.io/library/redis", "latest", "docker.io", "always" },
      { 'image = "redis:3.2"', "redis:3.2", "docker.io/library/redis", "3.2", "docker.io", "missing" },
      { 'image = "redis:3.2"\nforce_pull = true', "redis:3.2", "docker.io/library/redis", "3.2",
        "docker.io", "always" },
      { 'image = "https://127.0.0.1:5000/rsx/x:1"', "127.0.0.1:5000/rsx/x:1", "127.0.0.1:5000/rsx/x",
        "1", "127.0.0.1:5000", "missing" },
      { 'image = "localhost:5000/x:2@' .. DIGEST .. '"', "localhost:5000/x:2@" .. DIGEST,
        "localhost:5000/x", DIGEST, "localhost:5000", "missing" },
    }
    for _, c in ipairs(cases) do
      local t = plan(job(c[1]))
      local body = assert(cjson.decode(t.body) or t.body)
      if type(t.body) == "table" then
        body = t.body
      end
      assert.same({ c[2], c[2], c[3], c[4], c[5], c[6] },
        { t.image, body.Image, t.image_repo, t.image_tag, t.image_registry, t.pull }, c[1])
    end
  end)

  it("shows the pull timeouts: defaults, the task's and the agent's", function()
    local t = plan(job('image = "x:1"'))
    assert.equal(300000, t.image_pull_timeout_ms)
    assert.equal(120000, t.pull_activity_timeout_ms)
    local dir = drv.tmpdir()
    local conf = drv.write(dir .. "/agent.hcl",
      'plugin "docker" {\n  config {\n    pull_activity_timeout = "45s"\n  }\n}\n')
    t = plan(job('image = "x:1"\nimage_pull_timeout = "90s"'), { "-config", conf })
    assert.equal(90000, t.image_pull_timeout_ms)
    assert.equal(45000, t.pull_activity_timeout_ms)
  end)

  it("refuses a bad pull_activity_timeout as an agent config error (exit 78)", function()
    local dir = drv.tmpdir()
    local conf = drv.write(dir .. "/agent.hcl",
      'plugin "docker" {\n  config {\n    pull_activity_timeout = "0s"\n  }\n}\n')
    local r = plan_text(job('image = "x:1"'), { "-config", conf })
    assert.equal(78, r.code, r.output)
    assert.matches('agent%.hcl:3:5: plugin "docker" "pull_activity_timeout" must be a duration '
      .. 'from 1s to 24h, found "0s"', r.stderr)
  end)

  it("refuses an invalid reference at load time (exit 68, file:line:col, value, reason)", function()
    local r = plan_text(job('        image = "Redis:3"'))
    assert.equal(68, r.code, r.output)
    assert.matches('job%.hcl:7:9: task "web" config: invalid image reference "Redis:3" '
      .. '%(repository name must be lowercase%)', r.stderr)
    assert.equal("", r.stdout)
  end)

  it("refuses other schemes, digests of the wrong length and variables", function()
    for _, c in ipairs({
      { "http://127.0.0.1:5000/x:1", 'only an "https://" prefix is allowed' },
      { "x@sha256:abc", "sha256 digest must have 64 hex digits, found 3" },
      { "x@md5:" .. string.rep("a", 32), 'unsupported digest algorithm "md5"' },
      { "x:${NOMAD_TASK_NAME}", "image references are not interpolated" },
      { string.rep("a", 10000), "longer than 528 bytes" },
    }) do
      local r = plan_text(job('image = "' .. c[1] .. '"'))
      assert.equal(68, r.code, r.output)
      assert.truthy(r.stderr:find(c[2], 1, true), r.stderr)
    end
  end)
end)


describe("drvctl plan: registry credentials", function()
  after_each(drv.cleanup)

  local AUTH = string.format([[
image = "127.0.0.1:5000/rsx/x:1"
auth_soft_fail = true
auth {
  username = "robot-user"
  password = "%s"
  email = "robot@example.com"
  server_address = "https://127.0.0.1:5000/v2/"
}]], PASSWORD)

  it("never prints the password, on stdout or stderr", function()
    local t, r = plan(job(AUTH))
    assert.is_nil(r.stdout:find(PASSWORD, 1, true))
    assert.is_nil(r.stderr:find(PASSWORD, 1, true))
    for _, k in ipairs({ "auth", "auth_username", "auth_password", "auth_email", "auth_server",
        "auth_soft_fail" }) do
      assert.is_nil(t[k], k)
    end
    assert.is_nil(r.stdout:find("robot-user", 1, true))
    assert.equal("127.0.0.1:5000/rsx/x", t.image_repo)
  end)

  it("never prints the password when the plan fails or with debug logging", function()
    -- a second problem (bad image) makes the plan fail after the auth block was read
    local bad = replace(AUTH, "127.0.0.1:5000/rsx/x:1", "Bad:1")
    local dir = drv.tmpdir()
    local path = drv.write(dir .. "/job.hcl", job(bad))
    local r = drv.drvctl({ "plan", "-data-dir", dir .. "/data", path },
      { env = { DOCKER_HOST = NO_DOCKER.DOCKER_HOST, DRVCTL_LOG = "debug" }, timeout = 20 })
    assert.equal(68, r.code, r.output)
    assert.is_nil(r.output:find(PASSWORD, 1, true))
    local ok = plan_text(job(AUTH))
    assert.equal(0, ok.code, ok.output)
    assert.is_nil(ok.output:find(PASSWORD, 1, true))
  end)

  it("refuses a password with a line break without quoting it", function()
    local text = job(replace(AUTH, PASSWORD, "line1\\nline2-" .. PASSWORD))
    local r = plan_text(text)
    assert.equal(68, r.code, r.output)
    assert.matches('job%.hcl:%d+:%d+: task "web" config: auth password must not contain NUL or line breaks',
      r.stderr)
    assert.is_nil(r.output:find(PASSWORD, 1, true))
  end)

  it("refuses a server_address that is not a registry host", function()
    local r = plan_text(job(replace(AUTH, "https://127.0.0.1:5000/v2/", "127.0.0.1:99999")))
    assert.equal(68, r.code, r.output)
    assert.matches('invalid auth server_address "127%.0%.0%.1:99999" %(registry port must be between '
      .. "1 and 65535%)", r.stderr)
    assert.is_nil(r.output:find(PASSWORD, 1, true))
  end)
end)
