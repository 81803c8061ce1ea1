local kit = require("policykit")

local ALLOC = kit.ALLOC_DIR
local TASK = ALLOC .. "/web"

describe("policies/volumes.lua", function()
  it("allows the built-in alloc, local and secrets binds", function()
    kit.task({}):allowed():not_denied_by("volumes.lua")
  end)

  it("allows a relative path inside the task dir and makes it absolute", function()
    kit.task({ volumes = { "data:/data" } }):allowed()
      :contains("HostConfig.Binds", TASK .. "/data:/data")
  end)

  it("allows ../ that stays inside the alloc dir", function()
    kit.task({ volumes = { "../alloc/data:/shared" } }):allowed()
      :contains("HostConfig.Binds", ALLOC .. "/alloc/data:/shared")
  end)

  it("denies ../../../../etc climbing out of the alloc dir", function()
    kit.task({ volumes = { "../../../../etc:/x" } })
      :denied_by("volumes.lua", "docker.volumes.enabled is false", '"/var/lib/etc"')
  end)

  it("denies a traversal already joined to the task dir", function()
    kit.task({ volumes = { TASK .. "/../../../../../../etc:/x" } })
      :denied_by("volumes.lua", '"/etc"')
  end)

  it("denies a symlink in the task dir pointing at /etc", function()
    kit.task({ volumes = { "local/link:/x" } }, { realpath = { [TASK .. "/local/link"] = "/etc" } })
      :denied_by("volumes.lua", '"/etc"')
  end)

  it("denies a path below a symlinked directory", function()
    kit.task({ volumes = { "local/link/ssh:/x" } }, { realpath = { [TASK .. "/local/link"] = "/etc" } })
      :denied_by("volumes.lua", '"/etc/ssh"')
  end)

  it("mounts the resolved target of a symlink that stays inside", function()
    kit.task({ volumes = { "local/link:/x" } }, { realpath = { [TASK .. "/local/link"] = ALLOC .. "/alloc/data" } })
      :allowed():contains("HostConfig.Binds", ALLOC .. "/alloc/data:/x")
  end)

  it("denies an absolute host path with volumes disabled", function()
    kit.task({ volumes = { "/etc:/x" } }):denied_by("volumes.lua", "docker.volumes.enabled is false", '"/etc"')
  end)

  it("allows an absolute host path with volumes enabled", function()
    kit.task({ volumes = { "/etc:/x:ro" } }, { agent = { volumes_enabled = true } }):allowed()
  end)

  it("denies a volume driver with volumes disabled", function()
    kit.task({ volumes = { "vol:/x" }, volume_driver = "pxd" })
      :denied_by("volumes.lua", 'cannot use volume driver: "pxd"')
  end)

  it("passes a named volume unchanged with a volume driver and volumes enabled", function()
    kit.task({ volumes = { "vol:/x" }, volume_driver = "pxd" }, { agent = { volumes_enabled = true } })
      :allowed():contains("HostConfig.Binds", "vol:/x")
  end)

  it("denies a bind mount of / with volumes disabled", function()
    kit.task({ mounts = { { type = "bind", source = "/", target = "/host" } } })
      :denied_by("volumes.lua", '"/"')
  end)

  it("denies a mount of type volume with volumes disabled", function()
    kit.task({ mounts = { { type = "volume", source = "data", target = "/data" } } })
      :denied_by("volumes.lua", 'cannot mount volume: "data"')
  end)

  it("always allows tmpfs mounts", function()
    kit.task({ mounts = { { type = "tmpfs", target = "/scratch" } } }):allowed()
  end)

  it("denies a bind without two parts", function()
    kit.task({ volumes = { "/etc" } }):denied_by("volumes.lua", 'invalid docker volume: "/etc"')
  end)

  it("appends the selinux label to every bind, built-in ones included", function()
    kit.task({ volumes = { "data:/data:ro" } }, { agent = { volumes_selinuxlabel = "z" } })
      :allowed()
      :contains("HostConfig.Binds", ALLOC .. "/alloc:/alloc:z")
      :contains("HostConfig.Binds", TASK .. "/data:/data:ro,z")
  end)

  describe("attacks through the job file", function()
    local hosts = { "/etc", "/etc/", "//etc", "/./etc", "/var/lib/drvctl/alloc/../../../../etc",
      "/", "/var/run/docker.sock", "../../../../../etc", "local/../../../../../etc" }
    for _, src in ipairs(hosts) do
      it(("refuses volumes = [%q]"):format(src .. ":/x"), function()
        kit.job(('volumes = ["%s:/x"]'):format(src)):blocked()
      end)

      it(("refuses a mount block of type bind from %q"):format(src), function()
        kit.job(('mount {\n type = "bind"\n source = "%s"\n target = "/x"\n}'):format(src)):blocked()
      end)

      it(("refuses a mounts list entry of type bind from %q"):format(src), function()
        kit.job(('mounts = [{ type = "bind", source = "%s", target = "/x" }]'):format(src)):blocked()
      end)
    end

    it("refuses a named volume through a mount block", function()
      kit.job('mount {\n type = "volume"\n source = "other-jobs-data"\n target = "/x"\n}')
        :denied_by("volumes.lua", "cannot mount volume")
    end)

    it("refuses a mount type spelled differently", function()
      kit.job('mount {\n type = "BIND"\n source = "/etc"\n target = "/x"\n}'):blocked()
    end)

    it("refuses a volume driver", function()
      kit.job('volume_driver = "local"\nvolumes = ["data:/x"]'):denied_by("volumes.lua", "volume driver")
    end)

    it("mounts a path inside the task dir", function()
      kit.job('volumes = ["local/data:/data"]'):allowed()
    end)
  end)
end)
