-- drvctl fingerprint: the node attributes of this host (Nomad names), as
-- `name = value` lines or a JSON object, with driver.docker.* when Docker
-- answers and without them (and a warning) when it does not.
local drv = require("support.drv")
local cjson = require("cjson.safe")

-- Parses `name = value` lines; returns the map, the names in output order,
-- and the lines that are not of that form.
local function parse(text)
  local attrs, order, bad = {}, {}, {}
  for line in text:gmatch("[^\n]+") do
    local name, value = line:match("^(%S+) = (.*)$")
    if name then
      attrs[name] = value
      order[#order + 1] = name
    else
      bad[#bad + 1] = line
    end
  end
  return attrs, order, bad
end

local function fingerprint(args, opts)
  local full = { "fingerprint" }
  for _, a in ipairs(args or {}) do
    full[#full + 1] = a
  end
  return drv.drvctl(full, opts)
end

local function first_line(cmd)
  local r = drv.sh(cmd, { shell = true, timeout = 20 })
  return (r.stdout:match("^[^\n]*"))
end

local function is_ipv4(s)
  local a, b, c, d = tostring(s):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  for _, n in ipairs({ a, b, c, d }) do
    if not n or tonumber(n) > 255 then
      return false
    end
  end
  return true
end

local NO_DOCKER = { env = { DOCKER_HOST = "unix:///nonexistent/docker.sock" } }

local function agent_config(iface)
  local dir = drv.tmpdir()
  return drv.write(dir .. "/agent.hcl", string.format('client {\n  network_interface = %s\n}\n',
    drv.hcl_string(iface)))
end

describe("drvctl fingerprint", function()
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  it("exits 0 and prints only `name = value` lines", function()
    local r = fingerprint()
    assert.equal(0, r.code, r.output)
    local attrs, order, bad = parse(r.stdout)
    assert.same({}, bad, r.output)
    assert.is_true(#order >= 10, r.output)
    assert.is_truthy(attrs["kernel.name"], r.output)
  end)

  it("prints the attributes sorted by name", function()
    local r = fingerprint()
    local _, order = parse(r.stdout)
    local sorted = { table.unpack(order) }
    table.sort(sorted)
    assert.same(sorted, order, r.output)
  end)

  it("names the kernel linux and reports its release", function()
    local attrs = parse(fingerprint().stdout)
    assert.equal("linux", attrs["kernel.name"])
    assert.equal(first_line("uname -r"), attrs["kernel.version"])
  end)

  it("reports the online CPUs as cpu.numcores", function()
    local attrs = parse(fingerprint().stdout)
    assert.equal(first_line("nproc"), attrs["cpu.numcores"])
  end)

  it("reports cpu.totalcompute as cpu.frequency times the cores", function()
    local attrs = parse(fingerprint().stdout)
    if attrs["cpu.frequency"] == nil then
      assert.is_nil(attrs["cpu.totalcompute"])
      return
    end
    assert.equal(tonumber(attrs["cpu.frequency"]) * tonumber(attrs["cpu.numcores"]),
      tonumber(attrs["cpu.totalcompute"]))
  end)

  it("reports MemTotal from /proc/meminfo in bytes", function()
    local attrs = parse(fingerprint().stdout)
    local kib = first_line("awk '/^MemTotal:/ { print $2 }' /proc/meminfo")
    assert.equal(tostring(tonumber(kib) * 1024), attrs["memory.totalbytes"])
  end)

  it("uses Go's architecture names for cpu.arch", function()
    local attrs = parse(fingerprint().stdout)
    local machine = first_line("uname -m")
    local go = ({ x86_64 = "amd64", aarch64 = "arm64" })[machine] or machine
    assert.equal(go, attrs["cpu.arch"])
  end)

  it("reports the os-release ID and VERSION_ID", function()
    local attrs = parse(fingerprint().stdout)
    local id = first_line(". /etc/os-release && printf '%s' \"$ID\"")
    local version = first_line(". /etc/os-release && printf '%s' \"$VERSION_ID\"")
    assert.equal(id, attrs["os.name"])
    assert.equal(version, attrs["os.version"])
  end)

  it("reports the host name and an IPv4 node address", function()
    local attrs = parse(fingerprint().stdout)
    assert.equal(first_line("hostname"), attrs["unique.hostname"])
    assert.is_true(is_ipv4(attrs["unique.network.ip-address"]), tostring(attrs["unique.network.ip-address"]))
  end)

  it("prints a JSON object of strings with -json, the same attributes as the text form", function()
    local text = parse(fingerprint().stdout)
    local r = fingerprint({ "-json" })
    assert.equal(0, r.code, r.output)
    local obj, err = cjson.decode(r.stdout)
    assert.is_table(obj, tostring(err) .. "\n" .. r.output)
    for k, v in pairs(obj) do
      assert.is_string(v, k)
    end
    -- driver.docker.* may differ only if Docker changed between the two calls
    for k, v in pairs(text) do
      if not k:match("^driver%.") then
        assert.equal(v, obj[k], k)
      end
    end
  end)

  it("reports driver.docker = 1 and the daemon version when Docker answers", function()
    drv.require_docker()
    local attrs = parse(fingerprint().stdout)
    assert.equal("1", attrs["driver.docker"])
    assert.equal(first_line("docker version --format '{{.Server.Version}}'"), attrs["driver.docker.version"])
  end)

  it("reports driver.docker.bridge_ip only when the bridge network has a gateway", function()
    drv.require_docker()
    local attrs = parse(fingerprint().stdout)
    local gw = first_line("docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}'")
    if gw == nil or gw == "" then
      assert.is_nil(attrs["driver.docker.bridge_ip"])
    else
      assert.equal(gw, attrs["driver.docker.bridge_ip"])
    end
  end)

  it("leaves out driver.docker.* and warns when Docker is unreachable, still exiting 0", function()
    local r = fingerprint({}, NO_DOCKER)
    assert.equal(0, r.code, r.output)
    local attrs = parse(r.stdout)
    for k in pairs(attrs) do
      assert.is_nil(k:match("^driver%.docker"), k)
    end
    assert.equal("linux", attrs["kernel.name"])
    assert.matches("warning: docker driver not detected", r.stderr, 1, true)
    assert.matches("/nonexistent/docker.sock", r.stderr, 1, true)
  end)

  it("reports the agent's volumes and privileged switches, secure by default", function()
    local attrs = parse(fingerprint({}).stdout)
    assert.equal("false", attrs["driver.docker.volumes.enabled"])
    assert.equal("false", attrs["driver.docker.privileged.enabled"])
    local dir = drv.tmpdir()
    local cfg = drv.write(dir .. "/agent.hcl", table.concat({
      "client {",
      "  cpu_total_compute = 12345",
      "  options {",
      '    "docker.volumes.enabled" = "true"',
      '    "docker.privileged.enabled" = "true"',
      "  }",
      "}",
    }, "\n"))
    local r = fingerprint({ "-config", cfg })
    assert.equal(0, r.code, r.output)
    attrs = parse(r.stdout)
    assert.equal("true", attrs["driver.docker.volumes.enabled"])
    assert.equal("true", attrs["driver.docker.privileged.enabled"])
    assert.equal("12345", attrs["cpu.totalcompute"])
  end)

  it("uses the address of the agent's network_interface", function()
    local r = fingerprint({ "-config", agent_config("lo") })
    assert.equal(0, r.code, r.output)
    assert.equal("127.0.0.1", parse(r.stdout)["unique.network.ip-address"])
  end)

  it("exits 78 naming an interface that does not exist", function()
    local r = fingerprint({ "-config", agent_config("eth9") }, NO_DOCKER)
    assert.equal(78, r.code, r.output)
    assert.matches('network_interface "eth9" not found', r.stderr, 1, true)
    assert.equal("", r.stdout)
  end)

  it("exits 64 on an unknown flag", function()
    local r = fingerprint({ "-bogus" })
    assert.equal(64, r.code, r.output)
  end)

  it("documents -json in its help", function()
    local r = drv.drvctl({ "help", "fingerprint" })
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find("-json", 1, true), r.output)
  end)
end)
