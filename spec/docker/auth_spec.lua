-- Registry credentials end to end: a TLS registry with htpasswd on
-- 127.0.0.1 and every auth source (task auth, docker.auth.config auths /
-- credHelpers / credsStore, docker.auth.helper), failing helpers with and
-- without auth_soft_fail, and the password nowhere in drvctl's output or
-- under its data dir. Helpers are the stubs in spec/fixtures/credhelpers,
-- put first on PATH. Every run pulls from the registry on 127.0.0.1, so
-- its agent config allows that (support.agentconf).
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")

local USER = "testuser"
-- unique per run, so a grep for it can only find a leak
local PASS = "pw-" .. drv.run_id:gsub("%-", "") .. "-Zq"
local HELPERS = drv.root .. "/spec/fixtures/credhelpers"

local function b64(s)
  return require("drv.registryauth").base64_encode(s)
end

local function helper_env(dir, extra)
  local env = {
    PATH = HELPERS .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin"),
    DRVTEST_CRED_LOG = dir .. "/helper.log",
  }
  for k, v in pairs(extra or {}) do
    env[k] = v
  end
  return env
end

-- The password appears in no output and no file under the data dir.
local function assert_no_secret(r, dir)
  assert.is_nil(r.output:find(PASS, 1, true), "password in drvctl's output:\n" .. r.output)
  local g = drv.sh("grep -r -l -F -e " .. drv.quote(PASS) .. " " .. drv.quote(dir .. "/data"),
    { shell = true })
  assert.equal(1, g.code, "password in files under the data dir:\n" .. g.output)
  local g64 = drv.sh("grep -r -l -F -e " .. drv.quote(b64(USER .. ":" .. PASS)) .. " "
    .. drv.quote(dir .. "/data"), { shell = true })
  assert.equal(1, g64.code, g64.output)
end

describe("registry auth", function()
  local reg, img, seq

  setup(function()
    drv.require_binary()
    drv.require_docker()
    reg = registry.start{ tls = true, users = { [USER] = PASS }, shared = true }
    img = registry.image{ marker = "auth-" .. drv.run_id }
    seq = 0
  end)
  teardown(function()
    if reg then
      reg:stop()
    end
  end)
  after_each(drv.cleanup)

  -- Pushes the image under a fresh repo and removes it locally: the run
  -- must pull it. Returns the full reference.
  local function fresh_ref()
    seq = seq + 1
    local ref = reg:push(img, "rsx/auth" .. seq .. ":1", { untag = true })
    assert.is_nil(drv.inspect(ref, "image"))
    return ref
  end

  -- Runs a one-task job on image `ref`; opts: config (extra HCL in
  -- config {}), options (agent client options), env.
  local function run(dir, ref, opts)
    opts = opts or {}
    local job = drv.write_job(dir, { task = "web", image = ref, script = "cat /marker",
                                     config = opts.config })
    local lines = { "client {", "  options {", '    "docker.cleanup.image" = "false"' }
    for k, v in pairs(opts.options or {}) do
      lines[#lines + 1] = string.format("    %s = %s", drv.hcl_string(k), drv.hcl_string(v))
    end
    lines[#lines + 1] = "  }"
    lines[#lines + 1] = "}"
    local agent = agentconf.trusted_registry(dir, table.concat(lines, "\n") .. "\n")
    local r = drv.drvctl({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
      { env = opts.env, timeout = 180 })
    drv.on_cleanup(function()
      drv.docker({ "rmi", "-f", ref }, { may_fail = true })
    end)
    return r
  end

  local function ran(r, ref)
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find("auth-" .. drv.run_id, 1, true), r.output)
    assert.is_table(drv.inspect(ref, "image"))
  end

  local function config_json(dir, t)
    return drv.write(dir .. "/docker-config.json", require("cjson").encode(t))
  end

  local function task_auth(password)
    return string.format("auth {\n  username = %s\n  password = %s\n}",
      drv.hcl_string(USER), drv.hcl_string(password))
  end

  it("pulls with the task's auth block; plan never shows the password", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local r = run(dir, ref, { config = task_auth(PASS) })
    ran(r, ref)
    assert_no_secret(r, dir)
    local p = drv.drvctl({ "plan", drv.write_job(dir, { task = "web", image = ref,
      script = "true", config = task_auth(PASS) }, "plan.hcl") })
    assert.equal(0, p.code, p.output)
    assert.is_nil(p.output:find(PASS, 1, true), p.output)
    -- pulled again (force_pull), with debug logging and -json events
    local job = drv.write_job(dir, { task = "web", image = ref, script = "cat /marker",
      config = task_auth(PASS) .. "\nforce_pull = true" }, "again.hcl")
    local mark = reg:mark()
    local trusted = agentconf.trusted_registry(dir, nil, "trusted.hcl")
    local j = drv.drvctl({ "run", "-json", "-config", trusted, "-data-dir", dir .. "/data", job },
      { env = { DRVCTL_LOG = "debug" }, timeout = 180 })
    assert.equal(0, j.code, j.output)
    assert.is_true(reg:manifest_requests(ref:match("/(rsx/[^:]+):"), "1", mark) >= 1)
    assert.is_truthy(j.stderr:find("from the task's auth block: credentials", 1, true), j.output)
    assert_no_secret(j, dir)
  end)

  it("fails clearly with a wrong password (exit 73, nothing created)", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local r = run(dir, ref, { config = task_auth("wrong-" .. PASS) })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('task "web"', 1, true), r.output)
    assert.is_truthy(r.stderr:lower():find("unauthorized") or r.stderr:lower():find("authentication"),
      r.output)
    assert.same({}, drv.containers(), r.output)
    assert.is_nil(drv.inspect(ref, "image"))
    assert_no_secret(r, dir)
  end)

  it("uses docker.auth.config auths (legacy URL key)", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local conf = config_json(dir, { auths = { ["https://" .. reg.host .. "/v1/"] =
      { auth = b64(USER .. ":" .. PASS) } } })
    local r = run(dir, ref, { options = { ["docker.auth.config"] = conf } })
    ran(r, ref)
    assert_no_secret(r, dir)
  end)

  it("asks credHelpers[<host>] with the registry host on stdin", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local conf = config_json(dir, { credHelpers = { [reg.host] = "drvtest" },
                                    credsStore = "drvfail" })
    local r = run(dir, ref, { options = { ["docker.auth.config"] = conf },
      env = helper_env(dir, { DRVTEST_CRED_USER = USER, DRVTEST_CRED_SECRET = PASS }) })
    ran(r, ref)
    assert.equal(reg.host .. "\n", drv.read(dir .. "/helper.log"))
    assert_no_secret(r, dir)
  end)

  it("asks credsStore when auths has only an empty entry (docker login with a store)", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local conf = config_json(dir, { auths = { [reg.host] = {} }, credsStore = "drvtest" })
    local r = run(dir, ref, { options = { ["docker.auth.config"] = conf },
      env = helper_env(dir, { DRVTEST_CRED_USER = USER, DRVTEST_CRED_SECRET = PASS }) })
    ran(r, ref)
    assert.equal(reg.host .. "\n", drv.read(dir .. "/helper.log"))
    assert_no_secret(r, dir)
  end)

  it("asks docker.auth.helper with the bare registry host", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local r = run(dir, ref, { options = { ["docker.auth.helper"] = "drvtest" },
      env = helper_env(dir, { DRVTEST_CRED_USER = USER, DRVTEST_CRED_SECRET = PASS }) })
    ran(r, ref)
    assert.equal(reg.host .. "\n", drv.read(dir .. "/helper.log"))
    assert_no_secret(r, dir)
    -- the tag is present now: no pull, so the helper is not asked again
    local again = run(dir, ref, { options = { ["docker.auth.helper"] = "drvtest" },
      env = helper_env(dir, { DRVTEST_CRED_USER = USER, DRVTEST_CRED_SECRET = PASS }) })
    ran(again, ref)
    assert.equal(reg.host .. "\n", drv.read(dir .. "/helper.log"))
  end)

  it("fails a task whose helper fails (exit 73, its stderr, never its stdout)", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    -- drvfail prints DRVTEST_CRED_SECRET on stdout and its complaint on stderr
    local r = run(dir, ref, { options = { ["docker.auth.helper"] = "drvfail" },
      env = helper_env(dir, { DRVTEST_CRED_SECRET = PASS }) })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('task "web": registry auth for "' .. reg.host
      .. '" from docker.auth.helper "drvfail": helper failed with exit status 1: '
      .. "drvfail: keychain is locked", 1, true), r.output)
    assert.same({}, drv.containers(), r.output)
    assert.is_nil(drv.inspect(ref, "image"))
    assert_no_secret(r, dir)
  end)

  it("with auth_soft_fail, a failing helper means an anonymous pull", function()
    local dir = drv.tmpdir()
    -- the TLS registry refuses anonymous pulls: the attempt shows in its log
    local ref = fresh_ref()
    local mark = reg:mark()
    local r = run(dir, ref, { config = "auth_soft_fail = true",
      options = { ["docker.auth.helper"] = "drvfail" },
      env = helper_env(dir, { DRVTEST_CRED_SECRET = PASS }) })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find("auth_soft_fail is set: pulling", 1, true), r.output)
    assert.is_truthy(r.stderr:find("drvfail: keychain is locked", 1, true), r.output)
    assert.is_true(reg:requests('HTTP/1.1" 401', mark, true) >= 1)
    assert.same({}, drv.containers(), r.output)
    assert_no_secret(r, dir)

    -- a registry without auth: the anonymous pull works and the task runs
    local open = registry.start()
    local ref2 = open:push(img, "rsx/soft:1", { untag = true })
    local r2 = run(dir, ref2, { config = "auth_soft_fail = true",
      options = { ["docker.auth.helper"] = "drvfail" },
      env = helper_env(dir, { DRVTEST_CRED_SECRET = PASS }) })
    ran(r2, ref2)
    assert.is_truthy(r2.stderr:find("auth_soft_fail is set: pulling", 1, true), r2.output)
    assert_no_secret(r2, dir)
  end)

  it("treats a helper's credentials-not-found as anonymous", function()
    local dir = drv.tmpdir()
    local open = registry.start()
    local ref = open:push(img, "rsx/nf:1", { untag = true })
    local r = run(dir, ref, { options = { ["docker.auth.helper"] = "drvtest" },
      env = helper_env(dir) })
    ran(r, ref)
    assert.equal(open.host .. "\n", drv.read(dir .. "/helper.log"))
  end)

  it("asks the helper for each task and pulls once for count = 3", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local mark = reg:mark()
    local job = drv.write_job(dir, { task = "web", image = ref, script = "cat /marker", count = 3 })
    local agent = agentconf.trusted_registry(dir, 'client {\n  options {\n'
      .. '    "docker.cleanup.image" = "false"\n    "docker.auth.helper" = "drvtest"\n  }\n}\n')
    drv.on_cleanup(function()
      drv.docker({ "rmi", "-f", ref }, { may_fail = true })
    end)
    local r = drv.drvctl({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
      { env = helper_env(dir, { DRVTEST_CRED_USER = USER, DRVTEST_CRED_SECRET = PASS }),
        timeout = 180 })
    assert.equal(0, r.code, r.output)
    local _, runs = r.stdout:gsub("auth%-" .. drv.run_id:gsub("%-", "%%-"), "")
    assert.equal(3, runs, r.output)
    assert.equal(string.rep(reg.host .. "\n", 3), drv.read(dir .. "/helper.log"))
    assert.equal(1, reg:manifest_requests(ref:match("/(rsx/[^:]+):"), "1", mark))
    assert_no_secret(r, dir)
  end)

  it("SIGINT while a helper runs: the helper is killed, nothing created, exit 130", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local job = drv.write_job(dir, { task = "web", image = ref, script = "cat /marker" })
    local agent = agentconf.trusted_registry(dir,
      'client {\n  options {\n    "docker.auth.helper" = "drvslow"\n  }\n}\n')
    local log = dir .. "/helper.log"
    local p = drv.spawn({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
      { env = helper_env(dir) })
    assert.is_true(drv.wait_until(function()
      return (drv.read(log) or ""):find("%d+\n") ~= nil
    end, 30, 0.05), "the helper never started")
    local hpid = tonumber(drv.read(log):match("(%d+)"))
    assert.is_truthy(drv.read("/proc/" .. hpid .. "/stat"))
    p:signal("INT")
    local code = p:wait(30)
    assert.equal(130, code, p.output)
    assert.is_true(drv.wait_until(function()
      return drv.read("/proc/" .. hpid .. "/stat") == nil
    end, 10, 0.05), "helper still running")
    -- its sleeping child was in its process group: gone too (no process
    -- of the group left but zombies waiting for init to reap them)
    local left
    assert.is_true(drv.wait_until(function()
      left = drv.sh("ps -o pid=,stat= -s " .. hpid .. " | grep -v ' Z' || true", { shell = true })
      return left.stdout == ""
    end, 10, 0.1), left and left.output)
    assert.same({}, drv.containers(), p.output)
    assert.is_nil(drv.inspect(ref, "image"))
  end)

  it("names a missing docker.auth.config at pull time (exit 73)", function()
    local dir = drv.tmpdir()
    local ref = fresh_ref()
    local r = run(dir, ref, { options = { ["docker.auth.config"] = dir .. "/nope.json" } })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('from docker.auth.config "' .. dir .. '/nope.json": cannot read',
      1, true), r.output)
    assert.same({}, drv.containers(), r.output)
  end)
end)
