-- The registry support module itself: real registries, real pushes and
-- pulls through the daemon, the access log counting, and a clean stop.
local drv = require("support.drv")
local registry = require("support.registry")

local function marker_of(ref)
  local r = drv.docker({ "run", "--rm", "--label", drv.label, ref, "cat", "/marker" })
  return (r.stdout:gsub("%s+$", ""))
end

describe("registry support", function()
  after_each(drv.cleanup)

  it("plain HTTP: push, pull through the daemon, count manifest requests, stop cleanly", function()
    drv.require_docker()
    local reg = registry.start()
    assert.matches("^127%.0%.0%.1:%d+$", reg.host)
    assert.equal(200, reg:status("/v2/"))

    local img = registry.image{ marker = "plain-" .. drv.run_id }
    local ref, digest = reg:push(img, "rsx/tiny:1")
    assert.equal(reg.host .. "/rsx/tiny:1", ref)
    assert.matches("^sha256:%x+$", digest)
    reg:delete_local("rsx/tiny:1")
    assert.is_nil(drv.inspect(ref, "image"))

    local mark = reg:mark()
    local r = reg:pull("rsx/tiny:1")
    assert.equal(0, r.code, r.output)
    -- one tag manifest request (HEAD or GET), then the digest's manifest
    assert.equal(1, reg:manifest_requests("rsx/tiny", "1", mark))
    assert.equal(1, reg:manifest_requests("rsx/tiny", digest, mark))
    assert.equal(0, reg:manifest_requests("rsx/tiny", "1", reg:mark()))
    assert.equal("plain-" .. drv.run_id, marker_of(ref))

    -- a tag that is not there: the daemon's pull fails, the log shows the
    -- 404s (dockerd 20.10 asks HEAD, then GET)
    mark = reg:mark()
    r = reg:pull("rsx/tiny:nope")
    assert.are_not.equal(0, r.code)
    assert.matches("not found", r.stderr)
    local n404 = reg:requests('/manifests/nope HTTP/1.1" 404', mark, true)
    assert.equal(reg:manifest_requests("rsx/tiny", "nope", mark), n404)
    assert.is_true(n404 >= 1)

    local pid, dir = reg.pid, reg.dir
    reg:stop()
    assert.is_false(reg:alive())
    assert.is_nil(drv.read("/proc/" .. pid .. "/stat")) -- reaped, no zombie
    assert.is_false(drv.exists(dir))
    assert.equal(0, reg:status("/v2/"))
    assert.is_nil(drv.inspect(ref, "image"))
    reg:stop() -- twice is fine
  end)

  it("TLS with htpasswd: verified HTTPS, auth required, push and pull with login", function()
    drv.require_docker()
    local reg = registry.start{ tls = true, users = { testuser = "testpass" } }
    assert.matches("^https://127%.0%.0%.1:%d+$", reg.url)
    -- the CA verifies the certificate (curl without it refuses)
    assert.equal(401, reg:status("/v2/"))
    assert.equal(200, reg:status("/v2/", "testuser:testpass"))
    assert.equal(401, reg:status("/v2/", "testuser:wrong"))
    local plain = drv.sh("curl -s -o /dev/null --max-time 5 " .. drv.quote(reg.url .. "/v2/"),
      { shell = true })
    assert.equal(60, plain.code, plain.output) -- CURLE_PEER_FAILED_VERIFICATION
    local certs_d = registry.CERTS_D .. "/" .. reg.host
    assert.equal(drv.read(reg.ca), drv.read(certs_d .. "/ca.crt"))

    local img = registry.image{ marker = "tls-" .. drv.run_id }
    local ref = reg:push(img, "rsx/secret:2")
    reg:delete_local(ref)

    -- anonymous pull is refused (401; dockerd then falls back to plain HTTP
    -- for a loopback registry, which the TLS listener resets), and no
    -- manifest is served; a logged-in pull works
    local mark = reg:mark()
    local anon = reg:pull("rsx/secret:2", { login = false })
    assert.are_not.equal(0, anon.code)
    assert.equal(1, reg:requests('"GET /v2/ HTTP/1.1" 401', mark, true))
    assert.equal(0, reg:requests('manifests/[^ ]* HTTP/1%.1" 200', mark))
    mark = reg:mark()
    local r = reg:pull("rsx/secret:2")
    assert.equal(0, r.code, r.output)
    assert.equal(1, reg:manifest_requests("rsx/secret", "2", mark))
    assert.equal("tls-" .. drv.run_id, marker_of(ref))
    -- login/logout left no credentials behind
    local cfg = drv.read(reg.docker_config .. "/config.json") or ""
    assert.is_nil(cfg:find("dGVzdHVzZXI6dGVzdHBhc3M", 1, true)) -- base64 "testuser:testpass"

    reg:stop()
    assert.is_false(drv.exists(certs_d))
    assert.is_nil(drv.inspect(ref, "image"))
  end)

  it("big_image builds a multi-layer image of the requested size", function()
    drv.require_docker()
    local name = registry.big_image{ size_mb = 3, layers = 3 }
    local info = assert(drv.inspect(name, "image"))
    -- busybox + 3 random layers
    assert.equal(4, #info.RootFS.Layers)
    assert.is_true(info.Size >= 3 * 1024 * 1024, tostring(info.Size))
    assert.equal(drv.run_id, info.Config.Labels[drv.LABEL_KEY])
    local r = drv.docker({ "run", "--rm", "--label", drv.label, name, "sh", "-c",
      "wc -c /data/layer1.bin" })
    assert.matches("^1048576 ", r.stdout)
    registry.remove_image(name)
    assert.is_nil(drv.inspect(name, "image"))
  end)
end)
