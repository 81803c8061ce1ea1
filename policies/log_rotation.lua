-- Docker's own copy of a task's output stays bounded (on by default; found
-- by the attack corpus).
--
-- With the json-file and local log drivers dockerd keeps every line the
-- task prints under /var/lib/docker/containers/<id>/ on the node's disk, next
-- to drvctl's own rotated logs. json-file without max-size never rotates:
-- `logging { type = "json-file" }`, max-size = "-1" or "100g" let one task
-- fill the node's disk.
--
-- * json-file (also an empty type, the daemon's default) without max-size
--   or max-file gets default_max_size / default_max_files (mutate: Nomad's
--   2m and 2, what drvctl sets when there is no logging block).
-- * json-file and local: max-size must be a size of at most max_size_mb MB
--   (Docker's syntax: 512k, 2m, 1g, 10MiB, ...), max-file an integer from 1
--   to max_files. Other drivers are policies/logging.lua's concern.
--
-- Deviation from Nomad v0.8.3 (which passed logging through), restore with:
--   plugin "docker" { config { policy_options { log_rotation { enabled = false } } } }

local UNITS = { [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4, p = 1024 ^ 5 }

local function quote(s)
  return "\"" .. tostring(s) .. "\""
end

-- "2m", "10 MiB", "512k", "100" -> bytes | nil (go-units RAMInBytes)
local function bytes(v)
  if type(v) == "number" then
    v = tostring(math.tointeger(v) or v)
  end
  if type(v) ~= "string" or #v > 32 then
    return nil
  end
  local n, unit = string.match(string.lower(v), "^(%d+%.?%d*) ?([kmgtp]?)i?b?$")
  if not n then
    return nil
  end
  return tonumber(n) * UNITS[unit]
end

local function count(v)
  if type(v) == "number" then
    return math.tointeger(v)
  end
  if type(v) ~= "string" or not string.match(v, "^%d+$") or #v > 9 then
    return nil
  end
  return math.tointeger(tonumber(v))
end

return {
  policy_format = 1,
  name = "log_rotation",
  description = "json-file and local logs rotate: max-size and max-file bounded",
  settings = {
    default_max_size = "2m",
    default_max_files = "2",
    max_size_mb = 10,
    max_files = 10,
  },

  mutate = function(ctx)
    local lc = (ctx.spec.HostConfig or {}).LogConfig
    if type(lc) ~= "table" or (lc.Type ~= nil and lc.Type ~= "" and lc.Type ~= "json-file") then
      return nil
    end
    local cfg = type(lc.Config) == "table" and lc.Config or {}
    if cfg["max-size"] ~= nil and cfg["max-file"] ~= nil then
      return nil
    end
    local out = {}
    for k, v in pairs(cfg) do
      out[k] = v
    end
    if out["max-size"] == nil then
      out["max-size"] = ctx.settings.default_max_size
    end
    if out["max-file"] == nil then
      out["max-file"] = ctx.settings.default_max_files
    end
    return { { op = "set", path = "HostConfig.LogConfig.Config", value = out } }
  end,

  check = function(ctx)
    local lc = (ctx.spec.HostConfig or {}).LogConfig
    if lc == nil then
      return true
    end
    if type(lc) ~= "table" then
      return nil, "LogConfig must be an object"
    end
    local t = lc.Type
    if t ~= nil and t ~= "" and t ~= "json-file" and t ~= "local" then
      return true
    end
    local s = ctx.settings
    local cfg = type(lc.Config) == "table" and lc.Config or {}
    local msgs = {}
    local size = cfg["max-size"]
    if size ~= nil then
      local b = bytes(size)
      if not b or b < 1 then
        msgs[#msgs + 1] = "log max-size must be a size such as \"2m\": " .. quote(size)
      elseif b > s.max_size_mb * 1024 * 1024 then
        msgs[#msgs + 1] = "log max-size above " .. s.max_size_mb .. " MB: " .. quote(size)
      end
    elseif t == "json-file" or t == nil or t == "" then
      msgs[#msgs + 1] = "json-file log without max-size never rotates: " .. quote("max-size")
    end
    local files = cfg["max-file"]
    if files ~= nil then
      local n = count(files)
      if not n or n < 1 or n > s.max_files then
        msgs[#msgs + 1] = "log max-file must be between 1 and " .. s.max_files .. ": " .. quote(files)
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
