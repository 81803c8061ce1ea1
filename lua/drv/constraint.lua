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
-- Regexp subset (a backtracking matcher, unanchored like Go's MatchString):
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

local function class_test(kind)
  if kind == "d" then
    return function(c) return c:match("%d") ~= nil end
  elseif kind == "w" then
    return function(c) return c:match("[%w_]") ~= nil end
  elseif kind == "s" then
    return function(c) return c:match("[ \t\n\r\f\v]") ~= nil end
  end
  local inner = class_test(kind:lower())
  return function(c) return not inner(c) end
end

local ESCAPED = { n = "\n", t = "\t", r = "\r", f = "\f", v = "\v" }


---Parses a regexp into a tree; nil, message on unsupported syntax.
local function re_parse(src)
  local pos = 1
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
      return { test = class_test(c) }
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
        local lo = item.lit
        item = { test = function(ch) return ch >= lo and ch <= hi end }
      end
      items[#items + 1] = item
    end
    return { test = function(ch)
      local hit = false
      for _, it in ipairs(items) do
        if (it.lit and it.lit == ch) or (it.test and it.test(ch)) then
          hit = true
          break
        end
      end
      return hit ~= negate
    end }
  end

  local function parse_atom()
    local c = peek()
    pos = pos + 1
    if c == "(" then
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
      return node
    elseif c == "[" then
      return parse_class()
    elseif c == "." then
      return { test = function(ch) return ch ~= "\n" end }
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
          if max and max < min then
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


local function re_node(s, node, p, k)
  if node.lit then
    return s:sub(p, p) == node.lit and k(p + 1)
  elseif node.test then
    return p <= #s and node.test(s:sub(p, p)) and k(p + 1)
  elseif node.bol then
    return p == 1 and k(p)
  elseif node.eol then
    return p == #s + 1 and k(p)
  elseif node.seq then
    local seq = node.seq
    local function step(i, q)
      if i > #seq then
        return k(q)
      end
      return re_node(s, seq[i], q, function(q2) return step(i + 1, q2) end)
    end
    return step(1, p)
  elseif node.alts then
    for _, alt in ipairs(node.alts) do
      if re_node(s, alt, p, k) then
        return true
      end
    end
    return false
  elseif node.rep then
    local function try(count, q)
      if node.max == nil or count < node.max then
        local more = re_node(s, node.rep, q, function(q2)
          if q2 == q and count >= node.min then
            return false -- an empty iteration cannot help
          end
          return try(count + 1, q2)
        end)
        if more then
          return true
        end
      end
      return count >= node.min and k(q)
    end
    return try(0, p)
  end
  return false
end


---Compiles a regexp of the supported subset.
---@param src string
---@return table|nil re
---@return string|nil message
function constraint.regexp(src)
  return re_parse(src)
end


---True when the regexp (a compiled tree) matches anywhere in s.
---@param re table
---@param s string
---@return boolean
function constraint.re_find(re, s)
  local function done()
    return true
  end
  for start = 1, #s + 1 do
    if re_node(s, re, start, done) then
      return true
    end
  end
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


local function split_set(s)
  return util.split_list(s, ",")
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
---@return boolean|nil ok true (met), false (not met), nil (invalid)
---@return string|nil message
function constraint.check(c, attrs, meta, node)
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
    met = constraint.re_find(re, l)
  elseif op == "set_contains" or op == "set_contains_all" or op == "set_contains_any" then
    local have = {}
    for _, item in ipairs(split_set(l)) do
      have[item] = true
    end
    local want = split_set(r)
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
