#!/usr/bin/env lua5.4
-- fuzz/lua/mutate.lua: mutation fuzzer for the pure-Lua job pipeline.
--
--   lua5.4 fuzz/lua/mutate.lua --group hcl|expr [--seconds 60] [--seed N]
--                              [--max-len 8192] [--budget 20000000]
--                              [--known yes]
--   lua5.4 fuzz/lua/mutate.lua --replay FILE --target TARGET
--
-- Groups and their targets (entry points):
--   hcl   hcl     drv.hcl.parse(src)
--         plan    drv.driver.plan(src, ...) with the default agent: HCL and
--                 JSON job files (drv.jobspec.load, constraints, mapping)
--   expr  interp      drv.interp.expand(s, scope)
--         constraint  drv.constraint.check({attribute, operator, value}, ...)
--         decode      drv.driver.decode(op, 200, body) (pull/load progress
--                     lines and the other Docker responses)
--
-- Seeds come from spec/fixtures (hcl/, jobs/, cli/, docker/) and
-- fuzz/corpus/<target>/. Each input is mutated (byte flips, inserts of
-- interesting tokens, splices, duplicated blocks, deep nesting, numbers and
-- strings swapped for edge cases) and run under pcall and a count hook.
-- A finding is: a Lua error, a result outside the entry point's contract
-- (e.g. plan returning nil without problems, or a problem of kind
-- "internal": exit 70), or a slow run (more than --budget VM instructions
-- or more than 1 s of CPU). Each distinct finding is minimised and written
-- to fuzz/findings/<target>-<kind>-<hash>.input with a .txt beside it.
--
-- Every class the first runs found (wrong-typed JSON fields, backtracking
-- regexps, quadratic HCL positions, did-you-mean on huge keys, padded
-- Docker bodies) is fixed, so by default each of them is a finding again.
-- `--known yes` counts them as "known" instead and caps the inputs that
-- would only reproduce them (nested regexp alternation), as the first runs
-- did while the fixes were being written. Count values are always capped
-- (at most 3 instances) so that a plan's size stays small; inputs are cut
-- at --max-len.

-- the repository root: two levels above this script
local ROOT = arg[0]:match("^(.*)/fuzz/lua/[^/]+$")
  or (arg[0]:match("^fuzz/lua/[^/]+$") and ".")
  or (arg[0]:match("^[^/]+$") and "../..")
  or "."
package.path = ROOT .. "/lua/?.lua;" .. package.path


-- options ----------------------------------------------------------------------

local opt = { group = "hcl", seconds = 60, seed = os.time(), max_len = 8192,
  budget = 20000000, cpu = 1.0, findings = ROOT .. "/fuzz/findings", known = "no" }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i]:match("^%-%-([%w-]+)$"), arg[i + 1]
    if not k or v == nil then
      io.stderr:write("usage: mutate.lua --group hcl|expr [--seconds N] [--seed N] [--max-len N] "
        .. "[--budget N] [--known yes] | --replay FILE --target T\n")
      os.exit(64)
    end
    k = k:gsub("-", "_")
    opt[k] = tonumber(v) or v
    i = i + 2
  end
end
math.randomseed(opt.seed)


-- files ------------------------------------------------------------------------

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function ls(dir)
  local out = {}
  local p = io.popen('ls -1 "' .. dir .. '" 2>/dev/null')
  if p then
    for name in p:lines() do
      out[#out + 1] = dir .. "/" .. name
    end
    p:close()
  end
  return out
end

-- targets (fuzz/lua/targets.lua, shared with spec/unit/fuzz_regressions_spec.lua)

local targets_mod = dofile(ROOT .. "/fuzz/lua/targets.lua")
local TARGETS, GROUPS, SEP = targets_mod.TARGETS, targets_mod.GROUPS, targets_mod.SEP

-- known findings (fixed in other branches) ---------------------------------------

-- Lines [first, last] of the top-level function of lua/drv/<file> whose
-- definition line matches `pattern` (nil when not found).
local function span(file, pattern)
  local n, first = 0, nil
  for line in ((read(ROOT .. "/lua/drv/" .. file) or "") .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if not first and line:match(pattern) then
      first = n
    elseif first and line:match("^end") then
      return { file = file, first = first, last = n }
    end
  end
  return nil
end

local function in_span(sp, short_src, linedefined)
  return sp ~= nil and short_src:sub(-#sp.file - 1) == "/" .. sp.file
    and linedefined >= sp.first and linedefined <= sp.last
end

-- Errors raised under jobspec's convert_json are the known
-- wrong-typed-Nomad-JSON-field finding.
local CONVERT_JSON = span("jobspec.lua", "^local function convert_json%(")

-- Slow runs whose hottest Lua function is one of these are known.
local KNOWN_HOT = {
  { span("schema.lua", "^function schema%.distance%("), "did-you-mean" },
  { span("constraint.lua", "^local function re_parse%("), "regexp" },
  { span("constraint.lua", "^local function re_node%("), "regexp" },
  { span("constraint.lua", "^function constraint%.re_find%("), "regexp" },
  { span("hcl.lua", "^local function column%("), "hcl-positions" },
  { span("hcl.lua", "^local function pack%("), "hcl-positions" },
  { span("driver.lua", "^local function trim%("), "padded-body" },
}

local function nested_alternation(s)
  -- a group holding "|" (or another group) followed by a repetition
  return s:find("%([^)]*[|(][^)]*%)[%*%+{?]") ~= nil or s:find("%)[%*%+][%*%+]") ~= nil
    or s:find("%)%)[%*%+{]") ~= nil
end

local function longest_line(s)
  local m = 0
  for line in s:gmatch("[^\n]*") do
    if #line > m then
      m = #line
    end
  end
  return m
end

-- Returns a label when the finding is one of the known ones.
local function known(target, input, res)
  if opt.known ~= "yes" then
    return nil
  end
  if res.kind == "error" and res.in_convert_json then
    return "json-wrong-type"
  end
  -- "Label": {} (or any non-string label) passes convert_json and fails in
  -- drv.ports: the same known finding
  if res.kind == "error" and input:find("\"Label\"%s*:%s*[^\"%s]") then
    return "json-wrong-type"
  end
  if res.kind == "slow" then
    for _, k in ipairs(KNOWN_HOT) do
      if res.hot and in_span(k[1], res.hot.src, res.hot.line) then
        return k[2]
      end
    end
    if longest_line(input) > 2000 then
      return "long-line"
    end
    if input:find("%w" .. ("[%w_]"):rep(200)) then
      return "long-key"
    end
    if target == "decode" and input:find("%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s") then
      return "padded-body"
    end
    if input:find("regexp") or target == "constraint" then
      return "regexp"
    end
  end
  return nil
end

-- Caps what would only reproduce known slow cases.
local function sanitize(target, s)
  s = s:gsub("%z", "\1")
  if #s > opt.max_len then
    s = s:sub(1, opt.max_len)
  end
  if target == "plan" or target == "hcl" then
    s = s:gsub("([Cc]ount\"?%s*[=:]%s*)(%-?[%d.eExX+%-]+)", function(k, v)
      local n = tonumber(v)
      if n and math.abs(n) > 20 then
        return k .. "3"
      end
    end)
  end
  if opt.known == "yes" and (target == "plan" or target == "constraint") and s:find("regexp")
    and nested_alternation(s) then
    return nil
  end
  if opt.known == "yes" and target == "constraint" and nested_alternation(s) then
    return nil
  end
  return s
end

-- running under a budget ----------------------------------------------------------

local ABORT = setmetatable({}, { __tostring = function() return "fuzz: budget exceeded" end })

local function run(target, input, limit)
  limit = limit or opt.budget * 4
  local count, aborted, where = 0, false, nil
  local hot = {}
  local t0 = os.clock()
  local cpu_limit = opt.cpu * 4
  debug.sethook(function()
    count = count + 1000
    local fi = debug.getinfo(2, "S")
    if fi then
      local k = fi.short_src .. ":" .. fi.linedefined
      hot[k] = (hot[k] or 0) + 1
    end
    if aborted or count > limit or os.clock() - t0 > cpu_limit then
      if not aborted then
        local info = debug.getinfo(2, "Sl")
        where = info and (info.short_src .. ":" .. tostring(info.currentline)) or "?"
      end
      aborted = true
      error(ABORT, 0)
    end
  end, "", 1000)
  local in_cj = false
  local ok, res = xpcall(TARGETS[target], function(e)
    if e == ABORT then
      return e
    end
    for level = 2, 200 do
      local info = debug.getinfo(level, "S")
      if not info then
        break
      end
      if in_span(CONVERT_JSON, info.short_src, info.linedefined) then
        in_cj = true
      end
    end
    return debug.traceback(tostring(e), 2)
  end, input)
  debug.sethook()
  local cpu = os.clock() - t0
  local hottest, most = nil, 0
  for k, n in pairs(hot) do
    if n > most then
      hottest, most = k, n
    end
  end
  local hot_fn = hottest and { src = hottest:match("^(.*):"), line = tonumber(hottest:match(":(%d+)$")) }
  if aborted or res == ABORT then
    return { kind = "slow", sig = "slow in " .. tostring(hottest), msg = "over budget at "
      .. tostring(where) .. ", mostly in the function defined at " .. tostring(hottest),
      instr = count, cpu = cpu, hot = hot_fn }
  end
  if not ok then
    local first = tostring(res):match("^[^\n]*")
    local loc = first:match("^([%w_./-]+%.lua:%d+):") or "?"
    return { kind = "error", sig = "error at " .. loc, msg = tostring(res), instr = count,
      cpu = cpu, in_convert_json = in_cj }
  end
  if res ~= nil then
    return { kind = "contract", sig = "contract: " .. res:gsub("%d+", "N"):sub(1, 80), msg = res,
      instr = count, cpu = cpu }
  end
  if count > opt.budget or cpu > opt.cpu then
    return { kind = "slow", sig = "slow in " .. tostring(hottest), msg = string.format(
      "%d instructions, %.2f s CPU, mostly in the function defined at %s", count, cpu,
      tostring(hottest)), instr = count, cpu = cpu, hot = hot_fn }
  end
  return { kind = "ok", instr = count, cpu = cpu }
end

-- mutation -----------------------------------------------------------------------

local TOKENS = { "{", "}", "[", "]", "\"", "${", "%{", "\n", "=", ",", "1e308", "-1", "0x",
  "0x10", "-0", "9223372036854775807", "1e13", "nan", "inf", "true", "null", "\\", "\\u00e9",
  "\\x", "<<EOF\n", "\nEOF\n", "<<-X\n", "#", "//", "/*", "*/", ":", "..", "/", "&", "${attr.",
  "${meta.", "${node.", "${NOMAD_TASK_NAME}", "}}", "${${", "%{if ", "\"\"", "''", " ",
  "\t", "\r\n", "\0", "é", "\xff", "task \"t\" {\n", "group \"g\" {\n", "config {\n",
  "constraint {\n", "port_map {\n", "[{", "}]", "{\"Job\":", "\"Tasks\":[", "regexp", "version",
  "semver", ">= 1.0", "~> 1.2", "is_set", "set_contains", "distinct_hosts", "= 1", "\"a\" = 1" }

local NUMBERS = { "0", "-1", "1e308", "-1e308", "1e13", "0x7fffffffffffffff", "9223372036854775808",
  "1.5", "1e-9", "00", "0x", "1_000", "2147483648", "-2147483649", "65536", "1e", "." }

local STRINGS = { "", "..", "/", "../../etc", "a/b", "&", "${", "${}", "${x", "%{", "\\\\", "\\\"",
  "${attr.kernel.name}", "${meta.rack}", "${node.unique.name}", "x\\ny", "\\u0000", "é",
  ("a"):rep(300) }

local function rnd(n)
  return math.random(1, math.max(n, 1))
end

local function pick(t)
  return t[rnd(#t)]
end

-- Position of the "}" closing the "{" at i, or nil.
local function closing(s, i)
  local depth = 0
  for j = i, math.min(#s, i + 4000) do
    local c = s:sub(j, j)
    if c == "{" then
      depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then
        return j
      end
    end
  end
  return nil
end

local MUTATORS = {
  function(s) -- byte flip
    if #s == 0 then return s end
    local i = rnd(#s)
    return s:sub(1, i - 1) .. string.char(math.random(1, 255)) .. s:sub(i + 1)
  end,
  function(s) -- insert a token
    local i = rnd(#s + 1)
    return s:sub(1, i - 1) .. pick(TOKENS) .. s:sub(i)
  end,
  function(s) -- delete a range
    if #s == 0 then return s end
    local i = rnd(#s)
    local n = rnd(math.min(32, #s - i + 1))
    return s:sub(1, i - 1) .. s:sub(i + n)
  end,
  function(s) -- duplicate a range
    if #s == 0 then return s end
    local i = rnd(#s)
    local n = rnd(math.min(64, #s - i + 1))
    return s:sub(1, i + n - 1) .. s:sub(i, i + n - 1) .. s:sub(i + n)
  end,
  function(s, other) -- splice with another input
    local i, j = rnd(#s + 1), rnd(#other + 1)
    return s:sub(1, i - 1) .. other:sub(j)
  end,
  function(s) -- duplicate a { ... } block
    local starts = {}
    for i in s:gmatch("(){") do
      starts[#starts + 1] = i
    end
    if #starts == 0 then return s end
    local i = pick(starts)
    local j = closing(s, i)
    if not j then return s end
    -- the block with its header line
    local h = i
    while h > 1 and s:sub(h - 1, h - 1) ~= "\n" do
      h = h - 1
    end
    return s:sub(1, j) .. "\n" .. s:sub(h, j) .. s:sub(j + 1)
  end,
  function(s) -- deep nesting
    local i = rnd(#s + 1)
    local depth = rnd(200)
    local pair = pick({ { "a {\n", "}\n" }, { "[", "]" }, { "{", "}" }, { "x = [", "]\n" },
      { "${", "}" } })
    return s:sub(1, i - 1) .. pair[1]:rep(depth) .. pair[2]:rep(math.random(0, 1) * depth) .. s:sub(i)
  end,
  function(s) -- swap a number
    local spots = {}
    for a, b in s:gmatch("()%-?%d[%d.eExX]*()") do
      spots[#spots + 1] = { a, b }
    end
    if #spots == 0 then return s end
    local p = pick(spots)
    return s:sub(1, p[1] - 1) .. pick(NUMBERS) .. s:sub(p[2])
  end,
  function(s) -- swap a string's contents
    local spots = {}
    for a, b in s:gmatch("\"()[^\"\n]*()\"") do
      spots[#spots + 1] = { a, b }
    end
    if #spots == 0 then return s end
    local p = pick(spots)
    return s:sub(1, p[1] - 1) .. pick(STRINGS) .. s:sub(p[2])
  end,
  function(s) -- swap two lines
    local lines = {}
    for l in (s .. "\n"):gmatch("([^\n]*)\n") do
      lines[#lines + 1] = l
    end
    if #lines < 2 then return s end
    local a, b = rnd(#lines), rnd(#lines)
    lines[a], lines[b] = lines[b], lines[a]
    return table.concat(lines, "\n")
  end,
}

-- Values of every type, for the type-confusion mutators.
local HCL_VALUES = { "[]", "{}", "[\"a\", 1]", "{ a = 1 }", "true", "1", "-1", "1.5", "1e308",
  "\"x\"", "\"\"", "[{}]", "[[]]", "[{ a = \"b\" }]", "\"${x}\"", "[\"${NOMAD_TASK_NAME}\"]" }
local JSON_VALUES = { "null", "true", "false", "0", "-1", "1.5", "1e308", "\"\"", "\"x\"", "[]", "{}",
  "[null]", "[{}]", "[[]]", "{\"a\":1}", "{\"\":\"\"}", "[\"a\",1]", "\"${x}\"", "{\"Label\":{}}" }

table.insert(MUTATORS, function(s) -- HCL: replace an attribute's value with one of another type
  local spots = {}
  for a, b in s:gmatch("=%s*()[^\n]-()%s*\n") do
    spots[#spots + 1] = { a, b }
  end
  if #spots == 0 then return s end
  local p = pick(spots)
  return s:sub(1, p[1] - 1) .. pick(HCL_VALUES) .. s:sub(p[2])
end)

table.insert(MUTATORS, function(s) -- JSON: replace a member's value with one of another type
  local spots = {}
  for a in s:gmatch("\"%s*:%s*()") do
    spots[#spots + 1] = a
  end
  if #spots == 0 then return s end
  local i = pick(spots)
  -- the end of the value: a scalar up to , } ] or a balanced [ ] / { }
  local c = s:sub(i, i)
  local j
  if c == "{" or c == "[" then
    local close = c == "{" and "}" or "]"
    local depth = 0
    for k = i, math.min(#s, i + 4000) do
      local ch = s:sub(k, k)
      if ch == c then
        depth = depth + 1
      elseif ch == close then
        depth = depth - 1
        if depth == 0 then
          j = k + 1
          break
        end
      end
    end
  elseif c == "\"" then
    j = (s:find("\"", i + 1, true) or #s) + 1
  else
    j = s:find("[,}%]]", i) or #s + 1
  end
  if not j then return s end
  return s:sub(1, i - 1) .. pick(JSON_VALUES) .. s:sub(j)
end)

local function mutate(s, pool)
  for _ = 1, rnd(4) do
    s = MUTATORS[rnd(#MUTATORS)](s, pick(pool))
  end
  return s
end

-- minimisation -------------------------------------------------------------------

local function minimise(target, input, sig)
  local deadline = os.clock() + 20
  local tries = 0
  local chunk = #input // 2
  while chunk >= 1 and os.clock() < deadline and tries < 2000 do
    local i, progressed = 1, false
    while i <= #input and os.clock() < deadline and tries < 2000 do
      local candidate = input:sub(1, i - 1) .. input:sub(i + chunk)
      tries = tries + 1
      local r = run(target, candidate, opt.budget * 2)
      if r.sig == sig then
        input, progressed = candidate, true
      else
        i = i + chunk
      end
    end
    if not progressed then
      chunk = chunk // 2
    end
  end
  return input
end

local function hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return string.format("%08x", h)
end

-- seeds --------------------------------------------------------------------------

local function seeds_for(target)
  local files = {}
  local function add(dir, pattern)
    for _, f in ipairs(ls(dir)) do
      if not pattern or f:match(pattern) then
        files[#files + 1] = f
      end
    end
  end
  if target == "hcl" or target == "plan" then
    add(ROOT .. "/spec/fixtures/hcl", "%.hcl$")
    add(ROOT .. "/spec/fixtures/jobs", "%.[hj][cs][lo]n?$")
    add(ROOT .. "/spec/fixtures/cli", "%.hcl$")
    add(ROOT .. "/spec/fixtures/docker", "%.hcl$")
    add(ROOT .. "/fuzz/corpus/hcl")
    add(ROOT .. "/fuzz/corpus/json")
  else
    add(ROOT .. "/fuzz/corpus/" .. target)
  end
  local out = {}
  for _, f in ipairs(files) do
    local s = read(f)
    if s and #s <= opt.max_len then
      out[#out + 1] = s
    end
  end
  if #out == 0 then
    out[1] = ""
  end
  return out
end

-- replay -------------------------------------------------------------------------

if opt.replay then
  local input = assert(read(opt.replay), "cannot read " .. tostring(opt.replay))
  local target = opt.target or opt.replay:match("([%w]+)%-[%w]+%-%x+%.input$")
  assert(TARGETS[target], "unknown target (use --target)")
  local r = run(target, input)
  local k = r.kind ~= "ok" and known(target, input, r)
  print(string.format("%s: %s%s (%d instructions, %.3f s CPU)", target, r.kind,
    k and " (known: " .. k .. ")" or "", r.instr, r.cpu))
  if r.msg then
    print(r.msg)
  end
  os.exit(r.kind == "ok" and 0 or 1)
end

-- main loop ----------------------------------------------------------------------

local targets = GROUPS[opt.group]
if not targets then
  io.stderr:write("mutate.lua: unknown group: " .. tostring(opt.group) .. "\n")
  os.exit(64)
end
os.execute('mkdir -p "' .. opt.findings .. '"')

local pools, stats = {}, {}
for _, t in ipairs(targets) do
  pools[t] = seeds_for(t)
  stats[t] = { execs = 0, ok = 0, errors = 0, skipped = 0, known = {}, findings = 0, seen = {},
    outcomes = {} }
  -- the seeds themselves must pass
  for i, s in ipairs(pools[t]) do
    local r = run(t, s)
    if r.kind ~= "ok" and r.kind ~= "contract" then
      io.stderr:write(string.format("seed %d of %s: %s: %s\n", i, t, r.kind,
        r.msg:match("^[^\n]*")))
    end
  end
end

local start = os.time()
local new_findings = {}
local function report(t, input, r)
  local st = stats[t]
  if st.seen[r.sig] then
    return
  end
  st.seen[r.sig] = true
  local small = minimise(t, input, r.sig)
  local r2 = run(t, small)
  local name = string.format("%s/%s-%s-%s", opt.findings, t, r.kind, hash(r.sig))
  if read(name .. ".input") then
    return -- recorded by an earlier run
  end
  write(name .. ".input", small)
  write(name .. ".txt", string.format(
    "target: %s\nkind: %s\nsignature: %s\nfound: %s (seed %s)\ninput bytes: %d (minimised from %d)\n"
    .. "instructions: %d\ncpu: %.3f s\nreplay: lua5.4 fuzz/lua/mutate.lua --replay %s.input --target %s\n\n%s\n",
    t, r.kind, r.sig, os.date("!%Y-%m-%d %H:%M:%SZ"), tostring(opt.seed), #small, #input, r2.instr,
    r2.cpu, name:gsub("^.*/fuzz/findings", "fuzz/findings"), t, r2.msg or r.msg))
  st.findings = st.findings + 1
  new_findings[#new_findings + 1] = name
  io.stderr:write(string.format("finding: %s: %s\n", name, (r.msg or ""):match("^[^\n]*")))
end

local i = 0
while os.time() - start < opt.seconds do
  i = i + 1
  local t = targets[(i - 1) % #targets + 1]
  local st, pool = stats[t], pools[t]
  local input = sanitize(t, mutate(pick(pool), pool))
  if not input then
    st.skipped = st.skipped + 1
  else
    st.execs = st.execs + 1
    local r = run(t, input)
    if r.kind == "ok" then
      st.ok = st.ok + 1
      local outcome = targets_mod.take_outcome()
      if outcome and not st.outcomes[outcome] and #pool < 5000 then
        st.outcomes[outcome] = true
        pool[#pool + 1] = input
      end
    else
      local k = known(t, input, r)
      if k then
        st.known[k] = (st.known[k] or 0) + 1
      else
        st.errors = st.errors + 1
        report(t, input, r)
      end
    end
  end
end

local total_execs, total_findings = 0, 0
for _, t in ipairs(targets) do
  local st = stats[t]
  local known_list = {}
  for k, n in pairs(st.known) do
    known_list[#known_list + 1] = k .. "=" .. n
  end
  table.sort(known_list)
  local outcomes = 0
  for _ in pairs(st.outcomes) do
    outcomes = outcomes + 1
  end
  print(string.format("fuzz lua %s/%s: %d execs, %d outcomes, %d non-ok, %d new findings, "
    .. "%d skipped, known: %s", opt.group, t, st.execs, outcomes, st.errors, st.findings, st.skipped,
    #known_list > 0 and table.concat(known_list, " ") or "none"))
  total_execs = total_execs + st.execs
  total_findings = total_findings + st.findings
end
print(string.format("fuzz lua %s: %d s, %d execs, %d new findings (seed %s)", opt.group,
  os.time() - start, total_execs, total_findings, tostring(opt.seed)))
for _, n in ipairs(new_findings) do
  print("  " .. n .. ".input")
end
