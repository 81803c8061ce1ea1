--- Task config schema, its checks, and the mapping of one task instance to
--- a Docker `POST /containers/create` body (ARCHITECTURE §7).
local imageref = require("drv.imageref")
local interp = require("drv.interp")
local path = require("drv.path")
local util = require("drv.util")

local container = {}


local MIB = 1048576
local MAX_INT = 1e14

local MOUNT = {
  type = "string",
  target = "string",
  source = "string",
  readonly = "bool",
  bind_options = { object = { propagation = "string" } },
  tmpfs_options = { object = { size = "int", mode = "int" } },
  volume_options = { object = {
    no_copy = "bool",
    labels = { map = "scalar" },
    driver_config = { object = { name = "string", options = { map = "scalar" } } },
  } },
}

local STRINGS = { list = "string" }

--- Every option of the docker task `config {}` block (spec page and the
--- reference §1 table), with its type.
container.SCHEMA = {
  image = "string",
  image_pull_timeout = "string",
  args = STRINGS,
  command = "string",
  entrypoint = STRINGS,
  auth = { object = {
    username = "string", password = "string", email = "string", server_address = "string",
  } },
  auth_soft_fail = "bool",
  cap_add = STRINGS,
  cap_drop = STRINGS,
  cgroupns = "string",
  container_exists_attempts = "int",
  cpu_hard_limit = "bool",
  cpu_cfs_period = "int",
  cpuset_cpus = "string",
  devices = { blocks = {
    host_path = "string", container_path = "string", cgroup_permissions = "string",
  } },
  dns_servers = STRINGS,
  dns_search_domains = STRINGS,
  dns_options = STRINGS,
  extra_hosts = STRINGS,
  force_pull = "bool",
  group_add = { list = "scalar" },
  healthchecks = { object = { disable = "bool" } },
  hostname = "string",
  init = "bool",
  interactive = "bool",
  ipc_mode = "string",
  ipv4_address = "string",
  ipv6_address = "string",
  isolation = "string",
  labels = { map = "scalar" },
  load = "string",
  logging = { object = { type = "string", driver = "string", config = { map = "scalar" } } },
  mac_address = "string",
  memory_hard_limit = "int",
  mount = { blocks = MOUNT },
  mounts = { blocks = MOUNT },
  network_aliases = STRINGS,
  network_mode = "string",
  oom_score_adj = "int",
  pids_limit = "int",
  pid_mode = "string",
  ports = STRINGS,
  port_map = { map = "int" },
  privileged = "bool",
  readonly_rootfs = "bool",
  runtime = "string",
  security_opt = STRINGS,
  shm_size = "int",
  storage_opt = { map = "scalar" },
  sysctl = { map = "scalar" },
  tty = "bool",
  ulimit = { map = "scalar" },
  uts_mode = "string",
  userns_mode = "string",
  volumes = STRINGS,
  volume_driver = "string",
  work_dir = "string",
  advertise_ipv6_address = "bool",
  SSL = "bool",
  ssl = "bool",
}

--- Options that are valid but not mapped. Empty: every option is mapped
--- (kept so older callers that consult it keep working).
container.UNSUPPORTED = {}

--- Privilege-widening options, as an array of option names. The driver
--- (admission) refuses them when no policy set is loaded (fail closed); they
--- are mapped fully all the same. Options in POLICY_GATED_VALUES are gated
--- only for the values their function flags; `container.gated(config)`
--- applies both.
container.POLICY_GATED = {
  "privileged", "cap_add", "cap_drop", "volumes", "volume_driver", "mounts", "mount",
  "devices", "pid_mode", "ipc_mode", "uts_mode", "userns_mode", "cgroupns", "security_opt",
  "runtime",
}

local SAFE_NETWORK_MODES = { bridge = true, none = true, default = true }
local SAFE_LOG_DRIVERS = { ["json-file"] = true, ["local"] = true }

--- Options gated only for some values: key -> function(value) -> gated?
container.POLICY_GATED_VALUES = {
  -- host, container:<x> and every user-defined network
  network_mode = function(v)
    return v ~= nil and not SAFE_NETWORK_MODES[v]
  end,
  -- log drivers other than json-file and local, any log option
  logging = function(v)
    if type(v) ~= "table" then
      return false
    end
    local t = v.type or v.driver
    return (t ~= nil and t ~= "" and not SAFE_LOG_DRIVERS[t])
      or (type(v.config) == "table" and next(v.config) ~= nil)
  end,
  oom_score_adj = function(v)
    return type(v) == "number" and v < 0
  end,
}


local sorted_keys = util.sorted_keys


---Returns the names of the gated options a config uses, sorted: a
---POLICY_GATED option that is set (false, "" and empty lists or maps do not
---count) or a POLICY_GATED_VALUES option whose function flags its value.
---@param config table normalised config
---@return string[]
function container.gated(config)
  local out = {}
  if type(config) ~= "table" then
    return out
  end
  for _, key in ipairs(container.POLICY_GATED) do
    local v = config[key]
    if v ~= nil and v ~= false and v ~= "" and not (type(v) == "table" and next(v) == nil) then
      out[#out + 1] = key
    end
  end
  for key, flags in pairs(container.POLICY_GATED_VALUES) do
    if flags(config[key]) then
      out[#out + 1] = key
    end
  end
  table.sort(out)
  return out
end


--- Maps whose values are empty objects by design ({"80/tcp": {}}).
local EMPTY_OBJECT_MAPS = { ExposedPorts = true, Volumes = true }

local function strip(v, keep_empty)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    if type(x) == "table" then
      local y = strip(x, EMPTY_OBJECT_MAPS[k] == true)
      if next(y) ~= nil or keep_empty then
        out[k] = y
      end
    else
      out[k] = x
    end
  end
  return out
end


---Returns a copy of a Docker body without empty lists and maps (an empty
---Lua table would encode as {}, which dockerd rejects for list fields such
---as Dns or CapAdd); the values of ExposedPorts and Volumes stay {}.
---@param body table
---@return table
function container.strip(body)
  return strip(body, false)
end


---Encodes a Docker create body: the one place a body becomes JSON, after
---admission's mutations (see container.strip).
---@param body table
---@param stripped boolean|nil true when body comes from container.strip already
---@return string
function container.encode(body, stripped)
  return (require("cjson").encode(stripped and body or container.strip(body)))
end


---Parses one ulimit entry ("soft[:hard]") as Nomad does.
---@param name string
---@param value string
---@return table|nil ulimit { Name, Soft, Hard }
---@return string|nil err exact Nomad text
function container.parse_ulimit(name, value)
  if value == "" then
    return nil, string.format('Malformed ulimit specification %s: "", cannot be empty', name)
  end
  local soft_s, hard_s = value:match("^([^:]*):(.*)$")
  if not soft_s then
    soft_s, hard_s = value, value
  end
  local soft = soft_s:match("^%d+$") and math.tointeger(tonumber(soft_s))
  if not soft or soft >= MAX_INT then
    return nil, string.format("Malformed soft ulimit %s: %s", name, value)
  end
  local hard = hard_s:match("^%d+$") and math.tointeger(tonumber(hard_s))
  if not hard or hard >= MAX_INT then
    return nil, string.format("Malformed hard ulimit %s: %s", name, value)
  end
  return { Name = name, Soft = soft, Hard = hard }
end


---Tells whether s is a dotted-quad IPv4 address.
---@param s string
---@return boolean
function container.is_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return false
  end
  for _, part in ipairs({ a, b, c, d }) do
    if #part > 3 or tonumber(part) > 255 or (#part > 1 and part:sub(1, 1) == "0") then
      return false
    end
  end
  return true
end


local function hex_groups(s)
  if s == "" then
    return 0
  end
  local n = 0
  for group in (s .. ":"):gmatch("([^:]*):") do
    if not group:match("^%x%x?%x?%x?$") then
      return nil
    end
    n = n + 1
  end
  return n
end


---Tells whether s is an IPv6 address (RFC 4291 text forms, no zone).
---@param s string
---@return boolean
function container.is_ipv6(s)
  if not s:find(":", 1, true) then
    return false
  end
  local extra = 0
  local v4 = s:match(":(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    if not container.is_ipv4(v4) then
      return false
    end
    s = s:sub(1, #s - #v4) .. "0:0"
  end
  local _, doubles = s:gsub("::", "")
  if doubles > 1 or s:find(":::", 1, true) then
    return false
  end
  if doubles == 1 then
    local a, b = s:match("^(.-)::(.-)$")
    local na, nb = hex_groups(a), hex_groups(b)
    return na ~= nil and nb ~= nil and na + nb + extra < 8
  end
  return hex_groups(s) == 8
end


---Tells whether s is an IPv4 or IPv6 address.
---@param s string
---@return boolean
function container.is_ip(s)
  return container.is_ipv4(s) or container.is_ipv6(s)
end


local BUILTIN_NETWORKS = { [""] = true, default = true, bridge = true, host = true, none = true }

---Tells whether a network_mode names a user-defined network (aliases and
---static addresses need one).
---@param mode string|nil
---@return boolean
function container.user_network(mode)
  if mode == nil or BUILTIN_NETWORKS[mode] or mode:find("^container:") then
    return false
  end
  return true
end


local MOUNT_TYPES = { volume = true, bind = true, tmpfs = true }
local MOUNT_OPTIONS = { volume = "volume_options", bind = "bind_options", tmpfs = "tmpfs_options" }
local PROPAGATIONS = { private = true, rprivate = true, shared = true, rshared = true,
                       slave = true, rslave = true }
local NAMESPACE_MODES = {
  ipc_mode = { none = true, private = true, shareable = true, host = true, container = true },
  pid_mode = { host = true, container = true },
  uts_mode = { host = true },
  userns_mode = { host = true },
  cgroupns = { host = true, private = true },
}


local function has_var(s)
  return s:find("${", 1, true) ~= nil
end


-- Option checks of container.check: c holds add(kind, origin, fmt, ...),
-- warn(origin, fmt, ...), at(t, key), warnings and label.

-- Unsupported options, command, ulimit, deprecated SSL, load and the pull
-- options.
local function check_options(config, c)
  local add, at = c.add, c.at
  local warnings, label = c.warnings, c.label
  for _, key in ipairs(sorted_keys(config)) do
    if container.UNSUPPORTED[key] then
      add("type", at(config, key), "option %q is not supported yet", key)
    end
  end

  local cmd = config.command
  if cmd ~= nil then
    if cmd == "" then
      add("type", at(config, "command"), 'command empty: ""')
    elseif util.trim(cmd) ~= cmd then
      add("type", at(config, "command"), "command contains extra white space: %q", cmd)
    end
  end
  if config.ulimit then
    for _, name in ipairs(sorted_keys(config.ulimit)) do
      local _, err = container.parse_ulimit(name, config.ulimit[name])
      if err then
        add("type", at(config.ulimit, name), "%s", err)
      end
    end
  end
  for _, key in ipairs({ "SSL", "ssl" }) do
    if config[key] ~= nil then
      warnings[#warnings + 1] = util.format(
        "%s: %s config option %q is deprecated and has no effect", at(config, key), label, key)
    end
  end
  if config.load ~= nil and (config.load == "" or config.load:sub(1, 1) == "/"
      or container.clean_relative(config.load) == nil) then
    add("type", at(config, "load"),
      "load must name a file inside the task's local directory: %q", config.load)
  end
  if config.image_pull_timeout ~= nil then
    local schema = require("drv.schema")
    local ms = schema.duration_ms(config.image_pull_timeout)
    if not ms or ms <= 0 then
      add("type", at(config, "image_pull_timeout"),
        "invalid duration for image_pull_timeout: %q", config.image_pull_timeout)
    elseif ms > container.MAX_PULL_TIMEOUT_MS then
      add("type", at(config, "image_pull_timeout"),
        "image_pull_timeout must be at most 24h: %q", config.image_pull_timeout)
    end
  end
  if config.container_exists_attempts ~= nil and config.container_exists_attempts < 1 then
    add("type", at(config, "container_exists_attempts"),
      "container_exists_attempts must be at least 1: %d", config.container_exists_attempts)
  end
end


-- The image reference (drv.imageref) and the auth block.
local function check_image(config, c)
  local add, at = c.add, c.at
  local image = config.image
  if type(image) == "string" and image ~= "" then
    local ok, why = container.image_ref(image)
    if ok == nil then
      if why == container.IMAGE_CHARS then
        add("type", at(config, "image"), "image reference not allowed (%s): %q", why, image)
      else
        add("type", at(config, "image"), "invalid image reference %q (%s)", image, why)
      end
    end
  end
  local auth = config.auth
  if auth ~= nil then
    for _, key in ipairs({ "username", "password", "email" }) do
      local v = auth[key]
      -- the value is never quoted: it may be a secret
      if v ~= nil and v:find("[%z\r\n]") then
        add("type", at(auth, key), "auth %s must not contain NUL or line breaks", key)
      end
    end
    if auth.server_address ~= nil and auth.server_address ~= "" then
      local _, why = container.auth_server(auth.server_address)
      if why then
        add("type", at(auth, "server_address"), "invalid auth server_address %q (%s)",
          auth.server_address, why)
      end
    end
  end
end


-- DNS, extra hosts, MAC address and the network mode with its endpoint
-- options.
local function check_network(config, c)
  local add, warn, at = c.add, c.warn, c.at
  for i, s in ipairs(config.dns_servers or {}) do
    if not container.is_ip(s) then
      warn(at(config.dns_servers, i), "dns_servers entry is not an IP address and is skipped: %q", s)
    end
  end
  for i, s in ipairs(config.extra_hosts or {}) do
    local host, ip = s:match("^([^:]+):(.+)$")
    if not has_var(s) and (not host or not container.is_ip(ip)) then
      add("type", at(config.extra_hosts, i), 'extra_hosts entry must be "host:IP": %q', s)
    end
  end
  if config.mac_address ~= nil then
    local m = config.mac_address
    if not (m:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$") or m:match("^%x%x%-%x%x%-%x%x%-%x%x%-%x%x%-%x%x$")) then
      add("type", at(config, "mac_address"), "invalid mac_address: %q", m)
    end
  end

  local mode = config.network_mode
  for _, key in ipairs({ "network_aliases", "ipv4_address", "ipv6_address" }) do
    local v = config[key]
    if v ~= nil and not (type(v) == "table" and #v == 0) and not container.user_network(mode) then
      add("type", at(config, key), "%s needs a user-defined network_mode, found %q",
        key, mode or "bridge")
    end
  end
  if config.ipv4_address and not container.is_ipv4(config.ipv4_address) then
    add("type", at(config, "ipv4_address"), "ipv4_address is not an IPv4 address: %q",
      config.ipv4_address)
  end
  if config.ipv6_address and not container.is_ipv6(config.ipv6_address) then
    add("type", at(config, "ipv6_address"), "ipv6_address is not an IPv6 address: %q",
      config.ipv6_address)
  end
  if mode == "" then
    add("type", at(config, "network_mode"), 'network_mode must not be empty: ""')
  end
end


-- Namespace modes, isolation, security_opt and the numeric limits.
local function check_limits(config, c)
  local add, at = c.add, c.at
  for _, key in ipairs(sorted_keys(NAMESPACE_MODES)) do
    local v = config[key]
    if v ~= nil and v ~= "" then
      local kind, rest = v:match("^(%w+):(.*)$")
      local ok = NAMESPACE_MODES[key][v] and v ~= "container"
      if kind == "container" and NAMESPACE_MODES[key].container then
        ok = rest ~= ""
      end
      if not ok then
        add("type", at(config, key), "invalid value for %s: %q", key, v)
      end
    end
  end
  if config.isolation ~= nil and config.isolation ~= "" then
    add("type", at(config, "isolation"), "isolation mode %q is not supported on linux",
      config.isolation)
  end
  for i, s in ipairs(config.security_opt or {}) do
    if not (s == "no-new-privileges" or s:match("^[%w%-_]+[=:].+$")) then
      add("type", at(config.security_opt, i), "invalid security_opt: %q", s)
    end
  end
  if config.cpuset_cpus ~= nil and not config.cpuset_cpus:match("^%d+%-?%d*[%d,%-]*$") then
    add("type", at(config, "cpuset_cpus"), "invalid value for cpuset_cpus: %q", config.cpuset_cpus)
  end

  if config.cpu_cfs_period ~= nil and (config.cpu_cfs_period < 1000
      or config.cpu_cfs_period > 1000000) then
    add("type", at(config, "cpu_cfs_period"), "invalid value for cpu_cfs_period: %d",
      config.cpu_cfs_period)
  end
  if config.oom_score_adj ~= nil and (config.oom_score_adj < -1000 or config.oom_score_adj > 1000) then
    add("type", at(config, "oom_score_adj"), "oom_score_adj must be between -1000 and 1000: %d",
      config.oom_score_adj)
  end
  if config.memory_hard_limit ~= nil and (config.memory_hard_limit < 0
      or config.memory_hard_limit * MIB >= MAX_INT) then
    add("type", at(config, "memory_hard_limit"), "memory_hard_limit out of range: %d",
      config.memory_hard_limit)
  end
  if config.shm_size ~= nil and config.shm_size < 0 then
    add("type", at(config, "shm_size"), "shm_size must not be negative: %d", config.shm_size)
  end
  if config.pids_limit ~= nil and config.pids_limit < -1 then
    add("type", at(config, "pids_limit"), "pids_limit must be -1 (unlimited) or more: %d",
      config.pids_limit)
  end
  if config.port_map then
    for _, name in ipairs(sorted_keys(config.port_map)) do
      local p = config.port_map[name]
      if p < 1 or p > 65535 then
        add("type", at(config.port_map, name),
          "port_map %q must be a port number between 1 and 65535: %d", name, p)
      end
    end
  end
end


-- Devices, mounts and volumes.
local function check_mounts(config, c)
  local add, at = c.add, c.at
  for i, dev in ipairs(config.devices or {}) do
    if dev.host_path == nil or dev.host_path == "" then
      add("missing", at(config.devices, i), "host path must be set in configuration for devices")
    end
    local perms = dev.cgroup_permissions
    if perms ~= nil and perms ~= "" and perms:find("[^rwm]") then
      add("type", at(dev, "cgroup_permissions"), "invalid cgroup permission string: %q", perms)
    end
  end

  for _, key in ipairs({ "mounts", "mount" }) do
    for i, m in ipairs(config[key] or {}) do
      local mtype = m.type or "volume"
      if not MOUNT_TYPES[mtype] then
        add("type", at(m, "type"), 'invalid mount type, must be "bind", "volume", "tmpfs": %q', mtype)
      else
        if mtype == "tmpfs" and m.source ~= nil and m.source ~= "" then
          add("type", at(m, "source"), 'invalid source, must be "" for tmpfs: %q', m.source)
        end
        if mtype == "bind" and (m.source == nil or m.source == "") then
          add("missing", at(config[key], i), 'field "source" is required in a bind mount')
        end
        for t, opt in pairs(MOUNT_OPTIONS) do
          if m[opt] ~= nil and t ~= mtype then
            add("type", at(m, opt), "%s is only valid for a mount of type %q, found %q",
              opt, t, mtype)
          end
        end
      end
      if m.target == nil or m.target == "" then
        add("missing", at(config[key], i), 'field "target" is required in a mount')
      end
      local prop = m.bind_options and m.bind_options.propagation
      if prop ~= nil and not PROPAGATIONS[prop] then
        add("type", at(m.bind_options, "propagation"), "invalid bind propagation: %q", prop)
      end
      local tmpfs = m.tmpfs_options
      if tmpfs and tmpfs.size ~= nil and tmpfs.size < 0 then
        add("type", at(tmpfs, "size"), "tmpfs size must not be negative: %d", tmpfs.size)
      end
      if tmpfs and tmpfs.mode ~= nil and tmpfs.mode < 0 then
        add("type", at(tmpfs, "mode"), "tmpfs mode must not be negative: %d", tmpfs.mode)
      end
    end
  end

  for i, v in ipairs(config.volumes or {}) do
    local n = select(2, v:gsub(":", ":"))
    if n < 1 or n > 2 or v:match("^:") or v:match(":$") or v:find("::", 1, true) then
      add("type", at(config.volumes, i), "invalid docker volume: %q", v)
    end
  end
end


---Checks a normalised docker task config for the semantic rules of the
---reference (required image, value ranges, exact Nomad error texts).
---ctx: problems, warnings, label (`task "web"`), where(container, key).
---@param config table normalised config
---@param ctx table
---@param task_where string position of the task (used when config is absent)
function container.check(config, ctx, task_where)
  local problems, warnings = ctx.problems, ctx.warnings
  local label = ctx.label
  local c = { warnings = warnings, label = label }
  function c.at(t, key)
    return ctx.where(t, key)
  end
  function c.add(kind, origin, fmt, ...)
    problems[#problems + 1] = { kind = kind,
      message = origin .. ": " .. label .. " config: " .. util.format(fmt, ...) }
  end
  function c.warn(origin, fmt, ...)
    warnings[#warnings + 1] = origin .. ": " .. label .. " config: " .. util.format(fmt, ...)
  end
  if config == nil or config.image == nil or config.image == "" then
    local origin = task_where
    if config ~= nil then
      origin = config.image and c.at(config, "image") or ctx.where(config)
    end
    c.add("missing", origin, 'field "image" is required')
  end
  if config == nil then
    return
  end
  check_image(config, c)
  check_options(config, c)
  check_network(config, c)
  check_limits(config, c)
  check_mounts(config, c)
end

--- Longest image_pull_timeout (and agent pull_activity_timeout).
container.MAX_PULL_TIMEOUT_MS = 24 * 3600 * 1000
container.DEFAULT_PULL_TIMEOUT_MS = 300000
container.DEFAULT_PULL_ACTIVITY_TIMEOUT_MS = 120000

--- The reason given for an image with characters no reference may hold
--- (these would change the Engine API URL the image goes into).
container.IMAGE_CHARS = "letters, digits and . _ - / : @ only"

local image_refs, image_refs_n = {}, 0

---Parses the image of a task config (drv.imageref). Images are not
---interpolated, so "${" is refused like any other character no reference
---may hold; characters outside the reference alphabet get IMAGE_CHARS as
---the reason (the old message, which the attack corpus expects).
---A job of many tasks names the same image again and again: the answers
---are remembered (at most 256), so the returned table is shared by every
---caller: read it, never change it.
---@param image string
---@return table|nil ref
---@return string|nil reason
function container.image_ref(image)
  local hit = image_refs[image]
  if hit then
    return hit[1], hit[2]
  end
  local ref, why = container.parse_image(image)
  if image_refs_n >= 256 then
    image_refs, image_refs_n = {}, 0
  end
  image_refs[image] = { ref, why }
  image_refs_n = image_refs_n + 1
  return ref, why
end

---container.image_ref without the memo.
---@param image string
---@return table|nil ref
---@return string|nil reason
function container.parse_image(image)
  if image:find("${", 1, true) then
    return nil, "image references are not interpolated: \"${\" is not allowed"
  end
  local rest = image:sub(1, 8) == "https://" and image:sub(9) or image
  if #rest <= imageref.MAX_INPUT and not rest:find("^[a-zA-Z0-9%[][a-zA-Z0-9._/:@%[%]%-]*$") then
    return nil, container.IMAGE_CHARS
  end
  return imageref.parse(image)
end

---Normalises an auth server_address to host[:port] (Docker's
---ConvertToHostname: the http:// or https:// scheme and any path dropped).
---@param s string
---@return string|nil host
---@return string|nil reason
function container.auth_server(s)
  local rest = s:match("^[Hh][Tt][Tt][Pp][Ss]?://(.*)$") or s
  local host = rest:match("^[^/]*")
  if host == "" then
    return nil, "no registry host"
  end
  local why = imageref.check_domain(host)
  if why then
    return nil, why
  end
  return host
end

---Returns the pull decision for an image reference (see
---imageref.pull_policy): "always" for latest, no tag or force, else
---"missing". An unparsable reference gets "always" (it never plans).
---@param image string
---@param force boolean|nil
---@return string "always"|"missing"
function container.pull_policy(image, force)
  local ref = imageref.parse(image)
  if ref == nil then
    return "always"
  end
  return imageref.pull_policy(ref, force)
end


---Strips a leading "https://" from an image reference.
---@param image string
---@return string
function container.image_name(image)
  return (image:gsub("^https://", ""))
end


local function empty_nil(s)
  if s == "" then
    return nil
  end
  return s
end


local function clean_env_key(k)
  return (k:gsub("[^%w_]", "_"))
end


---Normalises a relative path ("local/", "./x/../y") and tells whether it
---stays inside its base directory.
---@param rel string
---@return string|nil path without leading or trailing slashes ("" for base)
function container.clean_relative(rel)
  local parts = {}
  for part in rel:gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then
        return nil
      end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end



local function percent_decode(s)
  if s:find("%%%X") or s:find("%%%x%X") or s:find("%%%x?$") then
    return nil
  end
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end


---Judges an artifact source against the agent's client.artifact settings.
---http:// and https:// URLs pass (their addresses are checked when the
---download connects). file:// URLs and absolute paths pass only when the
---path lies beneath one of conf.local_dirs; they return the decoded path
---and the directory it lies beneath.
---@param source string
---@param conf table agent.artifact
---@return table|nil { local_path, local_root } ({} for URLs)
---@return string|nil kind of problem ("type" or "denied")
---@return string|nil why
function container.artifact_source(source, conf)
  if type(source) ~= "string" or source == "" then
    return nil, "type", "source is empty"
  end
  if source:find("[%z\1-\31\127]") then
    return nil, "type", "source contains control characters"
  end
  local scheme = source:match("^(%a[%w+.-]*)://")
  scheme = scheme and scheme:lower()
  if scheme == "http" or scheme == "https" then
    return {}
  end
  local p
  if scheme == "file" then
    local rest = source:sub(8)
    local host, tail = rest:match("^([^/]*)(/.*)$")
    if not host or (host ~= "" and host:lower() ~= "localhost") then
      return nil, "type", "file:// URLs must name a local absolute path"
    end
    tail = tail:gsub("[?#].*$", "")
    p = percent_decode(tail)
    if p == nil or p:find("%z") then
      return nil, "type", "bad percent-encoding in the path"
    end
  elseif scheme == nil and source:sub(1, 1) == "/" then
    p = source
  else
    return nil, "type", "unsupported source, want an http:// or https:// URL "
      .. "(or a local file beneath client.artifact.local_dirs)"
  end
  for part in p:gmatch("[^/]+") do
    if part == ".." or part == "." then
      return nil, "denied", "local source paths must not contain \".\" or \"..\""
    end
  end
  local clean = path.clean(p)
  for _, dir in ipairs(conf.local_dirs or {}) do
    if clean:sub(1, #dir + 1) == dir .. "/" and #clean > #dir + 1 then
      return { local_path = clean, local_root = dir }
    end
  end
  if #(conf.local_dirs or {}) == 0 then
    return nil, "denied", "local sources are refused unless client.artifact.local_dirs "
      .. "lists a directory they lie beneath (only http:// and https:// are allowed by default)"
  end
  return nil, "denied", string.format("local source is not beneath a directory in "
    .. "client.artifact.local_dirs (%s)", table.concat(conf.local_dirs, ", "))
end


local function sub_path(base, rel)
  if rel == nil or rel == "" then
    return base
  end
  return base .. "/" .. rel
end


---Builds the interpolation scope of a task instance (interp module).
---`${meta.x}` reads the node (agent client) meta first, as Nomad 0.8 does,
---and falls back to the job < group < task meta merge.
---@param inst table
---@param env table the task environment
---@return table scope
function container.scope(inst, env)
  local job, group, task, agent = inst.job, inst.group, inst.task, inst.agent
  local node = inst.node or {}
  local meta = {}
  for _, m in ipairs({ job.meta or {}, group.meta or {}, task.meta or {}, agent.meta or {} }) do
    for k, v in pairs(m) do
      meta[k] = v
    end
  end
  return {
    env = env,
    meta = meta,
    nomad = { datacenter = env.NOMAD_DC, region = env.NOMAD_REGION },
    node = {
      ["unique.name"] = agent.name or node["unique.hostname"],
      datacenter = env.NOMAD_DC,
      class = agent.node_class,
      region = agent.region or "global",
    },
    attr = node,
  }
end


---Builds the environment of a task instance (ARCHITECTURE §7) and its
---interpolation scope. Port variables (inst.ports.env) come before the task
---env so that task env values and args can use them.
---@return table env map, table scope
local function environment(inst, unknown)
  local job, group, task, agent = inst.job, inst.group, inst.task, inst.agent
  local env = {
    NOMAD_ALLOC_DIR = "/alloc",
    NOMAD_TASK_DIR = "/local",
    NOMAD_SECRETS_DIR = "/secrets",
    NOMAD_ALLOC_ID = inst.alloc_id,
    NOMAD_ALLOC_NAME = inst.alloc_name,
    NOMAD_ALLOC_INDEX = string.format("%d", inst.alloc_index),
    NOMAD_TASK_NAME = task.name,
    NOMAD_GROUP_NAME = group.name,
    NOMAD_JOB_NAME = job.name,
    NOMAD_DC = agent.datacenter or "dc1",
    NOMAD_REGION = job.region or agent.region or "global",
    NOMAD_CPU_LIMIT = string.format("%d", task.resources.cpu),
    NOMAD_MEMORY_LIMIT = string.format("%d", task.resources.memory),
  }
  local meta = {}
  for _, m in ipairs({ job.meta or {}, group.meta or {}, task.meta or {} }) do
    for k, v in pairs(m) do
      meta[k] = v
    end
  end
  for k, v in pairs(meta) do
    local key = clean_env_key(k)
    env["NOMAD_META_" .. key] = v
    env["NOMAD_META_" .. key:upper()] = v
  end
  local ports = type(inst.ports) == "table" and inst.ports.env
  if type(ports) == "table" then
    for k, v in pairs(ports) do
      env[k] = tostring(v)
    end
  end
  local scope = container.scope(inst, env)
  local expanded = {}
  for _, k in ipairs(sorted_keys(task.env or {})) do
    expanded[k] = interp.expand(task.env[k], scope, unknown)
  end
  for k, v in pairs(expanded) do
    env[k] = v
  end
  return env, scope
end


-- The list, or nil when it is nil or empty (Docker then keeps its default).
local function nonempty_list(list)
  if list and #list > 0 then
    return list
  end
  return nil
end


local function copy_map(m)
  if not m or next(m) == nil then
    return nil
  end
  local out = {}
  for k, v in pairs(m) do
    out[k] = v
  end
  return out
end


local function expand_map(m, scope, unknown)
  if not m or next(m) == nil then
    return nil
  end
  local out = {}
  for _, k in ipairs(sorted_keys(m)) do
    out[k] = interp.expand(m[k], scope, unknown)
  end
  return out
end


---Maps the user `volumes` to bind strings (reference §3.15, Nomad 0.8.3):
---a relative source joins the task directory unless a volume_driver is set
---(then it names a volume); the mode and the selinux label merge ("ro,z").
local function user_binds(config, task_dir, label, scope, unknown)
  local binds = {}
  for _, v in ipairs(config.volumes or {}) do
    local s = interp.expand(v, scope, unknown)
    local src, dst, mode = s:match("^([^:]*):([^:]*):?(.*)$")
    if not src then
      src, dst, mode = s, "", ""
    end
    if src:sub(1, 1) == "/" then
      src = path.clean(src)
    elseif not config.volume_driver then
      src = path.clean(task_dir .. "/" .. src)
    end
    local opts = mode
    if label then
      opts = (opts ~= "") and (opts .. "," .. label) or label
    end
    binds[#binds + 1] = src .. ":" .. dst .. ((opts ~= "") and (":" .. opts) or "")
  end
  return binds
end


---Maps `mounts` and `mount` to HostConfig.Mounts entries.
local function mounts(config, task_dir, scope, unknown)
  local out = {}
  local function each(list)
    for _, m in ipairs(list or {}) do
      local mtype = m.type or "volume"
      local dm = {
        Type = mtype,
        Target = m.target and interp.expand(m.target, scope, unknown),
        ReadOnly = m.readonly == true,
      }
      local src = m.source and m.source ~= "" and interp.expand(m.source, scope, unknown) or nil
      if src and mtype == "bind" and src:sub(1, 1) ~= "/" then
        src = path.clean(task_dir .. "/" .. src)
      end
      dm.Source = src
      local vo = m.volume_options
      if mtype == "volume" and vo then
        local dc = vo.driver_config
        dm.VolumeOptions = {
          NoCopy = vo.no_copy == true,
          Labels = expand_map(vo.labels, scope, unknown),
          DriverConfig = dc and {
            Name = dc.name and interp.expand(dc.name, scope, unknown),
            Options = expand_map(dc.options, scope, unknown),
          } or nil,
        }
      end
      local bo = m.bind_options
      if mtype == "bind" and bo and bo.propagation then
        dm.BindOptions = { Propagation = bo.propagation }
      end
      local to = m.tmpfs_options
      if mtype == "tmpfs" and to and (to.size or to.mode) then
        dm.TmpfsOptions = { SizeBytes = to.size, Mode = to.mode }
      end
      out[#out + 1] = dm
    end
  end
  each(config.mounts)
  each(config.mount)
  return out
end


local function devices(config)
  local out = {}
  for _, d in ipairs(config.devices or {}) do
    local cpath = d.container_path
    if cpath == nil or cpath == "" then
      cpath = d.host_path
    end
    local perms = d.cgroup_permissions
    if perms == nil or perms == "" then
      perms = "rwm"
    end
    out[#out + 1] = { PathOnHost = d.host_path, PathInContainer = cpath, CgroupPermissions = perms }
  end
  return out
end


-- The state one container.build call shares with its steps: the instance
-- and its task, config and agent, the interpolation scope, the problems
-- found so far and fail/at/expand/expand_list over them.
local function new_build(inst)
  local task, agent = inst.task, inst.agent
  local b = {
    inst = inst, task = task, config = task.config or {}, agent = agent,
    options = agent.options or {}, node = inst.node or {}, unknown = {}, problems = {},
  }
  function b.at(t, key)
    if type(inst.where) == "function" then
      return inst.where(t, key)
    end
    return inst.job_path or "job"
  end
  function b.fail(kind, origin, fmt, ...)
    b.problems[#b.problems + 1] = { kind = kind, message = util.format("%s: task %q config: ",
      origin, task.name) .. string.format(fmt, ...) }
  end
  b.safe_name = task.name:gsub("/", "_")
  b.alloc_dir = agent.data_dir .. "/alloc/" .. inst.alloc_id
  b.task_dir = b.alloc_dir .. "/" .. b.safe_name
  b.env, b.scope = environment(inst, b.unknown)
  function b.expand(v)
    return (interp.expand(v, b.scope, b.unknown))
  end
  function b.expand_list(list)
    return (interp.expand_list(list, b.scope, b.unknown))
  end
  return b
end


-- The process and its metadata: Cmd, Entrypoint, WorkingDir, Hostname,
-- User, Env, Labels, Tty, OpenStdin, MacAddress, Healthcheck.
local function build_process(body, b)
  local job, group, task, inst, config = b.inst.job, b.inst.group, b.task, b.inst, b.config
  local env, expand, expand_list = b.env, b.expand, b.expand_list

  local args = config.args and expand_list(config.args) or {}
  if config.command then
    local cmd = { expand(config.command) }
    table.move(args, 1, #args, 2, cmd)
    body.Cmd = cmd
  else
    body.Cmd = nonempty_list(args)
  end
  if config.entrypoint then
    body.Entrypoint = nonempty_list(expand_list(config.entrypoint))
  end
  if config.work_dir then
    body.WorkingDir = expand(config.work_dir)
  end
  if config.hostname then
    body.Hostname = expand(config.hostname)
  end
  body.User = task.user
  local env_list = {}
  for _, k in ipairs(sorted_keys(env)) do
    env_list[#env_list + 1] = k .. "=" .. env[k]
  end
  body.Env = env_list

  local labels = {}
  for _, k in ipairs(sorted_keys(config.labels or {})) do
    labels[k] = expand(config.labels[k])
  end
  labels["drvctl.job"] = job.name
  labels["drvctl.group"] = group.name
  labels["drvctl.task"] = task.name
  labels["drvctl.alloc_id"] = inst.alloc_id
  body.Labels = labels
  body.Tty = config.tty == true
  body.OpenStdin = config.interactive == true
  body.MacAddress = config.mac_address -- Config.MacAddress: API < 1.44 semantics
  if config.healthchecks and config.healthchecks.disable then
    body.Healthcheck = { Test = { "NONE" } }
  end
end


-- HostConfig.Binds: the alloc, local and secrets dirs, then the task's volumes.
local function build_binds(b)
  local config, options, alloc_dir, task_dir = b.config, b.options, b.alloc_dir, b.task_dir
  local scope, unknown = b.scope, b.unknown
  local selinux = options.volumes_selinuxlabel
  local suffix = selinux and (":" .. selinux) or ""
  local binds = {
    alloc_dir .. "/alloc:/alloc" .. suffix,
    task_dir .. "/local:/local" .. suffix,
    task_dir .. "/secrets:/secrets" .. suffix,
  }
  table.move(user_binds(config, task_dir, selinux, scope, unknown), 1, #(config.volumes or {}),
    #binds + 1, binds)
  return binds
end


-- Memory and CPU limits (reference §3.11, §3.12).
local function build_limits(hc, b)
  local task, config, agent, node, fail, at = b.task, b.config, b.agent, b.node, b.fail, b.at
  -- memory (reference §3.12): a hard limit above resources.memory becomes
  -- Memory, and resources.memory the reservation
  local mem = task.resources.memory
  local hard = config.memory_hard_limit or 0
  if hard > 0 then
    if mem > hard then
      fail("type", at(config, "memory_hard_limit"),
        "task memory requirements exceed driver hard limit of %d MB: %d", hard, mem)
    end
    hc.Memory = math.tointeger(hard * MIB)
    hc.MemoryReservation = math.tointeger(mem * MIB)
  else
    hc.Memory = math.tointeger(mem * MIB)
  end
  hc.MemorySwap = hc.Memory
  hc.CpuShares = math.tointeger(task.resources.cpu)

  -- cpu hard limit (reference §3.11): quota = int(cpu / total * period) * cores
  if config.cpu_hard_limit then
    local total = tonumber(agent.cpu_total_compute) or tonumber(node["cpu.totalcompute"])
    local cores = math.tointeger(tonumber(node["cpu.numcores"]))
    local period = config.cpu_cfs_period or 100000
    if not total or total <= 0 then
      fail("config", at(config, "cpu_hard_limit"),
        "cpu_hard_limit needs the node's total CPU compute (cpu.totalcompute), which is unknown;"
          .. " set client cpu_total_compute: %q",
        tostring(agent.cpu_total_compute or node["cpu.totalcompute"]))
    elseif not cores or cores <= 0 then
      fail("config", at(config, "cpu_hard_limit"),
        "cpu_hard_limit needs the node's CPU core count (cpu.numcores), which is unknown: %q",
        tostring(node["cpu.numcores"]))
    else
      hc.CpuPeriod = period
      hc.CpuQuota = math.tointeger(math.floor(task.resources.cpu / total * period)) * cores
    end
  end
  if config.cpuset_cpus then
    hc.CpusetCpus = config.cpuset_cpus
  end
end


-- The other HostConfig options: logging, DNS, sysctls, ulimits, and the
-- privilege-widening options admission judges.
local function build_host_options(hc, b)
  local config, scope, unknown, task_dir = b.config, b.scope, b.unknown, b.task_dir
  local expand_list = b.expand_list
  if config.logging then
    local lc = config.logging
    local ltype = lc.type or lc.driver
    if ltype == nil or ltype == "" then
      ltype = "json-file"
    end
    hc.LogConfig = { Type = ltype, Config = expand_map(lc.config, scope, unknown) }
  else
    hc.LogConfig = { Type = "json-file", Config = { ["max-size"] = "2m", ["max-file"] = "2" } }
  end

  local dns = {}
  for _, s in ipairs(config.dns_servers or {}) do
    if container.is_ip(s) then
      dns[#dns + 1] = s
    end
  end
  hc.Dns = nonempty_list(dns)
  hc.DnsSearch = nonempty_list(config.dns_search_domains)
  hc.DnsOptions = nonempty_list(config.dns_options)
  hc.ExtraHosts = config.extra_hosts and nonempty_list(expand_list(config.extra_hosts))
  hc.Sysctls = copy_map(config.sysctl)
  if config.ulimit then
    local ulimits = {}
    for _, name in ipairs(sorted_keys(config.ulimit)) do
      ulimits[#ulimits + 1] = assert(container.parse_ulimit(name, config.ulimit[name]))
    end
    hc.Ulimits = nonempty_list(ulimits)
  end
  if config.shm_size and config.shm_size ~= 0 then
    hc.ShmSize = config.shm_size
  end
  if config.readonly_rootfs then
    hc.ReadonlyRootfs = true
  end
  if config.init then
    hc.Init = true
  end
  if config.oom_score_adj and config.oom_score_adj ~= 0 then
    hc.OomScoreAdj = config.oom_score_adj
  end
  hc.PidsLimit = config.pids_limit
  hc.GroupAdd = nonempty_list(config.group_add)
  hc.StorageOpt = copy_map(config.storage_opt)

  -- privilege-widening options (POLICY_GATED; admission decides)
  if config.privileged then
    hc.Privileged = true
  end
  hc.CapAdd = nonempty_list(config.cap_add)
  hc.CapDrop = nonempty_list(config.cap_drop)
  hc.SecurityOpt = nonempty_list(config.security_opt)
  hc.Devices = nonempty_list(devices(config))
  hc.Mounts = nonempty_list(mounts(config, task_dir, scope, unknown))
  hc.VolumeDriver = config.volume_driver
  hc.NetworkMode = config.network_mode
  hc.IpcMode = config.ipc_mode
  hc.PidMode = config.pid_mode
  hc.UTSMode = config.uts_mode
  hc.UsernsMode = config.userns_mode
  hc.CgroupnsMode = config.cgroupns
  hc.Runtime = config.runtime
end


-- Port bindings and exposed ports (computed by the driver with ports.lua).
local function build_ports(body, hc, inst)
  local ports = type(inst.ports) == "table" and inst.ports or {}
  if type(ports.bindings) == "table" and next(ports.bindings) then
    local pb = {}
    for _, k in ipairs(sorted_keys(ports.bindings)) do
      local list = {}
      for i, b in ipairs(ports.bindings[k]) do
        list[i] = { HostIp = b.HostIp or "", HostPort = tostring(b.HostPort or "") }
      end
      pb[k] = list
    end
    hc.PortBindings = pb
  end
  if type(ports.exposed) == "table" and next(ports.exposed) then
    local ep = {}
    for k in pairs(ports.exposed) do
      ep[k] = {}
    end
    body.ExposedPorts = ep
  end
end


-- The user-defined network endpoint: aliases and static addresses.
local function build_network(body, b)
  local config, expand_list = b.config, b.expand_list

  local mode = config.network_mode
  if container.user_network(mode) then
    local ep = {}
    if config.ipv4_address or config.ipv6_address then
      ep.IPAMConfig = { IPv4Address = config.ipv4_address, IPv6Address = config.ipv6_address }
    end
    ep.Aliases = config.network_aliases and nonempty_list(expand_list(config.network_aliases))
    if next(ep) then
      body.NetworkingConfig = { EndpointsConfig = { [mode] = ep } }
    end
  end
end


-- The kill timeout: the task's, capped by the agent's max_kill_timeout.
local function kill_timeout_ms(task, agent)
  local kill_ms = task.kill_timeout_ms
  local max_kill = agent.max_kill_timeout_ms or 30000
  if kill_ms > max_kill then
    kill_ms = max_kill
  end
  if kill_ms <= 0 then
    kill_ms = 1000
  end
  return kill_ms
end


-- The task's artifacts as the C fetcher takes them (problems for sources
-- the agent does not allow).
local function build_artifacts(b)
  local task, agent, task_dir, at, problems = b.task, b.agent, b.task_dir, b.at, b.problems
  local artifacts = {}
  local aconf = agent.artifact or {}
  for _, a in ipairs(task.artifacts or {}) do
    local opts = a.options or {}
    local src, kind, why = container.artifact_source(a.source, aconf)
    if src == nil then
      problems[#problems + 1] = { kind = kind, message = string.format(
        "%s: task %q: artifact %q: %s", at(a, "source"), task.name, tostring(a.source), why) }
    else
      local dest = container.clean_relative(a.destination or "local/") or ""
      artifacts[#artifacts + 1] = {
        source = a.source,
        task_dir = task_dir,
        dest = dest,
        dest_dir = sub_path(task_dir, dest),
        checksum = opts.checksum,
        archive = opts.archive,
        local_path = src.local_path,
        local_root = src.local_root,
        read_timeout_ms = aconf.http_read_timeout_ms,
        max_size = aconf.http_max_size,
        max_unpacked_bytes = aconf.decompression_size_limit,
        max_unpacked_files = aconf.decompression_file_count_limit,
        allow_private = aconf.allow_private == true,
      }
    end
  end
  return artifacts
end


---Maps one task instance to its plan entry and Docker create body.
---inst: job, group, task (internal tables), alloc_id, alloc_index,
---alloc_name, agent (contract B flat agent with options); optional: node
---(host.node attributes), ports ({ env, bindings, exposed }, see contracts2),
---where (jobspec's where(table, key)), job_path (origin fallback).
---On an expected failure returns nil and an array of problems.
---@param inst table
---@return table|nil entry plan task entry (body is a JSON string)
---@return table body the create body as a table (problems on failure)
---@return string[] unknown variable references left as written
function container.build(inst)
  local b = new_build(inst)
  local job, group, task, agent, config = inst.job, inst.group, b.task, b.agent, b.config
  local task_dir, alloc_dir, problems = b.task_dir, b.alloc_dir, b.problems

  local image = container.image_name(config.image)
  local body = { Image = image }
  build_process(body, b)
  local hc = { Binds = build_binds(b) }
  build_limits(hc, b)
  build_host_options(hc, b)
  build_ports(body, hc, inst)
  body.HostConfig = hc
  build_network(body, b)
  if #problems > 0 then
    return nil, problems
  end

  local kill_ms = kill_timeout_ms(task, agent)
  local artifacts = build_artifacts(b)
  if #problems > 0 then
    return nil, problems
  end

  local ref, why = container.image_ref(config.image)
  if ref == nil then
    -- container.check refuses it at load time; a caller that skipped it
    problems[#problems + 1] = { kind = "type", message = util.format(
      "%s: task %q config: invalid image reference %q (%s)", b.at(config, "image"),
      task.name, config.image, why) }
    return nil, problems
  end
  local pull_timeout = container.DEFAULT_PULL_TIMEOUT_MS
  if config.image_pull_timeout then
    pull_timeout = require("drv.schema").duration_ms(config.image_pull_timeout)
  end
  local options = b.options
  local auth = config.auth or {}

  local entry = {
    job = job.name,
    group = group.name,
    task = task.name,
    alloc_id = inst.alloc_id,
    alloc_index = inst.alloc_index,
    alloc_name = inst.alloc_name,
    name = b.safe_name .. "-" .. inst.alloc_id,
    image = image,
    load = config.load and (task_dir .. "/local/" .. container.clean_relative(config.load)) or nil,
    pull = imageref.pull_policy(ref, config.force_pull),
    image_repo = ref.repo,
    image_tag = imageref.pull_tag(ref),
    image_registry = ref.registry,
    image_pull_timeout_ms = pull_timeout,
    pull_activity_timeout_ms = options.pull_activity_timeout_ms
      or container.DEFAULT_PULL_ACTIVITY_TIMEOUT_MS,
    -- kept out of the body and never shown (driver.PLAN_FIELDS)
    auth_soft_fail = config.auth_soft_fail == true,
    auth_username = empty_nil(auth.username),
    auth_password = empty_nil(auth.password),
    auth_email = empty_nil(auth.email),
    auth_server = auth.server_address and container.auth_server(auth.server_address) or nil,
    container_exists_attempts = config.container_exists_attempts,
    body = not inst.skip_body_json and container.encode(body) or nil,
    kill_signal = task.kill_signal,
    kill_timeout_ms = kill_ms,
    tty = body.Tty,
    alloc_dir = alloc_dir,
    dirs = {
      alloc_dir,
      alloc_dir .. "/alloc",
      alloc_dir .. "/alloc/logs",
      alloc_dir .. "/alloc/data",
      alloc_dir .. "/alloc/tmp",
      task_dir,
      task_dir .. "/local",
      task_dir .. "/secrets",
    },
    log_dir = alloc_dir .. "/alloc/logs",
    log_max_files = task.logs.max_files,
    log_max_file_size = math.tointeger(task.logs.max_file_size * MIB),
    artifacts = artifacts,
  }
  return entry, body, b.unknown
end


return container
