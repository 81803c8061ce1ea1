-- drvctl logs on prepared data dirs (no Docker): alloc id prefixes, task
-- names, -tail, -stderr, -f on an ended task, planted symlinks. The reading
-- itself: core/tests/test_logread.c; with real runs: spec/docker/logs_spec.lua.
local drv = require("support.drv")

local A1 = "0b1c2d3e-aaaa-4bbb-8ccc-000000000001"
local A2 = "0b1c9999-aaaa-4bbb-8ccc-000000000002"

local function mkdir(path)
  assert(os.execute("mkdir -p " .. drv.quote(path)))
end

-- A data dir with two allocs sharing the prefix 0b1c; A1 has tasks web and
-- db with rotated stdout files and one stderr file.
local function prepare()
  local data = drv.tmpdir() .. "/data"
  for _, id in ipairs({ A1, A2 }) do
    mkdir(data .. "/alloc/" .. id .. "/alloc/logs")
    mkdir(data .. "/alloc/" .. id .. "/web/local")
  end
  mkdir(data .. "/alloc/" .. A1 .. "/db/local")
  local logs = data .. "/alloc/" .. A1 .. "/alloc/logs"
  drv.write(logs .. "/web.stdout.0", "line 1\nline 2\nline 3\n")
  drv.write(logs .. "/web.stdout.1", "line 4\nline 5\n")
  drv.write(logs .. "/web.stdout.2", "line 6\nline 7")
  drv.write(logs .. "/web.stderr.0", "oops\n")
  drv.write(logs .. "/db.stdout.0", "db says hi\n")
  return data, logs
end

local function logs(data, ...)
  return drv.drvctl({ "logs", "-data-dir", data, ... })
end

describe("drvctl logs", function()
  before_each(drv.require_binary)
  after_each(drv.cleanup)

  it("is in the help, with its own help page", function()
    local top = drv.drvctl({ "--help" })
    assert.matches("logs [-f] [-stderr] [-tail N] ALLOC TASK", top.stdout, 1, true)
    local r = drv.drvctl({ "help", "logs" })
    assert.equal(0, r.code, r.output)
    assert.matches("unique prefix", r.stdout, 1, true)
    assert.matches("-tail N", r.stdout, 1, true)
  end)

  it("prints every file in order, bytes as they are, by a unique prefix", function()
    local data = prepare()
    local r = logs(data, "0b1c2d", "web")
    assert.equal(0, r.code, r.output)
    assert.equal("line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7", r.stdout)
    assert.equal("", r.stderr)
    -- the full id and an upper-case prefix name the same alloc
    assert.equal(r.stdout, logs(data, A1, "web").stdout)
    assert.equal(r.stdout, logs(data, "0B1C2D", "web").stdout)
    assert.equal("db says hi\n", logs(data, "0b1c2", "db").stdout)
  end)

  it("-tail N prints the last N lines across files; -stderr the other stream", function()
    local data = prepare()
    local r = logs(data, "-tail", "3", "0b1c2d", "web")
    assert.equal(0, r.code, r.output)
    assert.equal("line 5\nline 6\nline 7", r.stdout)
    assert.equal("line 4\nline 5\nline 6\nline 7", logs(data, "-tail=4", "0b1c2d", "web").stdout)
    assert.equal("", logs(data, "-tail", "0", "0b1c2d", "web").stdout)
    local all = logs(data, "-tail", "100000000", "0b1c2d", "web")
    assert.equal(0, all.code, all.output)
    assert.equal(7, select(2, (all.stdout .. "\n"):gsub("\n", "")))
    r = logs(data, "-stderr", "0b1c2d", "web")
    assert.equal(0, r.code, r.output)
    assert.equal("oops\n", r.stdout)
  end)

  it("refuses a bad -tail (68)", function()
    local data = prepare()
    for _, bad in ipairs({ "-1", "x", "", "1e3", "100000001", "99999999999999999999999" }) do
      local r = logs(data, "-tail", bad, "0b1c2d", "web")
      assert.equal(68, r.code, r.output)
      assert.matches("-tail must be a number", r.stderr, 1, true)
    end
    assert.equal(64, logs(data, "0b1c2d", "web", "-tail").code)
  end)

  it("lists the candidates of an ambiguous prefix (64)", function()
    local data = prepare()
    local r = logs(data, "0b1c", "web")
    assert.equal(64, r.code, r.output)
    assert.matches("ambiguous alloc id prefix \"0b1c\"", r.stderr, 1, true)
    assert.matches(A1, r.stderr, 1, true)
    assert.matches(A2, r.stderr, 1, true)
    assert.equal("", r.stdout)
  end)

  it("says which data dir has no such alloc (66), and wants 4 hex digits (64)", function()
    local data = prepare()
    local r = logs(data, "ffff", "web")
    assert.equal(66, r.code, r.output)
    assert.matches('no allocation matches "ffff" in "' .. data .. '/alloc"', r.stderr, 1, true)
    r = logs(drv.tmpdir() .. "/empty", "abcd", "web")
    assert.equal(66, r.code, r.output)
    assert.equal(64, logs(data, "0b1", "web").code)
    assert.equal(64, logs(data, "0-b-1", "web").code)
  end)

  it("refuses alloc arguments and task names that are not names (68)", function()
    local data = prepare()
    for _, bad in ipairs({ "../0b1c2d3e", "0b1c2d/..", "0b1c2d3e\n", "*", "0b1c 2d" }) do
      local r = logs(data, bad, "web")
      assert.equal(68, r.code, r.output)
    end
    for _, bad in ipairs({ "..", "../web", "a/b", ".hidden", "web\x1b[2J", string.rep("a", 129) }) do
      local r = logs(data, "0b1c2d", bad)
      assert.equal(68, r.code, r.output)
      assert.matches("task name not allowed", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("\x1b", 1, true))
    end
  end)

  it("names the tasks of the alloc when TASK is not one of them (66)", function()
    local data = prepare()
    local r = logs(data, "0b1c2d", "cache")
    assert.equal(66, r.code, r.output)
    assert.matches('has no task "cache" (tasks: ', r.stderr, 1, true)
    assert.matches("web", r.stderr, 1, true)
    assert.matches("db", r.stderr, 1, true)
    -- the shared alloc/ dir is not a task
    assert.equal(66, logs(data, "0b1c2d", "alloc").code)
  end)

  it("-f on an ended task prints what there is and exits 0", function()
    local data = prepare()
    local r = drv.drvctl({ "logs", "-data-dir", data, "-f", "-tail", "2", "0b1c2d", "web" },
      { timeout = 20 })
    assert.equal(0, r.code, r.output)
    assert.equal("line 6\nline 7", r.stdout)
  end)

  it("refuses a log file or log dir a task replaced by a symlink (77)", function()
    local data, dir = prepare()
    local secret = drv.write(drv.tmpdir() .. "/secret", "HOST SECRET\n")
    os.remove(dir .. "/web.stdout.2")
    assert(os.execute("ln -s " .. drv.quote(secret) .. " " .. drv.quote(dir .. "/web.stdout.2")))
    local r = logs(data, "-tail", "1", "0b1c2d", "web")
    assert.equal(77, r.code, r.output)
    assert.matches("symbolic link", r.stderr, 1, true)
    assert.is_nil(r.stdout:find("SECRET", 1, true))
    r = logs(data, "0b1c2d", "web")
    assert.equal(77, r.code, r.output)
    assert.is_nil(r.stdout:find("SECRET", 1, true))
    -- the whole logs dir swapped for a symlink to a host dir
    local host = drv.tmpdir()
    drv.write(host .. "/db.stdout.0", "HOST SECRET\n")
    local alloc = data .. "/alloc/" .. A1 .. "/alloc"
    assert(os.execute("mv " .. drv.quote(alloc .. "/logs") .. " " .. drv.quote(alloc .. "/old")))
    assert(os.execute("ln -s " .. drv.quote(host) .. " " .. drv.quote(alloc .. "/logs")))
    r = logs(data, "0b1c2d", "db")
    assert.equal(77, r.code, r.output)
    assert.is_nil(r.stdout:find("SECRET", 1, true))
  end)

  it("keeps the bytes raw on a pipe and escapes them on a terminal (script -qfec)", function()
    local data, dir = prepare()
    local raw = "title\27]0;pwned\7 clear\27[2J cr\rover\r\nbad \255 rtl \226\128\174x\nend"
    drv.write(dir .. "/db.stdout.0", raw)
    local r = logs(data, "0b1c2d", "db")
    assert.equal(0, r.code, r.output)
    assert.equal(raw, r.stdout)
    assert.is_truthy(drv.sh("command -v script", { shell = true }).code == 0,
      "script(1) from util-linux is needed")
    local tmp = drv.tmpdir()
    local cmd = drv.quote(drv.bin) .. " logs -data-dir " .. drv.quote(data) .. " 0b1c2d db"
    r = drv.sh("script -qfec " .. drv.quote(cmd) .. " " .. drv.quote(tmp .. "/typescript"),
      { timeout = 30 })
    assert.equal(0, r.code, r.output)
    local tty = assert(drv.read(tmp .. "/typescript")):gsub("\r\n", "\n")
    assert.is_nil(tty:find("\27", 1, true), tty)
    assert.is_nil(tty:find("\r", 1, true), tty)
    assert.matches("title\\x1b]0;pwned\\x07 clear\\x1b[2J cr\\rover\n", tty, 1, true)
    assert.matches("bad \\xff rtl \\u202ex\nend", tty, 1, true)
  end)

  it("needs ALLOC and TASK (64)", function()
    local data = prepare()
    assert.equal(64, logs(data, "0b1c2d").code)
    assert.equal(64, logs(data).code)
    assert.equal(64, logs(data, "0b1c2d", "web", "extra").code)
    assert.equal(64, logs(data, "-json", "0b1c2d", "web").code)
  end)
end)
