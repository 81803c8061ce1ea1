-- Privilege-widening options a job author asks for, on the real daemon:
-- with the default agent config each attack exits 77 and creates nothing;
-- with the one documented agent-config line the job runs and the container
-- really has what was asked for. See README "Security defaults".
local drv = require("support.drv")

local SLEEP = "trap 'exit 0' TERM INT; while :; do sleep 0.1; done"

-- drvctl run of a one-task job t in a fresh dir; agent: nil or config text
local function run(t, agent)
  local dir = drv.tmpdir()
  local job = drv.write_job(dir, t)
  local args = { "run", "-data-dir", dir .. "/data" }
  if agent then
    args[#args + 1] = "-config"
    args[#args + 1] = drv.write(dir .. "/agent.hcl", agent)
  end
  args[#args + 1] = job
  return drv.drvctl(args, { timeout = 60 }), dir
end

local function plugin(line)
  return 'plugin "docker" { config { ' .. line .. " } }\n"
end

-- containers drvctl created in this run (the run label and drvctl's own)
local function created()
  return drv.containers({ "label=drvctl.alloc_id" })
end

-- exit 77, the policy file and text on stderr, no container created
local function assert_refused(r, policy_file, text)
  assert.equal(77, r.code, r.output)
  assert.matches(policy_file, r.stderr, 1, true)
  if text then
    assert.matches(text, r.stderr, 1, true)
  end
  assert.same({}, created(), r.output)
end

local function host_netns()
  local f = io.popen("readlink /proc/self/ns/net")
  local s = f:read("l")
  f:close()
  return s
end

describe("attacks with privilege-widening options on the real daemon", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  describe("network_mode = host", function()
    local t = { config = 'network_mode = "host"', script = "readlink /proc/self/ns/net" }

    it("is refused by default", function()
      assert_refused(run(t), "policies/namespaces.lua", 'network_mode not in allow_network_modes: "host"')
    end)

    it("joins the host network namespace with allow_network_modes = [\"host\"]", function()
      local r = run(t, plugin('allow_network_modes = ["host"]'))
      assert.equal(0, r.code, r.output)
      assert.matches("t | " .. host_netns(), r.stdout, 1, true)
    end)

    it("stays in its own namespace by default", function()
      local r = run({ script = "readlink /proc/self/ns/net" })
      assert.equal(0, r.code, r.output)
      assert.not_matches(host_netns(), r.stdout, 1, true)
    end)
  end)

  it("refuses pid_mode = container:<another job's container>", function()
    local name = "victim-" .. drv.run_id
    drv.docker({ "run", "-d", "--name", name, "--label", drv.label, drv.IMAGE, "sh", "-c", SLEEP })
    local r = run({ config = ('pid_mode = "container:%s"'):format(name), script = "ps" })
    assert_refused(r, "policies/namespaces.lua", "pid_mode may only join a container of the same allocation")
  end)

  it("refuses network_mode = container:<another job's container> by ID prefix", function()
    local id = drv.docker({ "run", "-d", "--label", drv.label, drv.IMAGE, "sh", "-c", SLEEP })
      .stdout:match("%x+")
    local r = run({ config = ('network_mode = "container:%s"'):format(id:sub(1, 12)), script = "true" })
    assert_refused(r, "policies/namespaces.lua", "network_mode may only join")
  end)

  it("refuses another user-defined network with an alias and an address", function()
    local net = "internal-" .. drv.run_id:sub(1, 8)
    drv.docker({ "network", "create", "--internal", "--label", drv.label, "--subnet", "172.31.250.0/24", net })
    drv.on_cleanup(function()
      drv.docker({ "network", "rm", net }, { may_fail = true })
    end)
    local r = run({ config = ('network_mode = "%s"\nnetwork_aliases = ["payments"]\nipv4_address = "172.31.250.10"')
      :format(net), script = "true" })
    assert_refused(r, "policies/namespaces.lua", ('network not in allow_networks: "%s"'):format(net))
  end)

  describe("devices", function()
    local t = { config = 'devices = [{ host_path = "/dev/zero", container_path = "/dev/hostzero" }]',
      script = "head -c 3 /dev/hostzero | od -An -tx1" }

    it("refuses a host device by default", function()
      assert_refused(run(t), "policies/devices.lua", 'device not in allow_devices: "/dev/zero"')
    end)

    it("refuses a host block device with rwm", function()
      local r = run({ config = 'devices = [{ host_path = "/dev/loop0", cgroup_permissions = "rwm" }]',
        script = "true" })
      assert_refused(r, "policies/devices.lua", '"/dev/loop0"')
    end)

    it("hands the device in with allow_devices = [\"/dev/zero\"]", function()
      local r = run(t, plugin('allow_devices = ["/dev/zero"]'))
      assert.equal(0, r.code, r.output)
      assert.matches("t |  00 00 00", r.stdout, 1, true)
    end)
  end)

  describe("logging", function()
    local function syslog(address)
      return { config = ('logging {\n  type = "syslog"\n  config {\n    syslog-address = "%s"\n  }\n}')
        :format(address), script = "echo to-syslog" }
    end

    it("refuses syslog into a loopback tcp service by default", function()
      assert_refused(run(syslog("tcp://127.0.0.1:1")), "policies/logging.lua",
        'log driver not in allow_log_drivers: "syslog"')
    end)

    it("refuses a host key pair for syslog even when syslog is allowed", function()
      local t = { config = 'logging {\n  type = "syslog"\n  config {\n    syslog-address = "tcp+tls://127.0.0.1:1"\n'
        .. '    syslog-tls-cert = "/etc/ssl/private/host.pem"\n'
        .. '    syslog-tls-key = "/etc/ssl/private/host.key"\n  }\n}',
        script = "true" }
      assert_refused(run(t, plugin('allow_log_drivers = ["syslog"]')), "policies/logging.lua",
        "log option names a host file")
    end)

    it("logs to a loopback udp address with allow_log_drivers = [\"syslog\"]", function()
      local r = run(syslog("udp://127.0.0.1:5514"), plugin('allow_log_drivers = ["syslog"]'))
      assert.equal(0, r.code, r.output)
    end)
  end)

  it("refuses seccomp=unconfined by default", function()
    local r = run({ config = 'security_opt = ["seccomp=unconfined"]', script = "true" })
    assert_refused(r, "policies/confinement.lua", '"seccomp=unconfined"')
  end)

  it("runs without seccomp with allow_security_opt = [\"seccomp=unconfined\"]", function()
    local r = run({ config = 'security_opt = ["seccomp:unconfined"]', script = "grep Seccomp: /proc/self/status" },
      plugin('allow_security_opt = ["seccomp=unconfined"]'))
    assert.equal(0, r.code, r.output)
    assert.matches("t | Seccomp:%s+0", r.stdout)
  end)

  it("refuses a negative oom_score_adj by default", function()
    assert_refused(run({ config = "oom_score_adj = -500", script = "true" }), "policies/limits.lua",
      "oom_score_adj below 0")
  end)

  it("refuses memory below 10 MB", function()
    local r = run({ task_extra = "resources {\n  memory = 5\n}", script = "true" })
    assert_refused(r, "policies/limits.lua", "memory below the minimum of 10 MB")
  end)

  it("creates the container when a policy empties Dns and CapAdd (no \"Dns\": {})", function()
    local dir = drv.tmpdir()
    drv.write(dir .. "/zz-empty.lua", [[
return { policy_format = 1, name = "zz-empty",
  mutate = function(ctx)
    local hc = ctx.spec.HostConfig
    return {
      { op = "remove", path = "HostConfig.Dns", value = hc.Dns },
      { op = "remove", path = "HostConfig.CapAdd", value = hc.CapAdd },
    }
  end }
]])
    local r = run({ config = 'dns_servers = ["127.0.0.9"]\ncap_add = ["CHOWN"]', script = "cat /etc/resolv.conf" },
      ('policy_dir = "%s"\n'):format(dir))
    assert.equal(0, r.code, r.output)
    assert.not_matches("127.0.0.9", r.stdout, 1, true)
  end)
end)
