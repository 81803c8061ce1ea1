-- The shipped policies (policies/*.lua) against real containers: what they
-- deny creates nothing, and what they allow or drop really shows inside the
-- container (capability masks read from /proc/self/status).
local drv = require("support.drv")
local cjson = require("cjson.safe")

-- Docker's default capabilities without NET_RAW: the shipped whitelist.
local DEFAULT_CAPS = { "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
  "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
  "SYS_CHROOT" }

-- Capability bit numbers (linux/capability.h).
local CAP = { CHOWN = 0, NET_RAW = 13, SYS_ADMIN = 21, SYS_TIME = 25 }

-- Prints the effective capability mask of the task's shell.
local CAPEFF = "grep CapEff /proc/self/status"

local SLEEP = "trap 'exit 0' TERM INT; echo ready; while :; do sleep 0.1; done"

-- Writes the whitelist agent config (DEFAULT_CAPS plus extra) into dir.
local function whitelist_config(dir, extra)
  local caps = table.move(DEFAULT_CAPS, 1, #DEFAULT_CAPS, 1, {})
  for _, c in ipairs(extra or {}) do
    caps[#caps + 1] = c
  end
  return (drv.fixture("docker/policies/whitelist.hcl", dir, { CAPS = table.concat(caps, ",") }))
end

-- drvctl run|plan of job in dir with an optional agent config.
local function drvctl(cmd, dir, job, agent)
  local args = { cmd, "-data-dir", dir .. "/data" }
  if agent then
    args[#args + 1] = "-config"
    args[#args + 1] = agent
  end
  args[#args + 1] = job
  return drv.drvctl(args, { timeout = 60 })
end

-- Runs a one-task job to completion in a fresh dir. agent: nil, or a
-- function(dir) returning the agent config path.
-- Returns the result, the data dir and the temp dir.
local function run(t, agent)
  local dir = drv.tmpdir()
  local job = drv.write_job(dir, t)
  local r = drvctl("run", dir, job, agent and agent(dir))
  return r, dir .. "/data", dir
end

-- The task's CapEff mask (integer) from its "t | CapEff:\t<hex>" line.
local function capeff(r)
  local hex = r.stdout:match("t | CapEff:%s*(%x+)")
  assert.is_string(hex, "no CapEff line\n" .. r.output)
  return assert(math.tointeger(tonumber(hex, 16)))
end

local function has_cap(mask, name)
  return (mask >> CAP[name]) & 1 == 1
end

-- Asserts a denial: exit 77 and a message naming the policy file.
local function assert_denied(r, policy_file, offending)
  assert.equal(77, r.code, r.output)
  assert.is_truthy(r.stderr:find(policy_file, 1, true), r.output)
  if offending then
    assert.is_truthy(r.stderr:find(offending, 1, true), r.output)
  end
end

describe("policies on real containers", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  describe("a task denied by the capabilities policy", function()
    it("exits 77 naming policies/capabilities.lua and the capability", function()
      local r = run({ config = 'cap_add = ["SYS_ADMIN"]', script = "true" })
      assert_denied(r, "policies/capabilities.lua", "SYS_ADMIN")
    end)

    it("leaves no container behind", function()
      local r = run({ config = 'cap_add = ["SYS_ADMIN"]', script = "true" })
      assert.equal(77, r.code, r.output)
      assert.same({}, drv.containers(), r.output)
    end)

    it("leaves no alloc dir in the data dir", function()
      local r, data = run({ config = 'cap_add = ["SYS_ADMIN"]', script = "true" })
      assert.equal(77, r.code, r.output)
      assert.same({}, drv.alloc_ids(data), r.output)
    end)

    it("pulls no image (denied before the pull is tried)", function()
      -- an image no registry has: a pull attempt would exit 73, not 77
      local image = "127.0.0.1:1/drvctl-test/denied:" .. drv.run_id
      local r = run({ image = image, config = 'cap_add = ["SYS_ADMIN"]', script = "true" })
      assert.equal(77, r.code, r.output)
      assert.is_falsy(r.stderr:find("pull", 1, true), r.output)
      local inspect = drv.docker({ "image", "inspect", image }, { may_fail = true })
      assert.are_not.equal(0, inspect.code, inspect.output)
    end)
  end)

  it("denies privileged = true by default (exit 77, policies/privileged.lua)", function()
    local r = run({ config = "privileged = true", script = "true" })
    assert_denied(r, "policies/privileged.lua")
    assert.same({}, drv.containers(), r.output)
  end)

  it("denies pid_mode = \"host\" while privileged containers are disabled", function()
    local r = run({ config = 'pid_mode = "host"', script = "true" })
    assert_denied(r, "policies/privileged.lua", "pid_mode")
    assert.same({}, drv.containers(), r.output)
  end)

  it("denies a host path volume by default (exit 77, policies/volumes.lua)", function()
    local r, data = run({ config = 'volumes = ["/etc:/x"]', script = "true" })
    assert_denied(r, "policies/volumes.lua", "/etc")
    assert.same({}, drv.containers(), r.output)
    assert.same({}, drv.alloc_ids(data), r.output)
  end)

  it("denies a relative volume that climbs out of the alloc dir", function()
    local r = run({ config = 'volumes = ["../../../../etc:/x"]', script = "true" })
    assert_denied(r, "policies/volumes.lua", "/etc")
    assert.same({}, drv.containers(), r.output)
  end)

  it("mounts a relative volume inside the task dir", function()
    local r, data = run({ config = 'volumes = ["local/shared:/shared"]',
      script = "echo via-volume > /shared/v.txt" })
    assert.equal(0, r.code, r.output)
    local alloc = drv.alloc_ids(data)[1]
    assert.is_string(alloc, r.output)
    assert.equal("via-volume\n", drv.read(data .. "/alloc/" .. alloc .. "/t/local/shared/v.txt"),
      r.output)
  end)

  describe("capabilities inside the container", function()
    it("has no NET_RAW under the default whitelist", function()
      local r = run({ script = CAPEFF })
      assert.equal(0, r.code, r.output)
      local mask = capeff(r)
      assert.is_false(has_cap(mask, "NET_RAW"), string.format("CapEff %x\n%s", mask, r.output))
      assert.is_true(has_cap(mask, "CHOWN"), string.format("CapEff %x\n%s", mask, r.output))
    end)

    it("has NET_RAW when the whitelist includes it", function()
      local r = run({ script = CAPEFF }, function(dir)
        return whitelist_config(dir, { "NET_RAW" })
      end)
      assert.equal(0, r.code, r.output)
      local mask = capeff(r)
      assert.is_true(has_cap(mask, "NET_RAW"), string.format("CapEff %x\n%s", mask, r.output))
    end)

    it("has SYS_TIME from cap_add when the whitelist allows it", function()
      local r = run({ config = 'cap_add = ["SYS_TIME"]', script = CAPEFF }, function(dir)
        return whitelist_config(dir, { "SYS_TIME" })
      end)
      assert.equal(0, r.code, r.output)
      local mask = capeff(r)
      assert.is_true(has_cap(mask, "SYS_TIME"), string.format("CapEff %x\n%s", mask, r.output))
      assert.is_false(has_cap(mask, "SYS_ADMIN"), string.format("CapEff %x\n%s", mask, r.output))
    end)

    it("lacks CHOWN after cap_drop = [\"CHOWN\"]", function()
      local r = run({ config = 'cap_drop = ["CHOWN"]', script = CAPEFF })
      assert.equal(0, r.code, r.output)
      local mask = capeff(r)
      assert.is_false(has_cap(mask, "CHOWN"), string.format("CapEff %x\n%s", mask, r.output))
    end)
  end)

  it("applies a whitelist edit in the agent config file on the next run", function()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { config = 'cap_add = ["SYS_TIME"]', script = CAPEFF })
    local agent = whitelist_config(dir)
    local before = drvctl("run", dir, job, agent)
    assert_denied(before, "policies/capabilities.lua", "SYS_TIME")
    whitelist_config(dir, { "SYS_TIME" })   -- rewrites the same file
    local after = drvctl("run", dir, job, agent)
    assert.equal(0, after.code, after.output)
    assert.is_true(has_cap(capeff(after), "SYS_TIME"), after.output)
  end)

  describe("privileged = true with docker.privileged.enabled", function()
    -- Whether this daemon can start a privileged container at all: inside
    -- a sandbox whose capability bounding set lacks a capability (e.g.
    -- SYS_RESOURCE), runc fails with "unable to apply caps", whoever asks.
    local daemon_can = nil
    local function daemon_runs_privileged()
      if daemon_can == nil then
        local r = drv.docker({ "run", "--rm", "--privileged", "--label", drv.label,
          drv.IMAGE, "true" }, { may_fail = true })
        daemon_can = r.code == 0
      end
      return daemon_can
    end

    it("plans a privileged create body", function()
      local dir = drv.tmpdir()
      local job = drv.write_job(dir, { config = "privileged = true", script = "true" })
      local r = drvctl("plan", dir, job, drv.fixture("docker/policies/privileged.hcl", dir))
      assert.equal(0, r.code, r.output)
      local plan = assert(cjson.decode(r.stdout), r.output)
      local body = plan.tasks and plan.tasks[1] and plan.tasks[1].body or {}
      assert.is_true((body.HostConfig or {}).Privileged, r.output)
    end)

    it("runs a privileged container (Privileged=true in inspect)", function()
      local dir = drv.tmpdir()
      local job = drv.write_job(dir, { config = "privileged = true", script = SLEEP,
        kill_timeout = "2s" })
      local agent = drv.fixture("docker/policies/privileged.hcl", dir)
      local proc = drv.spawn({ "run", "-data-dir", dir .. "/data", "-config", agent, job })
      local id = drv.wait_until(function()
        return drv.containers({ "status=running" })[1] or (proc:exited() and "exited")
      end, 30)
      local c = id and id ~= "exited" and drv.inspect(id, "container") or nil
      proc:signal("INT")
      proc:wait(30)
      if daemon_runs_privileged() then
        assert.is_table(c, "the container never ran\n" .. tostring(proc.output))
        assert.is_true(c.HostConfig.Privileged, proc.output)
      else
        -- the policy let it through; the daemon's runtime refused to start it
        assert.equal(75, proc.code, proc.output)
        assert.is_truthy(proc:stderr():find("unable to apply caps", 1, true), proc.output)
        assert.is_falsy(proc:stderr():find("policies/privileged.lua", 1, true), proc.output)
      end
    end)
  end)
end)
