-- Image registries tasks may pull from. Shipped OFF: set enabled = true
-- below, or in the agent config:
--   plugin "docker" { config { policy_options { registries { enabled = true
--     allow = ["docker.io", "registry.example.com:5000"] } } } }
-- Images without a registry host ("busybox", "library/redis") come from
-- docker.io. "*.example.com" allows every host under example.com.

return {
  policy_format = 1,
  name = "registries",
  description = "images must come from an allowed registry",
  enabled = false,
  settings = {
    allow = { "docker.io" },
  },

  check = function(ctx)
    local image = ctx.spec.Image
    local registry = drv.image.registry(image)
    if not registry then
      return nil, "no image to check"
    end
    for _, a in ipairs(ctx.settings.allow) do
      a = string.lower(a)
      if a == registry then
        return true
      end
      if a:sub(1, 2) == "*." and registry:sub(-(#a - 1)) == a:sub(2) then
        return true
      end
    end
    return nil, "image registry not allowed: \"" .. registry .. "\""
  end,
}
