local ports = require("drv.ports")

local ALLOC = "01234567-89ab-4def-8123-456789abcdee"


local function task(name, port_list)
  return { name = name, resources = { cpu = 100, memory = 300,
    networks = port_list and { { mbits = 10, ports = port_list } } or {} } }
end


describe("ports.requests", function()
  it("makes one request per port of each task instance", function()
    local t = task("web", { { label = "db", static = 5432 }, { label = "http" } })
    assert.same({
      { key = ALLOC .. "/web/db", alloc_id = ALLOC, task = "web", label = "db", static = 5432 },
      { key = ALLOC .. "/web/http", alloc_id = ALLOC, task = "web", label = "http" },
    }, ports.requests({ { alloc_id = ALLOC, task = t } }))
  end)

  it("keys requests of different instances apart", function()
    local t = task("web", { { label = "http" } })
    local reqs = ports.requests({ { alloc_id = "a1", task = t }, { alloc_id = "a2", task = t } })
    assert.same({ "a1/web/http", "a2/web/http" }, { reqs[1].key, reqs[2].key })
  end)

  it("makes no request for a task without a network", function()
    assert.same({}, ports.requests({ { alloc_id = ALLOC, task = task("web") } }))
  end)
end)


describe("ports.assign", function()
  it("publishes a port on tcp and udp with the host port as container port", function()
    local r = ports.assign(task("t", { { label = "http" } }), nil, { http = 23332 }, "10.0.0.5")
    assert.same({
      ["23332/tcp"] = { { HostIp = "10.0.0.5", HostPort = "23332" } },
      ["23332/udp"] = { { HostIp = "10.0.0.5", HostPort = "23332" } },
    }, r.bindings)
    assert.same({ ["23332/tcp"] = {}, ["23332/udp"] = {} }, r.exposed)
  end)

  it("sets the four variables without a port map", function()
    local r = ports.assign(task("t", { { label = "main" } }), nil, { main = 23332 }, "127.0.0.1")
    assert.same({
      NOMAD_IP_main = "127.0.0.1",
      NOMAD_HOST_PORT_main = "23332",
      NOMAD_ADDR_main = "127.0.0.1:23332",
      NOMAD_PORT_main = "23332",
    }, r.env)
  end)

  it("maps to the port_map container port (v0.8.3 test expectations)", function()
    local t = task("t", { { label = "main" }, { label = "REDIS" } })
    local r = ports.assign(t, { main = 8080, REDIS = 6379 }, { main = 23332, REDIS = 23333 },
      "127.0.0.1")
    assert.same({ "8080", "6379", "23332", "23333", "127.0.0.1:23332" }, {
      r.env.NOMAD_PORT_main, r.env.NOMAD_PORT_REDIS, r.env.NOMAD_HOST_PORT_main,
      r.env.NOMAD_HOST_PORT_REDIS, r.env.NOMAD_ADDR_main,
    })
  end)

  it("binds the host port to the mapped container port", function()
    local r = ports.assign(task("t", { { label = "redis" } }), { redis = 6379 }, { redis = 23332 },
      "10.0.0.5")
    assert.same({
      ["6379/tcp"] = { { HostIp = "10.0.0.5", HostPort = "23332" } },
      ["6379/udp"] = { { HostIp = "10.0.0.5", HostPort = "23332" } },
    }, r.bindings)
    assert.same({ ["6379/tcp"] = {}, ["6379/udp"] = {} }, r.exposed)
  end)

  it("keeps label case in variable names", function()
    local r = ports.assign(task("t", { { label = "Http" } }), nil, { Http = 2 }, "127.0.0.1")
    assert.equal("2", r.env.NOMAD_PORT_Http)
    assert.is_nil(r.env.NOMAD_PORT_HTTP)
  end)

  it("uses the port's to as container port when port_map has no entry", function()
    local r = ports.assign(task("t", { { label = "http", to = 80 } }), nil, { http = 23332 }, "1.2.3.4")
    assert.equal("80", r.env.NOMAD_PORT_http)
    assert.same({ { HostIp = "1.2.3.4", HostPort = "23332" } }, r.bindings["80/tcp"])
  end)

  it("prefers port_map over to", function()
    local r = ports.assign(task("t", { { label = "http", to = 80 } }), { http = 8080 },
      { http = 23332 }, "1.2.3.4")
    assert.equal("8080", r.env.NOMAD_PORT_http)
  end)

  it("appends bindings when two host ports map to one container port", function()
    local t = task("t", { { label = "a" }, { label = "b" } })
    local r = ports.assign(t, { a = 80, b = 80 }, { a = 20001, b = 20002 }, "1.2.3.4")
    assert.same({ { HostIp = "1.2.3.4", HostPort = "20001" }, { HostIp = "1.2.3.4", HostPort = "20002" } },
      r.bindings["80/tcp"])
  end)

  it("uses 0 placeholders for ports not allocated yet", function()
    local r = ports.assign(task("t", { { label = "db", static = 5432 } }), nil, nil, "127.0.0.1")
    assert.same({ "0", "127.0.0.1:0" }, { r.env.NOMAD_HOST_PORT_db, r.env.NOMAD_ADDR_db })
    assert.same({ { HostIp = "127.0.0.1", HostPort = "0" } }, r.bindings["0/tcp"])
  end)

  it("binds to 127.0.0.1 without a network address", function()
    local r = ports.assign(task("t", { { label = "http" } }), nil, { http = 20000 })
    assert.equal("127.0.0.1:20000", r.env.NOMAD_ADDR_http)
  end)

  it("returns the host port of each label", function()
    local r = ports.assign(task("t", { { label = "db", static = 5432 }, { label = "http" } }), nil,
      { db = 5432, http = 23456 }, "127.0.0.1")
    assert.same({ db = 5432, http = 23456 }, r.host_ports)
  end)

  it("returns empty tables for a task without ports", function()
    assert.same({ env = {}, bindings = {}, exposed = {}, host_ports = {} },
      ports.assign(task("t"), nil, nil, "127.0.0.1"))
  end)
end)
