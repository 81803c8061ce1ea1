-- The Docker Engine API over mutual TLS: a socat proxy terminates TLS (and
-- demands a client certificate from our CA) in front of the real socket;
-- drvctl reaches it through the plugin "docker" tls block, the legacy
-- docker.tls.* client options and DOCKER_HOST/DOCKER_TLS_VERIFY/
-- DOCKER_CERT_PATH. Certificate problems fail at once with exit 69 and a
-- message naming the settings to check; nothing is created then.
local drv = require("support.drv")
local registry = require("support.registry")

local SOCKET = "/var/run/docker.sock"

-- A TLS-terminating proxy: OPENSSL-LISTEN on 127.0.0.1:port with the given
-- server cert, verifying clients against client_ca, to the Docker socket.
local function start_proxy(dir, name, server, client_ca)
  local log = dir .. "/" .. name .. ".log"
  local port, h, pid
  for _ = 1, 5 do
    port = registry.free_port()
    h = assert(io.popen(string.format(
      "echo $$ && exec socat -d -d OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,"
        .. "cert=%s,key=%s,cafile=%s,verify=1 UNIX-CONNECT:%s 2>>%s </dev/null",
      port, server.cert, server.key, client_ca, SOCKET, log), "r"))
    pid = tonumber(h:read("l"))
    local up = drv.wait_until(function()
      local stat = drv.read("/proc/" .. pid .. "/stat")
      if not stat or stat:match("^%d+ %b() ([ZX])") then
        return "dead"
      end
      return (drv.read(log) or ""):find("listening on", 1, true) and "up"
    end, 10, 0.05)
    if up == "up" then
      break
    end
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    h:close()
    h = nil
  end
  assert(h, "socat did not start; log:\n" .. (drv.read(log) or ""))
  local proxy = { port = port, pid = pid, h = h, log = log,
    endpoint = "tcp://127.0.0.1:" .. port }
  function proxy.connections()
    local n = 0
    for _ in (drv.read(log) or ""):gmatch("accepting connection from") do
      n = n + 1
    end
    return n
  end
  function proxy.stop()
    if proxy.h then
      os.execute("kill -TERM " .. proxy.pid .. " 2>/dev/null")
      proxy.h:close()
      proxy.h = nil
    end
  end
  return proxy
end

local function plugin_config(endpoint, tls)
  local lines = { 'plugin "docker" {', "  config {",
    "    endpoint = " .. drv.hcl_string(endpoint) }
  if tls then
    lines[#lines + 1] = "    tls {"
    for _, k in ipairs({ "cert", "key", "ca" }) do
      if tls[k] then
        lines[#lines + 1] = string.format("      %s = %s", k, drv.hcl_string(tls[k]))
      end
    end
    lines[#lines + 1] = "    }"
  end
  lines[#lines + 1] = "  }"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

describe("Docker endpoint over mutual TLS", function()
  local dir, pki, client, rogue_client, rogue_pki, proxy

  setup(function()
    drv.require_docker()
    dir = assert(io.popen("mktemp -d /tmp/drvctl-tls.XXXXXX")):read("l")
    pki = registry.pki(dir .. "/pki", "drvctl test daemon CA")
    local server = pki:issue("server")
    client = pki:issue("client", { server = false, client = true })
    rogue_pki = registry.pki(dir .. "/rogue", "someone else's CA")
    rogue_client = rogue_pki:issue("client", { server = false, client = true })
    proxy = start_proxy(dir, "proxy", server, pki.ca)
    -- the proxy works and demands a client certificate
    local ok = drv.sh(string.format("curl -sS --max-time 5 --cacert %s --cert %s --key %s %s",
      drv.quote(pki.ca), drv.quote(client.cert), drv.quote(client.key),
      drv.quote("https://127.0.0.1:" .. proxy.port .. "/_ping")), { shell = true })
    assert(ok.code == 0 and ok.stdout == "OK", ok.output)
  end)

  teardown(function()
    if proxy then
      proxy.stop()
    end
    if dir then
      os.execute("rm -rf " .. drv.quote(dir))
    end
  end)

  after_each(drv.cleanup)

  local function run_with(agent_text, opts)
    local d = drv.tmpdir()
    local job = drv.write_job(d, (opts or {}).job or { script = "echo over-tls" })
    local args = { "run", "-data-dir", d .. "/data" }
    if agent_text then
      drv.write(d .. "/agent.hcl", agent_text)
      args[#args + 1] = "-config"
      args[#args + 1] = d .. "/agent.hcl"
    end
    args[#args + 1] = job
    return drv.drvctl(args, { env = (opts or {}).env, timeout = 60 })
  end

  it("plugin tls block: the task's container is real and everything went through the proxy", function()
    local d = drv.tmpdir()
    drv.write(d .. "/agent.hcl", plugin_config(proxy.endpoint,
      { cert = client.cert, key = client.key, ca = pki.ca }))
    local job = drv.write_job(d, { task = "web", kill_timeout = "2s",
      script = "trap 'exit 0' TERM; echo ready; sleep 60 & wait" })
    local before = proxy.connections()
    local p = drv.spawn({ "run", "-data-dir", d .. "/data", "-config", d .. "/agent.hcl", job },
      { env = { DOCKER_HOST = "unix:///nonexistent.sock" } })
    local ids = drv.wait_until(function()
      local running = drv.containers({ "status=running" })
      return #running > 0 and running
    end, 30)
    assert.is_truthy(ids, "no running container: " .. p:stderr())
    assert.equal(1, #ids)
    local c = assert(drv.inspect(ids[1], "container"))
    assert.is_true(c.State.Running)
    assert.equal(drv.run_id, c.Config.Labels[drv.LABEL_KEY])
    assert.equal(drv.IMAGE, c.Config.Image)
    assert.is_true(proxy.connections() > before)
    p:signal("INT")
    local code = p:wait(30)
    assert.is_not_nil(code, p:stderr())
    assert.matches("ready", p:stdout())
    -- drvctl removed its container, through the proxy too
    assert.same({}, drv.containers())
  end)

  it("legacy client options docker.endpoint and docker.tls.*", function()
    local before = proxy.connections()
    local r = run_with(string.format([[
client {
  options {
    "docker.endpoint" = %s
    "docker.tls.cert" = %s
    "docker.tls.key"  = %s
    "docker.tls.ca"   = %s
  }
}
]], drv.hcl_string(proxy.endpoint), drv.hcl_string(client.cert), drv.hcl_string(client.key),
      drv.hcl_string(pki.ca)), { env = { DOCKER_HOST = "unix:///nonexistent.sock" } })
    assert.equal(0, r.code, r.output)
    assert.matches("over%-tls", r.stdout)
    assert.is_true(proxy.connections() > before)
    assert.same({}, drv.containers())
  end)

  it("DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH when no endpoint is configured", function()
    local certs = drv.tmpdir()
    drv.sh(string.format("cp %s %s/ca.pem && cp %s %s/cert.pem && cp %s %s/key.pem",
      drv.quote(pki.ca), certs, drv.quote(client.cert), certs, drv.quote(client.key), certs),
      { shell = true })
    local before = proxy.connections()
    local r = run_with(nil, { env = { DOCKER_HOST = proxy.endpoint, DOCKER_TLS_VERIFY = "1",
      DOCKER_CERT_PATH = certs } })
    assert.equal(0, r.code, r.output)
    assert.matches("over%-tls", r.stdout)
    assert.is_true(proxy.connections() > before)
  end)

  local function assert_tls_failure(r, detail)
    assert.equal(69, r.code, r.output)
    assert.matches('docker: TLS with the Docker daemon at "' .. proxy.endpoint:gsub("%p", "%%%0")
      .. '" failed', r.stderr)
    assert.matches("check docker.tls.ca", r.stderr, 1, true)
    if type(detail) == "table" then
      -- the peer's TLS alert is read only when it arrives before the close
      -- (a race): then the message names it, else it says what to suspect
      local found = false
      for _, d in ipairs(detail) do
        found = found or r.stderr:find(d, 1, true) ~= nil
      end
      assert.is_true(found, r.output)
    else
      assert.matches(detail, r.stderr)
    end
    assert.same({}, drv.containers())
  end

  local REFUSED = "the peer closed the connection during TLS setup, before any HTTP answer: "
    .. "does it accept the client certificate?"

  it("no client certificate: the daemon side refuses, exit 69 with a clear message", function()
    local r = run_with(plugin_config(proxy.endpoint, { ca = pki.ca }))
    assert_tls_failure(r, { "alert certificate required", REFUSED })
  end)

  it("a client certificate from another CA: refused, exit 69", function()
    local r = run_with(plugin_config(proxy.endpoint,
      { cert = rogue_client.cert, key = rogue_client.key, ca = pki.ca }))
    assert_tls_failure(r, { "alert unknown ca", REFUSED })
  end)

  it("a CA that did not sign the daemon's certificate: verification fails, exit 69", function()
    local r = run_with(plugin_config(proxy.endpoint,
      { cert = client.cert, key = client.key, ca = rogue_pki.ca }))
    assert_tls_failure(r, "certificate problem")
  end)

  it("a daemon certificate that does not name 127.0.0.1: host verification fails, exit 69", function()
    local other = pki:issue("elsewhere", { san = "DNS:elsewhere.invalid" })
    local p2 = start_proxy(dir, "elsewhere", other, pki.ca)
    local ok, err = pcall(function()
      local r = run_with(plugin_config(p2.endpoint,
        { cert = client.cert, key = client.key, ca = pki.ca }))
      assert.equal(69, r.code, r.output)
      assert.matches("TLS with the Docker daemon", r.stderr, 1, true)
      assert.matches("127.0.0.1", r.stderr, 1, true)
      assert.matches("subject name", r.stderr, 1, true)
    end)
    p2.stop()
    assert(ok, err)
  end)

  it("a client certificate file that does not exist: exit 69 naming the file", function()
    local missing = dir .. "/no-such-cert.pem"
    local r = run_with(plugin_config(proxy.endpoint,
      { cert = missing, key = client.key, ca = pki.ca }))
    assert_tls_failure(r, "no%-such%-cert%.pem")
  end)

  it("plain HTTP to the TLS endpoint: exit 69, says it probably wants TLS", function()
    local r = run_with(plugin_config(proxy.endpoint, nil))
    assert.equal(69, r.code, r.output)
    assert.matches("did not answer plain HTTP", r.stderr, 1, true)
    assert.matches("probably wants TLS", r.stderr, 1, true)
    assert.same({}, drv.containers())
  end)
end)
