--- What a `docker save` archive would tag, and whether that is allowed.
-- Docker's POST /images/load tags every name the archive lists and silently
-- re-points a tag that already exists; a job's archive may tag only the
-- task's own image. C reads the tagging files (core/image/imagetar.c) and passes
-- their text here through driver.decode("load_manifest").
local M = {}

local MAX_TAGS = 1000

---Normalises an image reference the way Docker resolves it:
--- "busybox" -> "docker.io/library/busybox:latest".
---@param ref string
---@return string|nil normalised, nil when ref is not a plausible reference
function M.normalize(ref)
  if type(ref) ~= "string" or ref == "" or #ref > 1024 or ref:find("[%s%c]") then
    return nil
  end
  ref = ref:gsub("^https://", "")
  local name, digest = ref:match("^([^@]+)(@.+)$")
  name = name or ref
  local tag
  local last = name:match("[^/]*$")
  if last:find(":", 1, true) then
    name, tag = name:match("^(.*):([^:/]*)$")
    if not name or tag == "" then
      return nil
    end
  end
  local first, rest = name:match("^([^/]+)/(.+)$")
  local domain
  if first and (first:find("[.:]") or first == "localhost") then
    domain, name = first, rest
  else
    domain = "docker.io"
  end
  if domain == "index.docker.io" then
    domain = "docker.io"
  end
  if domain == "docker.io" and not name:find("/", 1, true) then
    name = "library/" .. name
  end
  if digest then
    return domain .. "/" .. name .. (tag and (":" .. tag) or "") .. digest
  end
  return domain .. "/" .. name .. ":" .. (tag or "latest")
end

local function decode(cjson, text, what)
  local v = cjson.decode(text)
  if v == nil then
    return nil, string.format("%s is not valid JSON", what)
  end
  return v
end

---Checks the tags of an image archive.
---@param t table {image=, manifest=, repositories=, index=} (texts, or nil)
---@return table {id = "sha256:<config digest>"} or {error = message}
function M.check(t)
  local cjson = require("cjson.safe")
  if type(t.image) ~= "string" then
    return { error = "no image to check the archive against" }
  end
  local want = M.normalize(t.image)
  if not want then
    return { error = string.format("not an image reference: %q", t.image) }
  end
  if t.manifest == nil and t.repositories == nil then
    return { error = "the archive has neither manifest.json nor repositories: not a docker save archive" }
  end
  local tags = {}
  local function add(tag, where)
    if #tags >= MAX_TAGS then
      return "too many tags"
    end
    if type(tag) ~= "string" then
      return string.format("%s holds a tag that is not a string", where)
    end
    tags[#tags + 1] = { tag = tag, where = where }
  end
  local id
  if t.manifest ~= nil then
    local m, err = decode(cjson, t.manifest, "manifest.json")
    if not m then
      return { error = err }
    end
    if type(m) ~= "table" then
      return { error = "manifest.json is not a list" }
    end
    for _, entry in ipairs(m) do
      if type(entry) ~= "table" then
        return { error = "manifest.json holds an entry that is not an object" }
      end
      local repo_tags = entry.RepoTags
      if repo_tags ~= nil and repo_tags ~= cjson.null then
        if type(repo_tags) ~= "table" then
          return { error = "manifest.json: RepoTags is not a list" }
        end
        local mine = false
        for _, tag in ipairs(repo_tags) do
          local e = add(tag, "manifest.json")
          if e then
            return { error = e }
          end
          mine = mine or M.normalize(tag) == want
        end
        if mine and type(entry.Config) == "string" then
          local hex = entry.Config:match("^(%x+)%.json$") or entry.Config:match("^blobs/sha256/(%x+)$")
          if hex and #hex == 64 then
            id = "sha256:" .. hex:lower()
          end
        end
      end
    end
  end
  if t.repositories ~= nil then
    local r, err = decode(cjson, t.repositories, "repositories")
    if not r then
      return { error = err }
    end
    if type(r) ~= "table" then
      return { error = "repositories is not an object" }
    end
    for repo, by_tag in pairs(r) do
      if type(repo) ~= "string" or type(by_tag) ~= "table" then
        return { error = "repositories is not a map of repositories to tags" }
      end
      for tag in pairs(by_tag) do
        if type(tag) ~= "string" then
          return { error = "repositories holds a tag that is not a string" }
        end
        local e = add(repo .. ":" .. tag, "repositories")
        if e then
          return { error = e }
        end
      end
    end
  end
  if t.index ~= nil then
    local x = cjson.decode(t.index)
    if type(x) == "table" and type(x.manifests) == "table" then
      for _, d in ipairs(x.manifests) do
        local ann = type(d) == "table" and d.annotations
        if type(ann) == "table" then
          local e = ann["io.containerd.image.name"] ~= nil
            and add(ann["io.containerd.image.name"], "index.json")
          if e then
            return { error = e }
          end
        end
      end
    end
  end
  for _, t2 in ipairs(tags) do
    if M.normalize(t2.tag) ~= want then
      return { error = string.format("%s tags %q, but only the task's image %q may be tagged",
        t2.where, t2.tag, t.image) }
    end
  end
  if #tags == 0 then
    return { error = string.format("the archive tags nothing; it must tag the task's image %q", t.image) }
  end
  return { id = id }
end

return M
