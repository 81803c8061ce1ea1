-- The bind race (issue 7, item 1): one task of a group swaps a symlink to the
-- host's / in and out of /alloc/data/x as fast as it can while 30 sibling
-- tasks start with `../alloc/data/x` bound. A check by path before create
-- cannot win this: Docker resolves the path again at start. drvctl opens the
-- source beneath the alloc dir without following symlinks and bind-mounts
-- the opened directory onto a staging path under data_dir/binds/, which is
-- what Docker gets: every binder must see the alloc dir's marker and none
-- the host. The binds are read-only so that a run of this spec against a
-- vulnerable build shows the host's files without harming them.
local drv = require("support.drv")

local BINDERS = 30

-- Mount points (field 5 of mountinfo) at or below `dir`.
local function mounts_under(dir)
  local out = {}
  local f = assert(io.open("/proc/self/mountinfo", "rb"))
  for line in f:lines() do
    local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
    if mp and (mp == dir or mp:sub(1, #dir + 1) == dir .. "/") then
      out[#out + 1] = mp
    end
  end
  f:close()
  return out
end

-- A job whose group holds the flipper and `n` binding tasks.
local function race_job(n)
  local tasks = {}
  local function task(name, script, config)
    tasks[#tasks + 1] = string.format([[
    task %s {
      driver = "docker"
      config {
        image = %s
        command = "sh"
        args = ["-c", %s]
%s        labels { %s = %s }
      }
    }]], drv.hcl_string(name), drv.hcl_string(drv.IMAGE), drv.hcl_string(script),
      config or "", drv.hcl_string(drv.LABEL_KEY), drv.hcl_string(drv.run_id))
  end
  -- the flipper: puts the marker into x, then swaps x (the directory) with a
  -- symlink to / until every binder reported (or 40000 swaps)
  task("flipper", [[
cd /alloc/data || exit 1
mkdir -p x done && echo alloc-marker > x/marker || exit 1
i=0
while [ $i -lt 40000 ]; do
  mv -T x x.d; ln -s / x; rm -f x; mv -T x.d x
  i=$((i + 1))
  if [ $((i % 25)) = 0 ] && [ $(ls done | wc -l) -ge ]] .. n .. [[ ]; then break; fi
done
echo "flipper: $i swaps"
]])
  for k = 1, n do
    task("b" .. k, [[
for i in $(seq 300); do
  if [ -e /m/marker ]; then echo "SAW-ALLOC"; break; fi
  if [ -e /m/etc/passwd ] || [ -e /m/proc ] || [ -e /m/bin ]; then echo "SAW-HOST"; ls /m; break; fi
  sleep 0.1
done
touch /alloc/data/done/$NOMAD_TASK_NAME
]], '        volumes = ["../alloc/data/x:/m:ro"]\n')
  end
  return string.format('job "bindrace" {\n  datacenters = ["dc1"]\n  group "g" {\n%s\n  }\n}\n',
    table.concat(tasks, "\n"))
end

describe("the bind race", function()
  local dir

  before_each(function()
    drv.require_binary()
    drv.require_docker()
    dir = drv.tmpdir()
    drv.on_cleanup(function()
      -- never leave a mount behind, even when the spec fails
      for _, mp in ipairs(mounts_under(dir)) do
        os.execute("umount -l " .. drv.quote(mp) .. " 2>/dev/null")
      end
    end)
  end)

  after_each(drv.cleanup)

  it("is lost by the flipper: " .. BINDERS .. " binders all see the alloc dir, none the host", function()
    local job = drv.write(dir .. "/job.hcl", race_job(BINDERS))
    local r = drv.drvctl({ "run", "-data-dir", dir .. "/data", job }, { timeout = 300 })
    local saw_alloc, saw_host = 0, 0
    for line in r.stdout:gmatch("[^\n]+") do
      if line:match("^b%d+ | SAW%-ALLOC$") then
        saw_alloc = saw_alloc + 1
      elseif line:match("^b%d+ | SAW%-HOST$") then
        saw_host = saw_host + 1
      end
    end
    assert.equal(0, saw_host, "binders saw the host's /:\n" .. r.output)
    assert.equal(0, r.code, r.output)
    assert.equal(BINDERS, saw_alloc, r.output)
    assert.matches("flipper | flipper: %d+ swaps", r.stdout)
    -- the pins are gone: no mount under the data dir, no staging entries
    assert.same({}, mounts_under(dir))
    assert.same({}, drv.ls(dir .. "/data/binds"))
    assert.same({}, drv.containers())
  end)
end)
