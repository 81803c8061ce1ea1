--- Small shared helpers (pure; every function is linear or bounded in its
--- input, because its inputs come from job files written by people the
--- operator does not trust).
--
--   util.trim(s)                  strip leading and trailing white space
--   util.levenshtein(a, b, max)   edit distance (adjacent transpositions count 1)
--   util.suggest(key, candidates) the nearest candidate, or nil
--   util.sorted_keys(t)           keys of t, sorted (by tostring)
--   util.split_list(s, sep)       "a, b,,c" -> { "a", "b", "c" }
--   util.set_of(list)             { "a" } -> { a = true }
--   util.quote(s)                 "..." safe to print on one terminal line
local util = {}


local byte, sub, find, format, concat = string.byte, string.sub, string.find,
  string.format, table.concat


---Strips leading and trailing white space (as %s) in linear time: the
---pattern `^%s*(.-)%s*$` is quadratic on long runs of inner spaces.
---@param s string
---@return string
function util.trim(s)
  local _, lead = find(s, "^%s*")
  if lead == #s then
    return ""
  end
  local last = byte(s, -1)
  if not (last == 32 or (last >= 9 and last <= 13)) then
    return sub(s, lead + 1)
  end
  local _, trail = find(string.reverse(s), "^%s*")
  return sub(s, lead + 1, #s - trail)
end


-- Names longer than this get no suggestion (no option name is this long;
-- this bounds the work per unknown key to MAX_SUGGEST^2 per candidate).
local MAX_SUGGEST = 64


---Returns the restricted (optimal string alignment) edit distance of a and
---b. With max given, returns max + 1 as soon as the distance is known to
---exceed max (length difference, or a row whose minimum exceeds it).
---@param a string
---@param b string
---@param max? integer
---@return integer
function util.levenshtein(a, b, max)
  local la, lb = #a, #b
  if max and math.abs(la - lb) > max then
    return max + 1
  end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do
    prev[j] = j
  end
  for i = 1, la do
    local ca = byte(a, i)
    cur[0] = i
    local row_min = i
    for j = 1, lb do
      local cb = byte(b, j)
      local cost = (ca == cb) and 0 or 1
      local v = prev[j] + 1
      local w = cur[j - 1] + 1
      if w < v then v = w end
      w = prev[j - 1] + cost
      if w < v then v = w end
      if i > 1 and j > 1 and ca == byte(b, j - 1) and byte(a, i - 1) == cb then
        w = prev2[j - 2] + 1
        if w < v then v = w end
      end
      cur[j] = v
      if v < row_min then row_min = v end
    end
    if max and row_min > max then
      return max + 1
    end
    prev2, prev, cur = prev, cur, prev2
  end
  return prev[lb]
end


---Returns the candidate nearest to key (case-insensitive) when it is close
---enough (distance 1 for keys of up to 3 characters, else 2), or nil. Keys
---or candidates longer than 64 bytes are never compared.
---@param key string
---@param candidates table a set (keys) or an array of strings
---@return string|nil
function util.suggest(key, candidates)
  if type(key) ~= "string" or #key > MAX_SUGGEST or type(candidates) ~= "table" then
    return nil
  end
  local names = {}
  if candidates[1] ~= nil then
    for i = 1, #candidates do
      names[i] = candidates[i]
    end
  else
    for k in pairs(candidates) do
      if type(k) == "string" then
        names[#names + 1] = k
      end
    end
  end
  table.sort(names)
  local limit = (#key <= 3) and 1 or 2
  local lkey = key:lower()
  local best, best_d
  for _, name in ipairs(names) do
    if #name <= MAX_SUGGEST then
      local d = util.levenshtein(lkey, name:lower(), limit)
      if d <= limit and (not best_d or d < best_d) then
        best, best_d = name, d
      end
    end
  end
  if best and best_d < #key then
    return best
  end
  return nil
end


---Returns the keys of t sorted by their string form.
---@param t table
---@return table
local function by_string_form(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == "string" or ta == "number") then
    return a < b
  end
  return tostring(a) < tostring(b)
end

function util.sorted_keys(t)
  local keys, n, strings = {}, 0, true
  for k in pairs(t) do
    n = n + 1
    keys[n] = k
    strings = strings and type(k) == "string"
  end
  -- all strings (the usual case): the same order, compared in C
  table.sort(keys, not strings and by_string_form or nil)
  return keys
end


---Splits s at sep (default ","), trims the items and drops empty ones.
---@param s string
---@param sep? string a single plain character
---@return string[]
function util.split_list(s, sep)
  sep = sep or ","
  local out = {}
  local p = 1
  local n = #s
  while p <= n + 1 do
    local q = find(s, sep, p, true) or n + 1
    local item = util.trim(sub(s, p, q - 1))
    if item ~= "" then
      out[#out + 1] = item
    end
    p = q + 1
  end
  return out
end


---Returns a set of the items of list.
---@param list table
---@return table
function util.set_of(list)
  local set = {}
  for _, v in ipairs(list) do
    set[v] = true
  end
  return set
end


local SIMPLE = { [9] = "\\t", [10] = "\\n", [13] = "\\r", [34] = '\\"', [92] = "\\\\" }

-- Code points that are valid UTF-8 but reorder or hide text on a terminal.
local function invisible(cp)
  return (cp >= 0x80 and cp <= 0x9F)           -- C1 controls
    or cp == 0xAD                               -- soft hyphen
    or (cp >= 0x200B and cp <= 0x200F)          -- zero width, LRM, RLM
    or (cp >= 0x2028 and cp <= 0x202E)          -- line/para separators, bidi
    or (cp >= 0x2060 and cp <= 0x206F)          -- invisible operators, bidi isolates
    or cp == 0xFEFF
end

-- Default cap on the bytes of s quoted by util.quote.
local MAX_QUOTE = 1024


-- The escaping behind util.quote (quoted) and util.sanitize (not quoted).
local function escape(s, max, quoted)
  if type(s) ~= "string" then
    s = tostring(s)
  end
  max = max or MAX_QUOTE
  local total = #s
  local cut = total > max
  local n = cut and max or total
  local out, k = { quoted and '"' or "" }, 1
  local i = 1
  while i <= n do
    -- a run of plain printable ASCII
    local _, e = find(s, quoted and '^[^%c"\\\128-\255]+' or "^[^%c\128-\255]+", i)
    if e then
      if e > n then e = n end
      k = k + 1
      out[k] = sub(s, i, e)
      i = e + 1
    else
      local c = byte(s, i)
      local len = 0
      if c >= 0xC2 and c <= 0xDF then
        len = 2
      elseif c >= 0xE0 and c <= 0xEF then
        len = 3
      elseif c >= 0xF0 and c <= 0xF4 then
        len = 4
      end
      local cp
      if len > 0 and i + len - 1 <= n then
        local ok = true
        cp = c & (0x7F >> len)
        for j = i + 1, i + len - 1 do
          local cc = byte(s, j)
          if cc < 0x80 or cc > 0xBF then
            ok = false
            break
          end
          cp = (cp << 6) | (cc & 0x3F)
        end
        -- overlong forms, surrogates and values past U+10FFFF are invalid
        if ok and ((len == 3 and cp < 0x800) or (len == 4 and (cp < 0x10000 or cp > 0x10FFFF))
            or (cp >= 0xD800 and cp <= 0xDFFF)) then
          ok = false
        end
        if not ok then
          cp = nil
        end
      end
      k = k + 1
      if cp then
        if invisible(cp) then
          out[k] = format("\\u{%04x}", cp)
        else
          out[k] = sub(s, i, i + len - 1)
        end
        i = i + len
      else
        out[k] = (quoted or c < 32 or c == 127) and SIMPLE[c] or format("\\x%02x", c)
        i = i + 1
      end
    end
  end
  k = k + 1
  if cut then
    out[k] = format('...%s (%d bytes)', quoted and '"' or "", total)
  else
    out[k] = quoted and '"' or ""
  end
  return concat(out, "", 1, k)
end


---Quotes s for a message line: printable ASCII as is (`"` and `\`
---escaped), valid UTF-8 kept, control characters and invalid bytes
---escaped (`\n`, `\r`, `\t`, `\x1b`, `\xff`), invisible and bidi code
---points as `\u{202e}`. Strings longer than max bytes (default 1024) are
---cut and end in `..."` + the length. Non-strings are converted with
---tostring. The result never contains a byte below 0x20 or 0x7f.
---@param s any
---@param max? integer
---@return string
function util.quote(s, max)
  return escape(s, max, true)
end


---Like util.quote without the quotes (and `"`, `\` kept as they are): for
---text from elsewhere (Docker's error messages) shown on one line.
---@param s any
---@param max? integer
---@return string
function util.sanitize(s, max)
  return escape(s, max, false)
end


---string.format where every `%q` quotes its argument with util.quote
---(Lua's own %q writes a newline as backslash + newline and leaves bytes
---of 0x80 and above raw, so a job string could forge a message line).
---@param fmt string
---@return string
function util.format(fmt, ...)
  if not find(fmt, "%q", 1, true) then
    return format(fmt, ...)
  end
  local args = table.pack(...)
  local n = 0
  local new = fmt:gsub("%%([-+ #0]*%d*%.?%d*)(.)", function(flags, conv)
    if conv == "%" then
      return "%%"
    end
    n = n + 1
    if conv == "q" then
      args[n] = util.quote(args[n])
      return "%" .. flags .. "s"
    end
    return nil
  end)
  return format(new, table.unpack(args, 1, args.n))
end


return util
