-- What task output can do to the operator's terminal: nothing. Escape
-- sequences (title change, clear screen), a mid-line \r that would overwrite
-- the task prefix, and invalid UTF-8 are echoed escaped (`\x1b`, `\r`,
-- `\xff`), under a real pseudo-terminal (script(1)) and on a pipe alike;
-- the log files under data_dir keep the bytes as written.
local drv = require("support.drv")

-- printf's octal escapes: ESC ] 0 ; pwned BEL, ESC [ 2 J, CR, a forged
-- prefixed line after a newline, invalid UTF-8 (\377), C1 CSI (\302\233).
local SCRIPT = [[printf 'A\033]0;pwned\007B\033[2J\rX\n]]
  .. [[ok | forged\rY\n\377\376 \302\2332J done\n'; printf 'tab\there\n']]

local RAW = "A\27]0;pwned\7B\27[2J\rX\nok | forged\rY\n\255\254 \194\1552J done\ntab\there\n"

local function check_log(data)
  local alloc = drv.alloc_ids(data)[1]
  local log = drv.read(data .. "/alloc/" .. alloc .. "/alloc/logs/esc.stdout.0")
  assert.equal(RAW, log)
end

local function check_echo(out)
  assert.is_nil(out:find("\27", 1, true), "raw ESC reached the terminal:\n" .. out)
  assert.is_nil(out:find("\7", 1, true), "raw BEL reached the terminal:\n" .. out)
  assert.is_nil(out:find("\255", 1, true), "raw invalid UTF-8 reached the terminal:\n" .. out)
  assert.is_nil(out:find("\194\155", 1, true), "raw C1 CSI reached the terminal:\n" .. out)
  assert.is_truthy(out:find([[esc | A\x1b]0;pwned\x07B\x1b[2J\rX]], 1, true), out)
  assert.is_truthy(out:find([[esc | ok | forged\rY]], 1, true), out)
  assert.is_truthy(out:find([[esc | \xff\xfe \u009b2J done]], 1, true), out)
  assert.is_truthy(out:find("esc | tab\there", 1, true), out)
end

describe("task output echoed by drvctl run", function()
  before_each(function()
    drv.require_binary()
    drv.require_docker()
  end)
  after_each(drv.cleanup)

  it("is escaped on a terminal (script -qfec) and kept raw in the log file", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { task = "esc", script = SCRIPT })
    assert.is_truthy(drv.sh("command -v script", { shell = true }).code == 0,
      "script(1) from util-linux is needed")
    local cmd = drv.quote(drv.bin) .. " run -data-dir " .. drv.quote(data) .. " " .. drv.quote(job)
    local r = drv.sh("script -qfec " .. drv.quote(cmd) .. " " .. drv.quote(dir .. "/typescript"),
      { timeout = 90 })
    assert.equal(0, r.code, r.output)
    -- the typescript is what the terminal received (the tty turns \n into \r\n)
    local tty = assert(drv.read(dir .. "/typescript")):gsub("\r\n", "\n")
    check_echo(tty)
    assert.is_nil(tty:find("\r", 1, true), "raw CR reached the terminal:\n" .. tty)
    check_log(data)
  end)

  it("is escaped when stdout is not a terminal too", function()
    local dir = drv.tmpdir()
    local data = dir .. "/data"
    local job = drv.write_job(dir, { task = "esc", script = SCRIPT })
    local r = drv.drvctl({ "run", "-data-dir", data, job }, { timeout = 90 })
    assert.equal(0, r.code, r.output)
    check_echo(r.stdout)
    assert.is_nil(r.stdout:find("\r", 1, true), r.output)
    check_log(data)
  end)

  it("escapes Docker's error messages that quote job values", function()
    -- Docker's 400 answer quotes the job's relative work_dir back
    local dir = drv.tmpdir()
    local job = drv.write_job(dir, { task = "esc", script = "true",
      config = 'work_dir = "rel\\u001b]0;pwned\\u0007"' })
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 90 })
    assert.equal(75, r.code, r.output)
    assert.is_truthy(r.stderr:find([[working directory 'rel\x1b]0;pwned\x07']], 1, true), r.output)
    assert.is_nil(r.stderr:find("\27", 1, true), "raw ESC in a message:\n" .. r.output)
    assert.is_nil(r.stderr:find("\7", 1, true), "raw BEL in a message:\n" .. r.output)
  end)
end)
