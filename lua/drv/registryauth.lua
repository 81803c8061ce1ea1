--- Registry credentials for one pull, in Nomad's order (first answer wins):
---   1. the task's `auth { username password email server_address }`;
---   2. docker.auth.config (a Docker config.json): `auths`, then
---      `credHelpers[<key>]`, then `credsStore`;
---   3. docker.auth.helper.
--- Pure: C reads the config file (core/image/auth.c), runs helpers
--- (core/image/credhelper.c) and hands the texts here.
---
--- Keys: Docker Hub ("docker.io") is `https://index.docker.io/v1/` in a
--- config file, any other registry its index name `host[:port]`. `auths`
--- is looked up by that exact key, then (not for Hub, as Docker does) by
--- keys reduced to their hostname (`https://host:5000/v1/` -> `host:5000`).
--- An `auths` entry answers only when it holds a username or an identity
--- token: `docker login` with a credential store leaves empty entries
--- behind, and those must fall through to credHelpers/credsStore.
---
--- A helper's stdin: docker.auth.helper gets the bare registry host (the
--- index name: `docker.io`, `host:port`), as newer Nomad sends it;
--- credHelpers and credsStore get the config key, as the docker CLI sends
--- it, so that credentials stored by `docker login` are found
--- (`https://index.docker.io/v1/` for Hub, `host:port` otherwise).
---
--- Secrets (passwords, tokens, helper stdout) never appear in a message.
local util = require("drv.util")

local M = {}

M.HUB_KEY = "https://index.docker.io/v1/"

-- Helper names: a hostile config file must not make us exec a path.
local MAX_HELPER = 100

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VALUE = {}
for i = 1, 64 do
  B64_VALUE[B64:byte(i)] = i - 1
end

local byte, char, concat = string.byte, string.char, table.concat


---Standard base64 with padding (RFC 4648 §4).
---@param s string
---@return string
function M.base64_encode(s)
  local out, n = {}, 0
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k1, k2 = (v >> 18) & 63, (v >> 12) & 63
    local k3, k4 = (v >> 6) & 63, v & 63
    n = n + 1
    out[n] = B64:sub(k1 + 1, k1 + 1) .. B64:sub(k2 + 1, k2 + 1)
      .. (b and B64:sub(k3 + 1, k3 + 1) or "=") .. (c and B64:sub(k4 + 1, k4 + 1) or "=")
  end
  return concat(out)
end


---base64url with padding (RFC 4648 §5): what X-Registry-Auth must be.
---@param s string
---@return string
function M.base64url_encode(s)
  return (M.base64_encode(s):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end


---Standard base64 decoding as Go's base64.StdEncoding does it: CR and LF
---ignored, padding required, any other byte outside the alphabet refused.
---@param s string
---@return string|nil decoded
---@return string|nil what is wrong (never the text)
function M.base64_decode(s)
  s = s:gsub("[\r\n]", "")
  if #s % 4 ~= 0 then
    return nil, "not valid base64 (length not a multiple of 4)"
  end
  local out, n = {}, 0
  for i = 1, #s, 4 do
    local c1, c2, c3, c4 = byte(s, i, i + 3)
    local v1, v2 = B64_VALUE[c1], B64_VALUE[c2]
    local v3, v4 = B64_VALUE[c3], B64_VALUE[c4]
    local last = i + 3 == #s
    if v1 == nil or v2 == nil then
      return nil, "not valid base64"
    end
    if v3 == nil and c3 == 61 and c4 == 61 and last then           -- "xx=="
      n = n + 1
      out[n] = char(((v1 << 2) | (v2 >> 4)) & 255)
    elseif v3 ~= nil and v4 == nil and c4 == 61 and last then      -- "xxx="
      n = n + 1
      out[n] = char(((v1 << 2) | (v2 >> 4)) & 255, ((v2 << 4) | (v3 >> 2)) & 255)
    elseif v3 ~= nil and v4 ~= nil then
      n = n + 1
      out[n] = char(((v1 << 2) | (v2 >> 4)) & 255, ((v2 << 4) | (v3 >> 2)) & 255,
        ((v3 << 6) | v4) & 255)
    else
      return nil, "not valid base64"
    end
  end
  return concat(out)
end


---1 when `name` may follow "docker-credential-": [a-z0-9][a-z0-9._-]*,
---at most 100 bytes (no '/', no '..' path, no option-like leading '-').
---@param name any
---@return boolean
function M.valid_helper(name)
  return type(name) == "string" and #name <= MAX_HELPER
    and name:find("^[a-z0-9][a-z0-9._-]*$") ~= nil
end


---The config.json key of a registry index name.
---@param registry string "docker.io" or "host[:port]"
---@return string
function M.config_key(registry)
  if registry == "docker.io" or registry == "index.docker.io" then
    return M.HUB_KEY
  end
  return registry
end


---Docker's ConvertToHostname: scheme and path stripped.
---@param key string
---@return string
function M.hostname(key)
  local s = key:gsub("^https?://", "")
  return (s:gsub("/.*$", ""))
end


-- The X-Registry-Auth value of a credentials table.
local function header(c, server)
  local cjson = require("cjson")
  local t = { serveraddress = server }
  if c.identitytoken and c.identitytoken ~= "" then
    t.identitytoken = c.identitytoken
  else
    t.username = c.username or ""
    t.password = c.password or ""
  end
  return M.base64url_encode(cjson.encode(t))
end
M.header = header


local function nonempty(v)
  return type(v) == "string" and v ~= ""
end


-- A decoded JSON object: a table whose keys are all strings (cjson decodes
-- arrays to tables with integer keys; `[]` and `{}` cannot be told apart).
local function is_object(t)
  if type(t) ~= "table" then
    return false
  end
  for k in pairs(t) do
    if type(k) ~= "string" then
      return false
    end
  end
  return true
end


-- JSON null (cjson.null) counts as absent, as in Go.
local function get(t, k)
  local v = t[k]
  if v == require("cjson").null then
    return nil
  end
  return v
end


-- `auths[key]` -> credentials table, false (no answer), or nil, err.
local function auth_entry(entry, key, prefix)
  local where = prefix .. ": auths[" .. util.quote(key) .. "]"
  if not is_object(entry) then
    return nil, where .. ": expected an object, found " .. (type(entry) == "table" and "an array" or type(entry))
  end
  local f = {}
  for _, name in ipairs({ "auth", "username", "password", "identitytoken" }) do
    f[name] = get(entry, name)
    if f[name] ~= nil and type(f[name]) ~= "string" then
      return nil, where .. "." .. name .. ": expected a string, found " .. type(f[name])
    end
  end
  local user, pass = f.username, f.password
  if nonempty(f.auth) then
    local plain, why = M.base64_decode(f.auth)
    if not plain then
      return nil, where .. ".auth: " .. why
    end
    local u, p = plain:match("^([^:]*):(.*)$")
    if u == nil then
      return nil, where .. '.auth: no ":" between username and password'
    end
    if u == "" then
      return nil, where .. ".auth: empty username"
    end
    user, pass = u, p
  end
  if nonempty(user) or nonempty(f.identitytoken) then
    return { username = user, password = pass, identitytoken = f.identitytoken }
  end
  return false
end


-- Docker decodes every `auths` entry when it loads the file: a malformed
-- entry anywhere makes the file unusable. Returns the entry for `key`
-- (exact, then hostname form unless Hub) as credentials, false, or nil, err.
local function from_auths(auths, key, prefix)
  if auths == nil then
    return false
  end
  if not is_object(auths) then
    return nil, prefix .. ": auths: expected an object, found "
      .. (type(auths) == "table" and "an array" or type(auths))
  end
  local keys = {}
  for k in pairs(auths) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local decoded = {}
  for _, k in ipairs(keys) do
    local c, err = auth_entry(auths[k], k, prefix)
    if c == nil then
      return nil, err
    end
    decoded[k] = c
  end
  if decoded[key] ~= nil then
    return decoded[key], key
  end
  if key ~= M.HUB_KEY then
    for _, k in ipairs(keys) do
      if M.hostname(k) == key then
        return decoded[k], k
      end
    end
  end
  return false
end


-- A helper name from the config file or the agent, checked; nil, err.
local function helper_name(name, where)
  if not M.valid_helper(name) then
    return nil, where .. ": helper name not allowed (want [a-z0-9][a-z0-9._-]*): "
      .. util.quote(name, 120)
  end
  return name
end


-- Step 2: the config file. Returns a result, false (no answer) or nil, err.
local function from_config(q, key, prefix)
  local path = q.config_path or "?"
  local what = prefix .. " from docker.auth.config " .. util.quote(path)
  if q.config_error then
    return nil, what .. ": " .. q.config_error
  end
  if type(q.config) ~= "string" then
    return nil, what .. ": not read"
  end
  local cjson = require("cjson.safe")
  local t, jerr = cjson.decode(q.config)
  if t == nil then
    return nil, what .. ": not valid JSON: " .. util.sanitize(tostring(jerr), 200)
  end
  if not is_object(t) then
    return nil, what .. ": expected a JSON object"
  end
  local c, found = from_auths(get(t, "auths"), key, what)
  if c == nil then
    return nil, found
  end
  if c then
    return { creds = c, server = found, source = what .. ": auths[" .. util.quote(found) .. "]" }
  end
  local helpers = get(t, "credHelpers")
  if helpers ~= nil and not is_object(helpers) then
    return nil, what .. ": credHelpers: expected an object, found "
      .. (type(helpers) == "table" and "an array" or type(helpers))
  end
  local h = helpers and get(helpers, key)
  if h ~= nil and type(h) ~= "string" then
    return nil, what .. ": credHelpers[" .. util.quote(key) .. "]: expected a string, found "
      .. type(h)
  end
  if nonempty(h) then
    local where = what .. ": credHelpers[" .. util.quote(key) .. "]"
    local name, err = helper_name(h, where)
    if not name then
      return nil, err
    end
    return { helper = name, input = key, source = where .. " " .. util.quote(name) }
  end
  local store = get(t, "credsStore")
  if store ~= nil and type(store) ~= "string" then
    return nil, what .. ": credsStore: expected a string, found " .. type(store)
  end
  if nonempty(store) then
    local where = what .. ": credsStore"
    local name, err = helper_name(store, where)
    if not name then
      return nil, err
    end
    return { helper = name, input = key, source = where .. " " .. util.quote(name) }
  end
  return false
end


---Decides the first source that answers.
---@param q table {registry=, username=, password=, email=, server=, config=
---  (text), config_path=, config_error= (why C could not read it), helper=}
---@return table|nil {header=, source=} credentials | {helper=, input=, source=}
---  run a helper | {source=} anonymous (no source answered)
---@return string|nil error (names the file, key or helper; never a secret)
function M.resolve(q)
  local registry = q.registry
  if not nonempty(registry) then
    return nil, "registry auth: no registry"
  end
  local key = M.config_key(registry)
  local prefix = "registry auth for " .. util.quote(registry)

  -- 1. the task's own auth block
  if nonempty(q.username) or nonempty(q.password) or nonempty(q.server) then
    local server = nonempty(q.server) and q.server or key
    return { header = header({ username = q.username, password = q.password }, server),
             source = prefix .. " from the task's auth block" }
  end

  -- 2. docker.auth.config
  if q.config_path ~= nil or q.config ~= nil or q.config_error ~= nil then
    local r, err = from_config(q, key, prefix)
    if r == nil then
      return nil, err
    end
    if r then
      if r.creds then
        return { header = header(r.creds, r.server), source = r.source }
      end
      return r
    end
  end

  -- 3. docker.auth.helper: the bare registry host on stdin
  if nonempty(q.helper) then
    local where = prefix .. " from docker.auth.helper"
    local name, err = helper_name(q.helper, where)
    if not name then
      return nil, err
    end
    return { helper = name, input = registry, source = where .. " " .. util.quote(name) }
  end
  return { source = prefix .. ": no credentials configured" }
end


-- Trimmed, escaped, bounded helper stderr for a message.
local function stderr_text(s)
  s = util.trim(s or "")
  if s == "" then
    return "(stderr empty; stdout is not shown: it may hold secrets)"
  end
  return util.sanitize(s, 512)
end


---Interprets a credential helper's answer.
---@param r table {source=, input=, status= (exit status, number or string),
---  stdout=, stderr=}
---@return table|nil {header=, source=} | {source=} anonymous
---@return string|nil error (the helper's stderr, never its stdout)
function M.helper_output(r)
  local status = math.tointeger(tonumber(r.status)) or -1
  local out = r.stdout or ""
  local source = r.source or "registry auth"
  if status ~= 0 then
    -- "credentials not found in native keychain" (docker-credential-helpers'
    -- ErrCredentialsNotFound) goes to stdout with exit status 1
    if status == 1 and util.trim(out):lower():find("^credentials not found") then
      return { source = source .. ": credentials not found" }
    end
    return nil, string.format("%s: helper failed with exit status %d: %s", source, status,
      stderr_text(r.stderr))
  end
  local cjson = require("cjson.safe")
  local t = cjson.decode(out)
  if not is_object(t) or next(t) == nil and out:find("[", 1, true) then
    return nil, source .. ": helper output is not a JSON object (not shown: it may hold secrets)"
  end
  for _, f in ipairs({ "ServerURL", "Username", "Secret" }) do
    local v = get(t, f)
    if v ~= nil and type(v) ~= "string" then
      return nil, string.format("%s: helper output: %s: expected a string, found %s", source, f,
        type(v))
    end
  end
  local user, secret = get(t, "Username") or "", get(t, "Secret") or ""
  if secret == "" and (user == "" or user == "<token>") then
    return { source = source .. ": helper returned empty credentials" }
  end
  local server = nonempty(r.input) and r.input or nil
  if user == "<token>" then
    return { header = header({ identitytoken = secret }, server), source = source }
  end
  return { header = header({ username = user, password = secret }, server), source = source }
end


return M
