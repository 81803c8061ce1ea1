-- policies/namespaces.lua, as attacks: each job below tries to join a
-- namespace or network it does not own, through the real mapping (kit.job).
local kit = require("policykit")

local function agent(line)
  return 'plugin "docker" { config { ' .. line .. ' } }'
end

-- the container name drvctl gives a task of the kit's first allocation
local ALLOC
local function sibling(task)
  if not ALLOC then
    local c = kit.job("")
    ALLOC = c.result.spec.Labels["drvctl.alloc_id"]
  end
  return task .. "-" .. ALLOC
end

local DB_TASK = [[
    task "db" {
      driver = "docker"
      config { image = "busybox:1.36" }
    }
]]

describe("policies/namespaces.lua", function()
  describe("network_mode", function()
    for _, m in ipairs({ "bridge", "none", "default" }) do
      it(("allows %q"):format(m), function()
        kit.job(('network_mode = "%s"'):format(m)):allowed()
      end)
    end

    it("allows an unset network_mode (the daemon's bridge)", function()
      kit.job(""):allowed()
    end)

    it("denies host: the task would reach the host's loopback services", function()
      kit.job('network_mode = "host"')
        :denied_by("namespaces.lua", 'network_mode not in allow_network_modes: "host"')
    end)

    -- dockerd reads only "host" as the host network; other spellings name a
    -- user-defined network and must not slip through as "not host"
    for _, m in ipairs({ "HOST", "Host", " host", "host ", "host\t" }) do
      it(("refuses the spelling %q"):format(m), function()
        kit.job(('network_mode = "%s"'):format(m)):blocked()
      end)
    end

    it("runs on the host network with the documented line", function()
      kit.job('network_mode = "host"', { agent = agent('allow_network_modes = ["host"]') })
        :allowed():has("HostConfig.NetworkMode", "host")
    end)

    it("denies another user-defined network with aliases and an address", function()
      kit.job([[
        network_mode = "internal-net"
        network_aliases = ["payments"]
        ipv4_address = "172.30.0.10"
      ]]):denied_by("namespaces.lua", 'network not in allow_networks: "internal-net"')
    end)

    it("denies a network named by an ID prefix of an allowed one", function()
      kit.job('network_mode = "3f2a"', { agent = agent('allow_networks = ["internal-net"]') })
        :denied_by("namespaces.lua", '"3f2a"')
    end)

    it("denies an allowed network name in another case", function()
      kit.job('network_mode = "Internal-Net"', { agent = agent('allow_networks = ["internal-net"]') })
        :denied_by("namespaces.lua", '"Internal-Net"')
    end)

    it("allows a network the operator lists, with its aliases", function()
      kit.job([[
        network_mode = "internal-net"
        network_aliases = ["web"]
      ]], { agent = agent('allow_networks = ["internal-net"]') })
        :allowed():has("HostConfig.NetworkMode", "internal-net")
    end)

    it("refuses a network_aliases-only job on the default bridge", function()
      kit.job('network_aliases = ["payments"]'):blocked("network_aliases")
    end)

    it("denies an endpoint config naming another network (set by a mutation)", function()
      local sources = kit.sources()
      sources[#sources + 1] = { path = "ops/zz-endpoint.lua", source = [[
        return { policy_format = 1, name = "zz-endpoint",
          mutate = function()
            return { { op = "set", path = "NetworkingConfig",
              value = { EndpointsConfig = { ["internal-net"] = { Aliases = { "payments" } } } } } }
          end }
      ]] }
      kit.job("", { sources = sources })
        :denied_by("namespaces.lua", 'endpoint config names a network the task does not join: "internal-net"')
    end)
  end)

  describe("container:<name>", function()
    for _, field in ipairs({ "network_mode", "pid_mode", "ipc_mode" }) do
      it(("allows %s of a sibling task of the same allocation"):format(field), function()
        kit.job(('%s = "container:%s"'):format(field, sibling("db")), { tasks = DB_TASK })
          :allowed():has("HostConfig." .. ({ network_mode = "NetworkMode", pid_mode = "PidMode",
            ipc_mode = "IpcMode" })[field], "container:" .. sibling("db"))
      end)

      it(("denies %s of a container outside the allocation"):format(field), function()
        kit.job(('%s = "container:payments-0d5b3c7e-1111-4222-8333-444455556666"'):format(field))
          :denied_by("namespaces.lua", field .. " may only join a container of the same allocation")
      end)

      it(("denies %s of another job's container named by ID prefix"):format(field), function()
        kit.job(('%s = "container:4f1c"'):format(field))
          :denied_by("namespaces.lua", '"container:4f1c"')
      end)
    end

    local tricks = {
      ["a traversal after the sibling"] = function() return sibling("db") .. "/../x" end,
      ["a leading slash"] = function() return "/" .. sibling("db") end,
      ["another case"] = function() return sibling("DB") end,
      ["a trailing space"] = function() return sibling("db") .. " " end,
      ["the task itself"] = function() return sibling("web") end,
      ["the sibling's name without the alloc id"] = function() return "db" end,
      ["an empty name"] = function() return "" end,
    }
    for what, name in pairs(tricks) do
      it("refuses pid_mode with " .. what, function()
        kit.job(('pid_mode = "container:%s"'):format(name()), { tasks = DB_TASK }):blocked("pid_mode")
      end)
    end

    it("refuses pid_mode Container:<sibling> (case of the prefix)", function()
      kit.job(('pid_mode = "Container:%s"'):format(sibling("db")), { tasks = DB_TASK }):blocked("pid_mode")
    end)

    it("allows any container with allow_container_namespaces", function()
      kit.job('pid_mode = "container:4f1c"', { agent = agent("allow_container_namespaces = true") })
        :allowed()
    end)
  end)

  it("refuses host networking hidden behind a duplicate JSON key", function()
    local src = [[
{"Job": {"ID": "example", "Name": "example", "TaskGroups": [{"Name": "app", "Count": 1,
 "Tasks": [{"Name": "web", "Driver": "docker",
   "Config": {"image": "busybox:1.36", "network_mode": "bridge", "network_mode": "host"}}]}]}}
]]
    -- today the decoder keeps the last value and the policy judges it; a
    -- decoder that refuses duplicate keys (exit 68) blocks it as well
    kit.job(nil, { source = src }):blocked()
  end)
end)
