local agent = require("drv.agent")

local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work" }


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


local function host(extra)
  local h = {}
  for k, v in pairs(HOST) do
    h[k] = v
  end
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end


local function load(src, h)
  return agent.load(src, "agent.hcl", h or HOST)
end


describe("agent.load", function()
  describe("without a config file", function()
    local a

    before_each(function()
      a = assert(load(nil))
    end)

    it("uses the host's default data dir", function()
      assert.equal("/var/lib/drvctl", a.data_dir)
    end)

    it("uses Nomad's node defaults", function()
      assert.equal("dc1", a.datacenter)
      assert.equal("global", a.region)
      assert.equal(30000, a.max_kill_timeout_ms)
    end)

    it("uses the default docker socket", function()
      assert.equal("unix:///var/run/docker.sock", a.endpoint)
      assert.is_nil(a.tls_ca)
    end)

    it("has secure option defaults", function()
      assert.same({
        caps_whitelist = nil,
        volumes_enabled = false,
        volumes_selinuxlabel = nil,
        privileged_enabled = false,
        allow_runtimes = { "runc" },
        policy_options = {},
        allow_network_modes = {},
        allow_networks = {},
        allow_container_namespaces = false,
        allow_devices = {},
        allow_log_drivers = {},
        allow_security_opt = {},
        cleanup_image = true,
        cleanup_image_delay_ms = 180000,
        cleanup_container = true,
        pull_activity_timeout_ms = 120000,
        allow_private_registries = false,
      }, a.options)
    end)
  end)

  describe("endpoint precedence", function()
    it("prefers the configured endpoint over DOCKER_HOST", function()
      local a = assert(load('plugin "docker" {\n  config {\n    endpoint = "tcp://h:1"\n  }\n}\n',
        host({ docker_host = "tcp://env:2" })))
      assert.equal("tcp://h:1", a.endpoint)
    end)

    it("uses DOCKER_HOST when nothing is configured", function()
      local a = assert(load("", host({ docker_host = "tcp://env:2" })))
      assert.equal("tcp://env:2", a.endpoint)
    end)

    it("takes TLS files from DOCKER_CERT_PATH with DOCKER_TLS_VERIFY", function()
      local a = assert(load(nil, host({ docker_host = "tcp://env:2376", docker_tls_verify = "1",
        docker_cert_path = "/certs" })))
      assert.same({ "/certs/ca.pem", "/certs/cert.pem", "/certs/key.pem" },
        { a.tls_ca, a.tls_cert, a.tls_key })
    end)

    it("ignores the environment's TLS when an endpoint is configured", function()
      local a = assert(load('client {\n  options {\n    "docker.endpoint" = "unix:///x.sock"\n  }\n}\n',
        host({ docker_host = "tcp://env:2376", docker_tls_verify = "1", docker_cert_path = "/c" })))
      assert.equal("unix:///x.sock", a.endpoint)
      assert.is_nil(a.tls_ca)
    end)
  end)

  it("resolves a relative data_dir against the working directory", function()
    local a = assert(load('data_dir = "./state/../drv"\n'))
    assert.equal("/work/drv", a.data_dir)
  end)

  describe("legacy client options", function()
    local a

    before_each(function()
      a = assert(agent.load(read("spec/fixtures/agent/legacy.hcl"), "legacy.hcl", HOST))
    end)

    it("reads the node fields", function()
      assert.same({ "/work/state", "eu1", "europe", "node-1", { rack = "r12" }, 60000 },
        { a.data_dir, a.datacenter, a.region, a.name, a.meta, a.max_kill_timeout_ms })
    end)

    it("reads the endpoint and its TLS files", function()
      assert.same({ "tcp://10.0.0.5:2376", "/etc/docker/ca.pem", "/etc/docker/cert.pem",
        "/etc/docker/key.pem" }, { a.endpoint, a.tls_ca, a.tls_cert, a.tls_key })
    end)

    it("normalises the docker options", function()
      assert.same({
        caps_whitelist = { "CHOWN", "KILL", "NET_BIND_SERVICE" },
        volumes_enabled = true,
        volumes_selinuxlabel = "z",
        privileged_enabled = true,
        allow_runtimes = { "runc" },
        policy_options = {},
        allow_network_modes = {},
        allow_networks = {},
        allow_container_namespaces = false,
        allow_devices = {},
        allow_log_drivers = {},
        allow_security_opt = {},
        cleanup_image = false,
        cleanup_image_delay_ms = 600000,
        cleanup_container = true,
        auth_config = "/etc/docker-auth.json",
        auth_helper = "ecr",
        pull_activity_timeout_ms = 120000,
        allow_private_registries = false,
      }, a.options)
    end)
  end)

  describe("the plugin block", function()
    local a

    before_each(function()
      a = assert(agent.load(read("spec/fixtures/agent/plugin.hcl"), "plugin.hcl", HOST))
    end)

    it("reads the endpoint and TLS", function()
      assert.same({ "unix:///run/user/1000/docker.sock", "/tls/ca.pem", "/tls/cert.pem",
        "/tls/key.pem" }, { a.endpoint, a.tls_ca, a.tls_cert, a.tls_key })
    end)

    it("normalises the docker options", function()
      assert.same({
        caps_whitelist = { "CHOWN", "NET_RAW" },
        volumes_enabled = true,
        volumes_selinuxlabel = "Z",
        privileged_enabled = true,
        allow_runtimes = { "runc", "runsc" },
        policy_options = {},
        allow_network_modes = {},
        allow_networks = {},
        allow_container_namespaces = false,
        allow_devices = {},
        allow_log_drivers = {},
        allow_security_opt = {},
        cleanup_image = false,
        cleanup_image_delay_ms = 3600000,
        cleanup_container = false,
        auth_config = "/etc/auth.json",
        auth_helper = "pass",
        pull_activity_timeout_ms = 120000,
        allow_private_registries = false,
      }, a.options)
    end)

    it("resolves policy_dir against the working directory", function()
      assert.equal("/work/policies", a.policy_dir)
    end)
  end)

  it("reads per-policy options from the plugin block", function()
    local a = assert(load([[
plugin "docker" {
  config {
    policy_options {
      registries { enabled = true  allow = ["docker.io", "registry.example.com:5000"] }
      resources { max_memory_mb = 2048 }
    }
  }
}
]]))
    assert.same({
      registries = { enabled = true, allow = { "docker.io", "registry.example.com:5000" } },
      resources = { max_memory_mb = 2048 },
    }, a.options.policy_options)
  end)

  describe("credential helper names", function()
    it("accepts a plain name from either spelling", function()
      local a = assert(load('client {\n  options {\n    "docker.auth.helper" = "ecr-login"\n  }\n}\n'))
      assert.equal("ecr-login", a.options.auth_helper)
      a = assert(load('plugin "docker" {\n  config {\n    auth {\n      helper = "pass"\n    }\n  }\n}\n'))
      assert.equal("pass", a.options.auth_helper)
    end)

    it("refuses a path or anything docker-credential-<name> would not find on PATH", function()
      for _, v in ipairs({ "../../tmp/evil", "/bin/sh", "a b", "Ecr", "-x", "", "x\\n" }) do
        local a, problems = load('client {\n  options {\n    "docker.auth.helper" = "' .. v
          .. '"\n  }\n}\n')
        assert.is_nil(a, v)
        assert.equal("config", problems[1].kind)
        assert.matches("agent.hcl:3:5: credential helper name not allowed", problems[1].message,
          1, true)
      end
      local a, problems = load('plugin "docker" {\n  config {\n    auth {\n      helper = "/bin/x"\n'
        .. '    }\n  }\n}\n')
      assert.is_nil(a)
      assert.equal('agent.hcl:4:7: credential helper name not allowed (a-z 0-9 . _ - only, run as '
        .. 'docker-credential-<name> from PATH): "/bin/x"', problems[1].message)
    end)
  end)

  describe("pull_activity_timeout", function()
    local function plugin(v)
      return load('plugin "docker" {\n  config {\n    pull_activity_timeout = ' .. v .. '\n  }\n}\n')
    end

    it("defaults to 2m", function()
      assert.equal(120000, assert(load("")).options.pull_activity_timeout_ms)
      assert.equal(120000, agent.defaults(HOST).options.pull_activity_timeout_ms)
    end)

    it("reads a duration from the plugin block", function()
      assert.equal(30000, assert(plugin('"30s"')).options.pull_activity_timeout_ms)
      assert.equal(86400000, assert(plugin('"24h"')).options.pull_activity_timeout_ms)
      assert.equal(5400000, assert(plugin('"1h30m"')).options.pull_activity_timeout_ms)
    end)

    it("refuses zero, negative, tiny, huge and malformed values", function()
      for _, v in ipairs({ '"0s"', '"0"', '"-5s"', '"999ms"', '"25h"', '"1000000h"', '"2 m"',
          '"forever"', '""' }) do
        local a, problems = plugin(v)
        assert.is_nil(a, v)
        assert.equal("config", problems[1].kind)
        assert.equal('agent.hcl:3:5: plugin "docker" "pull_activity_timeout" must be a duration '
          .. 'from 1s to 24h, found ' .. v, problems[1].message)
      end
    end)

    it("refuses a value that is not a string", function()
      local a, problems = plugin("120")
      assert.is_nil(a)
      assert.matches("pull_activity_timeout", problems[1].message)
    end)

    it("is not a legacy client option", function()
      local a, problems = load('client {\n  options {\n    "docker.pull_activity_timeout" = "1m"\n  }\n}\n')
      assert.is_nil(a)
      assert.matches('unknown client option "docker.pull_activity_timeout"', problems[1].message)
    end)
  end)

  describe("allow_private_registries", function()
    local function plugin(v)
      return load('plugin "docker" {\n  config {\n    allow_private_registries = ' .. v
        .. '\n  }\n}\n')
    end

    it("is off by default (pulls from loopback/private registries are refused)", function()
      assert.is_false(assert(load("")).options.allow_private_registries)
      assert.is_false(agent.defaults(HOST).options.allow_private_registries)
      assert.is_false(assert(load('plugin "docker" {\n  config {\n  }\n}\n'))
        .options.allow_private_registries)
    end)

    it("reads a bool from the plugin block", function()
      assert.is_true(assert(plugin("true")).options.allow_private_registries)
      assert.is_false(assert(plugin("false")).options.allow_private_registries)
    end)

    it("a later plugin block overrides an earlier one only where it sets it", function()
      local a = assert(load('plugin "docker" {\n  config {\n    allow_private_registries = true\n'
        .. '  }\n}\nplugin "docker" {\n  config {\n    pull_activity_timeout = "5s"\n  }\n}\n'))
      assert.is_true(a.options.allow_private_registries)
      assert.equal(5000, a.options.pull_activity_timeout_ms)
    end)

    it("refuses a value that is not a bool", function()
      for _, v in ipairs({ '"yes"', "1", '"true"' }) do
        local a, problems = plugin(v)
        assert.is_nil(a, v)
        assert.equal("config", problems[1].kind)
        assert.matches("allow_private_registries", problems[1].message)
      end
    end)

    it("is not a legacy client option", function()
      local a, problems = load('client {\n  options {\n    "docker.allow_private_registries" = "true"\n  }\n}\n')
      assert.is_nil(a)
      assert.matches('unknown client option "docker.allow_private_registries"', problems[1].message)
    end)
  end)

  it("lets the plugin block override legacy options", function()
    local a = assert(load([[
client {
  options {
    "docker.privileged.enabled" = "true"
  }
}
plugin "docker" {
  config {
    allow_privileged = false
  }
}
]]))
    assert.is_false(a.options.privileged_enabled)
  end)

  describe("problems", function()
    local problems

    before_each(function()
      local a
      a, problems = agent.load(read("spec/fixtures/agent/invalid.hcl"), "invalid.hcl", HOST)
      assert.is_nil(a)
    end)

    it("are all of kind config", function()
      for _, p in ipairs(problems) do
        assert.equal("config", p.kind)
      end
    end)

    it("name unknown top-level keys with their position", function()
      assert.equal('invalid.hcl:2:1: unknown key "dat_dir" in agent config, did you mean "data_dir"?',
        problems[1].message)
    end)

    it("name bad option values", function()
      assert.equal('invalid.hcl:7:5: option "docker.cleanup.image" must be true or false, found "maybe"',
        problems[2].message)
    end)

    it("name unknown docker options", function()
      assert.equal('invalid.hcl:6:5: unknown client option "docker.endpont", did you mean "docker.endpoint"?',
        problems[3].message)
    end)

    it("name unknown plugin keys", function()
      assert.equal('invalid.hcl:13:5: unknown key "allow_privilegd" in plugin "docker" config, '
        .. 'did you mean "allow_privileged"?', problems[4].message)
    end)
  end)

  it("reports a bad duration", function()
    local a, problems = load('max_kill_timeout = "forever"\n')
    assert.is_nil(a)
    assert.same({ { kind = "config",
      message = 'agent.hcl:1:1: invalid duration for "max_kill_timeout": "forever"' } }, problems)
  end)

  it("reports HCL syntax errors as config problems", function()
    local a, problems = load('client {\n')
    assert.is_nil(a)
    assert.equal("config", problems[1].kind)
    assert.matches("^agent%.hcl:%d+:%d+: ", problems[1].message)
  end)

  describe("client node settings", function()
    it("are read from the client block", function()
      local a = assert(load(read("spec/fixtures/agent/client.hcl")))
      assert.same({ "eth0", "batch", 4000, 21000, 21999, { rack = "r12" } }, {
        a.network_interface, a.node_class, a.cpu_total_compute, a.min_dynamic_port,
        a.max_dynamic_port, a.meta,
      })
    end)

    it("default to Nomad's dynamic port range", function()
      local a = assert(load(nil))
      assert.same({ 20000, 32000 }, { a.min_dynamic_port, a.max_dynamic_port })
    end)

    it("leave interface, class and compute unset by default", function()
      local a = assert(load(""))
      assert.same({}, { a.network_interface, a.node_class, a.cpu_total_compute })
    end)

    it("keep the default maximum when only the minimum is set", function()
      local a = assert(load("client {\n  min_dynamic_port = 25000\n}\n"))
      assert.same({ 25000, 32000 }, { a.min_dynamic_port, a.max_dynamic_port })
    end)

    it("refuse a minimum above the maximum", function()
      local a, problems = load("client {\n  min_dynamic_port = 33000\n}\n")
      assert.is_nil(a)
      assert.same({ { kind = "config", message = 'agent.hcl:2:3: client "min_dynamic_port" must '
        .. 'be less than "max_dynamic_port", found 33000 and 32000' } }, problems)
    end)

    it("refuse equal bounds at the maximum", function()
      local _, problems = load("client {\n  min_dynamic_port = 30000\n  max_dynamic_port = 30000\n}\n")
      assert.matches('^agent%.hcl:3:3: client "min_dynamic_port" must be less than', problems[1].message)
    end)

    it("refuse a port outside 1-65535", function()
      local _, problems = load("client {\n  max_dynamic_port = 70000\n}\n")
      assert.same({ { kind = "config", message = 'agent.hcl:2:3: client "max_dynamic_port" must '
        .. "be between 1 and 65535, found 70000" } }, problems)
    end)

    it("refuse a non-positive cpu_total_compute", function()
      local _, problems = load("client {\n  cpu_total_compute = 0\n}\n")
      assert.same({ { kind = "config", message = 'agent.hcl:2:3: client "cpu_total_compute" must '
        .. "be a positive number of MHz, found 0" } }, problems)
    end)

    it("refuse an empty network_interface", function()
      local _, problems = load('client {\n  network_interface = ""\n}\n')
      assert.same({ { kind = "config",
        message = 'agent.hcl:2:3: client "network_interface" must not be empty' } }, problems)
    end)

    it("refuse a port range given as text", function()
      local _, problems = load('client {\n  min_dynamic_port = "20000"\n}\n')
      assert.equal("config", problems[1].kind)
      assert.matches('^agent%.hcl:2:3: wrong type for key "min_dynamic_port"', problems[1].message)
    end)
  end)
end)
