-- Port reservation across processes: 50 processes reserving dynamic ports
-- against one data dir at the same moment never get the same port (the
-- ledger lock in core/host/ports.c), each alloc's ports are in its own record
-- (state/ports-<alloc_id>.json), and records of processes that are gone are
-- reclaimed. Drives the C allocator through build/tests/test_ports
-- (`make build/tests/test_ports`), which stays alive, holding its ports,
-- until a "go" file appears.
local drv = require("support.drv")

local BIN = os.getenv("DRVCTL_TEST_PORTS") or (drv.root .. "/build/tests/test_ports")
local PROCS, EACH = 50, 4
-- 250 ports for 200 requests: random picks collide often, so only the lock
-- keeps them apart. Above Nomad's default range (20000..32000) and below the
-- kernel's ephemeral ports, so other tests and outgoing connections rarely
-- hold one.
local MIN, MAX = 32100, 32349

local function require_helper()
  assert(drv.exists(BIN), "missing " .. BIN .. ": run `make build/tests/test_ports` first")
end

-- Starts PROCS reservers at once, waits until each has answered, then lets
-- them all exit. Returns { ports = {..}, failures = {..}, ledger = n }.
local function run_all(dir)
  local data = dir .. "/data"
  local script = table.concat({
    "set -u",
    "D=" .. drv.quote(dir),
    "for i in $(seq " .. PROCS .. "); do",
    "  " .. drv.quote(BIN) .. " --reserve \"$D/data\" " .. EACH .. " " .. MIN .. " " .. MAX ..
      " --until \"$D/go\" >\"$D/out.$i\" 2>\"$D/err.$i\" &",
    "done",
    -- answered: printed "done" or an error
    "n=0",
    "while :; do",
    "  a=$( (grep -l '^done$' \"$D\"/out.* 2>/dev/null; find \"$D\" -name 'err.*' -size +0) | wc -l)",
    "  [ \"$a\" -ge " .. PROCS .. " ] && break",
    "  n=$((n+1)); [ $n -ge 300 ] && break",
    "  sleep 0.05",
    "done",
    -- records, and the ports they name
    "ls \"$D/data/state\" | grep -c '^ports-.*\\.json$' >\"$D/records\"",
    "cat \"$D\"/data/state/ports-*.json | grep -o '{\"port\":[0-9]*' | wc -l >\"$D/ledger\"",
    "touch \"$D/go\"",
    "wait",
  }, "\n")
  local r = drv.sh(script, { shell = true, timeout = 40 })
  assert(r.code == 0, r.output)
  local result = { ports = {}, failures = {}, ledger = tonumber(drv.read(dir .. "/ledger") or ""),
    records = tonumber(drv.read(dir .. "/records") or "") }
  for i = 1, PROCS do
    local out = drv.read(dir .. "/out." .. i) or ""
    local err = drv.read(dir .. "/err." .. i) or ""
    if err ~= "" or not out:find("done\n", 1, true) then
      result.failures[#result.failures + 1] = string.format("process %d: %s%s", i, out, err)
    end
    for p in out:gmatch("(%d+)\n") do
      result.ports[#result.ports + 1] = tonumber(p)
    end
  end
  result.data = data
  return result
end

describe("port reservation by concurrent processes", function()
  local dir, res

  lazy_setup(function()
    require_helper()
    dir = drv.tmpdir()
    res = run_all(dir)
  end)
  lazy_teardown(drv.cleanup)

  it("gives every process its ports", function()
    assert.same({}, res.failures)
    assert.equal(PROCS * EACH, #res.ports)
  end)

  it("never hands out one port twice", function()
    local seen, dups = {}, {}
    for _, p in ipairs(res.ports) do
      if seen[p] then
        dups[#dups + 1] = p
      end
      seen[p] = true
    end
    assert.same({}, dups)
  end)

  it("keeps every port inside the dynamic range", function()
    for _, p in ipairs(res.ports) do
      assert.is_true(p >= MIN and p <= MAX, tostring(p))
    end
  end)

  it("records one ledger record per alloc, naming each port, while the owners live", function()
    assert.equal(PROCS, res.records)
    assert.equal(PROCS * EACH, res.ledger)
  end)

  it("reclaims the entries of processes that have exited", function()
    -- 200 of the 250 ports are still in the ledger, owned by dead pids:
    -- 200 more only fit if those records are taken back
    local r = drv.sh(drv.quote(BIN) .. " --reserve " .. drv.quote(res.data) .. " " ..
      PROCS * EACH .. " " .. MIN .. " " .. MAX, { timeout = 20 })
    assert.equal(0, r.code, r.output)
    local n = 0
    for _ in r.stdout:gmatch("(%d+)\n") do
      n = n + 1
    end
    assert.equal(PROCS * EACH, n)
    -- the 50 stale records are gone; the last (exited) owner's one is left
    local left = {}
    for _, name in ipairs(drv.ls(res.data .. "/state")) do
      if name:match("^ports%-") then
        left[#left + 1] = name
      end
    end
    assert.equal(1, #left, table.concat(left, " "))
  end)
end)
