-- Pulls from registries on loopback/private addresses, on the real daemon
-- with a real registry on 127.0.0.1 (support.registry): a job author may
-- not make dockerd send requests to the host's own services (server-side
-- request forgery, echoed back in the pull's error message). By default
-- the pull is refused with 77 before anything is asked of the registry or
-- of a credential helper; the operator's
-- `plugin "docker" { config { allow_private_registries = true } }`
-- (support.agentconf) restores pulls from such registries.
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")

local OFF = "pulls from private registries are off (allow_private_registries = true in the "
  .. "docker plugin config allows them)"

-- A credential helper on PATH that leaves a mark when it runs (and answers
-- anonymous: no credentials stored).
local function marking_helper(dir)
  local bin = dir .. "/bin"
  assert(os.execute("mkdir -p " .. drv.quote(bin)))
  local mark = dir .. "/helper.ran"
  drv.write(bin .. "/docker-credential-regmark", string.format(
    "#!/bin/sh\ncat >/dev/null\ntouch %s\necho 'credentials not found in native keychain' >&2\n"
      .. "exit 1\n", drv.quote(mark)))
  assert(os.execute("chmod 755 " .. drv.quote(bin .. "/docker-credential-regmark")))
  return { PATH = bin .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin") }, mark
end

local function job(dir, image, extra, name)
  return drv.write_job(dir, { task = "web", image = image, script = "cat /marker",
    config = extra }, name)
end

describe("pulls from a registry on a loopback address", function()
  local reg, ref, marker
  setup(function()
    drv.require_binary()
    drv.require_docker()
    reg = registry.start({ shared = true })
    marker = "private-" .. drv.run_id
    local img = registry.image({ marker = marker })
    ref = reg:push(img, "rsx/private:1", { untag = true })
    registry.remove_image(img)
  end)
  teardown(function()
    if reg then
      reg:stop()
    end
  end)
  before_each(function()
    reg:delete_local("rsx/private:1")
    assert.is_nil(drv.inspect(ref, "image"))
  end)
  after_each(drv.cleanup)

  it("are refused with 77 by default: no request reaches the registry, no helper runs, "
    .. "nothing is created", function()
    local port = reg.host:match(":(%d+)$")
    -- the registry as the job author may spell it: all of them are 127.0.0.1
    local spellings = {
      { reg.host, "is a loopback address" },
      { "localhost:" .. port, "resolves to " },
      { "2130706433:" .. port, "resolves to 127.0.0.1, a loopback address" },
      { "127.1:" .. port, "resolves to 127.0.0.1, a loopback address" },
      { "0x7f.1:" .. port, "resolves to 127.0.0.1, a loopback address" },
    }
    for _, s in ipairs(spellings) do
      for _, pull in ipairs({ "missing", "always" }) do
        local dir = drv.tmpdir()
        local env, mark = marking_helper(dir)
        -- a credential helper is configured: it must not run either
        local conf = drv.write(dir .. "/agent.hcl",
          'plugin "docker" {\n  config {\n    auth {\n      helper = "regmark"\n    }\n  }\n}\n')
        local image = s[1] .. "/rsx/private:1"
        local jobfile = job(dir, image, pull == "always" and "force_pull = true" or nil)
        local since = reg:mark()
        local r = drv.drvctl({ "run", "-config", conf, "-data-dir", dir .. "/data", jobfile },
          { timeout = 60, env = env })
        local what = image .. " (" .. pull .. ")\n" .. r.output
        assert.equal(77, r.code, what)
        assert.is_truthy(r.stderr:find('drvctl: task "web": image registry "' .. s[1] .. '" '
          .. s[2], 1, true), what)
        assert.is_truthy(r.stderr:find(OFF, 1, true), what)
        -- no pull was started: no progress line
        assert.is_falsy(r.stderr:find("| pulling", 1, true), what)
        drv.sleep(0.2)
        assert.equal(0, reg:requests(".", since), what .. "\nregistry log:\n" .. reg:log())
        assert.is_false(drv.exists(mark), what)
        assert.same({}, drv.containers(), what)
        assert.is_nil(drv.inspect(image, "image"), what)
        assert.same({}, reg:local_refs(), what)
      end
    end
  end)

  it("count = 5 on a loopback registry: 77 with the refusal on every run, no request", function()
    local dir = drv.tmpdir()
    local jobfile = drv.write_job(dir, { task = "web", image = reg.host .. "/rsx/private:latest",
      script = "true", count = 5 })
    local since = reg:mark()
    for i = 1, 5 do
      local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", jobfile }, { timeout = 60 })
      assert.equal(77, r.code, "run " .. i .. "\n" .. r.output)
      assert.is_truthy(r.stderr:find('task "web": image registry "' .. reg.host
        .. '" is a loopback address: ' .. OFF, 1, true), "run " .. i .. "\n" .. r.output)
      assert.same({}, drv.containers(), r.output)
    end
    assert.equal(0, reg:requests(".", since), reg:log())
  end)

  it("run with the README's restore line (allow_private_registries = true): the job pulls "
    .. "and runs", function()
    local line = 'plugin "docker" { config { allow_private_registries = true } }'
    local readme = assert(drv.read(drv.root .. "/README.md"))
    assert.is_truthy(readme:find("| `" .. line .. "` |", 1, true), "README lacks " .. line)
    local dir = drv.tmpdir()
    local conf = drv.write(dir .. "/agent.hcl", line .. "\n")
    local since = reg:mark()
    local r = drv.drvctl({ "run", "-config", conf, "-data-dir", dir .. "/data", job(dir, ref) },
      { timeout = 120 })
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find(marker, 1, true), r.output)
    assert.is_truthy(r.stderr:find("web[0] | pulling " .. ref, 1, true), r.output)
    assert.is_true(reg:manifest_requests("rsx/private", "1", since) >= 1,
      r.output .. "\nregistry log:\n" .. reg:log())
    assert.is_truthy(drv.inspect(ref, "image"), r.output)
    assert.same({}, drv.containers(), r.output)
  end)

  it("the same job without the option is refused again after the image was removed", function()
    -- the option is per agent config, not remembered: a run without it
    -- after a trusted run asks nothing of the registry
    local dir = drv.tmpdir()
    local r = drv.drvctl({ "run", "-config", agentconf.trusted_registry(dir), "-data-dir",
      dir .. "/data", job(dir, ref) }, { timeout = 120 })
    assert.equal(0, r.code, r.output)
    reg:delete_local("rsx/private:1")
    local since = reg:mark()
    r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job(dir, ref, nil, "again.hcl") },
      { timeout = 60 })
    assert.equal(77, r.code, r.output)
    assert.equal(0, reg:requests(".", since), r.output .. "\nregistry log:\n" .. reg:log())
    assert.same({}, drv.containers(), r.output)
  end)

  it("uses an image of a private registry that is already present without a check "
    .. "or a request (non-latest tag: no pull)", function()
    assert.equal(0, reg:pull("rsx/private:1").code)
    local dir = drv.tmpdir()
    local since = reg:mark()
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job(dir, ref) }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find(marker, 1, true), r.output)
    assert.equal(0, reg:requests(".", since), r.output)
  end)
end)
