-- `load` may tag only the task's own image: an archive whose manifest.json
-- (or legacy `repositories` file) also names another tag would otherwise
-- silently re-point that tag (e.g. alpine:latest) for every other user of
-- the daemon. The archive is served from a loopback HTTP server (file://
-- artifacts may be limited to operator-listed directories).
local cjson = require("cjson")
local drv = require("support.drv")

-- Serves dir on 127.0.0.1 (a free port); returns the base URL.
local function serve(dir)
  local portfile = dir .. "/port"
  local script = table.concat({
    "import http.server, functools, sys",
    "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])",
    "s = http.server.HTTPServer(('127.0.0.1', 0), h)",
    "open(sys.argv[2], 'w').write(str(s.server_address[1]))",
    "s.serve_forever()",
  }, "\n")
  local p = assert(io.popen("python3 -c " .. drv.quote(script) .. " " .. drv.quote(dir) .. " "
    .. drv.quote(portfile) .. " </dev/null >/dev/null 2>&1 & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  drv.on_cleanup(function()
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  end)
  local port = drv.wait_until(function()
    local s = drv.read(portfile)
    return s and tonumber(s)
  end, 10)
  assert(port, "http server did not start")
  return "http://127.0.0.1:" .. port
end

local function image_id(ref)
  local img = drv.inspect(ref, "image")
  return img and img.Id
end

local function remove_later(tag)
  drv.on_cleanup(function()
    drv.docker({ "rmi", "-f", tag }, { may_fail = true })
  end)
end

-- A victim tag on the test image, and a different image (one more label)
-- saved under the task's tag; returns task tag, victim tag, the dir the
-- archive was unpacked into (./manifest.json, ./repositories, ...).
local function prepare(dir)
  local tag = "drvctl-test/loadtags:" .. drv.run_id
  local victim = "drvctl-test/victim:" .. drv.run_id
  remove_later(tag)
  remove_later(victim)
  drv.docker({ "tag", drv.IMAGE, victim })
  drv.write(dir .. "/Dockerfile", "FROM " .. drv.IMAGE .. "\nLABEL drvctl.test.other=" .. drv.run_id .. "\n")
  drv.docker({ "build", "-q", "--label", drv.label, "-t", tag, dir })
  assert.are_not.equal(image_id(victim), image_id(tag))
  drv.docker({ "save", "-o", dir .. "/orig.tar", tag })
  drv.docker({ "rmi", tag })
  local unpacked = dir .. "/unpacked"
  assert(os.execute("mkdir -p " .. unpacked .. " && tar -C " .. unpacked .. " -xf " .. dir .. "/orig.tar"))
  return tag, victim, unpacked
end

local function edit_json(path, fn)
  local v = cjson.decode((assert(drv.read(path))))
  fn(v)
  drv.write(path, cjson.encode(v))
end

local function pack(unpacked, tar, extra)
  local r = drv.sh("tar -C " .. drv.quote(unpacked) .. " -cf " .. drv.quote(tar) .. " .", { shell = true })
  assert.equal(0, r.code, r.output)
  if extra then
    extra(tar)
  end
end

local function run(dir, tag, agent)
  local srv = dir .. "/srv"
  local job = drv.write_job(dir, { task = "loaded", image = tag, script = "echo loaded image runs",
    config = 'load = "img.tar"',
    task_extra = 'artifact {\n  source = "' .. serve(srv) .. '/img.tar"\n}' })
  -- the archive is served from loopback, which artifacts refuse unless the
  -- operator allows private destinations
  agent = agent or drv.write(dir .. "/agent.hcl", "client {\n  artifact {\n    allow_private = true\n  }\n}\n")
  local args = { "run", "-data-dir", dir .. "/data", "-config", agent, job }
  return drv.drvctl(args, { timeout = 90 })
end

-- A fake Docker (spec/fixtures/docker/fake_docker.py taken): the task's
-- image tag exists, as another image, although create said "No such image"
-- (the race between create and load). Returns an agent config and the log.
local function fake_taken(dir)
  local sock, log = dir .. "/docker.sock", dir .. "/requests.log"
  drv.write(log, "")
  local p = assert(io.popen("python3 " .. drv.quote(drv.root .. "/spec/fixtures/docker/fake_docker.py")
    .. " taken " .. drv.quote(sock) .. " " .. drv.quote(log) .. " </dev/null >/dev/null 2>&1 & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  drv.on_cleanup(function()
    os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  end)
  assert.is_truthy(drv.wait_until(function() return drv.exists(sock) end, 10), "fake docker did not start")
  return drv.write(dir .. "/agent.hcl", string.format(
    'client {\n  options {\n    "docker.endpoint" = "unix://%s"\n  }\n'
    .. '  artifact {\n    allow_private = true\n  }\n}\n', sock)), log
end

local function srv_dir(dir)
  os.execute("mkdir -p " .. drv.quote(dir .. "/srv"))
  return dir .. "/srv/img.tar"
end

describe("config.load", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("loads an archive that tags only the task's image (served over http)", function()
    local dir = drv.tmpdir()
    local tag, _, unpacked = prepare(dir)
    pack(unpacked, srv_dir(dir))
    local r = run(dir, tag)
    assert.equal(0, r.code, r.output)
    assert.is_truthy(r.stdout:find("loaded | loaded image runs", 1, true), r.output)
  end)

  it("refuses an archive whose RepoTags also re-point another existing tag", function()
    local dir = drv.tmpdir()
    local tag, victim, unpacked = prepare(dir)
    local before = image_id(victim)
    edit_json(unpacked .. "/manifest.json", function(m)
      m[1].RepoTags = { tag, victim }
    end)
    pack(unpacked, srv_dir(dir))
    local r = run(dir, tag)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('manifest.json tags "' .. victim .. '", but only the task\'s image "'
      .. tag .. '" may be tagged', 1, true), r.output)
    assert.equal(before, image_id(victim), "the victim tag was re-pointed")
    assert.is_nil(image_id(tag), "the archive was loaded anyway")
    assert.same({}, drv.containers(), r.output)
  end)

  it("refuses a short name that means docker.io/library/busybox:latest", function()
    local dir = drv.tmpdir()
    local tag, _, unpacked = prepare(dir)
    local before = image_id("busybox:latest")
    edit_json(unpacked .. "/manifest.json", function(m)
      m[1].RepoTags = { tag, "busybox" }
    end)
    pack(unpacked, srv_dir(dir))
    local r = run(dir, tag)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('tags "busybox"', 1, true), r.output)
    assert.equal(before, image_id("busybox:latest"))
    assert.is_nil(image_id(tag))
  end)

  it("refuses a legacy repositories file naming another tag", function()
    local dir = drv.tmpdir()
    local tag, victim, unpacked = prepare(dir)
    local before = image_id(victim)
    local repo, vtag = victim:match("^(.*):([^:]*)$")
    edit_json(unpacked .. "/repositories", function(r)
      local layers = select(2, next(r))
      r[repo] = { [vtag] = select(2, next(layers)) }
    end)
    os.remove(unpacked .. "/manifest.json")
    pack(unpacked, srv_dir(dir))
    local r = run(dir, tag)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('repositories tags "' .. victim .. '"', 1, true), r.output)
    assert.equal(before, image_id(victim))
    assert.same({}, drv.containers(), r.output)
  end)

  it("refuses an archive listing manifest.json twice", function()
    local dir = drv.tmpdir()
    local tag, victim, unpacked = prepare(dir)
    local before = image_id(victim)
    -- the first manifest.json is harmless; tar extraction keeps the last one
    local evil = dir .. "/evil"
    assert(os.execute("mkdir -p " .. evil))
    drv.write(evil .. "/manifest.json", (assert(drv.read(unpacked .. "/manifest.json"))))
    edit_json(evil .. "/manifest.json", function(m)
      m[1].RepoTags = { victim }
    end)
    pack(unpacked, srv_dir(dir), function(tar)
      local r = drv.sh("tar -C " .. drv.quote(evil) .. " -rf " .. drv.quote(tar) .. " manifest.json",
        { shell = true })
      assert.equal(0, r.code, r.output)
    end)
    local r = run(dir, tag)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find("manifest.json is listed twice", 1, true), r.output)
    assert.equal(before, image_id(victim))
  end)

  it("refuses to re-point the task's own tag when it already names another image", function()
    local dir = drv.tmpdir()
    local tag, _, unpacked = prepare(dir)
    pack(unpacked, srv_dir(dir))
    local agent, log = fake_taken(dir)
    local r = run(dir, tag, agent)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find('image "' .. tag .. '" already exists as sha256:' .. string.rep("0", 64)
      .. " and the archive would re-point it to sha256:", 1, true), r.output)
    local requests = drv.read(log)
    assert.is_truthy(requests:find("GET [^ ]*/images/" .. tag:gsub("%p", "%%%0") .. "/json"), requests)
    assert.is_nil(requests:find("/images/load", 1, true), requests)
  end)

  it("refuses a manifest.json larger than 1 MiB", function()
    local dir = drv.tmpdir()
    local tag, _, unpacked = prepare(dir)
    edit_json(unpacked .. "/manifest.json", function(m)
      m[1].Padding = string.rep("x", 1100 * 1024)
    end)
    pack(unpacked, srv_dir(dir))
    local r = run(dir, tag)
    assert.equal(73, r.code, r.output)
    assert.is_truthy(r.stderr:find("manifest.json is larger than", 1, true), r.output)
    assert.is_nil(image_id(tag))
  end)
end)
