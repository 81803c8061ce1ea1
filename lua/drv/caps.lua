-- Linux capability names and the capability arithmetic of the docker driver.
--
-- Pure functions over lists of names. Names are normalised to Docker's short
-- upper-case form without the CAP_ prefix ("sys_admin", " CAP_SYS_ADMIN "
-- -> "SYS_ADMIN"); "ALL" stands for every capability.
--
-- The effective set follows moby's TweakCapabilities (Docker 20.10): cap_add
-- ALL gives every capability except cap_drop; cap_drop ALL gives cap_add only;
-- otherwise defaults - cap_drop + cap_add (an added capability wins over a
-- dropped one).

local util = require("drv.util")

local M = {}

local upper, sub, find = string.upper, string.sub, string.find
local trim, set_of = util.trim, util.set_of
local gmatch = string.gmatch
local sort, concat = table.sort, table.concat

-- Docker's default capability set (the v0.8.3 docker.caps.whitelist default).
M.DOCKER_DEFAULTS = {
  "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
  "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
  "SYS_CHROOT",
}

-- drvctl's default whitelist: Docker's defaults without NET_RAW
-- (CVE-2021-32575, Nomad 1.1.0 / 1.0.5 / 0.12.12).
M.DEFAULT_WHITELIST = {
  "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

-- Every capability Linux 5.9+ knows (capability.h), in kernel order.
M.KNOWN = {
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
  "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
  "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
  "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
  "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
  "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
  "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

-- normalize(" cap_sys_admin ") -> "SYS_ADMIN"; nil, err for a non-string or
-- an empty name.
local NORMAL, normal_count = {}, 0   -- name -> normalised, for valid names
local NORMAL_MAX = 512                 -- names remembered (policies call this per task)

function M.normalize(name)
  if type(name) ~= "string" then
    return nil, "capability must be a string, got " .. type(name)
  end
  local known = NORMAL[name]
  if known then
    return known
  end
  local s = upper(trim(name))
  if sub(s, 1, 4) == "CAP_" then
    s = sub(s, 5)
  end
  if s == "" then
    return nil, "empty capability name"
  end
  if find(s, "[^A-Z0-9_]") then
    return nil, "invalid capability name: \"" .. name .. "\""
  end
  if normal_count < NORMAL_MAX then
    normal_count = normal_count + 1
    NORMAL[name] = s
  end
  return s
end

-- list(v) -> normalised, de-duplicated list in first-seen order, plus a list
-- of errors for entries that are not capability names. `v` may be nil, a
-- list, or a comma-separated string (the legacy docker.caps.whitelist form).
function M.list(v)
  local out, errs, seen = {}, {}, {}
  if v == nil then
    return out, errs
  end
  local items = v
  if type(v) == "string" then
    items = {}
    for part in gmatch(v, "[^,]+") do
      items[#items + 1] = part
    end
  elseif type(v) ~= "table" then
    errs[1] = "capability list must be a list, got " .. type(v)
    return out, errs
  end
  for _, item in ipairs(items) do
    local name, err = M.normalize(item)
    if not name then
      errs[#errs + 1] = err
    elseif not seen[name] then
      seen[name] = true
      out[#out + 1] = name
    end
  end
  return out, errs
end

-- contains_all(list) -> true when the normalised list holds "ALL".
function M.contains_all(list)
  for _, v in ipairs(list) do
    if M.normalize(v) == "ALL" then
      return true
    end
  end
  return false
end

-- effective(add, drop, defaults) -> sorted list of effective capabilities.
-- All three are lists of (possibly unnormalised) names; defaults defaults to
-- DOCKER_DEFAULTS.
function M.effective(add, drop, defaults)
  local a = M.list(add)
  local d = M.list(drop)
  local base = M.list(defaults or M.DOCKER_DEFAULTS)
  local dropped = set_of(d)
  local result, seen = {}, {}
  local function put(c)
    if not seen[c] then
      seen[c] = true
      result[#result + 1] = c
    end
  end
  if set_of(a).ALL then
    for _, c in ipairs(M.KNOWN) do
      if not dropped[c] then put(c) end
    end
  elseif dropped.ALL then
    for _, c in ipairs(a) do put(c) end
  else
    for _, c in ipairs(base) do
      if not dropped[c] then put(c) end
    end
    for _, c in ipairs(a) do put(c) end
  end
  sort(result)
  return result
end

-- missing(add, drop, whitelist, defaults) -> sorted list of capabilities the
-- task would get that the whitelist does not allow; {} when allowed. A
-- whitelist holding ALL allows everything; cap_add ALL needs ALL in the
-- whitelist and is reported as "ALL".
function M.missing(add, drop, whitelist, defaults)
  local w = set_of((M.list(whitelist)))
  if w.ALL then
    return {}
  end
  if set_of((M.list(add))).ALL then
    return { "ALL" }
  end
  local out = {}
  for _, c in ipairs(M.effective(add, drop, defaults)) do
    if not w[c] then
      out[#out + 1] = c
    end
  end
  return out
end

-- to_drop(whitelist, add, drop, defaults) -> sorted list of default
-- capabilities the whitelist lacks and the task neither adds nor already
-- drops: what must be appended to CapDrop so the container does not get them.
function M.to_drop(whitelist, add, drop, defaults)
  local w = set_of((M.list(whitelist)))
  if w.ALL then
    return {}
  end
  local a = set_of((M.list(add)))
  local d = set_of((M.list(drop)))
  if a.ALL or d.ALL then
    return {}
  end
  local out = {}
  for _, c in ipairs((M.list(defaults or M.DOCKER_DEFAULTS))) do
    if not w[c] and not a[c] and not d[c] then
      out[#out + 1] = c
    end
  end
  sort(out)
  return out
end

-- quote_list({"A", "B"}) -> '"A", "B"' for messages.
function M.quote_list(list)
  local q = {}
  for i, v in ipairs(list) do
    q[i] = '"' .. tostring(v) .. '"'
  end
  return concat(q, ", ")
end

return M
