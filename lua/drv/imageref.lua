--- Docker image references, parsed and normalised as Docker's
--- distribution/reference does (`ParseNormalizedNamed`; reference
--- docker-api.md §4.4):
---
---   reference := name [":" tag] ["@" digest]
---   name      := [domain "/"] path
---   domain    := host [":" port]      host: DNS name, IPv4 or "[" IPv6 "]"
---   path      := component ("/" component)*
---   component := [a-z0-9]+ ((. | _ | __ | -+) [a-z0-9]+)*
---   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
---   digest    := algorithm ":" hex    (sha256/64, sha384/96, sha512/128)
---
--- `redis` is `docker.io/library/redis:latest`; a leading `https://` is
--- stripped (v0.8.3 allowed it). Every check is a single left-to-right scan
--- (or an anchored pattern with one repetition): no backtracking, so hostile
--- input costs linear time, and anything longer than MAX_INPUT is refused
--- before it is looked at.
local M = {}

M.DEFAULT_DOMAIN = "docker.io"
M.LEGACY_DOMAIN = "index.docker.io"
M.OFFICIAL_PREFIX = "library/"
M.NAME_MAX = 255        -- domain "/" path, as Docker counts it
M.TAG_MAX = 128
--- Longest input worth parsing: "https://" + name + ":" tag + "@sha512:" hex.
M.MAX_INPUT = 8 + M.NAME_MAX + 1 + M.TAG_MAX + 8 + 128

--- go-digest's algorithms: name -> hex length.
M.DIGESTS = { sha256 = 64, sha384 = 96, sha512 = 128 }

local find, sub, byte = string.find, string.sub, string.byte


---Checks a registry domain: "[" IPv6 "]" or a DNS name / IPv4 (components
---of letters, digits and inner "-", joined by "."), an optional ":port"
---(1-65535). Returns nil when valid, else the reason.
---@param d string
---@return string|nil reason
function M.check_domain(d)
  local host, port = d, nil
  if sub(d, 1, 1) == "[" then
    local close = find(d, "]", 2, true)
    if not close then
      return "registry host has an unclosed \"[\""
    end
    host = sub(d, 1, close)
    local rest = sub(d, close + 1)
    if not find(host, "^%[[0-9A-Fa-f:]+%]$") then
      return "registry host is not an IPv6 address in brackets"
    end
    if rest ~= "" then
      if sub(rest, 1, 1) ~= ":" then
        return "registry host has text after \"]\""
      end
      port = sub(rest, 2)
    end
  else
    local colon = find(d, ":", 1, true)
    if colon then
      host, port = sub(d, 1, colon - 1), sub(d, colon + 1)
    end
    if host == "" then
      return "registry host is empty"
    end
    local start = 1
    while true do
      local dot = find(host, ".", start, true)
      local label = sub(host, start, (dot or 0) - 1)
      if label == "" then
        return "registry host has an empty name component"
      end
      if not find(label, "^[A-Za-z0-9][A-Za-z0-9-]*$") or sub(label, -1) == "-" then
        return "registry host is not a host name, IPv4 or [IPv6] address"
      end
      if not dot then
        break
      end
      start = dot + 1
    end
  end
  if port ~= nil then
    if not find(port, "^%d+$") then
      return "registry port must be a number"
    end
    local n = #port <= 5 and tonumber(port) or 0
    if n < 1 or n > 65535 then
      return "registry port must be between 1 and 65535"
    end
  end
  return nil
end


-- One path component: lowercase letters and digits, separated inside by
-- ".", "_", "__" or a run of "-".
local function check_component(c)
  if c == "" then
    return "path component is empty (\"//\" or a \"/\" at an end)"
  end
  if find(c, "[A-Z]") then
    return "repository name must be lowercase"
  end
  if not find(c, "^[a-z0-9._-]+$") then
    return "repository name may hold only a-z, 0-9, \".\", \"_\", \"-\" and \"/\""
  end
  if not find(c, "^[a-z0-9]") or not find(c, "[a-z0-9]$") then
    return "path components must start and end with a letter or digit"
  end
  for sep in string.gmatch(c, "[._-]+") do
    if not (sep == "." or sep == "_" or sep == "__" or not find(sep, "[^-]")) then
      return string.format("path component has the separator %q (only \".\", \"_\", \"__\" or dashes)", sep)
    end
  end
  return nil
end


local function check_path(p)
  local start = 1
  while true do
    local slash = find(p, "/", start, true)
    local why = check_component(sub(p, start, (slash or 0) - 1))
    if why then
      return why
    end
    if not slash then
      return nil
    end
    start = slash + 1
  end
end


local function check_digest(d)
  local colon = find(d, ":", 1, true)
  if not colon then
    return "digest must be <algorithm>:<hex>"
  end
  local algo, hex = sub(d, 1, colon - 1), sub(d, colon + 1)
  if not find(algo, "^[A-Za-z][A-Za-z0-9_+.-]*$") then
    return "digest algorithm is not a name"
  end
  local want = M.DIGESTS[algo]
  if not want then
    return string.format("unsupported digest algorithm %q (sha256, sha384 or sha512)", algo)
  end
  if not find(hex, "^[0-9a-f]*$") then
    return "digest must be lowercase hexadecimal"
  end
  if #hex ~= want then
    return string.format("%s digest must have %d hex digits, found %d", algo, want, #hex)
  end
  return nil
end


-- Docker's familiar form: "redis:3" for docker.io/library/redis:3,
-- "bitnami/redis" for docker.io/bitnami/redis.
local function familiar_name(domain, path)
  if domain == M.DEFAULT_DOMAIN then
    if sub(path, 1, #M.OFFICIAL_PREFIX) == M.OFFICIAL_PREFIX
        and not find(path, "/", #M.OFFICIAL_PREFIX + 1, true) then
      return sub(path, #M.OFFICIAL_PREFIX + 1)
    end
    return path
  end
  return domain .. "/" .. path
end


---Parses and normalises an image reference.
---Returns a table:
--- domain   "docker.io", "localhost:5000", "[::1]:5000"
--- path     "library/redis", "rsx/big"
--- repo     domain .. "/" .. path
--- tag      the tag ("latest" when neither a tag nor a digest is given;
---          kept for display when a digest is given, else nil)
--- tagged   true when the reference names a tag itself
--- digest   "sha256:<hex>" or nil (a digest wins over a tag)
--- registry the index name: domain (docker.io for Docker Hub)
--- familiar Docker's short form with tag/digest ("redis:latest")
---or nil and the reason (lower case, no quoting of the input).
---@param s string
---@return table|nil ref
---@return string|nil reason
function M.parse(s)
  if type(s) ~= "string" then
    return nil, "not a string"
  end
  if s == "" then
    return nil, "empty"
  end
  if #s > M.MAX_INPUT then
    return nil, string.format("longer than %d bytes", M.MAX_INPUT)
  end
  if find(s, "[%s%c\128-\255]") then
    return nil, "contains white space, control characters or non-ASCII bytes"
  end
  if sub(s, 1, 8) == "https://" then
    s = sub(s, 9)
    if s == "" then
      return nil, "empty after \"https://\""
    end
  elseif find(s, "^%a[%w+.-]*://") then
    return nil, "only an \"https://\" prefix is allowed, not another scheme"
  end
  if find(s, "^[a-f0-9]+$") and #s == 64 then
    return nil, "a 64-character hexadecimal string is an image id, not a repository name"
  end

  -- name [":" tag] ["@" digest]: the digest after the first "@", the tag
  -- after the last ":" that follows the last "/".
  local rest, digest = s, nil
  local at = find(s, "@", 1, true)
  if at then
    rest, digest = sub(s, 1, at - 1), sub(s, at + 1)
    if digest == "" then
      return nil, "digest is empty after \"@\""
    end
    local why = check_digest(digest)
    if why then
      return nil, why
    end
  end
  local name, tag = rest, nil
  local colon
  for i = #rest, 1, -1 do
    local b = byte(rest, i)
    if b == 47 then -- "/": no tag in a domain's port
      break
    elseif b == 58 then -- ":"
      colon = i
      break
    end
  end
  if colon then
    name, tag = sub(rest, 1, colon - 1), sub(rest, colon + 1)
    if tag == "" then
      return nil, "tag is empty after \":\""
    end
    if #tag > M.TAG_MAX or not find(tag, "^[%w_][%w_.-]*$") then
      return nil, "tag must be 1 to 128 of A-Z, a-z, 0-9, \"_\", \".\" and \"-\", not starting with \".\" or \"-\""
    end
  end
  if name == "" then
    return nil, "repository name is empty"
  end

  -- splitDockerDomain: the first component is a domain when it is
  -- "localhost" or holds ".", ":" or an uppercase letter.
  local domain, path
  local slash = find(name, "/", 1, true)
  local first = slash and sub(name, 1, slash - 1)
  if first and (first == "localhost" or find(first, "[.:A-Z]")) then
    domain, path = first, sub(name, slash + 1)
    local why = M.check_domain(domain)
    if why then
      return nil, why
    end
  else
    domain, path = M.DEFAULT_DOMAIN, name
  end
  if domain == M.LEGACY_DOMAIN then
    domain = M.DEFAULT_DOMAIN
  end
  if path == "" then
    return nil, "repository path is empty after the registry"
  end
  local why = check_path(path)
  if why then
    return nil, why
  end
  if domain == M.DEFAULT_DOMAIN and not find(path, "/", 1, true) then
    path = M.OFFICIAL_PREFIX .. path
  end
  local repo = domain .. "/" .. path
  if #repo > M.NAME_MAX then
    return nil, string.format("repository name must not be more than %d characters", M.NAME_MAX)
  end

  local tagged = tag ~= nil
  if not tag and not digest then
    tag = "latest"
  end
  local familiar = familiar_name(domain, path)
  if tag then
    familiar = familiar .. ":" .. tag
  end
  if digest then
    familiar = familiar .. "@" .. digest
  end
  return {
    domain = domain,
    path = path,
    repo = repo,
    tag = tag,
    tagged = tagged,
    digest = digest,
    registry = domain,
    familiar = familiar,
  }
end


---The reference a pull asks for: the digest if there is one, else the tag.
---@param ref table from M.parse
---@return string
function M.pull_tag(ref)
  return ref.digest or ref.tag
end


---The pull decision of the issue: tag latest (or no tag) or force_pull ->
---"always"; a digest or any other tag -> "missing" (pull only when absent).
---@param ref table from M.parse
---@param force boolean|nil force_pull
---@return string "always"|"missing"
function M.pull_policy(ref, force)
  if force then
    return "always"
  end
  if ref.digest == nil and (ref.tag == nil or ref.tag == "latest") then
    return "always"
  end
  return "missing"
end


return M
