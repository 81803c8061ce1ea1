-- Docker log drivers and their options.
--
-- * HostConfig.LogConfig.Type must be "json-file" or "local" (Docker's
--   names, exactly), or a driver the agent lists in allow_log_drivers. A log
--   driver runs inside dockerd, as root, on the host's network: syslog to
--   "tcp://127.0.0.1:P" writes into a loopback-only service, and a TLS
--   endpoint that never answers wedges the container's start in dockerd.
-- * Whatever the driver, no option may name a host file or socket: options
--   whose name mentions a certificate, key, CA or credentials
--   (syslog-tls-cert, syslog-tls-key, syslog-tls-ca-cert, splunk-capath,
--   splunk-cabundle, awslogs-credentials-endpoint, ...), and addresses with a
--   unix, unixgram, npipe or file scheme (fluentd-address =
--   "unix:///run/x.sock", syslog-address = "unix:///dev/log") or a TLS
--   scheme ("tcp+tls://": dockerd would present or trust host key material,
--   and a silent peer blocks the start). Option names are compared in lower
--   case with spaces removed.
--
-- Deviation from Nomad v0.8.3 (which passed logging through), allow a
-- driver with:
--   plugin "docker" { config { allow_log_drivers = ["syslog"] } }

local DEFAULT = { ["json-file"] = true, ["local"] = true }

local function quote(s)
  return "\"" .. tostring(s) .. "\""
end

local function squash(s)
  return string.lower((string.gsub(tostring(s), "%s", "")))
end

local function path_option(k)
  for _, w in ipairs({ "cert", "key", "ca", "capath", "cabundle", "credentials", "path" }) do
    if string.find("-" .. k .. "-", "-" .. w .. "-", 1, true) then
      return true
    end
  end
  return false
end

local BAD_SCHEMES = { unix = true, unixgram = true, npipe = true, file = true, ["tcp+tls"] = true }

return {
  policy_format = 1,
  name = "logging",
  description = "log drivers json-file and local unless allow_log_drivers lists more; no host files in log options",

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local lc = hc.LogConfig
    if lc == nil then
      return true
    end
    if type(lc) ~= "table" then
      return nil, "LogConfig must be an object"
    end
    local msgs = {}
    local t = lc.Type
    if t ~= nil and t ~= "" then
      local ok = DEFAULT[t] == true
      for _, a in ipairs(ctx.agent.allow_log_drivers or {}) do
        if a == t then
          ok = true
        end
      end
      if not ok then
        msgs[#msgs + 1] = "log driver not in allow_log_drivers: " .. quote(t)
      end
    end
    local cfg = lc.Config
    if cfg ~= nil and type(cfg) ~= "table" then
      msgs[#msgs + 1] = "LogConfig.Config must be an object"
      cfg = {}
    end
    local keys = {}
    for k in pairs(cfg or {}) do
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = cfg[k]
      local sk = squash(k)
      local scheme = type(v) == "string" and string.match(squash(v), "^([%w+.-]*):") or nil
      if path_option(sk) and sk ~= "syslog-tls-skip-verify" then
        msgs[#msgs + 1] = "log option names a host file: " .. quote(k)
      elseif scheme and BAD_SCHEMES[scheme] then
        msgs[#msgs + 1] = "log option address not allowed: " .. quote(k .. "=" .. v)
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
