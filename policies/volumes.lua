-- Host paths and volumes.
--
-- * `volumes` binds: a relative source resolves against the task directory;
--   after resolving `..` (and symlinks ctx.realpath names; the binary
--   passes none: C refuses every symlink in a pinned source instead) it
--   must stay inside the allocation directory unless
--   docker.volumes.enabled is true. Absolute sources follow the same rule.
-- * volume_driver, and mounts of type "volume", need docker.volumes.enabled.
-- * mounts of type "bind" follow the bind rule; "tmpfs" is always allowed.
-- * docker.volumes.selinuxlabel is appended to every bind, the built-in
--   alloc/local/secrets binds included, even when volumes are disabled.
-- Bind sources are rewritten to their cleaned absolute path. After every
-- policy passed, sources under the data dir are pinned: opened without
-- following symlinks and bind-mounted onto data_dir/binds/, whose staging
-- path Docker gets (drv.admission, core/base/pin.c), so Docker mounts exactly
-- what was checked.
--
-- Deviation from Nomad v0.8.3 (CVE-2020-28348): docker.volumes.enabled
-- defaults to false, and `../` can no longer leave the allocation directory
-- (GH-4983). The old default comes back with:
--   client { options { "docker.volumes.enabled" = "true" } }

local path, bind = drv.path, drv.bind

local function nonempty(s)
  if type(s) == "string" and s ~= "" then
    return s
  end
  return nil
end

-- resolve(ctx, source) -> resolved absolute path | nil, err
local function resolve(ctx, source)
  local p = source
  if not path.is_abs(p) then
    p = ctx.task_dir .. "/" .. p
  end
  return path.resolve(p, ctx.realpath)
end

local function with_label(mode, label)
  local opts = {}
  for o in string.gmatch(mode or "", "[^,]+") do
    if o == label then
      return mode
    end
    opts[#opts + 1] = o
  end
  opts[#opts + 1] = label
  return table.concat(opts, ",")
end

return {
  policy_format = 1,
  name = "volumes",
  description = "host paths outside the alloc dir, volume drivers and volume mounts need docker.volumes.enabled",

  mutate = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local driver = nonempty(hc.VolumeDriver)
    local label = nonempty(ctx.agent.volumes_selinuxlabel)
    local changes = {}
    if type(hc.Binds) == "table" then
      local out = {}
      for i, b in ipairs(hc.Binds) do
        local pb = bind.parse(b)
        out[i] = b
        if pb then
          if not (driver and not path.is_abs(pb.source)) then
            pb.source = resolve(ctx, pb.source) or pb.source
          end
          if label then
            pb.mode = with_label(pb.mode, label)
          end
          out[i] = bind.format(pb)
        end
      end
      changes[#changes + 1] = { op = "set", path = "HostConfig.Binds", value = out }
    end
    for i, m in ipairs(hc.Mounts or {}) do
      if m.Type == "bind" and type(m.Source) == "string" then
        local r = resolve(ctx, m.Source)
        if r and r ~= m.Source then
          changes[#changes + 1] = { op = "set",
            path = "HostConfig.Mounts." .. i .. ".Source", value = r }
        end
      end
    end
    return changes
  end,

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local enabled = ctx.agent.volumes_enabled == true
    local driver = nonempty(hc.VolumeDriver)
    local alloc = path.resolve(ctx.alloc_dir, ctx.realpath)
    local msgs = {}
    local off = "docker.volumes.enabled is false; "
    local function host_path(source, what)
      local r, err = resolve(ctx, source)
      if not r then
        msgs[#msgs + 1] = "cannot resolve " .. what .. " (" .. err .. "): \"" .. source .. "\""
      elseif not enabled and not path.within(r, alloc) then
        msgs[#msgs + 1] = off .. "cannot mount host path outside the alloc dir: \"" .. r .. "\""
      end
    end
    if driver and not enabled then
      msgs[#msgs + 1] = off .. "cannot use volume driver: \"" .. driver .. "\""
    end
    for _, b in ipairs(hc.Binds or {}) do
      local pb, err = bind.parse(b)
      if not pb then
        msgs[#msgs + 1] = err
      elseif not (driver and not path.is_abs(pb.source)) then
        host_path(pb.source, "host path")
      end
    end
    for _, m in ipairs(hc.Mounts or {}) do
      local kind = m.Type or "volume"
      if kind == "volume" then
        if not enabled then
          msgs[#msgs + 1] = off .. "cannot mount volume: \"" .. tostring(m.Source or m.Target) .. "\""
        end
      elseif kind == "bind" then
        if type(m.Source) ~= "string" or m.Source == "" then
          msgs[#msgs + 1] = "bind mount without a source: \"" .. tostring(m.Target) .. "\""
        else
          host_path(m.Source, "bind mount source")
        end
      elseif kind ~= "tmpfs" then
        msgs[#msgs + 1] = "unsupported mount type: \"" .. tostring(kind) .. "\""
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
