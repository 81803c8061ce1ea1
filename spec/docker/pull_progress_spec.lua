-- Pull progress, cancels and timeouts against a real local registry and the
-- real daemon: the non-tty phase lines, `run -json` events, Ctrl-C during a
-- pull (a registry that never answers), image_pull_timeout and
-- pull_activity_timeout firing, and count = 5 on an image that cannot be
-- had giving the same answer on every run. The registries listen on
-- 127.0.0.1: every run passes an agent config with
-- allow_private_registries = true (support.agentconf).
local drv = require("support.drv")
local registry = require("support.registry")
local agentconf = require("support.agentconf")
local cjson = require("cjson")

-- A TCP listener on 127.0.0.1 that accepts connections and never answers
-- (socat, in its own session: the cleanup kills the whole group).
local function stall_server()
  local port = registry.free_port()
  local h = assert(io.popen(string.format(
    "echo $$ && exec setsid timeout -k 5 600 socat TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr "
      .. "SYSTEM:'sleep 600' </dev/null >/dev/null 2>&1", port), "r"))
  local pid = tonumber(h:read("l") or "")
  assert(pid, "stall server: no pid")
  drv.on_cleanup(function()
    os.execute(string.format("kill -KILL -%d 2>/dev/null", pid))
    pcall(h.close, h)
  end)
  -- ready once the port accepts
  assert(drv.wait_until(function()
    return drv.sh(string.format("socat -u OPEN:/dev/null TCP:127.0.0.1:%d,connect-timeout=1",
      port), { shell = true, timeout = 5 }).code == 0
  end, 10, 0.05), "stall server did not start")
  return "127.0.0.1:" .. port
end

-- A proxy in front of a registry that passes each connection's first
-- `bytes` bytes of answer and then goes silent (the connection stays
-- open): small answers (/v2/, manifests, configs) get through, a layer
-- download stalls midway. (dd, not head: head's stdio buffer would hold
-- the bytes until it exits.)
local function stalling_proxy(target, bytes)
  local port = registry.free_port()
  local h = assert(io.popen(string.format(
    "echo $$ && exec setsid timeout -k 5 600 socat TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr "
      .. "SYSTEM:'socat - TCP\\:%s | { dd iflag=count_bytes count=%d bs=4096 status=none; "
      .. "sleep 600; }' </dev/null >/dev/null 2>&1",
    port, (target:gsub(":", "\\:")), bytes), "r"))
  local pid = tonumber(h:read("l") or "")
  assert(pid, "stalling proxy: no pid")
  drv.on_cleanup(function()
    os.execute(string.format("kill -KILL -%d 2>/dev/null", pid))
    pcall(h.close, h)
  end)
  assert(drv.wait_until(function()
    return drv.sh(string.format("curl -s -o /dev/null -w '%%{http_code}' --max-time 2 "
      .. "http://127.0.0.1:%d/v2/", port), { shell = true, timeout = 5 }).stdout == "200"
  end, 10, 0.1), "stalling proxy did not start")
  return "127.0.0.1:" .. port
end

local function job(dir, opts)
  return drv.write_job(dir, {
    task = "web",
    image = opts.image,
    count = opts.count,
    script = opts.script or "echo ran-$NOMAD_ALLOC_INDEX",
    config = opts.config,
  })
end

-- dir/agent.hcl: pulls from the test registries on 127.0.0.1 allowed,
-- plus `lines`.
local function agent_config(dir, lines)
  return agentconf.trusted_registry(dir, lines)
end

-- Local images whose name starts with `prefix`.
local function local_images(prefix)
  local r = drv.docker({ "images", "--format", "{{.Repository}}:{{.Tag}}" })
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    if line:sub(1, #prefix) == prefix then
      out[#out + 1] = line
    end
  end
  return out
end

describe("pull progress", function()
  local reg, ref
  setup(function()
    drv.require_binary()
    drv.require_docker()
    reg = registry.start({ shared = true })
    local img = registry.image({ marker = "progress" })
    ref = reg:push(img, "rsx/progress:1", { untag = true })
    -- only the registry has it now: its own layer must be downloaded
    registry.remove_image(img)
  end)
  teardown(function()
    if reg then
      reg:stop()
    end
  end)
  before_each(function()
    reg:delete_local("rsx/progress:1")
  end)
  after_each(drv.cleanup)

  it("prints one line per phase on a pipe, then runs the pulled image", function()
    local dir = drv.tmpdir()
    local r = drv.drvctl({ "run", "-config", agent_config(dir), "-data-dir", dir .. "/data",
      job(dir, { image = ref }) }, { timeout = 120 })
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find("ran-0", 1, true), r.output)
    assert.is_truthy(r.stderr:find("web[0] | pulling " .. ref .. "\n", 1, true), r.output)
    assert.matches("web%[0%] | pulled " .. ref:gsub("%p", "%%%0") .. " %(%d+ layers?[^)]*%) in %d+%.%d s\n",
      r.stderr)
    -- no terminal control on a pipe
    assert.is_falsy(r.stderr:find("\27", 1, true), r.output)
    -- the image is here now, under the name the job gave
    assert.is_truthy(drv.inspect(ref, "image"), r.output)
    assert.same({}, drv.containers(), r.output)
  end)

  it("draws per-layer rows in place on a terminal (script -qfec)", function()
    local dir = drv.tmpdir()
    local jobfile = job(dir, { image = ref })
    local cmd = drv.quote(drv.bin) .. " run -config " .. drv.quote(agent_config(dir))
      .. " -data-dir " .. drv.quote(dir .. "/data") .. " " .. drv.quote(jobfile)
    local r = drv.sh("script -qfec " .. drv.quote(cmd) .. " " .. drv.quote(dir .. "/typescript"),
      { timeout = 120 })
    assert.equal(0, r.code, r.output)
    local tty = assert(drv.read(dir .. "/typescript")):gsub("\r\n", "\n")
    assert.is_truthy(tty:find("\27[2Kweb[0] | pulling " .. ref, 1, true), tty)
    -- a row per layer, redrawn: the cursor goes back up over the block
    assert.matches("\27%[2K  %x+: [%a ]+", tty)
    assert.matches("\27%[%d+A", tty)
    assert.is_truthy(tty:find("\27[2Kweb[0] | pulled " .. ref, 1, true), tty)
    assert.is_truthy(tty:find("ran-0", 1, true), tty)
  end)

  it("prints JSON events with -json: start, layers, done with the image id", function()
    local dir = drv.tmpdir()
    local r = drv.drvctl({ "run", "-json", "-config", agent_config(dir), "-data-dir",
      dir .. "/data", job(dir, { image = ref }) }, { timeout = 120 })
    assert.equal(0, r.code, r.output)
    local phases, layers, done = {}, 0, nil
    for line in r.stderr:gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then
        local ev = cjson.decode(line)
        assert.equal("pull", ev.event, line)
        assert.equal(ref, ev.image, line)
        assert.equal("web", ev.task, line)
        assert.equal(0, ev.index, line)
        phases[#phases + 1] = ev.phase
        if ev.phase == "layer" then
          layers = layers + 1
          assert.matches("^%x+$", ev.layer, line)
        elseif ev.phase == "done" then
          done = ev
        end
      end
    end
    assert.equal("start", phases[1], r.output)
    assert.equal("done", phases[#phases], r.output)
    assert.is_true(layers >= 2, r.output)
    assert.is_truthy(done, r.output)
    assert.is_true(done.ok, r.output)
    assert.equal(drv.inspect(ref, "image").Id, done.image_id, r.output)
    -- no human progress lines in JSON mode
    assert.is_falsy(r.stderr:find("| pulling", 1, true), r.output)
  end)
end)

describe("a pull that stalls", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("stops on Ctrl-C: exits 130, creates nothing, leaves no image", function()
    local host = stall_server()
    local image = host .. "/rsx/slow:1"
    local dir = drv.tmpdir()
    local proc = drv.spawn({ "run", "-config", agent_config(dir), "-data-dir", dir .. "/data",
      job(dir, { image = image }) })
    assert.is_truthy(drv.wait_until(function()
      return proc:stderr():find("| pulling " .. image, 1, true) or proc:exited()
    end, 30), proc:stderr())
    drv.sleep(0.5)
    assert.is_false(proc:exited(), proc:stderr())
    proc:signal("INT")
    local code = proc:wait(20)
    assert.equal(130, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
    assert.same({}, local_images(host), proc.output)
    assert.is_falsy(proc:stderr():find("create container", 1, true), proc.output)
  end)

  it("stops on Ctrl-C in the middle of a layer download: 130, nothing created or left", function()
    local reg = registry.start()
    local img = registry.big_image({ layers = 2, size_mb = 8 })
    reg:push(img, "rsx/midway:1", { untag = true })
    registry.remove_image(img)
    local host = stalling_proxy(reg.host, 256 * 1024)
    local image = host .. "/rsx/midway:1"
    local dir = drv.tmpdir()
    local proc = drv.spawn({ "run", "-config", agent_config(dir), "-data-dir", dir .. "/data",
      job(dir, { image = image, count = 2 }) })
    assert.is_truthy(drv.wait_until(function()
      return proc:stderr():find("| downloading " .. image, 1, true) or proc:exited()
    end, 30), proc:stderr())
    assert.is_false(proc:exited(), proc:stderr())
    proc:signal("INT")
    local code = proc:wait(20)
    assert.equal(130, code, proc.output)
    assert.same({}, drv.containers(), proc.output)
    assert.same({}, local_images(host), proc.output)
    assert.is_falsy(proc:stderr():find("| pulled ", 1, true), proc.output)
  end)

  it("gives up after pull_activity_timeout without progress", function()
    local host = stall_server()
    local image = host .. "/rsx/stalled:1"
    local dir = drv.tmpdir()
    local conf = agent_config(dir, 'plugin "docker" { config { pull_activity_timeout = "1s" } }\n')
    local t0 = drv.now()
    local r = drv.drvctl({ "run", "-config", conf, "-data-dir", dir .. "/data",
      job(dir, { image = image }) }, { timeout = 60 })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('task "web": pull "' .. image
      .. '": image pull aborted: no progress for 1s', 1, true), r.output)
    assert.is_true(drv.now() - t0 < 20, r.output)
    assert.same({}, drv.containers(), r.output)
  end)

  it("gives up after pull_activity_timeout when a layer download stalls midway", function()
    local reg = registry.start()
    local img = registry.big_image({ layers = 2, size_mb = 8 })
    reg:push(img, "rsx/halfway:1", { untag = true })
    registry.remove_image(img)
    local host = stalling_proxy(reg.host, 256 * 1024)
    local image = host .. "/rsx/halfway:1"
    local dir = drv.tmpdir()
    local conf = agent_config(dir, 'plugin "docker" { config { pull_activity_timeout = "2s" } }\n')
    local r = drv.drvctl({ "run", "-json", "-config", conf, "-data-dir", dir .. "/data",
      job(dir, { image = image }) }, { timeout = 90 })
    assert.equal(73, r.code, r.output)
    -- bytes came before the silence
    local downloading = false
    for line in r.stderr:gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then
        local ev = cjson.decode(line)
        downloading = downloading or (ev.phase == "layer" and ev.status == "Downloading")
      end
    end
    assert.is_true(downloading, r.output)
    assert.is_truthy(r.stderr:find('task "web": pull "' .. image
      .. '": image pull aborted: no progress for 2s', 1, true), r.output)
    assert.same({}, drv.containers(), r.output)
    assert.same({}, local_images(host), r.output)
  end)

  it("gives up after image_pull_timeout in total", function()
    local host = stall_server()
    local image = host .. "/rsx/stalled:2"
    local dir = drv.tmpdir()
    local t0 = drv.now()
    local r = drv.drvctl({ "run", "-config", agent_config(dir), "-data-dir", dir .. "/data",
      job(dir, { image = image, config = 'image_pull_timeout = "2s"' }) }, { timeout = 60 })
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('task "web": pull "' .. image
      .. '": timed out after 2s (image_pull_timeout)', 1, true), r.output)
    assert.is_true(drv.now() - t0 < 20, r.output)
    assert.same({}, drv.containers(), r.output)
  end)
end)

describe("count = 5 on an image neither local nor pullable", function()
  local reg
  setup(function()
    drv.require_binary()
    drv.require_docker()
    reg = registry.start({ shared = true })
  end)
  teardown(function()
    if reg then
      reg:stop()
    end
  end)
  after_each(drv.cleanup)

  it("exits 73 with the pull's message on every one of 10 runs", function()
    local image = reg.host .. "/rsx/absent:nope"
    local dir = drv.tmpdir()
    local jobfile = job(dir, { image = image, count = 5 })
    local conf = agent_config(dir)
    local want = 'pull "' .. image .. '": manifest for ' .. image .. " not found"
    for i = 1, 10 do
      local r = drv.drvctl({ "run", "-config", conf, "-data-dir", dir .. "/data", jobfile },
        { timeout = 60 })
      assert.equal(73, r.code, "run " .. i .. "\n" .. r.output)
      assert.is_truthy(r.stderr:find(want, 1, true), "run " .. i .. "\n" .. r.output)
      -- no instance reports a failure of its own (75, a create error)
      assert.is_falsy(r.stderr:find("create container", 1, true), "run " .. i .. "\n" .. r.output)
      assert.same({}, drv.containers(), r.output)
    end
  end)
end)
