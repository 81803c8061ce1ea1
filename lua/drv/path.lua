-- Lexical paths and symlink resolution from a map, as pure functions. Used by
-- the mapping (bind sources, data dirs) and, as drv.path, by policies. The
-- string functions are captured at load time, so a policy that changes the
-- string table cannot change how paths are judged.

local s_sub, s_gmatch, s_find = string.sub, string.gmatch, string.find
local t_concat = table.concat

local path = {}

-- clean("/a/b/../c/./d/") -> "/a/c/d"; lexical, like Go's path.Clean.
function path.clean(p)
  if type(p) ~= "string" then
    return p
  end
  if p == "" then
    return "."
  end
  local abs = s_sub(p, 1, 1) == "/"
  if abs and not s_find(p, "//", 1, true) and not s_find(p, "/.", 1, true)
    and (p == "/" or s_sub(p, -1) ~= "/") then
    return p   -- already clean: no empty, "." or ".." segment, no trailing "/"
  end
  local out = {}
  for part in s_gmatch(p, "[^/]+") do
    if part == ".." then
      if #out > 0 and out[#out] ~= ".." then
        out[#out] = nil
      elseif not abs then
        out[#out + 1] = ".."
      end
    elseif part ~= "." then
      out[#out + 1] = part
    end
  end
  local s = t_concat(out, "/")
  if abs then
    return "/" .. s
  end
  return s == "" and "." or s
end

-- join(base, p) -> clean(p) when p is absolute, else clean(base .. "/" .. p).
function path.join(base, p)
  if s_sub(p, 1, 1) == "/" then
    return path.clean(p)
  end
  return path.clean(base .. "/" .. p)
end

function path.is_abs(p)
  return type(p) == "string" and s_sub(p, 1, 1) == "/"
end

-- within(p, dir) -> true when the cleaned p is dir or below it.
function path.within(p, dir)
  p, dir = path.clean(p), path.clean(dir)
  if p == dir or dir == "/" then
    return true
  end
  return s_sub(p, 1, #dir + 1) == dir .. "/"
end

-- resolve(p, realpath) -> absolute path with symlinks resolved, or nil, err.
-- `realpath` maps absolute paths (as the host resolved them with
-- realpath(3)) to their resolution. An exact entry for p wins (the kernel's
-- view of `..` after a symlink); otherwise p is cleaned lexically and the
-- longest mapped prefix is substituted, repeatedly, so a symlinked parent
-- directory is followed too.
function path.resolve(p, realpath)
  if type(p) ~= "string" or not path.is_abs(p) then
    return nil, "not an absolute path"
  end
  realpath = type(realpath) == "table" and realpath or {}
  local exact = realpath[p]
  if type(exact) == "string" and path.is_abs(exact) then
    return path.clean(exact)
  end
  local map = {}
  for k, v in pairs(realpath) do
    if type(k) == "string" and type(v) == "string" and path.is_abs(k) then
      local ck = path.clean(k)
      if path.is_abs(v) then
        map[ck] = path.clean(v)
      else -- a relative link target resolves against the link's directory
        map[ck] = path.join(path.clean(ck .. "/.."), v)
      end
    end
  end
  local cur = path.clean(p)
  if next(map) == nil then
    return cur   -- nothing to substitute (the usual case: no symlinks known)
  end
  for _ = 1, 40 do
    local prefix, rest = cur, ""
    local target
    while true do
      target = map[prefix]
      if target or prefix == "/" then
        break
      end
      local cut = s_find(prefix, "/[^/]*$")
      local parent = cut == 1 and "/" or s_sub(prefix, 1, cut - 1)
      rest = s_sub(prefix, cut + 1) .. (rest == "" and "" or "/" .. rest)
      prefix = parent
    end
    if not target or target == prefix then
      return cur
    end
    local nxt = path.clean(rest == "" and target or target .. "/" .. rest)
    if nxt == cur then
      return cur
    end
    cur = nxt
  end
  return nil, "too many levels of symbolic links"
end

return path
