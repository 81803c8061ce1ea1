-- Task config options as the real container shows them: observed from
-- inside (the task prints what it sees; drvctl relays it as "<task> | line")
-- or with `docker inspect` while the task runs.
local drv = require("support.drv")
local cjson = require("cjson.safe")

-- A task that runs until drvctl stops it, and stops at once when asked.
local SLEEP = "trap 'exit 0' TERM INT; echo ready; while :; do sleep 0.1; done"

-- drvctl arguments: CMD -data-dir DIR/data -config AGENT JOB. Without an
-- agent config of the spec's own, ports are published on the loopback
-- interface, so test traffic never leaves 127.0.0.0/8 (every agent fixture
-- under spec/fixtures/docker/ sets network_interface = "lo" as well).
local function args_for(cmd, dir, job, agent)
  local args = { cmd, "-data-dir", dir .. "/data" }
  if not agent then
    agent = drv.write(dir .. "/loopback.hcl", 'client {\n  network_interface = "lo"\n}\n')
  end
  args[#args + 1] = "-config"
  args[#args + 1] = agent
  args[#args + 1] = job
  return args
end

-- Runs a one-task job (drv.job options t) to completion. opts.agent: path
-- of an agent config (a function of the temp dir is called with it).
-- Returns the result, the data dir and the alloc id (or nil).
local function run(t, opts)
  opts = opts or {}
  local dir = drv.tmpdir()
  local text = drv.job(t)
  if opts.edit then
    text = opts.edit(text)
  end
  local job = drv.write(dir .. "/job.hcl", text)
  local agent = opts.agent
  if type(agent) == "function" then
    agent = agent(dir)
  end
  local r = drv.drvctl(args_for("run", dir, job, agent), { timeout = 60 })
  return r, dir .. "/data", drv.alloc_ids(dir .. "/data")[1]
end

-- True when `text` has the exact line `line`.
local function has_line(text, line)
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    if l == line then
      return true
    end
  end
  return false
end

-- The task's stdout lines as drvctl relays them ("<task> | x" -> "x").
local function task_lines(text, task)
  local out = {}
  local prefix = (task or "t") .. " | "
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    if l:sub(1, #prefix) == prefix then
      out[#out + 1] = l:sub(#prefix + 1):gsub("\r$", "")
    end
  end
  return out
end

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

-- Starts a one-task job in the background, waits until its container runs
-- and returns the proc, the decoded `docker inspect` of the container (nil
-- if it never ran) and the data dir. t.script defaults to SLEEP.
local function start(t, opts)
  opts = opts or {}
  local dir = drv.tmpdir()
  t.script = t.script or SLEEP
  t.kill_timeout = t.kill_timeout or "2s"
  local job = drv.write_job(dir, t)
  local agent = opts.agent
  if type(agent) == "function" then
    agent = agent(dir)
  end
  local proc = drv.spawn(args_for("run", dir, job, agent))
  local id = drv.wait_until(function()
    local ids = drv.containers({ "status=running" })
    return ids[1] or (proc:exited() and "exited")
  end, 30)
  local c
  if id and id ~= "exited" then
    c = drv.inspect(id, "container")
  end
  return proc, c, dir .. "/data"
end

-- Stops a started run (SIGINT) and returns its exit code.
local function stop(proc)
  proc:signal("INT")
  return proc:wait(30)
end

-- Starts t, inspects the running container, stops; returns the inspect
-- table (asserted present) and the output of the run.
local function inspect_running(t, opts)
  local proc, c = start(t, opts)
  local early = proc:stdout() .. proc:stderr()
  stop(proc)
  assert.is_table(c, "the container never ran\n" .. (proc.output or early))
  return c, proc.output
end

-- Runs fn once and caches its result (or error) for several `it`s that
-- assert different facts about one observation.
local function once(fn)
  local result
  return function()
    if not result then
      result = table.pack(pcall(fn))
    end
    if not result[1] then
      error(result[2], 0)
    end
    return table.unpack(result, 2, result.n)
  end
end

local function nproc()
  local r = drv.sh("nproc")
  return assert(math.tointeger(tonumber(r.stdout:match("%d+"))), r.output)
end

describe("task config option", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  -------------------------------------------------------------------------
  -- Observed from inside the container.

  it("ulimit nofile = \"2048:4096\" sets the soft and hard open-file limits", function()
    local r = run({ script = "echo n=$(ulimit -n) hn=$(ulimit -Hn)",
      config = 'ulimit {\n  nofile = "2048:4096"\n  nproc = "4242"\n}' })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | n=2048 hn=4096"), r.output)
  end)

  it("ulimit nproc = \"4242\" sets soft and hard process limits to 4242", function()
    local r = run({ script = "echo u=$(ulimit -u) hu=$(ulimit -Hu)",
      config = 'ulimit {\n  nofile = "2048:4096"\n  nproc = "4242"\n}' })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | u=4242 hu=4242"), r.output)
  end)

  it("sysctl net.core.somaxconn is set in the container's network namespace", function()
    local r = run({ script = "echo somaxconn=$(cat /proc/sys/net/core/somaxconn)",
      config = 'sysctl {\n  net.core.somaxconn = "16384"\n}' })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | somaxconn=16384"), r.output)
  end)

  it("readonly_rootfs makes a write to / fail", function()
    local r = run({ config = "readonly_rootfs = true",
      script = "if touch /probe 2>/dev/null; then echo root=rw; else echo root=ro; fi" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | root=ro"), r.output)
  end)

  it("readonly_rootfs keeps the alloc dir writable", function()
    local r, data, alloc = run({ config = "readonly_rootfs = true",
      script = "echo kept > $NOMAD_ALLOC_DIR/data/ro.txt" })
    assert.equal(0, r.code, r.output)
    assert.equal("kept\n", drv.read(data .. "/alloc/" .. alloc .. "/alloc/data/ro.txt"), r.output)
  end)

  it("shm_size sets the size of /dev/shm", function()
    local r = run({ config = "shm_size = 134217728",
      script = "grep ' /dev/shm ' /proc/mounts" })
    assert.equal(0, r.code, r.output)
    local line = task_lines(r.stdout)[1] or ""
    assert.matches("[ ,]size=131072k[ ,]", line, 1, false, r.output)
  end)

  it("hostname sets the container's host name", function()
    local r = run({ config = 'hostname = "spec-host"', script = "echo host=$(hostname)" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | host=spec-host"), r.output)
  end)

  it("extra_hosts adds entries to /etc/hosts", function()
    local r = run({ config = 'extra_hosts = ["db.spec.example:10.11.12.13"]',
      script = "grep db.spec.example /etc/hosts" })
    assert.equal(0, r.code, r.output)
    local line = task_lines(r.stdout)[1] or ""
    assert.matches("^10%.11%.12%.13%s+db%.spec%.example$", line, 1, false, r.output)
  end)

  describe("resolv.conf", function()
    local resolv = once(function()
      local r = run({ script = "cat /etc/resolv.conf", config = table.concat({
        'dns_servers = ["10.0.0.53"]',
        'dns_search_domains = ["spec.example"]',
        'dns_options = ["ndots:3"]',
      }, "\n") })
      assert.equal(0, r.code, r.output)
      return task_lines(r.stdout), r.output
    end)

    it("dns_servers become nameserver lines", function()
      local lines, output = resolv()
      assert.is_true(contains(lines, "nameserver 10.0.0.53"), output)
      assert.is_false(contains(lines, "nameserver 127.0.0.11"), output)
    end)

    it("dns_search_domains become the search line", function()
      local lines, output = resolv()
      assert.is_true(contains(lines, "search spec.example"), output)
    end)

    it("dns_options become the options line", function()
      local lines, output = resolv()
      assert.is_true(contains(lines, "options ndots:3"), output)
    end)
  end)

  describe("env", function()
    local env = once(function()
      local r, _, alloc = run({
        job_extra = 'meta {\n  x = "from-job-meta"\n}',
        task_extra = table.concat({
          "env {",
          '  GREETING = "hello world"',
          '  ALLOC = "id-${NOMAD_ALLOC_ID}"',
          '  META = "${meta.x}"',
          '  DC = "${node.datacenter}"',
          "}",
        }, "\n"),
        script = 'echo "greeting=$GREETING"; echo "alloc=$ALLOC"; echo "meta=$META"; echo "dc=$DC"',
      }, {
        edit = function(text)
          return (text:gsub('datacenters = %["dc1"%]', 'datacenters = ["spec-dc"]'))
        end,
        agent = function(dir)
          return (drv.fixture("docker/options/datacenter.hcl", dir, { DC = "spec-dc" }))
        end,
      })
      assert.equal(0, r.code, r.output)
      return r, alloc
    end)

    it("passes the task's env to the container", function()
      local r = env()
      assert.is_true(has_line(r.stdout, "t | greeting=hello world"), r.output)
    end)

    it("interpolates ${NOMAD_ALLOC_ID} in env values", function()
      local r, alloc = env()
      assert.matches(drv.UUID_PATTERN, alloc or "", r.output)
      assert.is_true(has_line(r.stdout, "t | alloc=id-" .. alloc), r.output)
    end)

    it("interpolates ${meta.x} in env values", function()
      local r = env()
      assert.is_true(has_line(r.stdout, "t | meta=from-job-meta"), r.output)
    end)

    it("interpolates ${node.datacenter} in env values", function()
      local r = env()
      assert.is_true(has_line(r.stdout, "t | dc=spec-dc"), r.output)
    end)
  end)

  it("devices makes the host device node appear at container_path", function()
    local r = run({
      config = 'devices = [\n  { host_path = "/dev/null" container_path = "/dev/mynull" }\n]',
      script = "if [ -c /dev/mynull ]; then echo dev=char; else echo dev=missing; fi; "
        .. "echo written > /dev/mynull && echo write=ok",
    }, { agent = function(dir)
      -- devices are denied unless listed (policies/devices.lua)
      return drv.write(dir .. "/devices.hcl", 'client {\n  network_interface = "lo"\n}\n'
        .. 'plugin "docker" {\n  config {\n    allow_devices = ["/dev/null"]\n  }\n}\n')
    end })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | dev=char"), r.output)
    assert.is_true(has_line(r.stdout, "t | write=ok"), r.output)
  end)

  it("resources memory = 16 gets a task that allocates 64 MiB OOM killed (exit 137)", function()
    -- dd's 64 MiB buffer is filled from /dev/zero, so every page is touched;
    -- exec makes dd PID 1 so its SIGKILL is the container's exit. Checked on
    -- cgroup v1 (Docker 20.10, cgroupfs), where State.OOMKilled is reliable;
    -- on cgroup v2 with Docker 20.10's containerd it may stay false
    -- (hashicorp/nomad#13119) and this spec would then fail on the message.
    local r = run({ task_extra = "resources {\n  memory = 16\n}",
      script = "echo start; exec dd if=/dev/zero of=/dev/null bs=64M count=1" })
    assert.equal(137, r.code, r.output)
    assert.is_truthy(r.stderr:find("OOM Killed", 1, true), r.output)
  end)

  it("a task that exits 137 without running out of memory is not reported OOM Killed", function()
    -- PID 1 cannot SIGKILL itself: init = true makes sh a child of docker-init
    local r = run({ task_extra = "resources {\n  memory = 64\n}", config = "init = true",
      script = "kill -KILL $$" })
    assert.equal(137, r.code, r.output)
    assert.is_falsy(r.stderr:find("OOM Killed", 1, true), r.output)
  end)

  it("work_dir sets the working directory", function()
    local r = run({ config = 'work_dir = "/local"', script = "echo cwd=$(pwd)" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | cwd=/local"), r.output)
  end)

  it("entrypoint runs with args appended", function()
    local r = run({ config = 'entrypoint = ["/bin/echo", "from-entrypoint"]\nargs = ["arg1"]' })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | from-entrypoint arg1"), r.output)
  end)

  it("tty = true gives the task a terminal on stdout", function()
    local r = run({ config = "tty = true",
      script = "if [ -t 1 ]; then echo tty=yes; else echo tty=no; fi" })
    assert.equal(0, r.code, r.output)
    assert.is_true(contains(task_lines(r.stdout), "tty=yes"), r.output)
  end)

  it("tty unset gives the task no terminal", function()
    local r = run({ script = "if [ -t 1 ]; then echo tty=yes; else echo tty=no; fi" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | tty=no"), r.output)
  end)

  it("init = true runs docker-init as PID 1", function()
    local r = run({ config = "init = true", script = "echo pid1=$(cat /proc/1/comm)" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | pid1=docker-init"), r.output)
  end)

  it("pids_limit sets the container's pids cgroup limit", function()
    local proc, c = start({ config = "pids_limit = 64" })
    local inside = drv.docker({ "exec", c and c.Id or "none", "cat", "/sys/fs/cgroup/pids/pids.max" },
      { may_fail = true })
    stop(proc)
    assert.is_table(c, proc.output)
    assert.equal(64, math.tointeger(c.HostConfig.PidsLimit), proc.output)
    assert.equal("64", inside.stdout:match("%S+"), inside.output)
  end)

  it("group_add adds supplementary groups", function()
    local r = run({ config = 'group_add = ["1234"]', script = "echo groups=$(id -G)" })
    assert.equal(0, r.code, r.output)
    local line = task_lines(r.stdout)[1] or ""
    assert.matches("^groups=.*%f[%d]1234%f[%D]", line, 1, false, r.output)
  end)

  it("oom_score_adj sets the task's OOM score adjustment", function()
    local r = run({ config = "oom_score_adj = 500", script = "echo adj=$(cat /proc/self/oom_score_adj)" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | adj=500"), r.output)
  end)

  -------------------------------------------------------------------------
  -- Observed with docker inspect while the task runs.

  it("labels (interpolated) land on the container", function()
    local c, output = inspect_running({ labels = { team = "spec", alloc = "a-${NOMAD_ALLOC_ID}" } })
    local labels = c.Config.Labels
    assert.equal("spec", labels.team, output)
    assert.equal("a-" .. tostring(labels["drvctl.alloc_id"]), labels.alloc, output)
  end)

  it("resources cpu sets CpuShares", function()
    local c, output = inspect_running({ task_extra = "resources {\n  cpu = 300\n}" })
    assert.equal(300, math.tointeger(c.HostConfig.CpuShares), output)
  end)

  it("resources memory sets Memory and an equal MemorySwap (no swap)", function()
    local c, output = inspect_running({ task_extra = "resources {\n  memory = 96\n}" })
    assert.equal(96 * 1024 * 1024, math.tointeger(c.HostConfig.Memory), output)
    assert.equal(96 * 1024 * 1024, math.tointeger(c.HostConfig.MemorySwap), output)
  end)

  it("cpu_hard_limit sets CpuQuota from the task's share of the node's MHz", function()
    -- 500 of 4000 MHz: int(0.125 * 100000) * NumCPU per 100 ms period
    local c, output = inspect_running({ config = "cpu_hard_limit = true",
      task_extra = "resources {\n  cpu = 500\n}" }, {
      agent = function(dir)
        return (drv.fixture("docker/options/cpu_total.hcl", dir, { TOTAL = 4000 }))
      end,
    })
    assert.equal(12500 * nproc(), math.tointeger(c.HostConfig.CpuQuota), output)
    -- v0.8.3 leaves the period to Docker (0 = 100 ms); 0.9+ sets 100000
    local period = math.tointeger(c.HostConfig.CpuPeriod)
    assert.is_true(period == 0 or period == 100000, "CpuPeriod " .. tostring(period) .. "\n" .. output)
  end)

  it("no cpu_hard_limit leaves CpuQuota unset", function()
    local c, output = inspect_running({ task_extra = "resources {\n  cpu = 500\n}" })
    assert.equal(0, math.tointeger(c.HostConfig.CpuQuota), output)
  end)

  it("healthchecks { disable = true } sets the healthcheck test to NONE", function()
    local c, output = inspect_running({ config = "healthchecks {\n  disable = true\n}" })
    assert.is_table(c.Config.Healthcheck, output)
    assert.same({ "NONE" }, c.Config.Healthcheck.Test, output)
  end)

  it("logging sets the container's log driver and its config", function()
    local c, output = inspect_running({ config = table.concat({
      "logging {",
      '  type = "json-file"',
      "  config {",
      '    max-size = "5m"',
      '    max-file = "4"',
      "  }",
      "}",
    }, "\n") })
    assert.equal("json-file", c.HostConfig.LogConfig.Type, output)
    assert.same({ ["max-size"] = "5m", ["max-file"] = "4" }, c.HostConfig.LogConfig.Config, output)
  end)

  -------------------------------------------------------------------------
  -- Network ports.

  it("port_map sets NOMAD_PORT_<label> to the container port", function()
    local r = run({ config = "port_map {\n  http = 8080\n}",
      task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n  }\n}',
      script = "echo port=$NOMAD_PORT_http" })
    assert.equal(0, r.code, r.output)
    assert.is_true(has_line(r.stdout, "t | port=8080"), r.output)
  end)

  describe("a published port", function()
    -- httpd on container port 8080, mapped to a dynamic host port; the
    -- observation is made while it runs and kept for the its below.
    local web = once(function()
      local script = table.concat({
        "mkdir -p /local/www",
        "echo hello-from-httpd > /local/www/index.html",
        'echo "host=$NOMAD_HOST_PORT_http ip=$NOMAD_IP_http addr=$NOMAD_ADDR_http"',
        "exec httpd -f -p 8080 -h /local/www",
      }, "; ")
      local proc, c = start({ script = script, kill_timeout = "1s",
        config = "port_map {\n  http = 8080\n}",
        task_extra = 'resources {\n  network {\n    mbits = 1\n    port "http" {}\n  }\n}' })
      local seen = { inspect = c }
      local ports = c and c.NetworkSettings and c.NetworkSettings.Ports or {}
      local tcp = type(ports["8080/tcp"]) == "table" and ports["8080/tcp"][1] or nil
      if tcp then
        local ip = tcp.HostIp
        if ip == "" or ip == "0.0.0.0" then
          ip = "127.0.0.1"
        end
        seen.host_ip, seen.host_port = tcp.HostIp, tcp.HostPort
        local url = string.format("http://%s:%s/index.html", ip, tcp.HostPort)
        seen.curl = drv.wait_until(function()
          local r = drv.sh("curl -sS --max-time 2 " .. drv.quote(url), { timeout = 5 })
          return r.code == 0 and r.stdout ~= "" and r
        end, 15) or drv.sh("curl -sS --max-time 2 " .. drv.quote(url), { timeout = 5 })
      end
      seen.lines = task_lines(proc:stdout())
      stop(proc)
      seen.output = proc.output
      assert.is_table(c, "the container never ran\n" .. proc.output)
      return seen
    end)

    it("answers curl from the host through port_map", function()
      local w = web()
      assert.is_table(w.curl, "no 8080/tcp binding\n" .. w.output)
      assert.equal("hello-from-httpd\n", w.curl.stdout, w.curl.output .. "\n" .. w.output)
    end)

    it("is bound to the agent's network_interface address (lo here)", function()
      local w = web()
      assert.equal("127.0.0.1", w.host_ip, w.output)
    end)

    it("is published on udp too", function()
      local w = web()
      local ports = w.inspect.NetworkSettings.Ports or {}
      assert.is_table(ports["8080/udp"], w.output)
      assert.equal(w.host_port, ports["8080/udp"][1].HostPort, w.output)
    end)

    it("sets NOMAD_HOST_PORT_<label> and NOMAD_IP_<label> to the published address", function()
      local w = web()
      assert.is_string(w.host_port, w.output)
      local ip = w.host_ip
      local want = string.format("host=%s ip=%s addr=%s:%s", w.host_port, ip, ip, w.host_port)
      assert.is_true(contains(w.lines, want), want .. "\n" .. w.output)
    end)

    it("takes its host port from the dynamic range 20000-32000", function()
      local w = web()
      local port = tonumber(w.host_port)
      assert.is_number(port, w.output)
      assert.is_true(port >= 20000 and port <= 32000, w.output)
    end)
  end)

  describe("dynamic port allocation", function()
    -- Host ports (tcp) of the port bindings in a create body or an inspect.
    local function host_ports(bindings, into)
      for key, list in pairs(bindings or {}) do
        if key:match("/tcp$") and type(list) == "table" then
          for _, b in ipairs(list) do
            into[#into + 1] = tostring(b.HostPort)
          end
        end
      end
      return into
    end

    local function duplicates(list)
      local seen, dups = {}, {}
      for _, p in ipairs(list) do
        if seen[p] then
          dups[#dups + 1] = p
        end
        seen[p] = true
      end
      return dups
    end

    it("gives 25 instances with two dynamic ports 50 distinct host ports in one plan", function()
      local dir = drv.tmpdir()
      local job = drv.fixture("docker/options/ports.hcl", dir, { COUNT = 25 })
      local r = drv.drvctl(args_for("plan", dir, job), { timeout = 60 })
      assert.equal(0, r.code, r.output)
      local plan = assert(cjson.decode(r.stdout), r.output)
      local ports = {}
      for _, t in ipairs(plan.tasks or {}) do
        host_ports(((t.body or {}).HostConfig or {}).PortBindings, ports)
      end
      assert.equal(50, #ports, r.output)
      assert.same({}, duplicates(ports), r.output)
    end)

    it("never hands one host port to two of 50 concurrent drvctl runs", function()
      -- 50 processes sharing one data dir (one port ledger), all running at
      -- once: 100 dynamic ports, each checked in the containers themselves
      local N = 50
      local dir = drv.tmpdir()
      local job = drv.fixture("docker/options/ports.hcl", dir, { COUNT = 1 })
      local procs = {}
      for i = 1, N do
        -- one data dir: the port ledger is shared by processes using it
        procs[i] = drv.spawn(args_for("run", dir, job))
      end
      local ids = drv.wait_until(function()
        local running = drv.containers({ "status=running" })
        local done = 0
        for _, p in ipairs(procs) do
          done = done + (p:exited() and 1 or 0)
        end
        return (#running == N or #running + done >= N) and running
      end, 150) or drv.containers({ "status=running" })
      local ports = {}
      if #ids > 0 then
        local args = { "inspect", "--type", "container" }
        table.move(ids, 1, #ids, #args + 1, args)
        local list = cjson.decode(drv.docker(args).stdout) or {}
        for _, c in ipairs(list) do
          host_ports(c.NetworkSettings.Ports, ports)
        end
      end
      local outputs = {}
      for _, p in ipairs(procs) do
        p:signal("INT")
      end
      for i, p in ipairs(procs) do
        p:wait(60)
        outputs[i] = p.output or ""
      end
      local all = table.concat(outputs, "\n")
      assert.equal(N, #ids, all)
      assert.equal(2 * N, #ports, all)
      assert.same({}, duplicates(ports), all)
    end)
  end)
end)
