-- The attack corpus: every spec/fixtures/attacks/*.hcl is a job file a
-- hostile job author could submit. Each is run with `./drvctl run` under the
-- shipped defaults (no -config, a fresh data dir) against the real daemon,
-- and must be denied: the exit code its header names (never 0, never 70),
-- a message naming the origin, no container, no new or re-pointed image
-- tag, no canary file outside the data dir, no mount left behind, no
-- request to a loopback listener when the attack is a forged destination.
--
-- The corpus is data: a fixture declares everything in its header comment.
--
--   # attack: <class>: <one line>            required
--   # tries: <what the job author tries>     required
--   # must: <what must happen>               required
--   # listed: <branch/issue item> | new      required (new = found by the corpus)
--   # expect: exit=77 message="network_mode" message="\"host\""
--                exit=74|77 allows either code; every message= text must
--                appear in stderr (plain text, case-sensitive)
--   # origin: <text>   stderr must contain it (default: the job file's
--                      name, a policies/*.lua path, or `drvctl: task "`)
--   # needs: httpd victim network image   set-up the attack relies on
--   # ssrf: yes        the loopback listener must see no request
--   # max_seconds: N   the run must end within N s (default 30)
--
-- Placeholders (replaced before the run): @IMAGE@ @RUN_ID@ @LABEL_KEY@
-- @NAME@ (fixture name), @CANARY@ (/tmp/drvctl-corpus-<run>-<name>: must not
-- exist afterwards), @HTTPD@ (127.0.0.1:port), @HTTPD_PORT@, @HTTPD_NODE@
-- (the node's address:port, for archives an attack needs delivered),
-- @VICTIM@ (a container of "another job"), @NETWORK@ (a user-defined
-- network), @VICTIM_IMAGE@ (a tag the attack must not re-point).
--
-- DRVCTL_CORPUS=a,b runs only the named fixtures.
local drv = require("support.drv")
local lfs = require("lfs")

local DIR = drv.root .. "/spec/fixtures/attacks"
local CORPUS_LABEL = "drvctl.test.corpus"
local PREFIX = "/tmp/drvctl-corpus-" .. drv.run_id

local function sh_ok(cmd)
  local r = drv.sh(cmd, { shell = true, timeout = 120 })
  if r.code ~= 0 then
    error(r.output, 2)
  end
  return r
end

---------------------------------------------------------------------------
-- the fixtures and their headers

local function fixtures()
  local names = {}
  for f in lfs.dir(DIR) do
    if f:match("%.hcl$") then
      names[#names + 1] = f
    end
  end
  table.sort(names)
  local only = os.getenv("DRVCTL_CORPUS")
  if only and only ~= "" then
    local want = {}
    for n in only:gmatch("[^,%s]+") do
      want[n:gsub("%.hcl$", "")] = true
    end
    local out = {}
    for _, f in ipairs(names) do
      if want[f:gsub("%.hcl$", "")] then
        out[#out + 1] = f
      end
    end
    names = out
  end
  return names
end

-- parse(text) -> header table, or nil, problem
local function parse(text)
  local h = { exits = {}, messages = {}, needs = {}, max_seconds = 30 }
  for line in text:gmatch("[^\n]*") do
    if not line:match("^%s*#") then
      if line:match("%S") then
        break
      end
    else
      local key, value = line:match("^%s*#%s*([%w_]+):%s*(.-)%s*$")
      if key then
        if key == "expect" then
          local codes = value:match("exit=([%d|]+)")
          for c in (codes or ""):gmatch("%d+") do
            h.exits[#h.exits + 1] = tonumber(c)
          end
          for m in value:gmatch('message="(.-[^\\])"') do
            h.messages[#h.messages + 1] = (m:gsub('\\"', '"'))
          end
        elseif key == "needs" then
          for n in value:gmatch("%S+") do
            h.needs[n] = true
          end
        elseif key == "max_seconds" then
          h.max_seconds = tonumber(value)
        else
          h[key] = value
        end
      end
    end
  end
  for _, k in ipairs({ "attack", "tries", "must", "listed" }) do
    if not h[k] or h[k] == "" then
      return nil, "header has no `# " .. k .. ":` line"
    end
  end
  if #h.exits == 0 then
    return nil, "header has no `# expect: exit=N` line"
  end
  for _, c in ipairs(h.exits) do
    if c == 0 or c == 70 then
      return nil, "an attack may not expect exit " .. c
    end
  end
  if #h.messages == 0 then
    return nil, 'header `# expect:` has no message="..."'
  end
  if not h.max_seconds then
    return nil, "max_seconds is not a number"
  end
  return h
end

---------------------------------------------------------------------------
-- shared set-up: a loopback/node HTTP listener, a victim container, a
-- user-defined network, a victim image tag; built on first use

local env = { vars = {} }

local function node_ip()
  local r = drv.drvctl({ "fingerprint", "-json" }, { timeout = 30 })
  local ip = r.stdout:match('"unique%.network%.ip%-address":%s*"([%d.]+)"')
  return ip or "127.0.0.1"
end

-- Python writes the hostile archives byte-exactly (tarfile).
local MAKE_TARS = [[
import io, sys, tarfile
www, prefix = sys.argv[1], sys.argv[2]
def tar(name, members):
    with tarfile.open(www + "/" + name, "w") as t:
        for m, data in members:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
def f(name, data=b"pwned\n"):
    m = tarfile.TarInfo(name); m.size = len(data); m.mode = 0o644
    return (m, data)
def link(name, target, kind=tarfile.SYMTYPE):
    m = tarfile.TarInfo(name); m.type = kind; m.linkname = target
    return (m, None)
tar("dotdot.tar", [f("../" * 24 + prefix[1:] + "-artifact_tar_dotdot")])
tar("absolute.tar", [f(prefix + "-artifact_tar_absolute")])
tar("through_symlink.tar", [link("d", "/tmp"),
                            f("d/" + prefix[len("/tmp/"):] + "-artifact_tar_through_symlink")])
tar("hardlink.tar", [link("h", "/etc/shadow", tarfile.LNKTYPE)])
tar("symlink_root.tar", [link("link", "/")])
tar("loadlink.tar", [link("img.tar", "/etc/passwd")])
]]

local function need_httpd()
  if env.httpd then
    return
  end
  local dir = sh_ok("mktemp -d /tmp/drvctl-corpus-www.XXXXXX").stdout:gsub("%s+", "")
  env.www = dir
  local www = dir .. "/www"
  sh_ok("mkdir -p " .. drv.quote(www) .. " && echo hello > " .. drv.quote(www .. "/a.txt"))
  drv.write(dir .. "/mktars.py", MAKE_TARS)
  sh_ok("python3 " .. drv.quote(dir .. "/mktars.py") .. " " .. drv.quote(www) .. " "
    .. drv.quote(PREFIX))
  for _ = 1, 10 do
    local port = 20000 + math.random(0, 20000)
    local log = dir .. "/httpd.log"
    local r = drv.sh(string.format(
      "busybox httpd -f -v -p 0.0.0.0:%d -h %s 2>%s & echo $!", port, drv.quote(www),
      drv.quote(log)), { shell = true, timeout = 10 })
    local pid = tonumber(r.stdout:match("%d+"))
    drv.sleep(0.3)
    if pid and os.execute("kill -0 " .. pid .. " 2>/dev/null") then
      env.httpd = { pid = pid, port = port, log = log }
      break
    end
  end
  assert(env.httpd, "could not start busybox httpd")
  -- an allowed-looking URL that redirects to the loopback listener
  sh_ok("mkdir -p " .. drv.quote(www .. "/cgi-bin"))
  drv.write(www .. "/cgi-bin/redir", string.format(
    "#!/bin/sh\nprintf 'Status: 302 Found\\r\\nLocation: http://127.0.0.1:%d/a.txt\\r\\n\\r\\n'\n",
    env.httpd.port))
  sh_ok("chmod 755 " .. drv.quote(www .. "/cgi-bin/redir"))
  env.vars.HTTPD = "127.0.0.1:" .. env.httpd.port
  env.vars.HTTPD_PORT = env.httpd.port
  env.node_ip = node_ip()
  env.vars.HTTPD_NODE = env.node_ip .. ":" .. env.httpd.port
end

local function need_victim()
  if env.victim then
    return
  end
  local name = "drvctl-corpus-victim-" .. drv.run_id
  sh_ok("docker run -d --name " .. name .. " --label " .. CORPUS_LABEL .. "=" .. drv.run_id
    .. " " .. drv.quote(drv.IMAGE) .. " sh -c 'echo secret > /secret; sleep 3600' >/dev/null")
  env.victim = name
  env.vars.VICTIM = name
end

local function need_network()
  if env.network then
    return
  end
  local name = "drvctl-corpus-" .. drv.run_id
  sh_ok("docker network create --label " .. CORPUS_LABEL .. "=" .. drv.run_id .. " "
    .. name .. " >/dev/null")
  env.network = name
  env.vars.NETWORK = name
end

-- @VICTIM_IMAGE@: a tag of the test image; retag.tar (served by httpd)
-- holds another image that claims that tag.
local function need_image()
  if env.image then
    return
  end
  need_httpd()
  local victim = "drvctl-corpus/victim:" .. drv.run_id
  local evil = "drvctl-corpus/evil:" .. drv.run_id
  sh_ok("docker tag " .. drv.quote(drv.IMAGE) .. " " .. victim)
  env.image = { victim = victim, evil = evil }
  sh_ok(string.format("printf 'FROM %s\\nLABEL %s=evil\\n' | docker build -q -t %s - >/dev/null",
    drv.IMAGE, CORPUS_LABEL, evil))
  env.image.evil_id = sh_ok("docker inspect -f '{{.Id}}' " .. evil).stdout:gsub("%s+", "")
  local work = env.www .. "/retag"
  sh_ok(table.concat({
    "mkdir -p " .. drv.quote(work),
    "docker save -o " .. drv.quote(work .. "/evil.tar") .. " " .. evil,
    "cd " .. drv.quote(work) .. " && mkdir x && tar -xf evil.tar -C x",
    "sed -i 's#drvctl-corpus/evil#drvctl-corpus/victim#g' x/manifest.json x/repositories",
    "tar -cf " .. drv.quote(env.www .. "/www/retag.tar") .. " -C x .",
    "docker rmi " .. evil .. " >/dev/null",
  }, " && "))
  env.vars.VICTIM_IMAGE = victim
  env.vars.EVIL_IMAGE = evil
end

local function teardown_env()
  if env.httpd then
    os.execute("kill " .. env.httpd.pid .. " 2>/dev/null")
  end
  if env.victim then
    drv.sh("docker rm -f -v " .. env.victim .. " >/dev/null 2>&1", { shell = true })
  end
  if env.network then
    drv.sh("docker network rm " .. env.network .. " >/dev/null 2>&1", { shell = true })
  end
  if env.image then
    drv.sh("docker rmi " .. env.image.victim .. " " .. env.image.evil .. " >/dev/null 2>&1",
      { shell = true })
    drv.sh("docker rmi -f " .. env.image.evil_id .. " >/dev/null 2>&1", { shell = true })
  end
  if env.www then
    os.execute("rm -rf " .. drv.quote(env.www))
  end
  os.execute("rm -rf " .. drv.quote(PREFIX) .. "-*")
end

---------------------------------------------------------------------------
-- what the host looks like, before and after

local function image_id(ref)
  local r = drv.sh("docker image inspect -f '{{.Id}}' " .. drv.quote(ref) .. " 2>/dev/null",
    { shell = true })
  return r.code == 0 and r.stdout:gsub("%s+", "") or nil
end

local function corpus_tags()
  local r = drv.sh("docker images --format '{{.Repository}}:{{.Tag}}' | grep -i corpus || true",
    { shell = true })
  local set = {}
  for t in r.stdout:gmatch("%S+") do
    set[t] = true
  end
  return set
end

-- Requests the listener got from any source but the node's own address
-- (loopback, the docker0 gateway, ...): busybox httpd -v logs
-- "ip:port: response:NNN" per request. Archives an attack needs are fetched
-- from the node's address and do not count.
local function loopback_hits(p)
  local n = 0
  local f = io.open(p, "rb")
  if not f then
    return 0
  end
  local node = "^" .. (env.node_ip or "-"):gsub("%.", "%%.") .. ":"
  for line in f:lines() do
    if line:match("^%S+:%d+:") and not line:find(node) then
      n = n + 1
    end
  end
  f:close()
  return n
end

local function mounts_under(dir)
  local out = {}
  for line in io.lines("/proc/self/mountinfo") do
    if line:find(dir, 1, true) or line:find("drvctl-corpus-" .. drv.run_id, 1, true) then
      out[#out + 1] = line
    end
  end
  return out
end

local function canaries()
  local out = {}
  local p = io.popen("ls -d " .. drv.quote(PREFIX) .. "-* 2>/dev/null")
  for l in p:lines() do
    out[#out + 1] = l
  end
  p:close()
  return out
end

local function snapshot(h)
  local s = { test_image = image_id(drv.IMAGE), tags = corpus_tags() }
  if env.image then
    s.victim_image = image_id(env.image.victim)
  end
  if h.ssrf and env.httpd then
    s.httpd_log = loopback_hits(env.httpd.log)
  end
  return s
end

---------------------------------------------------------------------------

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

local function run_fixture(file)
  local text = assert(drv.read(DIR .. "/" .. file))
  local h = assert(parse(text))
  local name = file:gsub("%.hcl$", "")
  if h.needs.httpd or h.ssrf then need_httpd() end
  if h.needs.victim then need_victim() end
  if h.needs.network then need_network() end
  if h.needs.image then need_image() end

  local dir = drv.tmpdir()
  local vars = { NAME = name, CANARY = PREFIX .. "-" .. name }
  for k, v in pairs(env.vars) do
    vars[k] = v
  end
  local job, body = drv.fixture("attacks/" .. file, dir, vars)
  local unresolved = body:match("@[%u_]+@")
  assert(unresolved == nil, file .. ": unknown placeholder " .. tostring(unresolved))
  h = assert(parse(body)) -- messages may name placeholders (@VICTIM@)

  local before = snapshot(h)
  local t0 = drv.now()
  local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job },
    { timeout = h.max_seconds + 30 })
  local elapsed = drv.now() - t0
  local after = snapshot(h)

  local problems = {}
  local function bad(fmt, ...)
    problems[#problems + 1] = string.format(fmt, ...)
  end
  if r.code == 0 or r.code == 70 or r.code == 124 or not contains(h.exits, r.code) then
    local want = {}
    for i, c in ipairs(h.exits) do want[i] = tostring(c) end
    bad("exit %s, expected %s", tostring(r.code), table.concat(want, "|"))
  end
  for _, m in ipairs(h.messages) do
    if not r.stderr:find(m, 1, true) then
      bad("stderr lacks %q", m)
    end
  end
  local origin_ok
  if h.origin then
    origin_ok = r.stderr:find(h.origin, 1, true)
  else
    -- the job file (file:line:col), a policy file, or the task at run time
    origin_ok = r.stderr:find(file, 1, true) or r.stderr:find("policies/[%w_%-]+%.lua")
      or r.stderr:find('drvctl: task "', 1, true)
  end
  if not origin_ok then
    bad("stderr names no origin (%s)", h.origin or (file .. ", policies/*.lua or task"))
  end
  if elapsed > h.max_seconds then
    bad("took %.1f s (max_seconds %d)", elapsed, h.max_seconds)
  end
  local ids = drv.containers()
  if #ids > 0 then
    bad("%d container(s) created: %s", #ids, table.concat(ids, " "))
  end
  for _, c in ipairs(canaries()) do
    bad("file created outside the data dir: %s", c)
  end
  local m = mounts_under(dir)
  if #m > 0 then
    bad("mount(s) left: %s", table.concat(m, " | "))
  end
  if before.test_image ~= after.test_image then
    bad("test image %s re-pointed: %s -> %s", drv.IMAGE, tostring(before.test_image),
      tostring(after.test_image))
  end
  if before.victim_image ~= after.victim_image then
    bad("image tag %s re-pointed: %s -> %s", env.image.victim, tostring(before.victim_image),
      tostring(after.victim_image))
  end
  for t in pairs(after.tags) do
    if not before.tags[t] then
      bad("new image tag: %s", t)
    end
  end
  if h.ssrf and after.httpd_log ~= before.httpd_log then
    bad("the loopback listener was contacted from the host (%d request(s))",
      after.httpd_log - before.httpd_log)
  end
  if #problems > 0 then
    error(string.format("%s: NOT DENIED as declared (%s)\n  %s\n%s", file, h.attack,
      table.concat(problems, "\n  "), r.output), 0)
  end
end

describe("attack corpus (spec/fixtures/attacks, shipped defaults)", function()
  local files = fixtures()

  setup(function()
    drv.require_binary()
    drv.require_docker()
    math.randomseed(os.time() + (tonumber(drv.run_id:sub(1, 6), 16) or 0))
  end)

  teardown(teardown_env)

  after_each(function()
    drv.cleanup()
    os.execute("rm -rf " .. drv.quote(PREFIX) .. "-*")
  end)

  it("has fixtures, each declaring what it tries and what must happen", function()
    if not os.getenv("DRVCTL_CORPUS") then
      assert.is_true(#files >= 40, "only " .. #files .. " fixtures")
    end
    for _, f in ipairs(files) do
      local text = assert(drv.read(DIR .. "/" .. f))
      local h, err = parse(text)
      assert(h, f .. ": " .. tostring(err))
      assert(text:find('"@LABEL_KEY@" = "@RUN_ID@"', 1, true),
        f .. ": every attack job carries the run label (labels { \"@LABEL_KEY@\" = \"@RUN_ID@\" })")
    end
  end)

  for _, file in ipairs(files) do
    local text = drv.read(DIR .. "/" .. file) or ""
    local h = parse(text) or { exits = {}, attack = "?" }
    local codes = {}
    for i, c in ipairs(h.exits) do codes[i] = tostring(c) end
    it(string.format("%s is denied (exit %s): %s", file, table.concat(codes, "|"),
      tostring(h.attack)), function()
      run_fixture(file)
    end)
  end
end)

-- New defaults the corpus brought (policies/pids.lua, log_rotation.lua, capacity.lua,
-- ulimits.lua, ports.lua):
-- what a task that asks for nothing gets.
describe("defaults a task gets without asking (shipped policies)", function()
  after_each(drv.cleanup)

  it("a task without pids_limit runs under a pids limit (no fork bomb across the host)", function()
    drv.require_docker()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { script = "cat /sys/fs/cgroup/pids.max 2>/dev/null "
      .. "|| cat /sys/fs/cgroup/pids/pids.max" })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    local max = r.stdout:match("t | (%S+)")
    assert.is_truthy(tonumber(max), "pids.max is " .. tostring(max) .. "\n" .. r.output)
    assert.is_true(tonumber(max) <= 4096, r.output)
  end)

  it("a json-file log without options is rotated (docker's own log copy stays bounded)", function()
    drv.require_docker()
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { config = 'logging {\n  type = "json-file"\n}',
      script = "trap 'exit 0' TERM INT; echo ready; while :; do sleep 0.1; done" })
    local p = drv.spawn({ "run", "-data-dir", dir .. "/data", job })
    local id = drv.wait_until(function() return drv.containers({ "status=running" })[1] end, 30)
    assert.is_truthy(id, "no running container")
    local c = assert(drv.inspect(id, "container"))
    p:signal("INT")
    p:wait(30)
    local lc = c.HostConfig.LogConfig
    assert.equal("json-file", lc.Type)
    assert.equal("2m", lc.Config["max-size"])
    assert.equal("2", lc.Config["max-file"])
  end)

  -- Container root is host root (no user namespace): a task can chmod u+s a
  -- file it owns and mknod (MKNOD is a Docker default) in /alloc, which is a
  -- host directory that stays after the run. Other host users must not reach
  -- them: the data dir is closed to them (sec-binds: data_dir 0700).
  it("a job's setuid-root file and block device node (mode 666) in /alloc are out of other users' reach", function()
    drv.require_docker()
    local dir = drv.tmpdir()
    assert.is_true(os.execute("chmod 755 " .. drv.quote(dir)))
    local job = drv.write_job(dir, { script = "cp /bin/busybox /alloc/data/sh && chmod 4755 /alloc/data/sh"
      .. " && mknod -m 666 /alloc/data/disk b 7 0 && echo planted" })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.matches("t | planted", r.stdout, 1, true)
    local alloc = assert(drv.alloc_ids(dir .. "/data")[1], "no alloc dir")
    local data = dir .. "/data/alloc/" .. alloc .. "/alloc/data"
    for _, f in ipairs({ "sh", "disk" }) do
      local p = data .. "/" .. f
      assert.is_true(drv.exists(p), p)
      local nobody = drv.sh("setpriv --reuid=65534 --regid=65534 --clear-groups test -e "
        .. drv.quote(p))
      assert.are_not.equal(0, nobody.code, "uid 65534 reaches " .. p .. " (modes: "
        .. drv.sh("namei -m " .. drv.quote(p)).stdout .. ")")
    end
  end)

  -- /alloc/logs is the host's alloc/logs, where drvctl (root) writes the
  -- task's output: a task that swaps it for a symlink must not make drvctl
  -- write into a host directory (e.g. /etc/logrotate.d), and a FIFO under
  -- the next log name must not block the run.
  it("a task that swaps /alloc/logs for a symlink or plants a FIFO gets nothing written outside", function()
    drv.require_docker()
    local dir = drv.tmpdir()
    local target = PREFIX .. "-logs-target"
    assert.is_true(os.execute("mkdir -p " .. drv.quote(target)))
    drv.on_cleanup(function() os.execute("rm -rf " .. drv.quote(target)) end)
    local logs = 'logs {\n  max_files = 3\n  max_file_size = 1\n}'
    local job = drv.write_job(dir, { task_extra = logs, script = "rm -rf /alloc/logs && ln -s "
      .. target .. " /alloc/logs && yes pwned | head -c 1200000; echo; echo swapped" })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.same({}, drv.ls(target), r.output)
    local fifo = drv.write_job(dir, { task_extra = logs, script = "mkfifo /alloc/logs/t.stdout.1"
      .. " && yes x | head -c 1200000; echo; echo planted" }, "fifo.hcl")
    r = drv.drvctl({ "run", "-data-dir", dir .. "/data2", fifo }, { timeout = 60 })
    assert.equal(0, r.code, r.output)
    assert.matches('/alloc/logs/t.stdout.1": ', r.stderr, 1, true)
  end)

  -- README "More defaults found by the attack corpus": each restore line
  -- lets its attack through again (plan: nothing is created)
  local RESTORE = {
    { "pids_limit_unlimited.hcl", "pids" },
    { "logging_json_unlimited.hcl", "log_rotation" },
    { "memory_huge.hcl", "capacity" },
    { "ulimit_rtprio.hcl", "ulimits" },
    { "ports_many.hcl", "ports" },
  }
  for _, r in ipairs(RESTORE) do
    it("the README restore line of policies/" .. r[2] .. ".lua lets " .. r[1] .. " through", function()
      local dir = drv.tmpdir()
      local agent = drv.write(dir .. "/agent.hcl", string.format(
        'plugin "docker" { config { policy_options { %s { enabled = false } } } }\n', r[2]))
      local readme = assert(drv.read(drv.root .. "/README.md"))
      assert.is_truthy(readme:find(assert(drv.read(agent)):gsub("\n$", ""), 1, true),
        "README lacks the restore line " .. drv.read(agent))
      local job = drv.fixture("attacks/" .. r[1], dir, { NAME = "restore", CANARY = "/nonexistent" })
      local denied = drv.drvctl({ "plan", "-data-dir", dir .. "/data", job })
      assert.equal(77, denied.code, denied.output)
      assert.matches("policies/" .. r[2] .. ".lua", denied.stderr, 1, true)
      local res = drv.drvctl({ "plan", "-config", agent, "-data-dir", dir .. "/data", job })
      assert.equal(0, res.code, res.output)
    end)
  end
end)
