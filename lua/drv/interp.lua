--- `${...}` interpolation of task config strings.
--
-- Variables resolve against one flat table (the task's environment plus node
-- variables such as `node.datacenter` and `meta.<key>`). Unknown variables
-- stay as written and are reported so the caller can warn.
local interp = {}


---Expands `${NAME}` references in s.
---@param s string
---@param vars table<string, string>
---@param unknown? table array; unknown variable references are appended
---@return string
function interp.expand(s, vars, unknown)
  return (s:gsub("%${([^}]*)}", function(name)
    local key = name:match("^%s*(.-)%s*$")
    local v = vars[key]
    if v == nil then
      if unknown then
        unknown[#unknown + 1] = "${" .. name .. "}"
      end
      return nil
    end
    return tostring(v)
  end))
end


---Expands every string of a list, returning a fresh list.
---@param list string[]
---@param vars table<string, string>
---@param unknown? table
---@return string[]
function interp.expand_list(list, vars, unknown)
  local out = {}
  for i, s in ipairs(list) do
    out[i] = interp.expand(s, vars, unknown)
  end
  return out
end


---Expands every value of a string map, returning a fresh map.
---@param map table<string, string>
---@param vars table<string, string>
---@param unknown? table
---@return table<string, string>
function interp.expand_map(map, vars, unknown)
  local out = {}
  for k, v in pairs(map) do
    out[k] = interp.expand(v, vars, unknown)
  end
  return out
end


return interp
