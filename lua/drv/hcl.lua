--- HCL1 parser for Nomad job files and agent configs (contract A).
--
-- `hcl.parse(src, name)` returns a tree of plain Lua data, or `nil, msg`
-- with msg `NAME:LINE:COL: text`. It never raises on bad input.
--
-- Tree rules:
-- - A body (the file, a block, an object literal) is a table keyed by
--   strings. Keys keep their dots and dashes: `net.core.somaxconn = 1` sets
--   body["net.core.somaxconn"]; quoted keys are unescaped strings.
-- - `key = value` sets body[key] = value. Values are strings, numbers
--   (integers stay Lua integers, `1.5` and `1e3` are floats, `0x1f` is hex
--   and a leading 0 means octal as in HCL1), booleans, lists (array
--   tables) and object literals (`key = { a = 1 }`, a plain table).
-- - A block `key [label ...] { ... }` appends a table to body[key], which
--   is then a block list: `hcl.is_block_list(body[key])` is true and
--   `hcl.labels(block)` gives its labels. So `config { image = "x" }` is
--   read as `tree.config[1].image`, repeated blocks (`task "a" {}`
--   `task "b" {}`) give a list of 2 in file order, and blocks nested in
--   list elements follow the same rule:
--   `mounts = [{ volume_options { driver_config { options = { foo =
--   "bar" } } } }]` gives
--   `tree.mounts[1].volume_options[1].driver_config[1].options.foo`.
--   Labels may be quoted strings or bare identifiers.
-- - Setting an attribute twice, or using one key both as attribute and
--   as block, is a `duplicate key` error. Two blocks with the same labels
--   are not an error here (the caller decides).
-- - Strings keep `${...}` verbatim, including quotes and escapes inside
--   it. Heredocs `<<EOF` keep their lines as written (each line ends with
--   "\n"); `<<-EOF` strips the common leading whitespace of the non-blank
--   lines. The closing anchor may be indented in both forms.
-- - Commas may separate items inside `{ }`; lists need commas between
--   elements and allow a trailing one. Newlines are not significant.
--
-- Positions live in weak-keyed side tables, so data tables stay plain:
-- `hcl.pos(t, k)` gives line, col of key k of an object, element k of a
-- list or block k of a block list; `hcl.pos(t)` gives where t itself
-- starts (its block key, `{` or `[`). Columns count UTF-8 characters.


local util = require("drv.util")

local hcl = {}


local byte, sub, find, format, concat, gsub =
  string.byte, string.sub, string.find, string.format, table.concat, string.gsub
local utf8char = utf8.char
local mtype = math.type

local MAX_DEPTH = 200

local WEAK = { __mode = "k" }
local files = setmetatable({}, WEAK)        -- container -> { name, src }
-- Positions are packed as line << 32 | byte offset; columns are counted
-- only when asked for.
local self_pos = setmetatable({}, WEAK)     -- container -> packed position
local key_pos = setmetatable({}, WEAK)      -- container -> { key = packed }
local kinds = setmetatable({}, WEAK)        -- container -> kind string
local block_labels = setmetatable({}, WEAK) -- block -> { label, ... }

local FAIL = {} -- raised internally to unwind; never escapes parse()

local ESCAPES = {
  n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v",
  ['"'] = '"', ["\\"] = "\\",
}

local PUNCT = {
  [61] = "=", [123] = "{", [125] = "}", [91] = "[", [93] = "]", [44] = ",",
}

local function quote(s)
  if #s > 40 then
    s = sub(s, 1, 37) .. "..."
  end
  return util.quote(s)
end


local function pack(line, offset)
  return line << 32 | offset
end


-- Line and column lookups are linear overall: a file gets, on first use,
-- the byte offset of each line start and the count of UTF-8 continuation
-- bytes before every BLOCK-th byte, so one lookup costs a binary search
-- (or an index) plus at most BLOCK bytes of counting, however long the
-- line (5,000 tasks on one 60 KB line used to make positions quadratic).
local BLOCK = 128

local function line_starts(file)
  local starts = file.starts
  if starts then
    return starts
  end
  local src = file.src
  starts = { 1 }
  local n, p = 1, 1
  while true do
    local nl = find(src, "\n", p, true)
    if not nl then
      break
    end
    n = n + 1
    starts[n] = nl + 1
    p = nl + 1
  end
  if sub(src, 1, 3) == "\239\187\191" then
    starts[1] = 4 -- a byte order mark is not part of the first column
  end
  file.starts = starts
  return starts
end


-- Number of UTF-8 continuation bytes (0x80-0xBF) in src before offset p.
local function continuations(file, p)
  local src = file.src
  local blocks = file.blocks
  if blocks == nil then
    if not find(src, "[\128-\255]") then
      blocks = false
    else
      blocks = { [0] = 0 }
      local total = 0
      for b = 1, #src // BLOCK do
        local _, c = gsub(sub(src, (b - 1) * BLOCK + 1, b * BLOCK), "[\128-\191]", "")
        total = total + c
        blocks[b] = total
      end
    end
    file.blocks = blocks
  end
  if not blocks then
    return 0
  end
  local b = (p - 1) // BLOCK
  local _, c = gsub(sub(src, b * BLOCK + 1, p - 1), "[\128-\191]", "")
  return blocks[b] + c
end


-- The column (in UTF-8 characters) of byte offset p on line l of file.
local function column(file, l, p)
  local ls = line_starts(file)[l] or 1
  if p < ls then
    return 1
  end
  return (p - ls) - (continuations(file, p) - continuations(file, ls)) + 1
end


-- The line holding byte offset p of file.
local function line_of(file, p)
  local starts = line_starts(file)
  local lo, hi = 1, #starts
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if starts[mid] <= p then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return lo
end


-- p is at "<<". Returns the value and the position after the anchor line.
local function scan_heredoc(src, p, fail)
  local len = #src
  local q = p + 2
  local indent = byte(src, q) == 45
  if indent then
    q = q + 1
  end
  local a1, a2 = find(src, "^[%a_][%w_%-]*", q)
  if not a1 then
    fail(q, "expected heredoc anchor after " .. quote(sub(src, p, q - 1)))
  end
  local anchor = sub(src, a1, a2)
  local _, nl = find(src, "^[ \t]*\r?\n", a2 + 1)
  if not nl then
    fail(a2 + 1, "expected newline after heredoc anchor " .. quote(anchor))
  end
  local stop = "^[ \t]*" .. gsub(anchor, "%-", "%%-") .. "[ \t\r]*$"
  local lines, n = {}, 0
  local ls = nl + 1
  while true do
    if ls > len then
      fail(p, "unterminated heredoc " .. quote(anchor))
    end
    local le = find(src, "\n", ls, true)
    local text = sub(src, ls, (le or len + 1) - 1)
    if find(text, stop) then
      ls = le and le + 1 or len + 1
      break
    end
    n = n + 1
    lines[n] = text
    ls = le and le + 1 or len + 2
  end
  if n == 0 then
    return "", ls
  end
  if indent then
    local min
    for i = 1, n do
      local _, w = find(lines[i], "^[ \t]*")
      if not find(lines[i], "^[ \t\r]*$") and (not min or w < min) then
        min = w
      end
    end
    if min and min > 0 then
      for i = 1, n do
        lines[i] = sub(lines[i], min + 1)
      end
    end
  end
  return concat(lines, "\n", 1, n) .. "\n", ls
end


-- p is at a digit or "-". Returns the value, its text and the position
-- after it.
local function scan_number(src, p, fail)
  local _, e = find(src, "^%-?%d+", p)
  local float = false
  local hex = false
  if find(src, "^%-?0[xX]", p) then
    _, e = find(src, "^%x*", e + 2)
    hex = true
  else
    local _, fe = find(src, "^%.%d+", e + 1)
    if fe then
      e, float = fe, true
    end
    _, fe = find(src, "^[eE][%+%-]?%d+", e + 1)
    if fe then
      e, float = fe, true
    end
  end
  local _, bad = find(src, "^[%w_%.]+", e + 1)
  local text = sub(src, p, bad or e)
  if bad then
    fail(p, "invalid number " .. quote(text))
  end
  local v
  if float then
    v = tonumber(text)
  else
    local neg = byte(text, 1) == 45
    local digits = neg and sub(text, 2) or text
    if hex then
      v = #digits > 2 and tonumber(sub(digits, 3), 16)
    elseif #digits > 1 and byte(digits, 1) == 48 then
      v = tonumber(digits, 8)
    else
      v = tonumber(digits)
    end
    if not v then
      fail(p, "invalid number " .. quote(text))
    end
    -- tonumber(s, base) wraps around; decimal overflow gives a float
    local sig = #gsub(hex and sub(digits, 3) or digits, "^0+", "")
    if mtype(v) ~= "integer" or v < 0 or (hex and sig > 16) or sig > 21 then
      fail(p, "integer out of range " .. quote(text))
    end
    if neg then
      v = -v
    end
  end
  return v, text, e + 1
end


-- The scanner of quoted strings over src (with ${ } inside, where strings
-- nest): takes the byte position of the opening quote and returns the
-- value, the position after it and whether it spans lines; fail(p, msg)
-- reports.
local function string_scanner(src, fail)
  local scan_interp

  -- A string inside ${ }: p is after its opening quote. Returns the
  -- position after its closing quote.
  local function scan_inner(p, start, level)
    while true do
      local q = find(src, '["\\$]', p)
      if not q then
        fail(start, "unterminated string")
      end
      local c = byte(src, q)
      if c == 34 then
        return q + 1
      elseif c == 92 then
        p = q + 2
      elseif byte(src, q + 1) == 123 then
        p = scan_interp(q + 2, start, level + 1)
      else
        p = q + 1
      end
    end
  end

  -- p is after "${". Returns the position after the matching "}".
  scan_interp = function(p, start, level)
    if level > MAX_DEPTH then
      fail(start, "interpolation nested too deep")
    end
    local braces = 1
    while true do
      local q = find(src, '[{}"\\]', p)
      if not q then
        fail(start, "unterminated string")
      end
      local c = byte(src, q)
      if c == 92 then
        p = q + 2 -- HCL1 also allows "${meta[\"x\"]}"
      elseif c == 123 then
        braces = braces + 1
        p = q + 1
      elseif c == 125 then
        braces = braces - 1
        if braces == 0 then
          return q + 1
        end
        p = q + 1
      else
        p = scan_inner(q + 1, start, level)
      end
    end
  end

  -- A backslash escape at q. Returns the text and the position after it.
  local function escape(q, start)
    local c = sub(src, q + 1, q + 1)
    local simple = ESCAPES[c]
    if simple then
      return simple, q + 2
    end
    if c == "" then
      fail(start, "unterminated string")
    end
    local digits, base
    if c == "u" then
      digits, base = 4, 16
    elseif c == "U" then
      digits, base = 8, 16
    elseif c == "x" then
      digits, base = 2, 16
    elseif find(c, "^[0-7]") then
      digits, base = 3, 8
    else
      fail(q, "invalid escape " .. quote("\\" .. c))
    end
    local first = base == 8 and q + 1 or q + 2
    local text = sub(src, first, first + digits - 1)
    local bad = base == 8 and "[^0-7]" or "%X"
    if #text ~= digits or find(text, bad) then
      fail(q, "invalid escape " .. quote(sub(src, q, first + digits - 1)))
    end
    local code = tonumber(text, base)
    if c == "x" or base == 8 then
      if code > 255 then
        fail(q, "invalid escape " .. quote(sub(src, q, first + digits - 1)))
      end
      return string.char(code), first + digits
    end
    if code > 0x10FFFF or (code >= 0xD800 and code <= 0xDFFF) then
      fail(q, "invalid unicode escape " .. quote(sub(src, q, first + digits - 1)))
    end
    return utf8char(code), first + digits
  end

  -- p is at the opening quote. Returns the value, the position after the
  -- closing quote and whether the string held an interpolation.
  local function scan_string(p)
    local start = p
    p = p + 1
    local seg = p
    local buf, n = nil, 0
    local interp = false
    while true do
      local q = find(src, '["\\\n$]', p)
      if not q then
        fail(start, "unterminated string")
      end
      local c = byte(src, q)
      if c == 34 then
        if not buf then
          return sub(src, seg, q - 1), q + 1, interp
        end
        buf[n + 1] = sub(src, seg, q - 1)
        return concat(buf, "", 1, n + 1), q + 1, interp
      elseif c == 10 then
        fail(start, "unterminated string")
      elseif c == 36 then
        if byte(src, q + 1) == 123 then
          p = scan_interp(q + 2, start, 1)
          interp = true
        else
          p = q + 1
        end
      else
        buf = buf or {}
        buf[n + 1] = sub(src, seg, q - 1)
        local text, np = escape(q, start)
        buf[n + 2] = text
        n = n + 2
        p, seg = np, np
      end
    end
  end


  return scan_string
end


-- The lexer of one file: lx.next() reads the next token and returns its
-- kind, value, line, byte offset and raw text (numbers); lx.fail_at(l, p,
-- msg) and lx.at(l, p) name positions; a failure leaves its message in
-- lx.errmsg and raises FAIL.
local function new_lexer(file)
  local src, name = file.src, file.name
  local len = #src
  local pos, line = 1, 1
  if sub(src, 1, 3) == "\239\187\191" then
    pos = 4
  end
  -- current token: kind, value, line, byte offset, raw text
  local tk, tv, tl, tc, traw
  local lx = {}

  -- Fails at line l, byte offset p.
  local function fail_at(l, p, msg)
    lx.errmsg = format("%s:%d:%d: %s", name, l, column(file, l, p), msg)
    error(FAIL, 0)
  end

  local function at(l, p)
    return format("%d:%d", l, column(file, l, p))
  end

  -- Fails at byte position p (line and column computed from scratch).
  local function fail(p, msg)
    if p > len + 1 then
      p = len + 1
    end
    fail_at(line_of(file, p), p, msg)
  end

  local function count_lines(a, b)
    while true do
      local nl = find(src, "\n", a, true)
      if not nl or nl > b then
        return
      end
      line, a = line + 1, nl + 1
    end
  end

  local function skip()
    while true do
      local _, e = find(src, "^[ \t\r\f\v]+", pos)
      if e then
        pos = e + 1
      end
      local c = byte(src, pos)
      if c == 10 then
        pos = pos + 1
        line = line + 1
      elseif c == 35 or (c == 47 and byte(src, pos + 1) == 47) then
        pos = find(src, "\n", pos, true) or len + 1
      elseif c == 47 and byte(src, pos + 1) == 42 then
        local _, e2 = find(src, "*/", pos + 2, true)
        if not e2 then
          fail(pos, "unterminated comment")
        end
        count_lines(pos, e2)
        pos = e2 + 1
      else
        return
      end
    end
  end

  local scan_string = string_scanner(src, fail)

  local function lex()
    skip()
    tl, tc = line, pos
    if pos > len then
      tk, tv = "eof", nil
      return
    end
    local c = byte(src, pos)
    local punct = PUNCT[c]
    if punct then
      tk, tv, pos = punct, nil, pos + 1
    elseif (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or c == 95 then
      local _, e = find(src, "^[%w_%-%.]*", pos + 1)
      tk, tv, pos = "ident", sub(src, pos, e), e + 1
    elseif c == 34 then
      local v, e, multiline = scan_string(pos)
      if multiline then
        count_lines(pos, e - 1)
      end
      tk, tv, pos = "string", v, e
    elseif (c >= 48 and c <= 57)
        or (c == 45 and find(src, "^%d", pos + 1)) then
      local v, text, e = scan_number(src, pos, fail)
      tk, tv, traw, pos = "number", v, text, e
    elseif c == 60 and byte(src, pos + 1) == 60 then
      local v, e = scan_heredoc(src, pos, fail)
      count_lines(pos, e - 1)
      tk, tv, pos = "heredoc", v, e
    else
      local ch = src:match("^" .. utf8.charpattern, pos) or sub(src, pos, pos)
      fail(pos, "unexpected character " .. quote(ch))
    end
  end

  function lx.next()
    lex()
    return tk, tv, tl, tc, traw
  end
  lx.fail_at, lx.at = fail_at, at
  return lx
end


local function describe(kind, value, raw)
  if kind == "eof" then
    return "end of file"
  elseif kind == "ident" then
    if value == "true" or value == "false" then
      return "boolean " .. value
    end
    return "identifier " .. quote(value)
  elseif kind == "string" then
    return "string " .. quote(value)
  elseif kind == "heredoc" then
    return "heredoc"
  elseif kind == "number" then
    return "number " .. raw
  end
  return '"' .. kind .. '"'
end


---Parses HCL1 source into plain tables.
---@param src string
---@param name? string file name used in positions and messages
---@return table|nil tree
---@return string|nil err "NAME:LINE:COL: message"
function hcl.parse(src, name)
  if name == nil then
    name = "input"
  elseif type(name) ~= "string" then
    name = tostring(name)
  end
  if type(src) ~= "string" then
    return nil, format("%s: expected HCL source text, found %s", name, type(src))
  end

  local file = { name = name, src = src }
  local lx = new_lexer(file)
  local fail_at, at = lx.fail_at, lx.at
  -- current token: kind, value, line, byte offset, raw text
  local tk, tv, tl, tc, traw
  local depth = 0

  local next_token = lx.next
  local function lex()
    tk, tv, tl, tc, traw = next_token()
  end

  -- Fails at the current token: before .. <token description> .. after.
  local function fail_tok(before, after)
    fail_at(tl, tc, before .. describe(tk, tv, traw) .. (after or ""))
  end

  local function container(t, kind, l, c)
    files[t] = file
    kinds[t] = kind
    self_pos[t] = pack(l, c)
    local kp = {}
    key_pos[t] = kp
    return kp
  end

  local function enter()
    depth = depth + 1
    if depth > MAX_DEPTH then
      fail_at(tl, tc, "nesting too deep")
    end
  end

  local parse_body

  local function parse_value(after)
    local k = tk
    if k == "string" or k == "number" or k == "heredoc" then
      local v = tv
      lex()
      return v
    elseif k == "ident" and (tv == "true" or tv == "false") then
      local v = tv == "true"
      lex()
      return v
    elseif k == "[" then
      local list = {}
      local ol, oc = tl, tc
      local kp = container(list, "list", ol, oc)
      enter()
      lex()
      local n = 0
      while tk ~= "]" do
        if tk == "eof" then
          fail_tok("expected \"]\" to close list opened at " .. at(ol, oc) .. ", found ")
        end
        local vl, vc = tl, tc
        local v = parse_value('value or "]" in list')
        n = n + 1
        list[n] = v
        kp[n] = pack(vl, vc)
        if tk == "," then
          lex()
        elseif tk ~= "]" then
          fail_tok('expected "," or "]" after list element, found ')
        end
      end
      depth = depth - 1
      lex()
      return list
    elseif k == "{" then
      local obj = {}
      local ol, oc = tl, tc
      container(obj, "object", ol, oc)
      enter()
      lex()
      parse_body(obj, "object", ol, oc)
      depth = depth - 1
      return obj
    end
    fail_tok("expected " .. after .. ", found ")
  end

  -- Parses items into obj until "}" (what ~= nil) or end of file.
  parse_body = function(obj, what, ol, oc)
    local kp = key_pos[obj]
    while true do
      if tk == "}" then
        if what then
          lex()
          return
        end
        fail_tok("unexpected ")
      elseif tk == "eof" then
        if not what then
          return
        end
        fail_tok("expected \"}\" to close " .. what .. " opened at " .. at(ol, oc)
          .. ", found ")
      elseif tk ~= "ident" and tk ~= "string" then
        fail_tok(what and 'expected key or "}", found ' or "expected key, found ")
      end
      local key, kl, kc = tv, tl, tc
      lex()
      if tk == "=" then
        if obj[key] ~= nil then
          fail_at(kl, kc, "duplicate key " .. quote(key))
        end
        lex()
        obj[key] = parse_value('value after "=" for key ' .. quote(key))
        kp[key] = pack(kl, kc)
      else
        local labels, ll, lc, lk, lv
        while tk == "string" or tk == "ident" do
          if not labels then
            labels, ll, lc, lk, lv = {}, tl, tc, tk, tv
          end
          labels[#labels + 1] = tv
          lex()
        end
        if tk ~= "{" then
          local found = labels and describe(lk, lv) or describe(tk, tv, traw)
          fail_at(ll or tl, lc or tc, 'expected "=" or "{" after key '
            .. quote(key) .. ", found " .. found)
        end
        local list = obj[key]
        if list ~= nil and kinds[list] ~= "block_list" then
          fail_at(kl, kc, "duplicate key " .. quote(key))
        end
        local bl, bc = tl, tc
        local block = {}
        container(block, "object", kl, kc)
        if labels then
          block_labels[block] = labels
        end
        enter()
        lex()
        parse_body(block, "block " .. quote(key), bl, bc)
        depth = depth - 1
        if list == nil then
          list = {}
          container(list, "block_list", kl, kc)
          obj[key] = list
          kp[key] = pack(kl, kc)
        end
        local i = #list + 1
        list[i] = block
        key_pos[list][i] = pack(kl, kc)
      end
      if what and tk == "," then
        lex()
      end
    end
  end

  local root = {}
  local ok, err = pcall(function()
    container(root, "object", 1, 1)
    lex()
    parse_body(root, nil)
  end)
  if ok then
    return root
  end
  if err == FAIL then
    return nil, lx.errmsg
  end
  error(err, 0)
end


---Returns the line and column of key (or list index) in container, or of
---container itself when key is nil; nil when unknown.
---@param container table
---@param key? string|integer
---@return integer|nil line
---@return integer|nil col
function hcl.pos(container, key)
  local p
  if key == nil then
    p = self_pos[container]
  else
    local kp = key_pos[container]
    p = kp and kp[key]
  end
  if not p then
    return nil
  end
  local l = p >> 32
  return l, column(files[container], l, p & 0xFFFFFFFF)
end


---Returns "NAME:LINE:COL" for key in container (see hcl.pos), just NAME
---when the position is unknown, or "?" for a table the parser did not make.
---@param container table
---@param key? string|integer
---@return string
function hcl.where(container, key)
  local file = files[container]
  if not file then
    return "?"
  end
  local line, col = hcl.pos(container, key)
  if not line then
    return file.name
  end
  return format("%s:%d:%d", file.name, line, col)
end


---Returns a fresh array of the labels of a block ({} when none).
---@param obj table
---@return string[]
function hcl.labels(obj)
  local labels = block_labels[obj]
  local copy = {}
  if labels then
    for i = 1, #labels do
      copy[i] = labels[i]
    end
  end
  return copy
end


---Tells whether t is a block list (the value of a key used as a block).
---@param t any
---@return boolean
function hcl.is_block_list(t)
  return kinds[t] == "block_list"
end


---Returns "object", "list" or "block_list" for a parsed table (an empty
---list and an empty object are both {} otherwise), or nil.
---@param t any
---@return string|nil
function hcl.kind(t)
  return kinds[t]
end


return hcl
