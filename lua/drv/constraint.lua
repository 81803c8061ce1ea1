--- Placement constraints (Nomad `constraint` stanza) checked against the
--- node's attributes.
--
--   constraint.check(c, attrs, meta, node) -> true
--                                          | false, "constraint not met: ..."
--                                          | nil, "invalid constraint: ..."
--
-- c = { attribute = "${attr.kernel.name}", operator = "=", value = "linux" }.
-- Targets: `${attr.X}` reads attrs[X]; `${driver.X}` reads attrs["driver.X"]
-- (the spec page's spelling); `${meta.X}` reads the node meta;
-- `${node.unique.name}`, `${node.datacenter}`, `${node.class}`,
-- `${node.unique.id}` read node; anything without `${` is a literal.
--
-- Operators: = == is, != not, < <= > >= (numeric when both sides are numbers,
-- else lexical), version and semver (go-version constraint syntax),
-- regexp (see the subset below), set_contains (= set_contains_all),
-- set_contains_any, is_set, is_not_set. distinct_hosts and distinct_property
-- are accepted by the job loader and ignored (one host).
--
-- Regexp subset (linear time: a Pike VM over the compiled pattern, no
-- backtracking; unanchored like Go's MatchString; repeat counts <= 1000):
-- literals, `.`, `[abc]`, `[^a-z]`, `^`, `$`, `|`, `(...)`, `(?:...)`,
-- `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` (lazy `?` suffix accepted),
-- escapes `\d \D \w \W \s \S` and backslash-escaped punctuation, `\n \t \r`.
-- Anything else (`\b`, `(?i)`, POSIX classes, back references) is refused
-- as invalid rather than matched wrongly.
local util = require("drv.util")

local constraint = {}

local fmt = util.format


constraint.OPERATORS = {
  ["="] = true, ["=="] = true, is = true, ["!="] = true, ["not"] = true,
  ["<"] = true, ["<="] = true, [">"] = true, [">="] = true,
  version = true, semver = true, regexp = true,
  set_contains = true, set_contains_all = true, set_contains_any = true,
  is_set = true, is_not_set = true,
  distinct_hosts = true, distinct_property = true,
}

local NO_VALUE = { is_set = true, is_not_set = true, distinct_hosts = true,
  distinct_property = true }


-- Regular expressions ---------------------------------------------------------

-- Byte sets (byte -> true) for \d \w \s, their negations, and ".".
local function byte_set_of(pred)
  local set = {}
  for b = 0, 255 do
    if pred(string.char(b)) then
      set[b] = true
    end
  end
  return set
end

-- Built on first use: loading the module (every plan) should not pay for
-- the seven 256-entry sets that only regexp constraints need.
local NAMED_SETS, ANY_BUT_NEWLINE

local function build_sets()
  NAMED_SETS = {
    d = byte_set_of(function(c) return c:match("%d") ~= nil end),
    w = byte_set_of(function(c) return c:match("[%w_]") ~= nil end),
    s = byte_set_of(function(c) return c:match("[ \t\n\r\f\v]") ~= nil end),
  }
  for _, k in ipairs({ "d", "w", "s" }) do
    local inner = NAMED_SETS[k]
    NAMED_SETS[k:upper()] = byte_set_of(function(c) return not inner[c:byte()] end)
  end
  ANY_BUT_NEWLINE = byte_set_of(function(c) return c ~= "\n" end)
end

-- Patterns nest at most this deep (parentheses).
local MAX_NESTING = 100

local ESCAPED = { n = "\n", t = "\t", r = "\r", f = "\f", v = "\v" }


---Parses a regexp into a tree; nil, message on unsupported syntax.
local function re_parse(src)
  local pos = 1
  local nesting = 0
  local parse_alt

  local function fail(text)
    error({ re = fmt("%s at offset %d", text, pos - 1) }, 0)
  end

  local function peek()
    return src:sub(pos, pos)
  end

  local function escape_char()
    -- pos is after the backslash
    local c = src:sub(pos, pos)
    if c == "" then
      fail("trailing backslash")
    end
    pos = pos + 1
    if c:match("[dDwWsS]") then
      if not NAMED_SETS then build_sets() end
      return { set = NAMED_SETS[c] }
    elseif ESCAPED[c] then
      return { lit = ESCAPED[c] }
    elseif c:match("%p") then
      return { lit = c }
    end
    pos = pos - 2 -- report the backslash
    fail(fmt("unsupported escape \\%s", c))
  end

  local function parse_class()
    -- pos is after "["
    local negate = false
    if peek() == "^" then
      negate, pos = true, pos + 1
    end
    local items = {}
    local first = true
    while true do
      local c = peek()
      if c == "" then
        fail("missing closing ]")
      end
      if c == "]" and not first then
        pos = pos + 1
        break
      end
      first = false
      if c == "[" and src:sub(pos, pos + 1) == "[:" then
        fail("unsupported character class syntax")
      end
      local item
      if c == "\\" then
        pos = pos + 1
        item = escape_char()
      else
        item = { lit = c }
        pos = pos + 1
      end
      if item.lit and peek() == "-" and src:sub(pos + 1, pos + 1) ~= "]"
          and src:sub(pos + 1, pos + 1) ~= "" then
        pos = pos + 1
        local hi = peek()
        if hi == "\\" then
          pos = pos + 1
          local e = escape_char()
          if not e.lit then
            fail("invalid character class range")
          end
          hi = e.lit
        else
          pos = pos + 1
        end
        if hi < item.lit then
          fail("invalid character class range")
        end
        item = { lo = item.lit:byte(), hi = hi:byte() }
      end
      items[#items + 1] = item
    end
    -- one pass over the items: linear in the class, whatever its length
    local set = {}
    local merged = {}
    local delta = {} -- ranges as a difference array: O(items + 256)
    for b = 0, 256 do
      delta[b] = 0
    end
    for _, it in ipairs(items) do
      if it.lit then
        set[it.lit:byte()] = true
      elseif it.lo then
        delta[it.lo] = delta[it.lo] + 1
        delta[it.hi + 1] = delta[it.hi + 1] - 1
      elseif not merged[it.set] then
        merged[it.set] = true
        for b in pairs(it.set) do
          set[b] = true
        end
      end
    end
    local depth = 0
    for b = 0, 255 do
      depth = depth + delta[b]
      if depth > 0 then
        set[b] = true
      end
    end
    if negate then
      local neg = {}
      for b = 0, 255 do
        if not set[b] then
          neg[b] = true
        end
      end
      set = neg
    end
    return { set = set }
  end

  local function parse_atom()
    local c = peek()
    pos = pos + 1
    if c == "(" then
      nesting = nesting + 1
      if nesting > MAX_NESTING then
        pos = pos - 1
        fail("expression nests too deeply")
      end
      if peek() == "?" then
        if src:sub(pos, pos + 1) ~= "?:" then
          pos = pos - 1 -- report the parenthesis
          fail("unsupported group syntax")
        end
        pos = pos + 2
      end
      local node = parse_alt()
      if peek() ~= ")" then
        fail("missing closing )")
      end
      pos = pos + 1
      nesting = nesting - 1
      return node
    elseif c == "[" then
      return parse_class()
    elseif c == "." then
      if not ANY_BUT_NEWLINE then build_sets() end
      return { set = ANY_BUT_NEWLINE }
    elseif c == "^" then
      return { bol = true }
    elseif c == "$" then
      return { eol = true }
    elseif c == "\\" then
      return escape_char()
    elseif c == "*" or c == "+" or c == "?" then
      pos = pos - 1
      fail(fmt("missing argument to repetition operator %s", c))
    elseif c == ")" then
      pos = pos - 1
      fail("unexpected )")
    end
    return { lit = c }
  end

  local function parse_seq()
    local seq = {}
    while pos <= #src and peek() ~= "|" and peek() ~= ")" do
      local atom = parse_atom()
      local q = peek()
      local min, max
      if q == "*" then
        min, max, pos = 0, nil, pos + 1
      elseif q == "+" then
        min, max, pos = 1, nil, pos + 1
      elseif q == "?" then
        min, max, pos = 0, 1, pos + 1
      elseif q == "{" then
        local a, comma, b, nxt = src:match("^{(%d+)(,?)(%d*)}()", pos)
        if a then
          min = tonumber(a)
          max = (comma == "") and min or (b ~= "" and tonumber(b) or nil)
          if (max and max < min) or min > 1000 or (max or 0) > 1000 then
            fail("invalid repeat count")
          end
          pos = nxt
        end
      end
      if min then
        if atom.bol or atom.eol then
          fail("missing argument to repetition operator")
        end
        if peek() == "?" then
          pos = pos + 1 -- lazy: same answer for a yes/no match
        end
        local nq = peek()
        if nq == "*" or nq == "+" or (nq == "?" ) then
          fail("invalid nested repetition operator")
        end
        atom = { rep = atom, min = min, max = max }
      end
      seq[#seq + 1] = atom
    end
    return { seq = seq }
  end

  parse_alt = function()
    local alts = { parse_seq() }
    while peek() == "|" do
      pos = pos + 1
      alts[#alts + 1] = parse_seq()
    end
    if #alts == 1 then
      return alts[1]
    end
    return { alts = alts }
  end

  local ok, res = pcall(function()
    local tree = parse_alt()
    if pos <= #src then
      fail("unexpected )")
    end
    return tree
  end)
  if ok then
    return res
  end
  if type(res) == "table" and res.re then
    return nil, res.re
  end
  error(res, 0)
end


-- Compilation to a Thompson NFA program, run by a Pike VM: every input
-- byte advances all live threads at once and each instruction holds at
-- most one thread per step, so a match costs O(#s * #program) whatever the
-- pattern (no backtracking: `(a|a)*$` or `^(.|.|.|.|.|.|.|.)*Z` are as
-- cheap as `abc`). Counted repetitions are expanded, so their counts are
-- capped at 1000 (as in Go) and the program at MAX_PROGRAM instructions
-- and at 32 + 16 per pattern byte (so a short pattern cannot expand into a
-- huge program). A match visits at most budget.steps thread states; the
-- caller shares one budget across a whole plan (MATCH_BUDGET).

local CHAR, SET, SPLIT, JMP, BOL, EOL, MATCH = 1, 2, 3, 4, 5, 6, 7
local MAX_PROGRAM = 2000
constraint.MAX_PROGRAM = MAX_PROGRAM
constraint.MATCH_BUDGET = 1000000


local function re_compile(tree, src_len)
  local op, a1, a2 = {}, {}, {}
  local n = 0
  local limit = math.min(MAX_PROGRAM, 32 + 16 * src_len)

  local function emit(o, x, y)
    n = n + 1
    if n > limit then
      error({ re = "expression too large" }, 0)
    end
    op[n], a1[n], a2[n] = o, x, y
    return n
  end

  local gen

  -- x?: SPLIT body, out
  local function optional(node)
    local split = emit(SPLIT)
    a1[split] = split + 1
    gen(node)
    a2[split] = n + 1
  end

  gen = function(node)
    if node.lit then
      emit(CHAR, string.byte(node.lit))
    elseif node.set then
      emit(SET, node.set)
    elseif node.bol then
      emit(BOL)
    elseif node.eol then
      emit(EOL)
    elseif node.seq then
      for _, item in ipairs(node.seq) do
        gen(item)
      end
    elseif node.alts then
      local jumps = {}
      local alts = node.alts
      for k = 1, #alts - 1 do
        local split = emit(SPLIT)
        a1[split] = split + 1
        gen(alts[k])
        jumps[#jumps + 1] = emit(JMP)
        a2[split] = n + 1
      end
      gen(alts[#alts])
      for _, jmp in ipairs(jumps) do
        a1[jmp] = n + 1
      end
    elseif node.rep then
      for _ = 1, node.min do
        gen(node.rep)
      end
      if node.max == nil then
        -- L: SPLIT body, out; body; JMP L
        local split = emit(SPLIT)
        a1[split] = split + 1
        gen(node.rep)
        emit(JMP, split)
        a2[split] = n + 1
      else
        for _ = node.min + 1, node.max do
          optional(node.rep)
        end
      end
    end
  end

  gen(tree)
  emit(MATCH)
  return { op = op, a1 = a1, a2 = a2, n = n }
end


---Compiles a regexp of the supported subset.
---@param src string
---@return table|nil re
---@return string|nil message
function constraint.regexp(src)
  local tree, err = re_parse(src)
  if not tree then
    return nil, err
  end
  local ok, res = pcall(re_compile, tree, #src)
  if ok then
    return res
  end
  if type(res) == "table" and res.re then
    return nil, res.re
  end
  error(res, 0)
end


---True when the regexp (compiled by constraint.regexp) matches anywhere
---in s (unanchored, like Go's MatchString). Linear in #s. budget (optional,
---shared across calls: { steps = N }) bounds the thread states visited;
---when it runs out the result is nil, message.
---@param re table
---@param s string
---@param budget? table { steps = integer }, decremented
---@return boolean|nil
---@return string|nil message
function constraint.re_find(re, s, budget)
  local op, a1, a2 = re.op, re.a1, re.a2
  local len = #s
  local mark = {}
  local stack = {}
  local gen = 1
  budget = budget or { steps = constraint.MATCH_BUDGET }
  local steps = budget.steps

  -- Adds the thread at pc (following jumps, splits and assertions at
  -- offset i) to list; returns the new length of list.
  local function add(list, count, pc, i)
    local top = 1
    stack[1] = pc
    while top > 0 do
      pc = stack[top]
      top = top - 1
      if mark[pc] ~= gen then
        mark[pc] = gen
        steps = steps - 1
        local o = op[pc]
        if o == JMP then
          top = top + 1
          stack[top] = a1[pc]
        elseif o == SPLIT then
          stack[top + 1] = a2[pc]
          stack[top + 2] = a1[pc]
          top = top + 2
        elseif o == BOL then
          if i == 1 then
            top = top + 1
            stack[top] = pc + 1
          end
        elseif o == EOL then
          if i == len + 1 then
            top = top + 1
            stack[top] = pc + 1
          end
        else
          count = count + 1
          list[count] = pc
        end
      end
    end
    return count
  end

  local clist, nlist = {}, {}
  local cn = 0
  for i = 1, len + 1 do
    cn = add(clist, cn, 1, i) -- a match may start at any offset
    if steps < 0 then
      budget.steps = 0
      return nil, fmt("matching needs more than %d steps", constraint.MATCH_BUDGET)
    end
    gen = gen + 1
    local c = string.byte(s, i)
    local nn = 0
    for k = 1, cn do
      local pc = clist[k]
      local o = op[pc]
      if o == MATCH then
        budget.steps = steps
        return true
      elseif c and ((o == CHAR and a1[pc] == c) or (o == SET and a1[pc][c])) then
        nn = add(nlist, nn, pc + 1, i + 1)
      end
    end
    clist, nlist, cn = nlist, clist, nn
  end
  budget.steps = steps
  return false
end


-- Versions (hashicorp/go-version) ----------------------------------------------

---Parses a version ("1.2", "v20.10.24+dfsg1", "1.0.0-rc.1").
---@param s string
---@return table|nil { segments = {n, n, n}, si = count given, pre = string }
function constraint.parse_version(s)
  if type(s) ~= "string" then
    return nil
  end
  s = util.trim(s)
  local nums, rest = s:match("^v?(%d+[%.%d]*)(.*)$")
  if not nums or nums:match("%.%.") or nums:match("%.$") then
    return nil
  end
  local segments = {}
  for n in nums:gmatch("%d+") do
    segments[#segments + 1] = tonumber(n)
  end
  local si = #segments
  while #segments < 3 do
    segments[#segments + 1] = 0
  end
  local pre, meta = "", ""
  if rest ~= "" then
    local p, m = rest:match("^%-?([%w%-~%.]*)(.*)$")
    if p and rest:sub(1, 1) ~= "-" and p ~= "" and not p:match("^[%a%-~]") then
      return nil -- "1.2x3" style garbage; go-version wants "-" before numeric pre
    end
    pre = p or ""
    rest = m or rest
    if rest ~= "" then
      meta = rest:match("^%+([%w%-~%.]+)$")
      if not meta then
        return nil
      end
    end
    if pre ~= "" and (pre:match("%.%.") or pre:match("^%.") or pre:match("%.$")) then
      return nil
    end
  end
  return { segments = segments, si = si, pre = pre, meta = meta }
end


local function compare_pre_part(a, b)
  local na, nb = tonumber(a), tonumber(b)
  if na and nb then
    return (na < nb) and -1 or (na > nb and 1 or 0)
  elseif na then
    return -1
  elseif nb then
    return 1
  end
  return (a < b) and -1 or (a > b and 1 or 0)
end


---Compares two parsed versions: -1, 0 or 1 (build metadata ignored).
function constraint.compare_versions(a, b)
  local n = math.max(#a.segments, #b.segments)
  for i = 1, n do
    local x, y = a.segments[i] or 0, b.segments[i] or 0
    if x ~= y then
      return x < y and -1 or 1
    end
  end
  if a.pre == b.pre then
    return 0
  elseif a.pre == "" then
    return 1
  elseif b.pre == "" then
    return -1
  end
  local pa, pb = {}, {}
  for part in a.pre:gmatch("[^%.]+") do pa[#pa + 1] = part end
  for part in b.pre:gmatch("[^%.]+") do pb[#pb + 1] = part end
  for i = 1, math.max(#pa, #pb) do
    if pa[i] == nil then
      return -1
    elseif pb[i] == nil then
      return 1
    end
    local c = compare_pre_part(pa[i], pb[i])
    if c ~= 0 then
      return c
    end
  end
  return 0
end


local function same_segments(a, b)
  for i = 1, math.max(#a.segments, #b.segments) do
    if (a.segments[i] or 0) ~= (b.segments[i] or 0) then
      return false
    end
  end
  return true
end


-- go-version: a pre-release version only satisfies a range whose bound is a
-- pre-release of the same release.
local function prerelease_ok(v, c)
  if v.pre ~= "" and c.pre ~= "" then
    return same_segments(v, c)
  elseif v.pre ~= "" then
    return false
  end
  return true
end


local VERSION_OPS = {
  ["="] = function(v, c) return constraint.compare_versions(v, c) == 0 end,
  ["!="] = function(v, c) return constraint.compare_versions(v, c) ~= 0 end,
  [">"] = function(v, c) return prerelease_ok(v, c) and constraint.compare_versions(v, c) > 0 end,
  ["<"] = function(v, c) return prerelease_ok(v, c) and constraint.compare_versions(v, c) < 0 end,
  [">="] = function(v, c) return prerelease_ok(v, c) and constraint.compare_versions(v, c) >= 0 end,
  ["<="] = function(v, c) return prerelease_ok(v, c) and constraint.compare_versions(v, c) <= 0 end,
  ["~>"] = function(v, c)
    if not prerelease_ok(v, c) or (c.pre ~= "" and v.pre == "") then
      return false
    end
    if constraint.compare_versions(v, c) < 0 then
      return false
    end
    for i = 1, c.si - 1 do
      if v.segments[i] ~= c.segments[i] then
        return false
      end
    end
    return c.segments[c.si] <= v.segments[c.si]
  end,
}


---Parses a go-version constraint list (">= 1.2, < 2.0", "~> 1.2").
---@param s string
---@return table|nil list of { op, version }
---@return string|nil message
function constraint.parse_version_constraint(s)
  local list = {}
  for part in (s .. ","):gmatch("([^,]*),") do
    local op, ver = util.trim(part):match("^([=!<>~]*)(.*)$")
    ver = util.trim(ver)
    if op == "" then
      op = "="
    end
    local v = constraint.parse_version(ver)
    if not VERSION_OPS[op] or not v then
      return nil, fmt("malformed version constraint %q", util.trim(part))
    end
    list[#list + 1] = { op = op, version = v }
  end
  return list
end


---True when version string v satisfies constraint string c.
---@return boolean|nil ok
---@return string|nil message (invalid constraint)
function constraint.version_matches(v, c)
  local list, err = constraint.parse_version_constraint(c)
  if not list then
    return nil, err
  end
  local ver = constraint.parse_version(v)
  if not ver then
    return false
  end
  for _, item in ipairs(list) do
    if not VERSION_OPS[item.op](ver, item.version) then
      return false
    end
  end
  return true
end


-- Targets and operators ----------------------------------------------------------

-- "${ name }" -> "name"; nil when target is not one interpolation.
local function interpolation(target)
  if target:sub(1, 2) ~= "${" or target:sub(-1) ~= "}" or #target < 3 then
    return nil
  end
  return util.trim(target:sub(3, -2))
end


---Resolves a constraint target to its value (nil when unset).
---@param target string|nil
---@param attrs table
---@param meta table
---@param node table
---@return string|nil
function constraint.resolve(target, attrs, meta, node)
  if target == nil then
    return nil
  end
  local ref = interpolation(target)
  if not ref then
    return target
  end
  local name = ref:match("^attr%.(.+)$")
  if name then
    return attrs[name]
  end
  name = ref:match("^meta%.(.+)$")
  if name then
    return meta[name]
  end
  name = ref:match("^node%.(.+)$")
  if name then
    return node[name]
  end
  if ref:match("^driver%.") then
    return attrs[ref]
  end
  return nil
end


---The attribute name a target reads from attrs ("driver.docker.version"), if any.
---@param target string|nil
---@return string|nil
function constraint.attribute_name(target)
  local ref = type(target) == "string" and interpolation(target)
  if not ref then
    return nil
  end
  return ref:match("^attr%.(.+)$") or (ref:match("^driver%.") and ref) or nil
end


local function order(l, r)
  local ln, rn = tonumber(l), tonumber(r)
  if ln and rn then
    return ln, rn
  end
  return l, r
end


---Checks that a constraint is well formed (operator known, regexp and
---version syntax valid).
---@param c table
---@return boolean|nil ok
---@return string|nil message
function constraint.validate(c)
  local op = c.operator or "="
  if not constraint.OPERATORS[op] then
    return nil, fmt("unknown constraint operator %q", op)
  end
  if not NO_VALUE[op] and c.value == nil then
    return nil, fmt("constraint operator %q needs a value", op)
  end
  if op ~= "distinct_hosts" and op ~= "distinct_property" and c.attribute == nil then
    return nil, "constraint needs an attribute"
  end
  if op == "regexp" then
    local _, err = constraint.regexp(c.value)
    if err then
      return nil, fmt("invalid regexp %q: %s", c.value, err)
    end
  elseif (op == "version" or op == "semver") and not c.value:match("%${") then
    local _, err = constraint.parse_version_constraint(c.value)
    if err then
      return nil, err
    end
  end
  return true
end


---Describes a constraint as written: `${attr.kernel.name} = "linux"`.
---@param c table
---@return string
function constraint.describe(c)
  local op = c.operator or "="
  if c.value == nil then
    return fmt("%s %s", c.attribute or "", op)
  end
  return fmt("%s %s %q", c.attribute or "", op, c.value)
end


---Checks one constraint against the node.
---@param c table { attribute, operator, value }
---@param attrs table node attributes (name -> string)
---@param meta table|nil node meta
---@param node table|nil { ["unique.name"]=, datacenter=, class=, ["unique.id"]= }
---@param budget? table { steps = n } shared regexp work budget (see re_find)
---@return boolean|nil ok true (met), false (not met), nil (invalid)
---@return string|nil message
function constraint.check(c, attrs, meta, node, budget)
  attrs, meta, node = attrs or {}, meta or {}, node or {}
  local ok, err = constraint.validate(c)
  if not ok then
    return nil, "invalid constraint: " .. err
  end
  local op = c.operator or "="
  if op == "distinct_hosts" or op == "distinct_property" then
    return true
  end
  local l = constraint.resolve(c.attribute, attrs, meta, node)
  local r = constraint.resolve(c.value, attrs, meta, node)
  local met
  if op == "is_set" then
    met = l ~= nil
  elseif op == "is_not_set" then
    met = l == nil
  elseif op == "!=" or op == "not" then
    met = l ~= r
  elseif l == nil or r == nil then
    met = false
  elseif op == "=" or op == "==" or op == "is" then
    met = l == r
  elseif op == "<" or op == "<=" or op == ">" or op == ">=" then
    local a, b = order(l, r)
    if op == "<" then
      met = a < b
    elseif op == "<=" then
      met = a <= b
    elseif op == ">" then
      met = a > b
    else
      met = a >= b
    end
  elseif op == "version" or op == "semver" then
    local m, verr = constraint.version_matches(l, r)
    if m == nil then
      return nil, "invalid constraint: " .. verr
    end
    met = m
  elseif op == "regexp" then
    local re, rerr = constraint.regexp(r)
    if not re then
      return nil, fmt("invalid constraint: invalid regexp %q: %s", r, rerr)
    end
    local merr
    met, merr = constraint.re_find(re, l, budget)
    if met == nil then
      return nil, fmt("invalid constraint: regexp %q: %s", r, merr)
    end
  elseif op == "set_contains" or op == "set_contains_all" or op == "set_contains_any" then
    local have = {}
    for _, item in ipairs(util.split_list(l)) do
      have[item] = true
    end
    local want = util.split_list(r)
    if op == "set_contains_any" then
      met = false
      for _, item in ipairs(want) do
        met = met or have[item] == true
      end
    else
      met = true
      for _, item in ipairs(want) do
        met = met and have[item] == true
      end
    end
  end
  if met then
    return true
  end
  return false, fmt("constraint not met: %s (actual: %s)", constraint.describe(c),
    l == nil and "unset" or fmt("%q", l))
end


return constraint
