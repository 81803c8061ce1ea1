-- spec/support/drv.lua: helpers for the CLI and Docker specs.
--
--   local drv = require("support.drv")
--   describe("...", function()
--     after_each(drv.cleanup)   -- containers, images, temp dirs, processes
--     it("...", function()
--       drv.require_binary()
--       local dir = drv.tmpdir()
--       local job = drv.write_job(dir, { script = "echo hi" })
--       local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job })
--       assert.equal(0, r.code, r.output)
--     end)
--   end)
--
-- Every container a spec creates must carry the label drv.LABEL_KEY =
-- drv.run_id (drv.job puts it there); drv.cleanup() removes all of them with
-- `docker rm -f`, so nothing survives a failing spec. Unlike lua/drv/, this
-- file does io and os freely: it is test code.
local cjson = require("cjson.safe")

local M = {}

M.LABEL_KEY = "drvctl.test.run"
M.IMAGE = os.getenv("DRVCTL_TEST_IMAGE") or "drvctl-test/busybox:1"
M.DOCKER_HINT = "docker daemon not reachable: run scripts/bootstrap (it starts dockerd)"

-- Quotes one word for /bin/sh.
function M.quote(s)
  s = tostring(s)
  if s:match("^[%w%._/:=@%-]+$") then
    return s
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function join_args(args)
  local out = {}
  for i, a in ipairs(args) do
    out[i] = M.quote(a)
  end
  return table.concat(out, " ")
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

local function first_line(cmd)
  local p = io.popen(cmd, "r")
  local s = p:read("l")
  p:close()
  return s
end

-- Repository root: two levels above this file (spec/support/drv.lua).
local function find_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  if src:sub(1, 1) ~= "/" then
    src = first_line("pwd") .. "/" .. src
  end
  local root = src:gsub("/spec/support/drv%.lua$", "")
  root = root:gsub("/%./", "/"):gsub("/%.$", "")
  return root
end

M.root = find_root()
-- DRVCTL_BIN runs the specs against another binary (e.g. an installed one).
M.bin = os.getenv("DRVCTL_BIN") or (M.root .. "/drvctl")

-- One id per busted process: the label value on everything this run creates.
M.run_id = (read_file("/proc/sys/kernel/random/uuid") or ""):gsub("%s+", "")
if M.run_id == "" then
  M.run_id = string.format("%d-%d", os.time(), math.random(1 << 30))
end
M.label = M.LABEL_KEY .. "=" .. M.run_id

-- Things cleanup() undoes, newest first.
local tmpdirs, hooks, procs = {}, {}, {}

-- Runs a shell command line; returns { code, stdout, stderr, output }.
-- `output` is stdout and stderr together, for assertion messages.
-- opts.env: table of variables set for the command; opts.timeout: seconds
-- (default 120; a timed out command gets code 124 and a note on stderr).
function M.sh(cmdline, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local prefix = ""
  if opts.env then
    local names = {}
    for k in pairs(opts.env) do
      names[#names + 1] = k
    end
    table.sort(names)
    local parts = { "env" }
    for _, k in ipairs(names) do
      parts[#parts + 1] = M.quote(k .. "=" .. opts.env[k])
    end
    prefix = table.concat(parts, " ") .. " "
  end
  local timeout = opts.timeout or 120
  -- timeout(1) needs a command, not shell syntax: opts.shell wraps in sh -c.
  local cmd = opts.shell and ("sh -c " .. M.quote(cmdline)) or cmdline
  local full = string.format("cd %s && timeout -k 5 %d %s%s </dev/null >%s 2>%s",
    M.quote(opts.cwd or M.root), timeout, prefix, cmd, out, err)
  local _, how, code = os.execute(full)
  local r = { stdout = read_file(out) or "", stderr = read_file(err) or "" }
  os.remove(out)
  os.remove(err)
  if how == "signal" then
    code = 128 + code
  end
  r.code = code
  if code == 124 then
    r.stderr = r.stderr .. string.format("\n[spec: %q timed out after %ds]\n", cmdline, timeout)
  end
  r.output = string.format("command: %s\nexit: %s\n--- stdout\n%s--- stderr\n%s",
    cmdline, tostring(code), r.stdout, r.stderr)
  return r
end

-- Fails with a clear message when ./drvctl has not been built.
function M.require_binary()
  local f = io.open(M.bin, "rb")
  if not f then
    error(M.bin .. " not found: build it with `make` (or `make test`) in " .. M.root, 2)
  end
  f:close()
end

-- Runs ./drvctl with an argument list; same result table as sh().
function M.drvctl(args, opts)
  M.require_binary()
  return M.sh(M.quote(M.bin) .. " " .. join_args(args), opts)
end

-- True when the Docker daemon answers.
function M.docker_ok()
  return M.sh("docker info --format '{{.ServerVersion}}'", { timeout = 20 }).code == 0
end

-- Fails (never skips) when no daemon answers.
function M.require_docker()
  if not M.docker_ok() then
    error(M.DOCKER_HINT, 2)
  end
end

-- Runs `docker ARGS...`; errors when it fails unless opts.may_fail.
function M.docker(args, opts)
  opts = opts or {}
  local r = M.sh("docker " .. join_args(args), opts)
  if r.code ~= 0 and not opts.may_fail then
    error("docker " .. table.concat(args, " ") .. " failed:\n" .. r.output, 2)
  end
  return r
end

-- Decoded `docker inspect` of one object (container or image), or nil, err.
function M.inspect(ref, kind)
  local args = { "inspect" }
  if kind then
    args[#args + 1] = "--type"
    args[#args + 1] = kind
  end
  args[#args + 1] = ref
  local r = M.docker(args, { may_fail = true })
  if r.code ~= 0 then
    return nil, r.stderr
  end
  local list, err = cjson.decode(r.stdout)
  if not list then
    return nil, "cannot decode docker inspect output: " .. tostring(err)
  end
  return list[1]
end

-- Ids of this run's containers (all states), optionally filtered further:
-- filters = { "label=drvctl.task=web", "status=running" }.
function M.containers(filters)
  local args = { "ps", "-a", "-q", "--no-trunc", "--filter", "label=" .. M.label }
  for _, f in ipairs(filters or {}) do
    args[#args + 1] = "--filter"
    args[#args + 1] = f
  end
  local r = M.docker(args)
  local ids = {}
  for id in r.stdout:gmatch("%S+") do
    ids[#ids + 1] = id
  end
  return ids
end

-- Ids of this run's containers, or {} when no daemon answers (nothing can
-- have been created then). For specs that must also pass without Docker.
function M.containers_if_docker()
  if not M.docker_ok() then
    return {}
  end
  return M.containers()
end

-- A fresh temporary directory, removed by cleanup().
function M.tmpdir()
  local dir = first_line("mktemp -d /tmp/drvctl-spec.XXXXXX")
  assert(dir and dir ~= "", "mktemp -d failed")
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

-- Registers fn to run at cleanup() (after containers are removed).
function M.on_cleanup(fn)
  hooks[#hooks + 1] = fn
end

function M.write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

M.read = read_file

-- Names in a directory (not . or ..), sorted; {} when it does not exist.
function M.ls(dir)
  local names = {}
  local p = io.popen("ls -A " .. M.quote(dir) .. " 2>/dev/null")
  for line in p:lines() do
    names[#names + 1] = line
  end
  p:close()
  table.sort(names)
  return names
end

function M.exists(path)
  return os.execute("test -e " .. M.quote(path)) == true
end

-- Monotonic seconds (sub-second precision) and sleep; luasystem comes
-- with busted, date(1)/sleep(1) are the fallback.
local has_system, system = pcall(require, "system")

function M.now()
  if has_system then
    return system.monotime()
  end
  return tonumber(first_line("date +%s.%N"))
end

function M.sleep(seconds)
  if has_system then
    system.sleep(seconds)
  else
    os.execute("sleep " .. tostring(seconds))
  end
end

-- Polls fn() until it returns a truthy value (returned) or timeout seconds
-- pass (returns nil).
function M.wait_until(fn, timeout, interval)
  local deadline = M.now() + (timeout or 10)
  repeat
    local v = fn()
    if v then
      return v
    end
    M.sleep(interval or 0.1)
  until M.now() > deadline
  return nil
end

-- HCL string literal.
function M.hcl_string(s)
  return '"' .. tostring(s):gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

local function indent(text, prefix)
  return (text:gsub("[^\n]+", prefix .. "%0"))
end

-- Job file text for one docker task running `sh -c SCRIPT` in the test image.
-- t: job, group, task (names), count, script, image (nil: test image; false:
-- no image line), driver, kill_timeout, kill_signal, config (extra HCL lines
-- inside config {}), task_extra (extra HCL inside task {}), group_extra,
-- job_extra, labels (table, added to the run label), no_run_label.
function M.job(t)
  t = t or {}
  local lines = {}
  local function add(s)
    lines[#lines + 1] = s
  end
  add(string.format("job %s {", M.hcl_string(t.job or "spec")))
  add('  datacenters = ["dc1"]')
  if t.job_extra then
    add(indent(t.job_extra, "  "))
  end
  add(string.format("  group %s {", M.hcl_string(t.group or "g")))
  if t.count then
    add(string.format("    count = %d", t.count))
  end
  if t.group_extra then
    add(indent(t.group_extra, "    "))
  end
  add(string.format("    task %s {", M.hcl_string(t.task or "t")))
  add(string.format("      driver = %s", M.hcl_string(t.driver or "docker")))
  if t.kill_timeout then
    add(string.format("      kill_timeout = %s", M.hcl_string(t.kill_timeout)))
  end
  if t.kill_signal then
    add(string.format("      kill_signal = %s", M.hcl_string(t.kill_signal)))
  end
  if t.task_extra then
    add(indent(t.task_extra, "      "))
  end
  add("      config {")
  if t.image ~= false then
    add(string.format("        image = %s", M.hcl_string(t.image or M.IMAGE)))
  end
  if t.script then
    add('        command = "sh"')
    add(string.format('        args = ["-c", %s]', M.hcl_string(t.script)))
  end
  if t.config then
    add(indent(t.config, "        "))
  end
  add("        labels {")
  if not t.no_run_label then
    add(string.format("          %s = %s", M.hcl_string(M.LABEL_KEY), M.hcl_string(M.run_id)))
  end
  for k, v in pairs(t.labels or {}) do
    add(string.format("          %s = %s", M.hcl_string(k), M.hcl_string(v)))
  end
  add("        }")
  add("      }")
  add("    }")
  add("  }")
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

-- Writes M.job(t) to dir/name (default job.hcl); returns the path.
function M.write_job(dir, t, name)
  return M.write(dir .. "/" .. (name or "job.hcl"), M.job(t))
end

-- Copies spec/fixtures/NAME into dir, replacing @RUN_ID@, @IMAGE@,
-- @LABEL_KEY@ and any @KEY@ of vars; returns the new path and its text.
function M.fixture(name, dir, vars)
  local src = M.root .. "/spec/fixtures/" .. name
  local text = assert(read_file(src), "missing fixture " .. src)
  local values = { RUN_ID = M.run_id, IMAGE = M.IMAGE, LABEL_KEY = M.LABEL_KEY }
  for k, v in pairs(vars or {}) do
    values[k] = v
  end
  text = text:gsub("@([%u_]+)@", function(k)
    return values[k] and tostring(values[k])
  end)
  local path = dir .. "/" .. name:match("[^/]+$")
  M.write(path, text)
  return path, text
end

-- Line and column (1-based) of the first occurrence of plain text needle.
function M.position(text, needle)
  local at = assert(text:find(needle, 1, true), "not found: " .. needle)
  local line, col = 1, at
  for nl in text:sub(1, at - 1):gmatch("()\n") do
    line = line + 1
    col = at - nl
  end
  return line, col
end

-- The alloc ids under data_dir/alloc (sorted).
function M.alloc_ids(data_dir)
  return M.ls(data_dir .. "/alloc")
end

M.UUID_PATTERN = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

---------------------------------------------------------------------------
-- Background processes: drvctl running while the spec watches and signals.

local Proc = {}
Proc.__index = Proc

-- Starts ./drvctl ARGS in the background with stdout/stderr to files.
-- Returns a proc: proc.pid, proc:signal("INT"), proc:wait(timeout) -> code,
-- proc:stdout(), proc:stderr(), proc.output (after wait).
function M.spawn(args, opts)
  M.require_binary()
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local env = ""
  if opts.env then
    local parts = { "env" }
    for k, v in pairs(opts.env) do
      parts[#parts + 1] = M.quote(k .. "=" .. v)
    end
    env = table.concat(parts, " ") .. " "
  end
  -- sh prints its pid, then execs drvctl in place: the pid is drvctl's, and
  -- closing the popen handle reaps it and yields its exit status.
  local cmd = string.format("cd %s && echo $$ && exec %s%s %s </dev/null >%s 2>%s",
    M.quote(M.root), env, M.quote(M.bin), join_args(args), out, err)
  local handle = assert(io.popen(cmd, "r"))
  local pid = tonumber(handle:read("l"))
  assert(pid, "could not start " .. cmd)
  local p = setmetatable({ pid = pid, handle = handle, out = out, err = err,
    cmdline = "drvctl " .. table.concat(args, " ") }, Proc)
  procs[#procs + 1] = p
  return p
end

-- "R", "S", "Z", ... or nil once reaped/gone.
function Proc:state()
  local stat = read_file("/proc/" .. self.pid .. "/stat")
  if not stat then
    return nil
  end
  return stat:match("^%d+ %b() (%a)")
end

function Proc:exited()
  if self.code then
    return true
  end
  local st = self:state()
  return st == nil or st == "Z" or st == "X"
end

function Proc:signal(sig)
  if self:exited() then
    return false
  end
  return os.execute(string.format("kill -%s %d 2>/dev/null", sig, self.pid)) == true
end

function Proc:stdout()
  return read_file(self.out) or ""
end

function Proc:stderr()
  return read_file(self.err) or ""
end

-- Waits up to timeout seconds for exit; returns the exit code (128+N for a
-- signal), or nil, "timeout" (the process keeps running; cleanup kills it).
function Proc:wait(timeout)
  if self.code then
    return self.code
  end
  if not M.wait_until(function() return self:exited() end, timeout or 30, 0.05) then
    return nil, "timeout"
  end
  local _, how, code = self.handle:close()
  if how == "signal" then
    code = 128 + code
  end
  self.code = code
  self.output = string.format("command: %s\nexit: %s\n--- stdout\n%s--- stderr\n%s",
    self.cmdline, tostring(code), self:stdout(), self:stderr())
  return code
end

-- Kills (SIGKILL) and reaps the process if it still runs; removes its files.
function Proc:finish()
  if not self.code then
    if not self:exited() then
      os.execute(string.format("kill -KILL %d 2>/dev/null", self.pid))
    end
    self:wait(10)
  end
  os.remove(self.out)
  os.remove(self.err)
end

---------------------------------------------------------------------------

-- Undoes everything this run's specs created: kills spawned drvctl
-- processes, removes containers labelled with run_id, runs on_cleanup hooks,
-- removes temp dirs. Safe to call any number of times; use in after_each.
function M.cleanup()
  local problems = {}
  for i = #procs, 1, -1 do
    local ok, e = pcall(procs[i].finish, procs[i])
    if not ok then
      problems[#problems + 1] = tostring(e)
    end
    procs[i] = nil
  end
  if M.docker_ok() then
    -- a container a spec left behind on purpose (Docker stopped answering)
    -- may still be being removed by dockerd: wait for that, up to 60 s
    local r
    for _ = 1, 60 do
      r = M.sh("docker ps -a -q --filter " .. M.quote("label=" .. M.label)
        .. " | xargs -r docker rm -f -v >/dev/null", { shell = true })
      if r.code == 0 or not r.output:find("already in progress", 1, true) then
        break
      end
      M.sh("sleep 1")
    end
    if r.code ~= 0 then
      problems[#problems + 1] = r.output
    end
  end
  for i = #hooks, 1, -1 do
    local ok, e = pcall(hooks[i])
    if not ok then
      problems[#problems + 1] = tostring(e)
    end
    hooks[i] = nil
  end
  for i = #tmpdirs, 1, -1 do
    os.execute("rm -rf " .. M.quote(tmpdirs[i]))
    tmpdirs[i] = nil
  end
  if #problems > 0 then
    error("cleanup: " .. table.concat(problems, "\n"), 2)
  end
end

return M
