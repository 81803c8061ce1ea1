--- Agent configuration (HCL): data dir, Docker endpoint, docker.* client
--- options and the `plugin "docker" { config { ... } }` block.
local path = require("drv.path")
local schema = require("drv.schema")
local util = require("drv.util")

local agent = {}


local IGNORE = { ignore = true }

local CLIENT = {
  enabled = "bool",
  meta = { map = "scalar" },
  options = { map = "scalar" },
  max_kill_timeout = "string",
  servers = IGNORE,
  node_class = "string",
  network_interface = "string",
  cpu_total_compute = "int",
  min_dynamic_port = "int",
  max_dynamic_port = "int",
}

local TOP = {
  data_dir = "string",
  datacenter = "string",
  region = "string",
  name = "string",
  client = { object = CLIENT },
  plugin = "any",
  policy_dir = "string",
  max_kill_timeout = "string",
  log_level = IGNORE,
}

local PLUGIN_CONFIG = {
  endpoint = "string",
  tls = { object = { cert = "string", key = "string", ca = "string" } },
  volumes = { object = { enabled = "bool", selinuxlabel = "string" } },
  allow_privileged = "bool",
  allow_caps = { list = "string" },
  allow_runtimes = { list = "string" },
  -- privilege-widening options the shipped policies deny unless listed
  allow_network_modes = { list = "string" },
  allow_networks = { list = "string" },
  allow_container_namespaces = "bool",
  allow_devices = { list = "string" },
  allow_log_drivers = { list = "string" },
  allow_security_opt = { list = "string" },
  auth = { object = { config = "string", helper = "string" } },
  gc = { object = { image = "bool", image_delay = "string", container = "bool" } },
  -- per policy: enabled and declared settings (policies/*.lua)
  policy_options = { map = { map = "any" } },
}

--- Legacy client options: key -> { field, kind }.
local OPTIONS = {
  ["docker.endpoint"] = { "endpoint", "string" },
  ["docker.tls.cert"] = { "tls_cert", "string" },
  ["docker.tls.key"] = { "tls_key", "string" },
  ["docker.tls.ca"] = { "tls_ca", "string" },
  ["docker.cleanup.image"] = { "cleanup_image", "bool" },
  ["docker.cleanup.image.delay"] = { "cleanup_image_delay", "duration" },
  ["docker.cleanup.container"] = { "cleanup_container", "bool" },
  ["docker.volumes.enabled"] = { "volumes_enabled", "bool" },
  ["docker.volumes.selinuxlabel"] = { "volumes_selinuxlabel", "string" },
  ["docker.privileged.enabled"] = { "privileged_enabled", "bool" },
  ["docker.caps.whitelist"] = { "caps_whitelist", "list" },
  ["docker.caps.allowlist"] = { "caps_whitelist", "list" },
  ["docker.auth.config"] = { "auth_config", "string" },
  ["docker.auth.helper"] = { "auth_helper", "string" },
}

--- allow_* lists of the plugin config: key -> validator(entry) -> nil | why
local ALLOW_CHECKS = {
  allow_network_modes = function(v)
    if v ~= "host" then
      return 'only "host" can be allowed (bridge, none and default always are; '
        .. "list user-defined networks in allow_networks)"
    end
  end,
  allow_networks = function(v)
    if not v:match("^[%w][%w_.%-]*$") then
      return "not a network name"
    end
    if v == "host" or v == "bridge" or v == "none" or v == "default" then
      return "not a user-defined network (see allow_network_modes)"
    end
  end,
  allow_devices = function(v)
    if v:sub(1, 5) ~= "/dev/" or path.clean(v) ~= v then
      return "must be a clean absolute path under /dev/"
    end
  end,
  allow_log_drivers = function(v)
    if not v:match("^[%w][%w_.:/%-]*$") then
      return "not a log driver name"
    end
  end,
  allow_security_opt = function(v)
    if v == "" or v:find("%s") then
      return "must be one security_opt without spaces"
    end
  end,
}
local ALLOW_LISTS = {}
for k in pairs(ALLOW_CHECKS) do
  ALLOW_LISTS[#ALLOW_LISTS + 1] = k
end
table.sort(ALLOW_LISTS)


local function check_allow_lists(c, where, add)
  for _, k in ipairs(ALLOW_LISTS) do
    for i, v in ipairs(c[k] or {}) do
      local why = ALLOW_CHECKS[k](v)
      if why then
        add(where(c[k], i), string.format('plugin "docker" %s: %s: %q', k, why, v))
      end
    end
  end
end

local BOOLS = {
  ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true, True = true,
  ["0"] = false, f = false, F = false, FALSE = false, ["false"] = false, False = false,
}

local DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
local DEFAULT_MIN_DYNAMIC_PORT = 20000
local DEFAULT_MAX_DYNAMIC_PORT = 32000


---Makes `p` absolute against `cwd` (or /) and cleans it lexically.
function agent.absolute(p, cwd)
  return path.join(cwd or "/", p)
end


local function split_list(s)
  local out = {}
  for item in s:gmatch("[^,]+") do
    item = util.trim(item)
    if item ~= "" then
      out[#out + 1] = item
    end
  end
  return out
end


---Returns the default agent for a host (no config file).
---@param host table
---@return table
function agent.defaults(host)
  host = host or {}
  return agent.build({}, host)
end


---Builds the flat agent table from collected settings.
---s: data_dir, datacenter, region, name, meta, policy_dir, max_kill_timeout_ms,
---and the option fields (endpoint, tls_*, cleanup_*, volumes_*, ...).
---@param s table
---@param host table
---@return table
function agent.build(s, host)
  local a = {
    data_dir = agent.absolute(host.data_dir or s.data_dir or host.default_data_dir or "/var/lib/drvctl", host.cwd),
    datacenter = s.datacenter or "dc1",
    region = s.region or "global",
    name = s.name,
    meta = s.meta or {},
    policy_dir = s.policy_dir and agent.absolute(s.policy_dir, host.cwd) or nil,
    max_kill_timeout_ms = s.max_kill_timeout_ms or 30000,
    node_class = s.node_class,
    network_interface = s.network_interface,
    cpu_total_compute = s.cpu_total_compute,
    min_dynamic_port = s.min_dynamic_port or DEFAULT_MIN_DYNAMIC_PORT,
    max_dynamic_port = s.max_dynamic_port or DEFAULT_MAX_DYNAMIC_PORT,
  }
  if s.endpoint and s.endpoint ~= "" then
    a.endpoint = s.endpoint
    a.tls_ca, a.tls_cert, a.tls_key = s.tls_ca, s.tls_cert, s.tls_key
  elseif host.docker_host and host.docker_host ~= "" then
    a.endpoint = host.docker_host
    if host.docker_tls_verify and host.docker_tls_verify ~= "" and host.docker_cert_path
        and host.docker_cert_path ~= "" then
      local dir = host.docker_cert_path
      a.tls_ca, a.tls_cert, a.tls_key = dir .. "/ca.pem", dir .. "/cert.pem", dir .. "/key.pem"
    end
  else
    a.endpoint = DEFAULT_ENDPOINT
  end
  local delay = s.cleanup_image_delay_ms
  a.options = {
    caps_whitelist = s.caps_whitelist,
    volumes_enabled = s.volumes_enabled == true,
    volumes_selinuxlabel = s.volumes_selinuxlabel,
    privileged_enabled = s.privileged_enabled == true,
    allow_runtimes = s.allow_runtimes or { "runc" },
    allow_network_modes = s.allow_network_modes or {},
    allow_networks = s.allow_networks or {},
    allow_container_namespaces = s.allow_container_namespaces == true,
    allow_devices = s.allow_devices or {},
    allow_log_drivers = s.allow_log_drivers or {},
    allow_security_opt = s.allow_security_opt or {},
    policy_options = s.policy_options or {},
    cleanup_image = s.cleanup_image ~= false,
    cleanup_image_delay_ms = delay or 180000,
    cleanup_container = s.cleanup_container ~= false,
    auth_config = s.auth_config and agent.absolute(s.auth_config, host.cwd) or nil,
    auth_helper = s.auth_helper,
  }
  return a
end


---Parses an agent config file into the flat agent table (contract B).
---@param src string|nil HCL source (nil: defaults)
---@param path string|nil file name for messages
---@param host table
---@return table|nil agent
---@return table|nil problems
function agent.load(src, path, host)
  host = host or {}
  if src == nil then
    return agent.defaults(host)
  end
  path = path or "agent.hcl"
  local hcl = require("drv.hcl")
  local tree, err = hcl.parse(src, path)
  if tree == nil then
    return nil, { { kind = "config", message = err } }
  end
  local problems, warnings = {}, {}
  local origin = setmetatable({}, { __mode = "k" })
  local function where(c, k)
    local raw = (type(c) == "table" and origin[c]) or c
    local l, col = hcl.pos(raw, k)
    if l then
      return string.format("%s:%d:%d", path, l, col)
    end
    return path
  end
  local function add(origin_s, text)
    problems[#problems + 1] = { kind = "config", message = origin_s .. ": " .. text }
  end
  local function ctx(label)
    return { problems = problems, warnings = warnings, label = label, noun = "key",
             where = where, linecol = hcl.pos, origin = origin, name = path }
  end

  local top = schema.normalize(tree, { object = TOP }, ctx("agent config")) or {}
  local s = {
    data_dir = top.data_dir, datacenter = top.datacenter, region = top.region,
    name = top.name, policy_dir = top.policy_dir,
  }
  local client = top.client or {}
  s.meta = client.meta
  local craw = origin[client] or client
  if client.node_class ~= nil then
    s.node_class = client.node_class
  end
  if client.network_interface ~= nil then
    if client.network_interface == "" then
      add(where(craw, "network_interface"), 'client "network_interface" must not be empty')
    else
      s.network_interface = client.network_interface
    end
  end
  if client.cpu_total_compute ~= nil then
    if client.cpu_total_compute <= 0 then
      add(where(craw, "cpu_total_compute"), string.format(
        'client "cpu_total_compute" must be a positive number of MHz, found %d',
        client.cpu_total_compute))
    else
      s.cpu_total_compute = client.cpu_total_compute
    end
  end
  local range_ok = true
  for _, k in ipairs({ "min_dynamic_port", "max_dynamic_port" }) do
    local v = client[k]
    if v ~= nil then
      if v < 1 or v > 65535 then
        add(where(craw, k), string.format("client %q must be between 1 and 65535, found %d", k, v))
        range_ok = false
      else
        s[k] = v
      end
    end
  end
  local lo = s.min_dynamic_port or DEFAULT_MIN_DYNAMIC_PORT
  local hi = s.max_dynamic_port or DEFAULT_MAX_DYNAMIC_PORT
  if range_ok and lo >= hi then
    local k = client.max_dynamic_port and "max_dynamic_port" or "min_dynamic_port"
    add(where(craw, k), string.format(
      'client "min_dynamic_port" must be less than "max_dynamic_port", found %d and %d', lo, hi))
  end

  local function duration(v, c, k)
    local ms = schema.duration_ms(v)
    if not ms then
      add(where(c, k), string.format("invalid duration for %q: %q", k, v))
    end
    return ms
  end
  local mkt = top.max_kill_timeout or client.max_kill_timeout
  if mkt then
    s.max_kill_timeout_ms = duration(mkt, top.max_kill_timeout and top or client,
      "max_kill_timeout")
  end

  local opts = client.options or {}
  local option_keys = {}
  for k in pairs(opts) do
    option_keys[#option_keys + 1] = k
  end
  table.sort(option_keys)
  for _, k in ipairs(option_keys) do
    local v = opts[k]
    local spec = OPTIONS[k]
    if spec then
      local field, kind = spec[1], spec[2]
      if kind == "bool" then
        if BOOLS[v] == nil then
          add(where(opts, k), string.format("option %q must be true or false, found %q", k, v))
        else
          s[field] = BOOLS[v]
        end
      elseif kind == "duration" then
        s[field .. "_ms"] = duration(v, opts, k)
      elseif kind == "list" then
        s[field] = split_list(v)
      else
        s[field] = v
      end
    elseif k:sub(1, 7) == "docker." then
      local hint = schema.suggest(k, OPTIONS)
      add(where(opts, k), string.format("unknown client option %q%s", k,
        hint and string.format(', did you mean "%s"?', hint) or ""))
    end
  end

  local plugins = top.plugin
  if plugins ~= nil then
    if type(plugins) ~= "table" or plugins[1] == nil then
      add(where(tree, "plugin"), 'wrong type for key "plugin": expected block')
      plugins = {}
    end
    for i, p in ipairs(plugins) do
      local labels = hcl.labels(p)
      if labels[1] == "docker" then
        local body = schema.normalize(p, { object = { config = { object = PLUGIN_CONFIG } } },
          ctx('plugin "docker"')) or {}
        local c = body.config or {}
        s.endpoint = c.endpoint or s.endpoint
        if c.tls then
          s.tls_cert = c.tls.cert or s.tls_cert
          s.tls_key = c.tls.key or s.tls_key
          s.tls_ca = c.tls.ca or s.tls_ca
        end
        if c.volumes then
          if c.volumes.enabled ~= nil then
            s.volumes_enabled = c.volumes.enabled
          end
          s.volumes_selinuxlabel = c.volumes.selinuxlabel or s.volumes_selinuxlabel
        end
        if c.allow_privileged ~= nil then
          s.privileged_enabled = c.allow_privileged
        end
        s.caps_whitelist = c.allow_caps or s.caps_whitelist
        s.allow_runtimes = c.allow_runtimes or s.allow_runtimes
        check_allow_lists(c, where, add)
        for _, k in ipairs(ALLOW_LISTS) do
          s[k] = c[k] or s[k]
        end
        if c.allow_container_namespaces ~= nil then
          s.allow_container_namespaces = c.allow_container_namespaces
        end
        s.policy_options = c.policy_options or s.policy_options
        if c.auth then
          s.auth_config = c.auth.config or s.auth_config
          s.auth_helper = c.auth.helper or s.auth_helper
        end
        if c.gc then
          if c.gc.image ~= nil then
            s.cleanup_image = c.gc.image
          end
          if c.gc.container ~= nil then
            s.cleanup_container = c.gc.container
          end
          if c.gc.image_delay then
            s.cleanup_image_delay_ms = duration(c.gc.image_delay, origin[c.gc] or c.gc,
              "image_delay")
          end
        end
      elseif #labels ~= 1 then
        add(where(plugins, i), "plugin block needs exactly one name")
      end
    end
  end

  if #problems > 0 then
    for _, p in ipairs(problems) do
      p.kind = "config"
    end
    return nil, problems
  end
  local a = agent.build(s, host)
  a.config_path = path
  return a
end


return agent
