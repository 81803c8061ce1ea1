-- spec/support/registry.lua: throwaway Docker registries for the Docker specs.
--
--   local drv = require("support.drv")
--   local registry = require("support.registry")
--
--   -- one registry per test: stopped by drv.cleanup (after_each)
--   local reg = registry.start()                       -- plain HTTP
--   local sec = registry.start{ tls = true, users = { testuser = "testpass" } }
--   local img = registry.image{ marker = "v1" }         -- tiny local image
--   local ref, digest = reg:push(img, "rsx/tiny:1")    -- "127.0.0.1:PORT/rsx/tiny:1"
--   reg:delete_local("rsx/tiny:1")                     -- so that a pull is needed
--   local mark = reg:mark()
--   ... drvctl run a job with image = ref ...
--   assert.equal(1, reg:manifest_requests("rsx/tiny", "1", mark))
--
--   -- one registry for a whole describe block:
--   setup(function() reg = registry.start{ shared = true } end)
--   teardown(function() reg:stop() end)
--
-- A registry is Debian's `docker-registry serve` bound to 127.0.0.1 on a free
-- port, in its own temp dir (config, storage, log, certs, a DOCKER_CONFIG
-- for `docker login`), in its own session under timeout(1) so that it cannot
-- outlive a killed busted by more than M.LIFETIME seconds. With tls = true it
-- serves HTTPS with a certificate (SAN IP:127.0.0.1, DNS:localhost) from a
-- fresh CA; the CA is also installed as /etc/docker/certs.d/HOST/ca.crt
-- (dockerd treats 127.0.0.0/8 as an insecure registry and may not read it,
-- but a daemon configured otherwise would). With users it requires basic
-- auth (bcrypt htpasswd).
--
-- reg:stop() kills the process group, removes the temp dir, the certs.d
-- entry and every local image whose name starts with reg.host. Registries
-- not started with shared = true are stopped by drv.cleanup(); every
-- registry and every image built here is removed at the end of the busted
-- run (suite end, and a finalizer when the Lua state closes), even after a
-- failure. M.sweep() removes what a killed run left (dead pid).
local drv = require("support.drv")

local M = {}

M.BIN = os.getenv("DRVCTL_REGISTRY_BIN") or "/usr/bin/docker-registry"
M.CERTS_D = "/etc/docker/certs.d"
M.LIFETIME = 3600          -- seconds: hard upper bound of one registry process
M.READY_TIMEOUT = 20       -- seconds to wait for /v2/ to answer
M.STOP_TIMEOUT = 10        -- seconds between SIGTERM and SIGKILL
M.TMP_PREFIX = "/tmp/drvctl-registry."
M.MARKER = "drvctl-test-registry.pid"   -- in certs.d entries and temp dirs

local q = drv.quote

local live = {}            -- registries not yet stopped
local built = {}           -- local images built by M.image / M.big_image

local function sh(cmd, opts)
  opts = opts or {}
  opts.shell = true
  return drv.sh(cmd, opts)
end

local function must(cmd, opts)
  local r = sh(cmd, opts)
  if r.code ~= 0 then
    error("registry support: command failed:\n" .. r.output, 2)
  end
  return r
end

local function mktemp_dir(prefix)
  local r = must("mktemp -d " .. q(prefix .. "XXXXXX"))
  return (r.stdout:gsub("%s+$", ""))
end

local function pid_alive(pid)
  local stat = drv.read("/proc/" .. tostring(pid) .. "/stat")
  if not stat then
    return false
  end
  local st = stat:match("^%d+ %b() (%a)")
  return st ~= nil and st ~= "Z" and st ~= "X"
end

---------------------------------------------------------------------------
-- PKI: a CA and certificates it signs (EC P-256, valid 2 days).

local Pki = {}
Pki.__index = Pki

-- Creates dir (if needed) with ca.crt and ca.key; returns a pki whose
-- :issue(name, opts) makes name.crt and name.key.
function M.pki(dir, cn)
  must("mkdir -p " .. q(dir))
  local p = setmetatable({ dir = dir, ca = dir .. "/ca.crt", ca_key = dir .. "/ca.key" }, Pki)
  must(string.format(
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      .. " -subj %s -addext basicConstraints=critical,CA:TRUE"
      .. " -addext keyUsage=critical,keyCertSign,cRLSign -keyout %s -out %s",
    q("/CN=" .. (cn or "drvctl test CA")), q(p.ca_key), q(p.ca)))
  return p
end

-- opts.server (default true) / opts.client: extended key usages;
-- opts.san (default "IP:127.0.0.1,DNS:localhost"); opts.cn (default name);
-- opts.days (default 2).
-- Returns { cert = path, key = path }.
function Pki:issue(name, opts)
  opts = opts or {}
  local base = self.dir .. "/" .. name
  local eku = {}
  if opts.server ~= false then
    eku[#eku + 1] = "serverAuth"
  end
  if opts.client then
    eku[#eku + 1] = "clientAuth"
  end
  local ext = {
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=" .. table.concat(eku, ","),
  }
  if opts.san ~= false then
    ext[#ext + 1] = "subjectAltName=" .. (opts.san or "IP:127.0.0.1,DNS:localhost")
  end
  drv.write(base .. ".ext", table.concat(ext, "\n") .. "\n")
  must(string.format(
    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj %s"
      .. " -keyout %s -out %s",
    q("/CN=" .. (opts.cn or name)), q(base .. ".key"), q(base .. ".csr")))
  must(string.format(
    "openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial %s -extfile %s -out %s",
    q(base .. ".csr"), q(self.ca), q(self.ca_key), "-days " .. (opts.days or 2), q(base .. ".ext"), q(base .. ".crt")))
  os.remove(base .. ".csr")
  must("chmod 600 " .. q(base .. ".key"))
  return { cert = base .. ".crt", key = base .. ".key" }
end

---------------------------------------------------------------------------
-- Free port: not listening now (tcp/tcp6), below the ephemeral range;
-- start() retries when it was taken meanwhile.

local function used_ports()
  local used = {}
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local text = drv.read(f) or ""
    for port in text:gmatch("\n%s*%d+: %x+:(%x+) %x+:%x+ %x%x") do
      used[tonumber(port, 16)] = true
    end
  end
  return used
end

function M.free_port()
  local lo, hi = 20000, 32000
  local range = drv.read("/proc/sys/net/ipv4/ip_local_port_range")
  local eph = range and tonumber(range:match("^(%d+)"))
  if eph and eph <= hi then
    hi = eph - 1
    lo = math.min(lo, hi - 1000)
  end
  local used = used_ports()
  for _ = 1, 200 do
    local p = math.random(lo, hi)
    if not used[p] then
      return p
    end
  end
  error("registry support: no free port in " .. lo .. "-" .. hi)
end

---------------------------------------------------------------------------
-- Stale leftovers of killed runs.

-- Removes certs.d entries and temp dirs whose registry process is gone.
function M.sweep()
  for _, name in ipairs(drv.ls(M.CERTS_D)) do
    local marker = M.CERTS_D .. "/" .. name .. "/" .. M.MARKER
    local pid = tonumber(drv.read(marker) or "")
    if pid and not pid_alive(pid) then
      sh("rm -rf " .. q(M.CERTS_D .. "/" .. name))
    end
  end
  local p = io.popen("ls -d " .. M.TMP_PREFIX .. "* 2>/dev/null")
  for dir in p:lines() do
    local pid = tonumber(drv.read(dir .. "/" .. M.MARKER) or "")
    if pid and not pid_alive(pid) then
      sh("rm -rf " .. q(dir))
    end
  end
  p:close()
end

---------------------------------------------------------------------------
-- Registry.

local Reg = {}
Reg.__index = Reg

local function config_text(reg)
  local lines = {
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: text",
    "  accesslog:",
    "    disabled: false",
    "storage:",
    "  filesystem:",
    "    rootdirectory: " .. reg.dir .. "/data",
    "  delete:",
    "    enabled: true",
    "http:",
    "  addr: " .. reg.host,
    "  secret: " .. drv.run_id .. "-" .. tostring(reg.port),
  }
  if reg.tls then
    lines[#lines + 1] = "  tls:"
    lines[#lines + 1] = "    certificate: " .. reg.server.cert
    lines[#lines + 1] = "    key: " .. reg.server.key
  end
  if reg.users then
    lines[#lines + 1] = "auth:"
    lines[#lines + 1] = "  htpasswd:"
    lines[#lines + 1] = "    realm: drvctl-test"
    lines[#lines + 1] = "    path: " .. reg.dir .. "/htpasswd"
  end
  return table.concat(lines, "\n") .. "\n"
end

-- HTTP status of GET path (default /v2/), 0 when nothing answers; user:
-- "name:password" for basic auth.
function Reg:status(path, user)
  local cmd = string.format("curl -s -o /dev/null -w '%%{http_code}' --max-time 5 %s%s %s",
    self.ca and ("--cacert " .. q(self.ca) .. " ") or "",
    user and ("-u " .. q(user)) or "", q(self.url .. (path or "/v2/")))
  local r = sh(cmd, { timeout = 10 })
  return tonumber(r.stdout) or 0
end

function Reg:alive()
  return self.pid ~= nil and pid_alive(self.pid)
end

function Reg:log()
  return drv.read(self.log_file) or ""
end

local function launch(reg)
  reg.port = M.free_port()
  reg.host = "127.0.0.1:" .. reg.port
  reg.url = (reg.tls and "https://" or "http://") .. reg.host
  drv.write(reg.config, config_text(reg))
  -- The popen shell prints its pid and execs setsid (no fork: it is not a
  -- group leader), which execs timeout: reg.pid leads the registry's own
  -- process group, and closing the handle reaps it (an orphan would stay a
  -- zombie here: pid 1 does not reap).
  local h = assert(io.popen(string.format(
    "echo $$ && exec setsid timeout -k 5 %d %s serve %s >%s 2>&1 </dev/null",
    M.LIFETIME, q(M.BIN), q(reg.config), q(reg.log_file)), "r"))
  local pid = tonumber(h:read("l") or "")
  -- created after h, so finalized before it when the Lua state closes:
  -- kills the group first, then the reaping close cannot block
  reg.proc = setmetatable({ h = h, pid = pid }, { __gc = function(p)
    if not p.closed then
      p.closed = true
      if p.pid then
        os.execute(string.format("kill -KILL -%d 2>/dev/null", p.pid))
      end
      pcall(p.h.close, p.h)
    end
  end })
  reg.pid = assert(pid, "registry support: no pid from docker-registry launch")
  drv.write(reg.dir .. "/" .. M.MARKER, tostring(reg.pid))
  local want = reg.users and 401 or 200
  local ok = drv.wait_until(function()
    if not reg:alive() then
      return "dead"
    end
    return reg:status("/v2/") == want and "ready"
  end, M.READY_TIMEOUT, 0.1)
  if ok == "ready" then
    return true
  end
  local log = reg:log()
  reg:kill()
  return false, log
end

-- Starts a registry (see the file comment). opts: tls (bool), users
-- ({ name = password }), shared (bool: not stopped by drv.cleanup).
function M.start(opts)
  opts = opts or {}
  if not M._swept then
    M._swept = true
    M.sweep()
  end
  local dir = mktemp_dir(M.TMP_PREFIX)
  must("mkdir -p " .. q(dir .. "/data") .. " " .. q(dir .. "/docker-config"))
  local reg = setmetatable({
    dir = dir, tls = opts.tls and true or false, config = dir .. "/config.yml",
    log_file = dir .. "/registry.log", docker_config = dir .. "/docker-config",
  }, Reg)
  live[reg] = true
  local ok, err = pcall(function()
    if reg.tls then
      reg.pki = M.pki(dir .. "/pki", "drvctl test registry CA")
      reg.server = reg.pki:issue("server")
      reg.ca = reg.pki.ca
    end
    if opts.users and next(opts.users) then
      reg.users = {}
      local lines = {}
      local names = {}
      for name in pairs(opts.users) do
        names[#names + 1] = name
      end
      table.sort(names)
      for _, name in ipairs(names) do
        reg.users[name] = opts.users[name]
        local r = must("htpasswd -Bbn " .. q(name) .. " " .. q(opts.users[name]))
        lines[#lines + 1] = (r.stdout:gsub("%s+$", ""))
      end
      reg.user = names[1]
      drv.write(dir .. "/htpasswd", table.concat(lines, "\n") .. "\n")
    end
    local started, log
    for _ = 1, 5 do
      started, log = launch(reg)
      if started or not log:find("address already in use", 1, true) then
        break
      end
    end
    if not started then
      error("registry support: docker-registry did not answer on " .. reg.url
        .. " within " .. M.READY_TIMEOUT .. "s; its log:\n" .. (log or ""))
    end
    if reg.tls then
      reg.certs_d = M.CERTS_D .. "/" .. reg.host
      must("mkdir -p " .. q(reg.certs_d) .. " && cp " .. q(reg.ca) .. " " .. q(reg.certs_d .. "/ca.crt"))
      drv.write(reg.certs_d .. "/" .. M.MARKER, tostring(reg.pid))
    end
  end)
  if not ok then
    reg:stop()
    error(err, 2)
  end
  if not opts.shared then
    drv.on_cleanup(function() reg:stop() end)
  end
  return reg
end

-- Kills the registry's process group (TERM, then KILL after STOP_TIMEOUT)
-- and reaps it.
function Reg:kill()
  if not self.pid then
    return
  end
  if self:alive() then
    os.execute(string.format("kill -TERM -%d 2>/dev/null", self.pid))
    if not drv.wait_until(function() return not self:alive() end, M.STOP_TIMEOUT, 0.05) then
      os.execute(string.format("kill -KILL -%d 2>/dev/null", self.pid))
      drv.wait_until(function() return not self:alive() end, 5, 0.05)
    end
  end
  local p = self.proc
  if p and not p.closed and not self:alive() then
    p.closed = true
    p.h:close()
  end
end

-- "HOST/ref" for "repo:tag" (a ref already naming this registry is kept).
function Reg:ref(ref)
  if ref:sub(1, #self.host + 1) == self.host .. "/" then
    return ref
  end
  return self.host .. "/" .. ref
end

-- Runs `docker ARGS` with this registry's DOCKER_CONFIG; when the registry
-- has users, logs in first (as opts.user or the first user) and out after,
-- so no credentials remain anywhere. Returns drv.sh's result table.
function Reg:docker(args, opts)
  opts = opts or {}
  local env = { DOCKER_CONFIG = self.docker_config }
  local login = ""
  local logout = ""
  if self.users and opts.login ~= false then
    local user = opts.user or self.user
    local pass = opts.password or self.users[user]
    env.DRVCTL_REG_PASS = pass
    login = string.format("printf %%s \"$DRVCTL_REG_PASS\" | docker login -u %s --password-stdin %s"
      .. " >/dev/null && ", q(user), q(self.host))
    logout = "; rc=$?; docker logout " .. q(self.host) .. " >/dev/null 2>&1; exit $rc"
  end
  local words = {}
  for i, a in ipairs(args) do
    words[i] = q(a)
  end
  return sh(login .. "docker " .. table.concat(words, " ") .. logout,
    { env = env, timeout = opts.timeout or 300 })
end

-- Tags local_image as HOST/ref and pushes it. Returns the full reference and
-- the manifest digest ("sha256:..."). opts.untag: remove the local tag after.
function Reg:push(local_image, ref, opts)
  opts = opts or {}
  local full = self:ref(ref)
  self.tagged = self.tagged or {}
  self.tagged[#self.tagged + 1] = full
  drv.docker({ "tag", local_image, full })
  local r = self:docker({ "push", full }, opts)
  if r.code ~= 0 then
    error("registry support: docker push " .. full .. " failed:\n" .. r.output, 2)
  end
  local digest = r.stdout:match("digest: (sha256:%x+)")
  if opts.untag then
    self:delete_local(full)
  end
  return full, digest
end

-- `docker pull` through the daemon (logged in when the registry has users).
function Reg:pull(ref, opts)
  return self:docker({ "pull", self:ref(ref) }, opts)
end

-- Removes a local tag or digest reference (ref relative to this registry or
-- full); no error when it is absent. Returns drv.sh's result.
function Reg:delete_local(ref)
  local r = drv.docker({ "rmi", self:ref(ref) }, { may_fail = true })
  if r.code ~= 0 and not r.stderr:lower():find("no such image", 1, true) then
    error("registry support: docker rmi " .. self:ref(ref) .. " failed:\n" .. r.output, 2)
  end
  return r
end

-- Local references (tags and digests) naming this registry.
function Reg:local_refs()
  local refs = {}
  local r = drv.docker({ "images", "--digests", "--format",
    "{{.Repository}} {{.Tag}} {{.Digest}}" }, { may_fail = true })
  for repo, tag, digest in r.stdout:gmatch("(%S+) (%S+) (%S+)\n") do
    if repo:sub(1, #self.host + 1) == self.host .. "/" then
      if tag ~= "<none>" then
        refs[#refs + 1] = repo .. ":" .. tag
      end
      if digest ~= "<none>" then
        refs[#refs + 1] = repo .. "@" .. digest
      end
    end
  end
  return refs
end

-- Access-log lines ("127.0.0.1 - - [date] \"GET /v2/... HTTP/1.1\" 200 ...").
function Reg:access_lines()
  local lines = {}
  for line in self:log():gmatch("[^\n]+") do
    if line:match('^%S+ %- %S+ %[[^%]]+%] "') then
      lines[#lines + 1] = line
    end
  end
  return lines
end

-- The number of access-log lines so far: pass it as `since` below.
function Reg:mark()
  return #self:access_lines()
end

-- Number of access-log lines after `since` (a mark) matching pattern: a
-- Lua pattern (escape repository names: "-" is a quantifier), or a plain
-- substring when plain is true.
function Reg:requests(pattern, since, plain)
  local n = 0
  for i, line in ipairs(self:access_lines()) do
    if i > (since or 0) and line:find(pattern, 1, plain) then
      n = n + 1
    end
  end
  return n
end

-- Manifest requests (GET and HEAD) for repo at ref (tag or digest) after
-- `since`; what a pull of repo:ref asks first.
function Reg:manifest_requests(repo, ref, since)
  local path = "/v2/" .. repo .. "/manifests/" .. ref .. " HTTP/"
  return self:requests('"GET ' .. path, since, true) + self:requests('"HEAD ' .. path, since, true)
end

-- Stops the registry and removes everything it made (see file comment).
-- Safe to call more than once.
function Reg:stop()
  if self.stopped then
    return
  end
  self.stopped = true
  live[self] = nil
  self:kill()
  if self.host and drv.docker_ok() then
    for _, ref in ipairs(self:local_refs()) do
      drv.docker({ "rmi", "-f", ref }, { may_fail = true })
    end
  end
  if self.certs_d then
    sh("rm -rf " .. q(self.certs_d))
  end
  if self.dir then
    sh("rm -rf " .. q(self.dir))
  end
end

---------------------------------------------------------------------------
-- Local images to push.

local image_seq = 0

local function short_id()
  return (drv.run_id:gsub("%-", "")):sub(1, 12)
end

local function build(ctx, name)
  local r = drv.sh(string.format("DOCKER_BUILDKIT=0 docker build -q --label %s -t %s %s",
    q(drv.label), q(name), q(ctx)), { shell = true, timeout = 600 })
  sh("rm -rf " .. q(ctx))
  if r.code ~= 0 then
    error("registry support: docker build " .. name .. " failed:\n" .. r.output, 3)
  end
  built[#built + 1] = name
  return name, (r.stdout:match("(sha256:%x+)"))
end

local function next_name(opts, kind)
  image_seq = image_seq + 1
  return opts.name or string.format("drvctl-test/%s:%s-%d", kind, short_id(), image_seq)
end

-- A tiny image FROM the test image with /marker holding opts.marker
-- (default: a unique string), so two images under one tag can be told
-- apart (`cat /marker`). Labelled with the run label. Returns name, id.
function M.image(opts)
  opts = opts or {}
  local name = next_name(opts, "reg")
  local marker = opts.marker or (name .. "-" .. tostring(os.time()))
  local ctx = mktemp_dir("/tmp/drvctl-image.")
  drv.write(ctx .. "/marker", marker .. "\n")
  drv.write(ctx .. "/Dockerfile", string.format("FROM %s\nCOPY marker /marker\n",
    opts.base or drv.IMAGE))
  return build(ctx, name)
end

-- A FROM scratch image with busybox-static (all applets linked) and
-- opts.layers (default 5) layers of random data, opts.size_mb (default 50)
-- in total. Returns name, id.
function M.big_image(opts)
  opts = opts or {}
  local name = next_name(opts, "reg-big")
  local layers = opts.layers or 5
  local total = math.floor((opts.size_mb or 50) * 1024 * 1024)
  local ctx = mktemp_dir("/tmp/drvctl-image.")
  -- busybox and every applet as a symlink at its usual path (as bootstrap does)
  must(string.format("mkdir -p %s/rootfs/bin && cp /bin/busybox %s/rootfs/bin/busybox"
    .. " && cd %s/rootfs && for a in $(/bin/busybox --list-full); do"
    .. " [ \"$a\" = bin/busybox ] || { mkdir -p \"${a%%/*}\"; ln -sf /bin/busybox \"$a\"; }; done",
    q(ctx), q(ctx), q(ctx)))
  local df = { "FROM scratch", "COPY rootfs/ /" }
  for i = 1, layers do
    local bytes = total // layers
    must(string.format("head -c %d /dev/urandom > %s/layer%d.bin", bytes, q(ctx), i))
    df[#df + 1] = string.format("COPY layer%d.bin /data/layer%d.bin", i, i)
  end
  df[#df + 1] = "ENV PATH=/bin"
  df[#df + 1] = 'CMD ["/bin/sh"]'
  drv.write(ctx .. "/Dockerfile", table.concat(df, "\n") .. "\n")
  return build(ctx, name)
end

-- Removes one built image (all its tags) now.
function M.remove_image(name)
  drv.docker({ "rmi", "-f", name }, { may_fail = true })
  for i = #built, 1, -1 do
    if built[i] == name then
      table.remove(built, i)
    end
  end
end

-- Stops every live registry and removes every image built here and every
-- image carrying this run's label (pulled copies of them too).
function M.cleanup()
  local regs = {}
  for reg in pairs(live) do
    regs[#regs + 1] = reg
  end
  for _, reg in ipairs(regs) do
    pcall(reg.stop, reg)
  end
  if (#built > 0 or #regs > 0) and drv.docker_ok() then
    for i = #built, 1, -1 do
      drv.docker({ "rmi", "-f", built[i] }, { may_fail = true })
      built[i] = nil
    end
    sh("docker images -q --filter " .. q("label=" .. drv.label)
      .. " | sort -u | xargs -r docker rmi -f >/dev/null 2>&1")
  end
end

-- Safety nets: suite end (busted) and the Lua state closing (os.exit(_, true)).
local ok_busted, busted = pcall(require, "busted")
if ok_busted and type(busted) == "table" and type(busted.subscribe) == "function" then
  busted.subscribe({ "suite", "end" }, function()
    pcall(M.cleanup)
    return nil, true
  end)
end
M._sentinel = setmetatable({}, { __gc = function() pcall(M.cleanup) end })

return M
