-- Issue 7 (items 2 and 9c): artifacts must neither read nor write the host.
-- Each case performs the attack with the real binary against the real
-- daemon and checks the host, the task directory and Docker afterwards.
-- HTTP is served by a small python3 server on 127.0.0.1 (and, for the
-- redirect case, on a 198.18.x.y address this spec adds to lo and removes:
-- local traffic only).
local drv = require("support.drv")

local SERVER = [[
import http.server, os, socketserver, sys, threading, time
root, portfile, host = sys.argv[1], sys.argv[2], sys.argv[3]

class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith('/redirect/'):
            self.send_response(302)
            self.send_header('Location', self.path[len('/redirect/'):])
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        if self.path.startswith('/trickle/'):
            self.send_response(200)
            self.send_header('Content-Length', str(10 ** 9))
            self.end_headers()
            end = time.time() + 120
            try:
                while time.time() < end:
                    self.wfile.write(b'x' * 64)
                    self.wfile.flush()
                    time.sleep(0.1)
            except Exception:
                pass
            return
        super().do_GET()

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

s = S((host, 0), H)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(s.server_address[1]))
os.rename(portfile + '.tmp', portfile)
threading.Timer(600, s.shutdown).start()   # stops by itself
s.serve_forever()
]]

-- Starts the server on host:random port serving root; returns the port.
local function serve(dir, root, host)
  drv.write(dir .. "/server.py", SERVER)
  local portfile = string.format("%s/port-%s", dir, host)
  local p = io.popen(string.format("python3 %s %s %s %s >%s/server.log 2>&1 & echo $!",
    drv.quote(dir .. "/server.py"), drv.quote(root), drv.quote(portfile), drv.quote(host),
    drv.quote(dir)))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "cannot start the test server")
  drv.on_cleanup(function()
    os.execute("kill " .. pid .. " 2>/dev/null")
  end)
  local port = drv.wait_until(function()
    local s = drv.read(portfile)
    return s and tonumber(s)
  end, 15)
  assert(port, "the test server did not start: " .. tostring(drv.read(dir .. "/server.log")))
  return port
end

local function agent_file(dir, body)
  return drv.write(dir .. "/agent.hcl", "client {\n  artifact {\n" .. (body or "")
    .. "\n  }\n}\n")
end

-- job with the given artifact blocks (HCL), running script
local function job_file(dir, artifacts, script)
  return drv.write(dir .. "/job.hcl", drv.job({ task = "t", task_extra = artifacts,
    script = script or "ls -la /local" }))
end

local function artifact(source, extra)
  return string.format("artifact {\n  source = %s\n%s}\n", drv.hcl_string(source), extra or "")
end

local function run(dir, agent, job, opts)
  return drv.drvctl({ "run", "-config", agent, "-data-dir", dir .. "/data", job },
    opts or { timeout = 90 })
end

-- Everything under the task dir's local/ (recursive, hidden files too).
local function local_files(dir)
  local ids = drv.alloc_ids(dir .. "/data")
  if #ids == 0 then
    return {}
  end
  local r = drv.sh("find " .. drv.quote(dir .. "/data/alloc/" .. ids[1] .. "/t/local")
    .. " -mindepth 1 2>/dev/null", { shell = true })
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    out[#out + 1] = line:match("/local/(.*)$")
  end
  table.sort(out)
  return out
end

-- a python3 tarfile/zipfile archive at path; body uses add(name, data),
-- link(name, target)
local function make_archive(path, mode, body)
  local prog = table.concat({
    "import io, sys, tarfile, zipfile",
    "out, mode = sys.argv[1], sys.argv[2]",
    "if mode == 'zip':",
    "    z = zipfile.ZipFile(out, 'w')",
    "    def add(n, d): z.writestr(n, d)",
    "else:",
    "    t = tarfile.open(out, mode)",
    "    def add(n, d):",
    "        i = tarfile.TarInfo(n); b = d.encode(); i.size = len(b); i.mode = 0o644",
    "        t.addfile(i, io.BytesIO(b))",
    "    def link(n, target):",
    "        i = tarfile.TarInfo(n); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)",
    body,
    "(z if mode == 'zip' else t).close()",
  }, "\n")
  local r = drv.sh("python3 -c " .. drv.quote(prog) .. " " .. drv.quote(path) .. " "
    .. drv.quote(mode), { shell = false })
  assert.equal(0, r.code, r.output)
end

describe("artifact attacks (issue 7)", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  describe("local sources", function()
    it("refuses file:///etc/shadow by default at plan time (77, nothing created)", function()
      local dir = drv.tmpdir()
      local r = run(dir, agent_file(dir), job_file(dir, artifact("file:///etc/shadow")))
      assert.equal(77, r.code, r.output)
      assert.matches('job.hcl:%d+:%d+: task "t": artifact "file:///etc/shadow": local sources '
        .. "are refused unless client.artifact.local_dirs", r.stderr)
      assert.same({}, drv.alloc_ids(dir .. "/data"))
      assert.same({}, drv.containers())
    end)

    it("refuses an absolute path outside local_dirs (77)", function()
      local dir = drv.tmpdir()
      local agent = agent_file(dir, "local_dirs = [" .. drv.hcl_string(dir .. "/pub") .. "]")
      local r = run(dir, agent, job_file(dir, artifact("/etc/shadow")))
      assert.equal(77, r.code, r.output)
      assert.matches("local source is not beneath a directory in client.artifact.local_dirs",
        r.stderr, 1, true)
      assert.same({}, drv.containers())
    end)

    it("refuses /dev/zero quickly even where /dev is allowed (74, no file)", function()
      local dir = drv.tmpdir()
      local r = run(dir, agent_file(dir), job_file(dir, artifact("file:///dev/zero")))
      assert.equal(77, r.code, r.output)
      r = run(dir, agent_file(dir, 'local_dirs = ["/dev"]'),
        job_file(dir, artifact("file:///dev/zero")), { timeout = 20 })
      assert.equal(74, r.code, r.output)
      assert.matches('task "t": artifact "file:///dev/zero": local source refused: not a '
        .. "regular file", r.stderr, 1, true)
      assert.same({}, local_files(dir))
      assert.same({}, drv.containers())
    end)

    it("refuses a symlink inside an allowed dir that leads out of it (74)", function()
      local dir = drv.tmpdir()
      os.execute("mkdir -p " .. drv.quote(dir .. "/pub") .. " && ln -s /etc/passwd "
        .. drv.quote(dir .. "/pub/passwd"))
      local agent = agent_file(dir, "local_dirs = [" .. drv.hcl_string(dir .. "/pub") .. "]")
      local r = run(dir, agent, job_file(dir, artifact(dir .. "/pub/passwd")))
      assert.equal(74, r.code, r.output)
      assert.matches("local source refused: a symlink is in the way", r.stderr, 1, true)
      assert.same({}, local_files(dir))
    end)

    it("enforces http_max_size on an allowed large file (74, no partial file)", function()
      local dir = drv.tmpdir()
      os.execute("mkdir -p " .. drv.quote(dir .. "/pub") .. " && truncate -s 64M "
        .. drv.quote(dir .. "/pub/big.bin"))
      local agent = agent_file(dir, "local_dirs = [" .. drv.hcl_string(dir .. "/pub")
        .. "]\n    http_max_size = \"1MB\"")
      local r = run(dir, agent, job_file(dir, artifact(dir .. "/pub/big.bin")))
      assert.equal(74, r.code, r.output)
      assert.matches("67108864 bytes, larger than 1000000 (client.artifact.http_max_size)",
        r.stderr, 1, true)
      assert.same({}, local_files(dir))
      assert.same({}, drv.containers())
    end)
  end)

  describe("archives", function()
    local dir, pub, agent, host_dir

    before_each(function()
      dir = drv.tmpdir()
      pub = dir .. "/pub"
      os.execute("mkdir -p " .. drv.quote(pub))
      agent = agent_file(dir, "local_dirs = [" .. drv.hcl_string(pub) .. "]")
      host_dir = drv.sh("mktemp -d /tmp/host-target-XXXXXX").stdout:match("[^\n]+")
      drv.on_cleanup(function() os.execute("rm -rf " .. drv.quote(host_dir)) end)
    end)

    it("never writes through a symlink an earlier artifact planted (74)", function()
      make_archive(pub .. "/plant.tar.gz", "w:gz", string.format("link('d', %q)", host_dir))
      make_archive(pub .. "/payload.tar.gz", "w:gz", "add('d/file', 'pwned\\n')")
      local r = run(dir, agent, job_file(dir, artifact(pub .. "/plant.tar.gz")
        .. artifact(pub .. "/payload.tar.gz", '  destination = "local/d"\n')))
      assert.equal(74, r.code, r.output)
      assert.matches('task "t": artifact "' .. pub .. '/payload.tar.gz": cannot open the '
        .. 'destination "local/d": a symlink is in the way', r.stderr, 1, true)
      assert.same({}, drv.ls(host_dir))
      assert.same({ "d" }, local_files(dir))
      assert.same({}, drv.containers())

      -- the same payload aimed at local/ must not follow local/d either
      r = run(dir, agent, job_file(dir, artifact(pub .. "/plant.tar.gz")
        .. artifact(pub .. "/payload.tar.gz")))
      assert.equal(74, r.code, r.output)
      assert.matches('"d" exists in the destination as a symlink', r.stderr, 1, true)
      assert.same({}, drv.ls(host_dir))
    end)

    it("refuses entries with ../ and absolute paths (74, nothing unpacked)", function()
      make_archive(pub .. "/dotdot.tar.gz", "w:gz",
        "add('ok.txt', 'ok')\nadd('../../../../../../../../" .. host_dir:sub(2) .. "/x', 'x')")
      local r = run(dir, agent, job_file(dir, artifact(pub .. "/dotdot.tar.gz")))
      assert.equal(74, r.code, r.output)
      assert.matches("Path contains '..'", r.stderr, 1, true)
      assert.same({}, local_files(dir))

      make_archive(pub .. "/abs.tar.gz", "w:gz", string.format("add(%q, 'x')", host_dir .. "/y"))
      r = run(dir, agent, job_file(dir, artifact(pub .. "/abs.tar.gz")))
      assert.equal(74, r.code, r.output)
      assert.matches("Path is absolute", r.stderr, 1, true)
      assert.same({}, drv.ls(host_dir))
      assert.same({}, drv.containers())
    end)

    it("unpacks zip, tar.xz and tar.bz2 for the task", function()
      make_archive(pub .. "/a.zip", "zip", "add('z/file', 'from zip\\n')")
      make_archive(pub .. "/b.tar.xz", "w:xz", "add('x/file', 'from xz\\n')")
      make_archive(pub .. "/c.tar.bz2", "w:bz2", "add('b/file', 'from bz2\\n')")
      local r = run(dir, agent, job_file(dir, artifact(pub .. "/a.zip")
        .. artifact(pub .. "/b.tar.xz") .. artifact(pub .. "/c.tar.bz2"),
        "cat /local/z/file /local/x/file /local/b/file"))
      assert.equal(0, r.code, r.output)
      assert.matches("t | from zip\nt | from xz\nt | from bz2", r.stdout, 1, true)
    end)

    it("stops a decompression bomb at decompression_size_limit (74)", function()
      make_archive(pub .. "/bomb.tar.gz", "w:gz", "add('zeros', '\\0' * (32 << 20))")
      local a = agent_file(dir, "local_dirs = [" .. drv.hcl_string(pub) .. "]\n"
        .. '    decompression_size_limit = "1MiB"')
      local r = run(dir, a, job_file(dir, artifact(pub .. "/bomb.tar.gz")))
      assert.equal(74, r.code, r.output)
      assert.matches("more than 1048576 bytes unpacked (client.artifact.decompression_size_limit)",
        r.stderr, 1, true)
      assert.same({}, local_files(dir))
    end)
  end)

  describe("http", function()
    local dir, port

    before_each(function()
      dir = drv.tmpdir()
      os.execute("mkdir -p " .. drv.quote(dir .. "/www"))
      drv.write(dir .. "/www/hello.txt", "hello over http\n")
      port = serve(dir, dir .. "/www", "127.0.0.1")
    end)

    it("refuses loopback by default (74) and fetches with allow_private", function()
      local url = string.format("http://127.0.0.1:%d/hello.txt", port)
      local job = job_file(dir, artifact(url), "cat /local/hello.txt")
      local r = run(dir, agent_file(dir), job)
      assert.equal(74, r.code, r.output)
      assert.matches('task "t": artifact "' .. url .. '": download failed: refused to connect '
        .. "to 127.0.0.1, a loopback address (client.artifact.allow_private = true allows it)",
        r.stderr, 1, true)
      assert.same({}, local_files(dir))
      assert.same({}, drv.containers())

      r = run(dir, agent_file(dir, "allow_private = true"), job)
      assert.equal(0, r.code, r.output)
      assert.matches("t | hello over http", r.stdout, 1, true)
    end)

    it("refuses a redirect from an allowed address to loopback (74)", function()
      -- an address outside the refused classes that still stays on this
      -- machine: 198.18.0.0/15 (benchmarking) added to lo (dummy links need
      -- a kernel module this machine may not have), removed afterwards
      local addr = string.format("198.18.%d.%d", math.random(1, 254), math.random(1, 254))
      local r = drv.sh(string.format("ip addr add %s/32 dev lo", addr))
      assert.equal(0, r.code, r.output)
      drv.on_cleanup(function() os.execute("ip addr del " .. addr .. "/32 dev lo 2>/dev/null") end)
      local ext = serve(dir, dir .. "/www", addr)

      -- the allowed address itself works without allow_private
      local direct = string.format("http://%s:%d/hello.txt", addr, ext)
      r = run(dir, agent_file(dir), job_file(dir, artifact(direct), "cat /local/hello.txt"))
      assert.equal(0, r.code, r.output)
      assert.matches("t | hello over http", r.stdout, 1, true)

      local url = string.format("http://%s:%d/redirect/http://127.0.0.1:%d/hello.txt", addr, ext,
        port)
      local dir2 = drv.tmpdir()
      r = run(dir2, agent_file(dir2), job_file(dir2, artifact(url), "cat /local/hello.txt"))
      assert.equal(74, r.code, r.output)
      assert.matches("refused to connect to 127.0.0.1, a loopback address", r.stderr, 1, true)
      assert.same({}, local_files(dir2))
      assert.same({}, drv.containers({ "label=drvctl.job=spec", "status=running" }))
    end)

    it("cancels a trickling download on SIGINT (130 within seconds, no partial file)", function()
      local url = string.format("http://127.0.0.1:%d/trickle/big.bin", port)
      local agent = agent_file(dir, "allow_private = true")
      local proc = drv.spawn({ "run", "-config", agent, "-data-dir", dir .. "/data",
        job_file(dir, artifact(url)) })
      -- wait until the partial file exists: the download is under way
      assert.is_truthy(drv.wait_until(function()
        local files = local_files(dir)
        return #files > 0 or proc:exited()
      end, 30), proc:stderr())
      assert.is_false(proc:exited(), proc:stderr())
      local t0 = drv.now()
      proc:signal("INT")
      local code = proc:wait(10)
      assert.equal(130, code, proc.output)
      assert.is_true(drv.now() - t0 < 5, "took " .. (drv.now() - t0) .. " s")
      assert.same({}, local_files(dir))
      assert.same({}, drv.containers())
    end)

    it("fails an idle download after http_read_timeout (74, no partial file)", function()
      -- a server that sends the headers and 3 bytes, then nothing
      local stall = [[
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
open(sys.argv[1], 'w').write(str(s.getsockname()[1]))
c, _ = s.accept(); c.recv(4096)
c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc')
time.sleep(30)
]]
      drv.write(dir .. "/stall.py", stall)
      local p = io.popen("python3 " .. drv.quote(dir .. "/stall.py") .. " "
        .. drv.quote(dir .. "/stall-port") .. " >/dev/null 2>&1 & echo $!")
      local pid = tonumber(p:read("l"))
      p:close()
      drv.on_cleanup(function() os.execute("kill " .. pid .. " 2>/dev/null") end)
      local sport = drv.wait_until(function()
        local s = drv.read(dir .. "/stall-port")
        return s and tonumber(s)
      end, 15)
      assert.is_truthy(sport)
      local url = string.format("http://127.0.0.1:%d/stalled.bin", sport)
      local r = run(dir, agent_file(dir, 'allow_private = true\n    http_read_timeout = "2s"'),
        job_file(dir, artifact(url)), { timeout = 25 })
      assert.equal(74, r.code, r.output)
      assert.matches('artifact "' .. url .. '": download failed: ', r.stderr, 1, true)
      assert.same({}, local_files(dir))
    end)
  end)
end)
