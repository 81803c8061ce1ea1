-- security_opt: nothing that loosens the container's confinement.
--
-- Allowed by default: "no-new-privileges" (bare, or =/: with a value Go's
-- strconv.ParseBool accepts, which is what dockerd parses). Everything else
-- is denied unless it is listed in allow_security_opt, compared after the
-- spelling is normalised to "key=value" ("seccomp:unconfined" and
-- "seccomp=unconfined" are the same entry). That covers, in every spelling
-- dockerd accepts or rejects (case, spaces, ':' or '='):
--   seccomp=unconfined, seccomp=<profile JSON or path> (a profile is a
--   policy the job would write for itself), apparmor=unconfined or any other
--   profile, label=disable, the bare "disable", label=type:/user:/role:/
--   level:... (type:spc_t runs unconfined; level: picks another container's
--   MCS category), systempaths=unconfined, writable-cgroups=true, and any
--   key a later dockerd adds.
--
-- Deviation from Nomad v0.8.3 (which passed security_opt through), restore
-- one option at a time with:
--   plugin "docker" { config { allow_security_opt = ["seccomp=unconfined"] } }

local BOOLS = {
  ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true, True = true,
  ["0"] = true, f = true, F = true, FALSE = true, ["false"] = true, False = true,
}

local function quote(s)
  return "\"" .. tostring(s) .. "\""
end

-- canonical("seccomp:unconfined") -> "seccomp=unconfined"; dockerd splits at
-- the first '=' when there is one, else at the first ':'; bare "disable" is
-- label=disable.
local function canonical(o)
  if o == "disable" then
    return "label=disable"
  end
  local k, v = string.match(o, "^([^=]*)=(.*)$")
  if not k then
    k, v = string.match(o, "^([^:]*):(.*)$")
  end
  if not k then
    return o
  end
  return k .. "=" .. v
end

return {
  policy_format = 1,
  name = "confinement",
  description = "security_opt may only add no-new-privileges unless allow_security_opt lists it",

  check = function(ctx)
    local hc = ctx.spec.HostConfig or {}
    local opts = hc.SecurityOpt
    if opts == nil then
      return true
    end
    if type(opts) ~= "table" then
      return nil, "security_opt must be a list"
    end
    local allow = {}
    for _, a in ipairs(ctx.agent.allow_security_opt or {}) do
      if type(a) == "string" then
        allow[canonical(a)] = true
      end
    end
    local msgs = {}
    for _, o in ipairs(opts) do
      if type(o) ~= "string" then
        msgs[#msgs + 1] = "security_opt must be a string: " .. quote(o)
      else
        local c = canonical(o)
        local nnp = string.match(c, "^no%-new%-privileges=(.*)$")
        -- no-new-privileges can only tighten confinement
        local tightens = o == "no-new-privileges" or (nnp ~= nil and BOOLS[nnp] == true)
        if not tightens and not allow[c] then
          msgs[#msgs + 1] = "security_opt not in allow_security_opt: " .. quote(o)
        end
      end
    end
    if #msgs > 0 then
      return nil, msgs
    end
    return true
  end,
}
