--- A tiny shape checker for decoded job and agent data.
--
-- `schema.normalize(value, spec, ctx)` returns a fresh, normalised copy of
-- `value` and appends problems to `ctx.problems` (and notices to
-- `ctx.warnings`). A spec is one of:
--
--   "string" "bool" "number" "int" (integral, |n| < 1e14, stored as a Lua
--   integer) "scalar" (string, number or bool, stored as a string) "any"
--   { list = SPEC }          an array
--   { map = SPEC }           string keys; a list of maps is merged
--   { object = FIELDS }      fixed keys; a list of one object is accepted
--   { blocks = FIELDS }      an array of objects (repeatable block)
--   { ignore = true, warn = bool }   accepted and dropped
--
-- FIELDS maps each allowed key to a spec. JSON null (any userdata) counts
-- as absent. Problems are { kind = "unknown"|"type", path = "config.tty",
-- message = "<origin>: <text>" }; the origin comes from `ctx.where(c, k)`.
local util = require("drv.util")

local schema = {}

local fmt = util.format


local MAX_INT = 1e14


---Parses a Go-style duration ("5s", "1m30s", "250ms", "1.5h") to whole
---milliseconds, or nil when malformed.
---@param s string
---@return integer|nil
function schema.duration_ms(s)
  if type(s) ~= "string" or s == "" then
    return nil
  end
  local units = { ns = 1e-6, us = 1e-3, ["µs"] = 1e-3, ms = 1, s = 1000,
                  m = 60000, h = 3600000 }
  local sign = 1
  local rest = s
  if rest:sub(1, 1) == "-" then
    sign, rest = -1, rest:sub(2)
  elseif rest:sub(1, 1) == "+" then
    rest = rest:sub(2)
  end
  if rest == "0" then
    return 0
  end
  local total = 0
  local pos = 1
  while pos <= #rest do
    local num, unit, nxt = rest:match("^(%d*%.?%d+)([a-zµ]+)()", pos)
    if not num or not units[unit] then
      return nil
    end
    total = total + tonumber(num) * units[unit]
    pos = nxt
  end
  return math.tointeger(sign * math.floor(total + 0.5)) or nil
end


local function is_null(v)
  return v == nil or type(v) == "userdata"
end


local function is_array(t)
  return t[1] ~= nil
end


local function is_empty(t)
  return next(t) == nil
end


---Describes a value for messages: `string "yes"`, `number 3`, `list`.
---@param v any
---@return string
function schema.describe(v)
  local t = type(v)
  if t == "string" then
    return "string " .. util.quote(v)
  elseif t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < MAX_INT then
      return "number " .. fmt("%d", math.tointeger(v))
    end
    return "number " .. tostring(v)
  elseif t == "boolean" then
    return "bool " .. tostring(v)
  elseif t == "table" then
    if is_empty(v) then
      return "empty list"
    elseif is_array(v) then
      if type(v[1]) == "table" and not is_array(v[1]) then
        return (#v == 1) and "block" or fmt("%d blocks", #v)
      end
      return "list"
    end
    return "object"
  elseif t == "userdata" then
    return "null"
  end
  return t
end


local function expected(spec)
  if type(spec) == "string" then
    return ({ int = "integer", scalar = "string" })[spec] or spec
  elseif spec.list then
    return "list of " .. expected(spec.list) .. "s"
  elseif spec.map then
    return "map of " .. expected(spec.map) .. "s"
  elseif spec.object then
    return "block"
  elseif spec.blocks then
    return "list of blocks"
  end
  return "value"
end


local function join(parent, key)
  if key == nil then
    return parent
  end
  if type(key) == "number" then
    return fmt("%s[%d]", parent, key)
  end
  if parent == "" then
    return key
  end
  return parent .. "." .. key
end


local function scope(ctx, parent)
  if parent == "" then
    return ctx.label
  end
  return ctx.label .. " " .. parent
end


local function where(ctx, container, key)
  if ctx.where then
    return ctx.where(container, key)
  end
  return ctx.name or "?"
end


local function add(ctx, kind, container, key, path, text)
  ctx.problems[#ctx.problems + 1] = {
    kind = kind,
    path = path,
    message = where(ctx, container, key) .. ": " .. text,
  }
end


local function type_problem(ctx, container, key, parent, spec, v, note)
  local name = type(key) == "number" and fmt("%s[%d]", parent, key) or key
  local pscope = type(key) == "number" and ctx.label or scope(ctx, parent)
  add(ctx, "type", container, key, join(parent, key), fmt(
    "wrong type for %s %q in %s: expected %s, found %s",
    ctx.noun or "option", name, pscope, note or expected(spec), schema.describe(v)))
end


---Keys of t in source order when positions are known, else sorted.
local function ordered_keys(ctx, t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  local line = {}
  if ctx.linecol then
    for _, k in ipairs(keys) do
      local l, c = ctx.linecol(t, k)
      if l then
        line[k] = l * 4294967296 + c
      end
    end
  end
  table.sort(keys, function(a, b)
    local la, lb = line[a], line[b]
    if la and lb then
      return la < lb
    elseif la or lb then
      return la ~= nil
    end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local check


local function record(ctx, copy, raw)
  if ctx.origin then
    ctx.origin[copy] = raw
  end
  return copy
end


local function check_object(v, fields, ctx, parent, container, key)
  local raw = v
  if type(v) ~= "table" then
    type_problem(ctx, container, key, parent, { object = fields }, v)
    return nil
  end
  if is_array(v) then
    if type(v[1]) ~= "table" or is_array(v[1]) then
      type_problem(ctx, container, key, parent, { object = fields }, v)
      return nil
    end
    if #v > 1 then
      add(ctx, "type", v, 2, join(parent, key), fmt(
        "%s %q in %s may only be given once, found %d blocks",
        ctx.noun or "option", key, scope(ctx, parent), #v))
      return nil
    end
    raw = v[1]
  end
  local out = record(ctx, {}, raw)
  local path = join(parent, key)
  for _, k in ipairs(ordered_keys(ctx, raw)) do
    local fv = raw[k]
    local fspec = fields[k]
    if type(k) ~= "string" then
      type_problem(ctx, container, key, parent, { object = fields }, v)
      return nil
    elseif fspec == nil then
      local hint = util.suggest(k, fields)
      add(ctx, "unknown", raw, k, join(path, k), fmt(
        "unknown %s %q in %s%s", ctx.noun or "option", k, scope(ctx, path),
        hint and fmt(", did you mean %q?", hint) or ""))
    elseif not is_null(fv) then
      out[k] = check(fv, fspec, ctx, path, raw, k)
    end
  end
  return out
end


local function check_map(v, espec, ctx, parent, container, key)
  if type(v) ~= "table" then
    type_problem(ctx, container, key, parent, { map = espec }, v)
    return nil
  end
  local parts = { v }
  if is_array(v) then
    parts = v
  end
  local out = record(ctx, {}, parts[1])
  local path = join(parent, key)
  for i, part in ipairs(parts) do
    if type(part) ~= "table" or (is_array(part)) then
      type_problem(ctx, container, key, parent, { map = espec }, v)
      return nil
    end
    if i > 1 then
      record(ctx, out, part)
    end
    for _, k in ipairs(ordered_keys(ctx, part)) do
      local fv = part[k]
      if not is_null(fv) then
        out[k] = check(fv, espec, ctx, path, part, k)
      end
    end
  end
  return out
end


local function check_list(v, espec, ctx, parent, container, key)
  if type(v) ~= "table" or (not is_array(v) and not is_empty(v)) then
    type_problem(ctx, container, key, parent, { list = espec }, v)
    return nil
  end
  local out = record(ctx, {}, v)
  local path = join(parent, key)
  for i = 1, #v do
    if not is_null(v[i]) then
      out[#out + 1] = check(v[i], espec, ctx, path, v, i)
    end
  end
  return out
end


local function check_blocks(v, fields, ctx, parent, container, key)
  if type(v) ~= "table" then
    type_problem(ctx, container, key, parent, { blocks = fields }, v)
    return nil
  end
  local list = v
  if not is_array(v) and not is_empty(v) then
    list = { v }
  end
  local out = record(ctx, {}, v)
  for i = 1, #list do
    local item = list[i]
    if type(item) ~= "table" or is_array(item) then
      type_problem(ctx, container, key, parent, { blocks = fields }, item)
    else
      local obj = check_object(item, fields, ctx, join(parent, key), list, i)
      out[#out + 1] = obj
    end
  end
  return out
end


check = function(v, spec, ctx, parent, container, key)
  if type(spec) == "table" then
    if spec.ignore then
      if spec.warn and ctx.warnings and not (type(v) == "table" and is_empty(v)) then
        ctx.warnings[#ctx.warnings + 1] = fmt(
          "%s: %s %q in %s is not supported by drvctl and is ignored",
          where(ctx, container, key), ctx.noun or "option", key, scope(ctx, parent))
      end
      return nil
    elseif spec.list then
      return check_list(v, spec.list, ctx, parent, container, key)
    elseif spec.map then
      return check_map(v, spec.map, ctx, parent, container, key)
    elseif spec.object then
      return check_object(v, spec.object, ctx, parent, container, key)
    elseif spec.blocks then
      return check_blocks(v, spec.blocks, ctx, parent, container, key)
    end
    error("schema: bad spec")
  end
  local t = type(v)
  if spec == "any" then
    return v
  elseif spec == "string" then
    if t == "string" then
      return v
    end
  elseif spec == "bool" then
    if t == "boolean" then
      return v
    end
  elseif spec == "number" then
    if t == "number" then
      return math.tointeger(v) or v
    end
  elseif spec == "int" then
    if t == "number" then
      local i = math.tointeger(v)
      if i and math.abs(i) < MAX_INT then
        return i
      end
      type_problem(ctx, container, key, parent, spec, v,
        "integer smaller than 1e14")
      return nil
    end
  elseif spec == "scalar" then
    if t == "string" then
      return v
    elseif t == "number" then
      local i = math.tointeger(v)
      return i and fmt("%d", i) or tostring(v)
    elseif t == "boolean" then
      return tostring(v)
    end
  else
    error("schema: unknown type " .. tostring(spec))
  end
  type_problem(ctx, container, key, parent, spec, v)
  return nil
end


---Checks value against spec and returns a normalised copy.
---ctx: problems (array, appended to), warnings (array), label (`task "web"`),
---noun ("option"/"key"), where(container, key) -> origin string,
---linecol(container, key) -> line, col (optional, orders problems),
---origin (optional weak table: copy -> source container).
---@param value any
---@param spec any
---@param ctx table
---@param parent? string dotted path of the parent
---@param container? table the table holding value (for positions)
---@param key? string|integer value's key in container
---@return any
function schema.normalize(value, spec, ctx, parent, container, key)
  ctx.problems = ctx.problems or {}
  if is_null(value) then
    return nil
  end
  return check(value, spec, ctx, parent or "", container, key)
end


return schema
