-- policies/logging.lua, as attacks: a log driver runs inside dockerd as
-- root on the host network; a job must not point it at loopback services,
-- host key pairs or host sockets.
local kit = require("policykit")

local function agent(line)
  return 'plugin "docker" { config { ' .. line .. ' } }'
end

local function logging(t, config)
  local lines = {}
  for k, v in pairs(config or {}) do
    lines[#lines + 1] = ('%s = "%s"'):format(k, v)
  end
  table.sort(lines)
  return ('logging {\n type = "%s"\n config {\n%s\n }\n}'):format(t, table.concat(lines, "\n"))
end

local SYSLOG = { agent = agent('allow_log_drivers = ["syslog"]') }
local FLUENTD = { agent = agent('allow_log_drivers = ["fluentd"]') }

describe("policies/logging.lua", function()
  it("allows the default json-file logging", function()
    kit.job(""):allowed():has("HostConfig.LogConfig.Type", "json-file")
  end)

  it("allows json-file and local with their size options", function()
    kit.job(logging("json-file", { ["max-size"] = "10m", ["max-file"] = "3" })):allowed()
    kit.job(logging("local", { ["max-size"] = "10m", compress = "true" })):allowed()
  end)

  it("denies syslog into a loopback-only service", function()
    kit.job(logging("syslog", { ["syslog-address"] = "tcp://127.0.0.1:6514" }))
      :denied_by("logging.lua", 'log driver not in allow_log_drivers: "syslog"')
  end)

  for _, t in ipairs({ "syslog", "fluentd", "gelf", "journald", "splunk", "awslogs", "gcplogs",
                       "JSON-FILE", "Json-File", "json-file ", "local2", "none2" }) do
    it(("denies the log driver %q by default"):format(t), function()
      kit.job(logging(t)):blocked()
    end)
  end

  it("takes the driver from `driver` as well as `type`", function()
    kit.job('logging {\n driver = "syslog"\n}'):denied_by("logging.lua", '"syslog"')
  end)

  it("allows syslog to a udp address once the operator allows syslog", function()
    kit.job(logging("syslog", { ["syslog-address"] = "udp://127.0.0.1:5514" }), SYSLOG):allowed()
  end)

  -- host files: dockerd would load a root-only key pair and present it
  local files = {
    { "syslog", "syslog-tls-cert", "/etc/ssl/private/host.pem" },
    { "syslog", "syslog-tls-key", "/etc/ssl/private/host.key" },
    { "syslog", "syslog-tls-ca-cert", "/etc/ssl/certs/ca.pem" },
    { "syslog", "Syslog-TLS-Key", "/etc/ssl/private/host.key" },
    { "syslog", " syslog-tls-key", "/etc/ssl/private/host.key" },
    { "splunk", "splunk-capath", "/etc/ssl/private" },
    { "splunk", "splunk-cabundle", "/etc/ssl/certs/bundle.pem" },
    { "awslogs", "awslogs-credentials-endpoint", "/v2/credentials" },
  }
  for _, f in ipairs(files) do
    it(("denies %s option %q even with %s allowed"):format(f[1], f[2], f[1]), function()
      kit.job(logging(f[1], { [f[2]] = f[3] }), { agent = agent(('allow_log_drivers = ["%s"]'):format(f[1])) })
        :denied_by("logging.lua", "log option names a host file")
    end)
  end

  local addresses = {
    { "syslog", "syslog-address", "unix:///dev/log" },
    { "syslog", "syslog-address", "unixgram:///run/systemd/journal/syslog" },
    { "syslog", "syslog-address", "tcp+tls://127.0.0.1:6514" },
    { "syslog", "syslog-address", "TCP+TLS://127.0.0.1:6514" },
    { "fluentd", "fluentd-address", "unix:///var/run/docker.sock" },
    { "fluentd", "fluentd-address", " Unix:///var/run/docker.sock" },
  }
  for _, a in ipairs(addresses) do
    it(("denies %s = %q even with %s allowed"):format(a[2], a[3], a[1]), function()
      kit.job(logging(a[1], { [a[2]] = a[3] }), { agent = agent(('allow_log_drivers = ["%s"]'):format(a[1])) })
        :denied_by("logging.lua", "log option address not allowed")
    end)
  end

  it("denies a host-file option on json-file too", function()
    kit.job(logging("json-file", { ["syslog-tls-key"] = "/etc/shadow" }))
      :denied_by("logging.lua", "log option names a host file")
  end)

  it("keeps allowing fluentd over tcp once allowed", function()
    kit.job(logging("fluentd", { ["fluentd-address"] = "tcp://127.0.0.1:24224" }), FLUENTD):allowed()
  end)
end)
