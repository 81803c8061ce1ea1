--- `${...}` interpolation of task config strings (contracts2 "Lua modules").
--
-- A scope holds the variable sources of one task instance:
--
--   env   { NAME = value }  NOMAD_* variables, port variables and task env:
--                           `${NOMAD_ALLOC_ID}`, `${MY_ENV}`
--   meta  { key = value }   `${meta.key}`; the caller merges node meta over
--                           job < group < task meta (see container.scope)
--   nomad { datacenter=, region= }          `${nomad.datacenter}`
--   node  { ["unique.name"]=, datacenter=, class=, region= }
--                                           `${node.unique.name}`
--   attr  { ["kernel.name"] = "linux", ... } `${attr.kernel.name}` (host.node)
--
-- Every source may be nil. Unknown variables stay as written and are
-- returned so the caller can warn. Pure: no io, no globals.
local util = require("drv.util")

local interp = {}


local PREFIXED = { meta = true, nomad = true, node = true, attr = true }


---Looks up one variable name (already trimmed) in a scope.
---@param name string
---@param scope table
---@return string|nil
function interp.lookup(name, scope)
  local prefix, rest = name:match("^(%a+)%.(.+)$")
  if prefix and PREFIXED[prefix] then
    local src = scope[prefix]
    local v = src and src[rest]
    if v ~= nil then
      return tostring(v)
    end
    return nil
  end
  local env = scope.env
  local v = env and env[name]
  if v ~= nil then
    return tostring(v)
  end
  return nil
end


---Expands `${NAME}` references in s.
---@param s string
---@param scope table see the module comment
---@param unknown? table array to append unknown references to (returned)
---@return string out
---@return table unknown_refs array of references left as written ("${x}")
function interp.expand(s, scope, unknown)
  unknown = unknown or {}
  if not s:find("${", 1, true) then
    return s, unknown
  end
  local out = s:gsub("%${([^}]*)}", function(name)
    local v = interp.lookup(util.trim(name), scope)
    if v == nil then
      unknown[#unknown + 1] = "${" .. name .. "}"
    end
    return v
  end)
  return out, unknown
end


---Expands every string of a list, returning a fresh list.
---@param list string[]
---@param scope table
---@param unknown? table
---@return string[]
---@return table unknown_refs
function interp.expand_list(list, scope, unknown)
  unknown = unknown or {}
  local out = {}
  for i, s in ipairs(list) do
    out[i] = interp.expand(s, scope, unknown)
  end
  return out, unknown
end


---Expands every value of a string map, returning a fresh map.
---@param map table<string, string>
---@param scope table
---@param unknown? table
---@return table<string, string>
---@return table unknown_refs
function interp.expand_map(map, scope, unknown)
  unknown = unknown or {}
  local out = {}
  for _, k in ipairs(util.sorted_keys(map)) do
    out[k] = interp.expand(map[k], scope, unknown)
  end
  return out, unknown
end


return interp
