local kit = require("policykit")

local V083 = "CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,SETPCAP,"
  .. "NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE"

describe("policies/capabilities.lua", function()
  it("allows a task that adds nothing", function()
    kit.task({}):allowed()
  end)

  it("drops NET_RAW under the default whitelist (CVE-2021-32575)", function()
    kit.task({}):allowed():contains("HostConfig.CapDrop", "NET_RAW")
      :mutated_by("capabilities.lua", "HostConfig.CapDrop")
  end)

  it("keeps NET_RAW with the v0.8.3 whitelist", function()
    kit.task({}, { agent = { caps_whitelist = V083 } }):allowed()
      :lacks("HostConfig.CapDrop", "NET_RAW")
  end)

  for _, name in ipairs({ "SYS_ADMIN", "sys_admin", "CAP_SYS_ADMIN", " SYS_ADMIN ", "cap_Sys_Admin" }) do
    it(("denies cap_add %q"):format(name), function()
      kit.task({ cap_add = { name } }):denied_by("capabilities.lua", '"SYS_ADMIN"')
    end)
  end

  it("denies cap_add ALL", function()
    kit.task({ cap_add = { "ALL" } }):denied_by("capabilities.lua", '"ALL"')
  end)

  it("denies cap_add all in lower case", function()
    kit.task({ cap_add = { "all" } }):denied_by("capabilities.lua", '"ALL"')
  end)

  it("denies adding NET_RAW back under the default whitelist", function()
    kit.task({ cap_add = { "net_raw" } }):denied_by("capabilities.lua", '"NET_RAW"')
  end)

  it("lists every missing capability in one message", function()
    kit.task({ cap_add = { "SYS_ADMIN", "NET_ADMIN", "SYS_TIME" } })
      :denied_by("capabilities.lua", '"NET_ADMIN", "SYS_ADMIN", "SYS_TIME"')
  end)

  it("allows an added capability the agent whitelists, in any spelling", function()
    kit.task({ cap_add = { "sys_time" } }, { agent = { caps_whitelist = { "cap_sys_time", "chown" } } })
      :allowed()
  end)

  it("allows anything when the whitelist holds ALL", function()
    kit.task({ cap_add = { "ALL" } }, { agent = { caps_whitelist = { "all" } } }):allowed()
      :lacks("HostConfig.CapDrop", "NET_RAW")
  end)

  it("allows a task that drops what the whitelist lacks", function()
    kit.task({ cap_drop = { "ALL" }, cap_add = { "CHOWN" } }, { agent = { caps_whitelist = { "CHOWN" } } })
      :allowed()
  end)

  it("drops every default the agent's whitelist lacks", function()
    local case = kit.task({}, { agent = { caps_whitelist = { "CHOWN" } } }):allowed()
    assert.equal(13, #case:field("HostConfig.CapDrop"))
  end)

  -- how long this takes is measured by bench/policy_limits.lua
  it("normalises a huge padded name", function()
    kit.task({ cap_add = { (" "):rep(200000) .. "SYS_ADMIN" .. (" "):rep(200000) } })
      :denied_by("capabilities.lua", '"SYS_ADMIN"')
  end)

  it("denies a cap_add entry that is not a capability name", function()
    kit.task({ cap_add = { "SYS ADMIN" } }):denied_by("capabilities.lua", "cap_add", '"SYS ADMIN"')
  end)

  describe("attacks through the job file", function()
    local spellings = { "SYS_ADMIN", "sys_admin", "cap_sys_admin", "CAP_SYS_ADMIN", " sys_admin",
      "sys_admin ", "Cap_Sys_Admin", "CAP_sys_admin", "\tSYS_ADMIN" }
    for _, name in ipairs(spellings) do
      it(("refuses cap_add %q"):format(name), function()
        kit.job(('cap_add = ["%s"]'):format(name)):blocked("SYS_ADMIN")
      end)
    end

    for _, name in ipairs({ "ALL", "all", "All", " ALL", "CAP_ALL" }) do
      it(("refuses cap_add %q"):format(name), function()
        kit.job(('cap_add = ["%s"]'):format(name)):blocked()
      end)
    end

    it("refuses SYS_ADMIN hidden after a harmless capability", function()
      kit.job('cap_add = ["CHOWN", "SYS_ADMIN"]'):denied_by("capabilities.lua", "SYS_ADMIN")
    end)

    it("refuses SYS_ADMIN that cap_drop only seems to cancel", function()
      kit.job('cap_add = ["SYS_ADMIN"]\ncap_drop = ["sys_admin "]'):blocked()
    end)

    it("refuses NET_RAW back through cap_add under the default whitelist", function()
      kit.job('cap_add = ["net_raw"]'):denied_by("capabilities.lua", "NET_RAW")
    end)

    it("refuses cap_add behind a duplicate JSON key", function()
      kit.job(nil, { source = [[
{"Job": {"ID": "example", "Name": "example", "TaskGroups": [{"Name": "app", "Count": 1,
 "Tasks": [{"Name": "web", "Driver": "docker",
   "Config": {"image": "busybox:1.36", "cap_add": [], "cap_add": ["SYS_ADMIN"]}}]}]}}
]] }):blocked()
    end)

    it("allows SYS_TIME when the whitelist lists it in any spelling", function()
      kit.job('cap_add = ["cap_sys_time"]', { agent =
        'plugin "docker" { config { allow_caps = ["CHOWN", "SYS_TIME"] } }' }):allowed()
    end)
  end)
end)
