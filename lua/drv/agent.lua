--- Agent configuration (HCL): data dir, Docker endpoint, docker.* client
--- options and the `plugin "docker" { config { ... } }` block.
local path = require("drv.path")
local clean_path = path.clean
local schema = require("drv.schema")
local util = require("drv.util")

local agent = {}


local IGNORE = { ignore = true }

-- client { artifact { ... } }: limits and sources for task artifacts,
-- modelled on Nomad 1.5's block, plus drvctl's local_dirs and allow_private.
local ARTIFACT = {
  http_read_timeout = "string",
  http_max_size = "scalar",
  decompression_size_limit = "scalar",
  decompression_file_count_limit = "int",
  local_dirs = { list = "string" },
  allow_private = "bool",
}

local CLIENT = {
  enabled = "bool",
  artifact = { object = ARTIFACT },
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
  -- an image pull that reports no progress this long is cancelled
  pull_activity_timeout = "string",
  -- pulls from registries on loopback/private/link-local addresses
  -- (core/image/regcheck.h); off by default
  allow_private_registries = "bool",
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

--- plugin config pull_activity_timeout: default and range (ms).
agent.PULL_ACTIVITY_TIMEOUT_MS = 120000
agent.PULL_ACTIVITY_TIMEOUT_MIN_MS = 1000
agent.PULL_ACTIVITY_TIMEOUT_MAX_MS = 24 * 3600 * 1000

local GIB = 1024 * 1024 * 1024
--- client.artifact defaults (README "Security defaults"; core/task/artifact.h).
agent.ARTIFACT_DEFAULTS = {
  http_read_timeout_ms = 30 * 60 * 1000,
  http_max_size = 10 * GIB,
  decompression_size_limit = 10 * GIB,
  decompression_file_count_limit = 4096,
  local_dirs = {},
  allow_private = false,
}

local SIZE_UNITS = {
  [""] = 1, b = 1,
  k = 1000, kb = 1000, m = 1000 ^ 2, mb = 1000 ^ 2, g = 1000 ^ 3, gb = 1000 ^ 3,
  t = 1000 ^ 4, tb = 1000 ^ 4,
  kib = 1024, mib = 1024 ^ 2, gib = 1024 ^ 3, tib = 1024 ^ 4,
}

---Parses a byte size ("10GB", "512MiB", "1048576"; decimal units are powers
---of 1000, "iB" units of 1024). Returns a positive integer or nil.
function agent.parse_size(v)
  if math.type(v) == "integer" then
    return v > 0 and v or nil
  end
  if type(v) ~= "string" then
    return nil
  end
  local num, unit = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
  local mult = unit and SIZE_UNITS[unit:lower()]
  if not num or not mult then
    return nil
  end
  local n = math.floor(tonumber(num) * mult)
  if n <= 0 or n >= 2 ^ 62 then
    return nil
  end
  return math.tointeger(n)
end
local DEFAULT_MIN_DYNAMIC_PORT = 20000
local DEFAULT_MAX_DYNAMIC_PORT = 32000


---Makes `p` absolute against `cwd` (or /) and cleans it lexically.
function agent.absolute(p, cwd)
  return path.join(cwd or "/", p)
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
  local ad, sa = agent.ARTIFACT_DEFAULTS, s.artifact or {}
  a.artifact = {
    http_read_timeout_ms = sa.http_read_timeout_ms or ad.http_read_timeout_ms,
    http_max_size = sa.http_max_size or ad.http_max_size,
    decompression_size_limit = sa.decompression_size_limit or ad.decompression_size_limit,
    decompression_file_count_limit = sa.decompression_file_count_limit
      or ad.decompression_file_count_limit,
    local_dirs = sa.local_dirs or {},
    allow_private = sa.allow_private == true,
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
    pull_activity_timeout_ms = s.pull_activity_timeout_ms or agent.PULL_ACTIVITY_TIMEOUT_MS,
    allow_private_registries = s.allow_private_registries == true,
  }
  return a
end


-- The reading state of one agent config file: where(c, k) names the
-- position of key k of block c, add(origin, text) records a problem.
local function new_reader(file, hcl)
  local r = { problems = {}, warnings = {}, origin = setmetatable({}, { __mode = "k" }) }
  function r.where(c, k)
    local raw = (type(c) == "table" and r.origin[c]) or c
    local l, col = hcl.pos(raw, k)
    if l then
      return string.format("%s:%d:%d", file, l, col)
    end
    return file
  end
  function r.add(origin_s, text)
    r.problems[#r.problems + 1] = { kind = "config", message = origin_s .. ": " .. text }
  end
  function r.ctx(label)
    return { problems = r.problems, warnings = r.warnings, label = label, noun = "key",
             where = r.where, linecol = hcl.pos, origin = r.origin, name = file }
  end
  function r.duration(v, c, k)
    local ms = schema.duration_ms(v)
    if not ms then
      r.add(r.where(c, k), string.format("invalid duration for %q: %q", k, v))
    end
    return ms
  end
  return r
end


-- client { node_class, network_interface, cpu_total_compute, the dynamic
-- port range } -> s.
local function read_client(s, client, r)
  local add, where = r.add, r.where
  local craw = r.origin[client] or client
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
end


-- client { artifact { ... } } -> the agent's artifact limits and sources.
local function read_artifact(art, r)
  local add, where = r.add, r.where
  local araw = r.origin[art] or art
  local sa = {}
  if art.http_read_timeout ~= nil then
    local ms = schema.duration_ms(art.http_read_timeout)
    if not ms or ms < 1000 then
      add(where(araw, "http_read_timeout"), string.format(
        'client.artifact "http_read_timeout" must be a duration of at least 1s, found %q',
        art.http_read_timeout))
    else
      sa.http_read_timeout_ms = ms
    end
  end
  for _, k in ipairs({ "http_max_size", "decompression_size_limit" }) do
    if art[k] ~= nil then
      local n = agent.parse_size(art[k])
      if not n then
        add(where(araw, k), string.format(
          'client.artifact %q must be a positive size such as "10GB" or "512MiB", found %q',
          k, tostring(art[k])))
      else
        sa[k] = n
      end
    end
  end
  local fc = art.decompression_file_count_limit
  if fc ~= nil then
    if fc < 1 then
      add(where(araw, "decompression_file_count_limit"), string.format(
        'client.artifact "decompression_file_count_limit" must be at least 1, found %d', fc))
    else
      sa.decompression_file_count_limit = fc
    end
  end
  if art.local_dirs ~= nil then
    sa.local_dirs = {}
    local lraw = r.origin[art.local_dirs] or art.local_dirs
    for i, d in ipairs(art.local_dirs) do
      if d:sub(1, 1) ~= "/" or d:find("[%z\1-\31\127]") then
        add(where(lraw, i), string.format(
          'client.artifact "local_dirs" entries must be absolute paths, found %q', d))
      elseif clean_path(d) == "/" then
        add(where(lraw, i), string.format(
          'client.artifact "local_dirs" must not allow the whole file system, found %q', d))
      else
        sa.local_dirs[#sa.local_dirs + 1] = clean_path(d)
      end
    end
  end
  sa.allow_private = art.allow_private
  return sa
end


-- A credential helper is run as docker-credential-<name> from PATH: a
-- plain name only, so that no config can name a path (drv.registryauth
-- checks the names a docker config.json gives the same way).
local function check_helper(v, origin, add)
  if type(v) == "string" and not v:match("^[a-z0-9][a-z0-9._-]*$") then
    add(origin, util.format("credential helper name not allowed (a-z 0-9 . _ - only, "
      .. "run as docker-credential-<name> from PATH): %q", v))
    return nil
  end
  return v
end


-- client { options { "docker.*" = "..." } } -> s, in sorted key order.
local function read_options(s, opts, r)
  local add, where = r.add, r.where
  for _, k in ipairs(util.sorted_keys(opts)) do
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
        s[field .. "_ms"] = r.duration(v, opts, k)
      elseif kind == "list" then
        s[field] = util.split_list(v)
      elseif field == "auth_helper" then
        s[field] = check_helper(v, where(opts, k), add)
      else
        s[field] = v
      end
    elseif k:sub(1, 7) == "docker." then
      local hint = util.suggest(k, OPTIONS)
      add(where(opts, k), string.format("unknown client option %q%s", k,
        hint and string.format(', did you mean "%s"?', hint) or ""))
    end
  end
end


-- plugin "docker" { config { ... } } -> s (a later block overrides).
local function read_docker_plugin(s, c, r)
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
  check_allow_lists(c, r.where, r.add)
  for _, k in ipairs(ALLOW_LISTS) do
    s[k] = c[k] or s[k]
  end
  if c.allow_container_namespaces ~= nil then
    s.allow_container_namespaces = c.allow_container_namespaces
  end
  if c.allow_private_registries ~= nil then
    s.allow_private_registries = c.allow_private_registries
  end
  s.policy_options = c.policy_options or s.policy_options
  if c.auth then
    s.auth_config = c.auth.config or s.auth_config
    if c.auth.helper ~= nil then
      s.auth_helper = check_helper(c.auth.helper, r.where(r.origin[c.auth] or c.auth, "helper"),
        r.add)
    end
  end
  if c.pull_activity_timeout ~= nil then
    local ms = schema.duration_ms(c.pull_activity_timeout)
    if not ms or ms < agent.PULL_ACTIVITY_TIMEOUT_MIN_MS
        or ms > agent.PULL_ACTIVITY_TIMEOUT_MAX_MS then
      r.add(r.where(r.origin[c] or c, "pull_activity_timeout"), util.format(
        'plugin "docker" "pull_activity_timeout" must be a duration from 1s to 24h, found %q',
        c.pull_activity_timeout))
    else
      s.pull_activity_timeout_ms = ms
    end
  end
  if c.gc then
    if c.gc.image ~= nil then
      s.cleanup_image = c.gc.image
    end
    if c.gc.container ~= nil then
      s.cleanup_container = c.gc.container
    end
    if c.gc.image_delay then
      s.cleanup_image_delay_ms = r.duration(c.gc.image_delay, r.origin[c.gc] or c.gc,
        "image_delay")
    end
  end
end


-- plugin blocks: "docker" ones are read, others ignored (Nomad has more).
local function read_plugins(s, plugins, tree, hcl, r)
  if type(plugins) ~= "table" or plugins[1] == nil then
    r.add(r.where(tree, "plugin"), 'wrong type for key "plugin": expected block')
    return
  end
  for i, p in ipairs(plugins) do
    local labels = hcl.labels(p)
    if labels[1] == "docker" then
      local body = schema.normalize(p, { object = { config = { object = PLUGIN_CONFIG } } },
        r.ctx('plugin "docker"')) or {}
      read_docker_plugin(s, body.config or {}, r)
    elseif #labels ~= 1 then
      r.add(r.where(plugins, i), "plugin block needs exactly one name")
    end
  end
end


---Parses an agent config file into the flat agent table (contract B).
---@param src string|nil HCL source (nil: defaults)
---@param file string|nil file name for messages
---@param host table
---@return table|nil agent
---@return table|nil problems
function agent.load(src, file, host)
  host = host or {}
  if src == nil then
    return agent.defaults(host)
  end
  file = file or "agent.hcl"
  local hcl = require("drv.hcl")
  local tree, err = hcl.parse(src, file)
  if tree == nil then
    return nil, { { kind = "config", message = err } }
  end
  local r = new_reader(file, hcl)

  local top = schema.normalize(tree, { object = TOP }, r.ctx("agent config")) or {}
  local s = {
    data_dir = top.data_dir, datacenter = top.datacenter, region = top.region,
    name = top.name, policy_dir = top.policy_dir,
  }
  local client = top.client or {}
  s.meta = client.meta
  read_client(s, client, r)
  if client.artifact ~= nil then
    s.artifact = read_artifact(client.artifact, r)
  end
  local mkt = top.max_kill_timeout or client.max_kill_timeout
  if mkt then
    s.max_kill_timeout_ms = r.duration(mkt, top.max_kill_timeout and top or client,
      "max_kill_timeout")
  end
  read_options(s, client.options or {}, r)
  if top.plugin ~= nil then
    read_plugins(s, top.plugin, tree, hcl, r)
  end

  if #r.problems > 0 then
    for _, p in ipairs(r.problems) do
      p.kind = "config"
    end
    return nil, r.problems
  end
  local a = agent.build(s, host)
  a.config_path = file
  return a
end


return agent
