-- Pulls end to end: `drvctl run` on the real daemon against throwaway local
-- registries (spec/support/registry.lua). Each test checks what ran (the
-- image's /marker, printed by the task) and what the registry saw (manifest
-- requests counted from its access log); failures must create nothing.
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")

-- Image cleanup off: no delayed removal of an earlier run may race a test;
-- pulls from the registries on 127.0.0.1 allowed (support.agentconf).
local AGENT = [[
client {
  options {
    "docker.cleanup.image" = "false"
  }
}
]] .. agentconf.TRUSTED_REGISTRY

describe("pulling images from a registry", function()
  local reg

  setup(function()
    drv.require_binary()
    drv.require_docker()
    reg = registry.start{ shared = true }
  end)

  teardown(function()
    if reg then
      reg:stop()
    end
    registry.cleanup()
  end)

  after_each(drv.cleanup)

  local seq = 0
  local repo_of
  -- A fresh repository name per test, so counts never mix.
  local function repo(name)
    seq = seq + 1
    return string.format("rsx/%s-%d", name, seq)
  end

  -- Runs a job whose task prints /marker; t: image, count, config, timeout.
  local function run(t)
    local dir = drv.tmpdir()
    drv.write(dir .. "/agent.hcl", AGENT)
    local job = drv.write_job(dir, { task = "web", image = t.image, count = t.count,
      config = t.config, script = "cat /marker" })
    local t0 = drv.now()
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", "-config", dir .. "/agent.hcl", job },
      { timeout = t.timeout or 240 })
    r.took = drv.now() - t0
    return r
  end

  -- "rsx/anon-1" of "127.0.0.1:PORT/rsx/anon-1:1"
  repo_of = function(ref)
    return ref:match("^[^/]+/(.-):[^:/]+$")
  end

  local function count_of(text, needle)
    local n, at = 0, 1
    while true do
      local s, e = text:find(needle, at, true)
      if not s then
        return n
      end
      n, at = n + 1, e + 1
    end
  end

  it("pulls an absent image anonymously, shows progress, runs it", function()
    local marker = "anon-" .. drv.run_id
    local built = registry.image{ marker = marker }
    local ref = reg:push(built, repo("anon") .. ":1", { untag = true })
    -- gone locally, its own layer too (only the base layer stays)
    registry.remove_image(built)
    assert.is_nil(drv.inspect(ref, "image"))
    local mark = reg:mark()
    local r = run({ image = ref })
    assert.equal(0, r.code, r.output)
    assert.matches(marker, r.stdout, 1, true)
    -- one line per phase when stderr is not a terminal
    assert.matches("web[0] | pulling " .. ref .. "\n", r.stderr, 1, true)
    local layers = r.stderr:match("web%[0%] | pulled " .. ref:gsub("%p", "%%%0") .. " %((%d+) layers?")
    assert.is_truthy(layers, r.stderr)
    assert.is_true(tonumber(layers) >= 1, r.stderr)
    assert.equal(1, reg:manifest_requests(repo_of(ref), "1", mark))
    -- blobs really came from the registry (the config and the marker layer)
    local blobs = '"GET /v2/' .. repo_of(ref):gsub("%p", "%%%0") .. '/blobs/sha256:%x+ HTTP/1%.1" 200'
    assert.is_true(reg:requests(blobs, mark) >= 1, table.concat(reg:access_lines(), "\n"))
    local img = assert(drv.inspect(ref, "image"))
    assert.equal(drv.run_id, img.Config.Labels[drv.LABEL_KEY])
  end)

  it("re-pulls `latest` after the registry changed and runs the new image", function()
    local name = repo("latest")
    local first = registry.image{ marker = "first-" .. drv.run_id }
    local ref = reg:push(first, name .. ":latest", { untag = true })
    local r = run({ image = ref })
    assert.equal(0, r.code, r.output)
    assert.matches("first-" .. drv.run_id, r.stdout, 1, true)

    -- the registry gets another image under the same tag; locally the tag
    -- still names the first one
    reg:push(registry.image{ marker = "second-" .. drv.run_id }, name .. ":latest")
    drv.docker({ "tag", first, ref })
    local mark = reg:mark()
    r = run({ image = ref })
    assert.equal(0, r.code, r.output)
    assert.matches("second-" .. drv.run_id, r.stdout, 1, true)
    assert.equal(1, reg:manifest_requests(name, "latest", mark))
  end)

  it("a reference without a tag means latest and is pulled too", function()
    local name = repo("notag")
    reg:push(registry.image{ marker = "notag-" .. drv.run_id }, name .. ":latest", { untag = true })
    local mark = reg:mark()
    local r = run({ image = reg.host .. "/" .. name })
    assert.equal(0, r.code, r.output)
    assert.matches("notag-" .. drv.run_id, r.stdout, 1, true)
    assert.equal(1, reg:manifest_requests(name, "latest", mark))
  end)

  it("does not pull a non-latest tag that is present; force_pull does", function()
    local name = repo("present")
    local old = registry.image{ marker = "old-" .. drv.run_id }
    -- the registry has "new" under name:2; locally name:2 is "old"
    local ref = reg:push(registry.image{ marker = "new-" .. drv.run_id }, name .. ":2")
    drv.docker({ "tag", old, ref })

    local mark = reg:mark()
    local r = run({ image = ref })
    assert.equal(0, r.code, r.output)
    assert.matches("old-" .. drv.run_id, r.stdout, 1, true)
    assert.equal(0, reg:requests("/v2/" .. name .. "/", mark, true))
    assert.is_nil(r.stderr:find("pulling", 1, true), r.stderr)

    mark = reg:mark()
    r = run({ image = ref, config = "force_pull = true" })
    assert.equal(0, r.code, r.output)
    assert.matches("new-" .. drv.run_id, r.stdout, 1, true)
    assert.equal(1, reg:manifest_requests(name, "2", mark))
  end)

  it("five tasks on one absent image make exactly one tag-manifest request", function()
    local name = repo("five")
    local marker = "five-" .. drv.run_id
    local ref = reg:push(registry.image{ marker = marker }, name .. ":1", { untag = true })
    local mark = reg:mark()
    local r = run({ image = ref, count = 5 })
    assert.equal(0, r.code, r.output)
    assert.equal(5, count_of(r.stdout, marker), r.output)
    assert.equal(1, reg:manifest_requests(name, "1", mark), table.concat(reg:access_lines(), "\n"))
  end)

  it("runs an image given by digest", function()
    local name = repo("digest")
    local marker = "digest-" .. drv.run_id
    local _, digest = reg:push(registry.image{ marker = marker }, name .. ":1", { untag = true })
    assert.matches("^sha256:%x+$", digest)
    local ref = reg.host .. "/" .. name .. "@" .. digest
    local mark = reg:mark()
    local r = run({ image = ref })
    assert.equal(0, r.code, r.output)
    assert.matches(marker, r.stdout, 1, true)
    assert.equal(1, reg:manifest_requests(name, digest, mark))
    assert.equal(0, reg:manifest_requests(name, "1", mark))
  end)

  it("an unknown tag fails at once: exit 73, a clear message, no retry, nothing created", function()
    local name = repo("unknown")
    reg:push(registry.image{}, name .. ":1", { untag = true })
    local ref = reg.host .. "/" .. name .. ":nope"
    local mark = reg:mark()
    local r = run({ image = ref, config = 'image_pull_timeout = "2m"' })
    assert.equal(73, r.code, r.output)
    assert.matches('task "web"', r.stderr, 1, true)
    assert.matches('pull "' .. ref .. '"', r.stderr, 1, true)
    assert.matches("not found", r.stderr, 1, true)
    assert.is_true(r.took < 20, string.format("took %.1f s", r.took))
    -- one attempt only: dockerd 20.10 asks HEAD then GET once each
    local asked = reg:manifest_requests(name, "nope", mark)
    assert.is_true(asked >= 1 and asked <= 2, tostring(asked))
    assert.same({}, drv.containers())
    assert.is_nil(drv.inspect(ref, "image"))
  end)

  it("a registry that is down: exit 73 with a clear message, within the retries, nothing created", function()
    local down = registry.start()
    local ref = down:push(registry.image{}, "rsx/gone:1", { untag = true })
    down:stop()
    assert.equal(0, down:status("/v2/"))
    local r = run({ image = ref, config = 'image_pull_timeout = "2m"' })
    assert.equal(73, r.code, r.output)
    assert.matches('pull "' .. ref .. '"', r.stderr, 1, true)
    assert.matches("connection refused", r.stderr, 1, true)
    -- three attempts with 1 s and 2 s of backoff, far below the 2 min timeout
    assert.is_true(r.took < 60, string.format("took %.1f s", r.took))
    assert.same({}, drv.containers())
    assert.is_nil(drv.inspect(ref, "image"))
  end)

  it("pulls from a TLS registry with htpasswd using the task's auth", function()
    local sec = registry.start{ tls = true, users = { testuser = "testpass" } }
    local marker = "auth-" .. drv.run_id
    local ref = sec:push(registry.image{ marker = marker }, "rsx/private:1", { untag = true })
    local mark = sec:mark()
    local r = run({ image = ref, config = table.concat({
      "auth {",
      '  username = "testuser"',
      '  password = "testpass"',
      "}" }, "\n") })
    assert.equal(0, r.code, r.output)
    assert.matches(marker, r.stdout, 1, true)
    assert.equal(1, sec:manifest_requests("rsx/private", "1", mark))
    assert.is_nil(r.output:find("testpass", 1, true))
  end)
end)
