local interp = require("drv.interp")

local SCOPE = {
  env = { NOMAD_TASK_NAME = "web", MY_ENV = "v1", NOMAD_PORT_http = "8080" },
  meta = { foo = "bar", ["dotted.key"] = "d" },
  nomad = { datacenter = "dc1", region = "global" },
  node = { ["unique.name"] = "node-1", datacenter = "dc1", class = "edge" },
  attr = { ["kernel.name"] = "linux", ["driver.docker.version"] = "20.10.24" },
}


describe("interp.expand", function()
  it("resolves NOMAD variables from env", function()
    assert.equal("web:8080", (interp.expand("${NOMAD_TASK_NAME}:${NOMAD_PORT_http}", SCOPE)))
  end)

  it("resolves task env variables", function()
    assert.equal("v1", (interp.expand("${MY_ENV}", SCOPE)))
  end)

  it("resolves meta.x", function()
    assert.equal("bar d", (interp.expand("${meta.foo} ${meta.dotted.key}", SCOPE)))
  end)

  it("resolves nomad.datacenter and nomad.region", function()
    assert.equal("dc1/global", (interp.expand("${nomad.datacenter}/${nomad.region}", SCOPE)))
  end)

  it("resolves node.unique.name, node.datacenter and node.class", function()
    assert.equal("node-1 dc1 edge",
      (interp.expand("${node.unique.name} ${node.datacenter} ${node.class}", SCOPE)))
  end)

  it("resolves attr names that contain dots", function()
    assert.equal("linux 20.10.24",
      (interp.expand("${attr.kernel.name} ${attr.driver.docker.version}", SCOPE)))
  end)

  it("trims blanks inside the braces", function()
    assert.equal("web", (interp.expand("${ NOMAD_TASK_NAME }", SCOPE)))
  end)

  it("leaves unknown variables as written and returns them", function()
    local out, unknown = interp.expand("a ${NOPE} ${meta.none} ${attr.x}", SCOPE)
    assert.equal("a ${NOPE} ${meta.none} ${attr.x}", out)
    assert.same({ "${NOPE}", "${meta.none}", "${attr.x}" }, unknown)
  end)

  it("does not read prefixed names from env", function()
    local out, unknown = interp.expand("${meta.foo}", { env = { ["meta.foo"] = "env" } })
    assert.equal("${meta.foo}", out)
    assert.same({ "${meta.foo}" }, unknown)
  end)

  it("tolerates absent sources", function()
    local out, unknown = interp.expand("${attr.kernel.name}${X}", {})
    assert.equal("${attr.kernel.name}${X}", out)
    assert.equal(2, #unknown)
  end)

  it("returns strings without references unchanged", function()
    local out, unknown = interp.expand("plain $HOME {x}", SCOPE)
    assert.equal("plain $HOME {x}", out)
    assert.same({}, unknown)
  end)

  it("appends to a given unknown list", function()
    local acc = { "${A}" }
    local _, unknown = interp.expand("${B}", SCOPE, acc)
    assert.equal(acc, unknown)
    assert.same({ "${A}", "${B}" }, acc)
  end)

  it("does not expand a value twice", function()
    assert.equal("${MY_ENV}", (interp.expand("${X}", { env = { X = "${MY_ENV}", MY_ENV = "no" } })))
  end)
end)


describe("interp.expand_list", function()
  it("returns a fresh expanded list", function()
    local list = { "${MY_ENV}", "b" }
    local out = interp.expand_list(list, SCOPE)
    assert.same({ "v1", "b" }, out)
    assert.equal("${MY_ENV}", list[1])
  end)
end)


describe("interp.expand_map", function()
  it("expands every value and collects unknown refs", function()
    local out, unknown = interp.expand_map({ a = "${meta.foo}", b = "${Q}" }, SCOPE)
    assert.same({ a = "bar", b = "${Q}" }, out)
    assert.same({ "${Q}" }, unknown)
  end)
end)


describe("interp on hostile input", function()
  local budget = require("support.budget")

  it("trims a reference padded with 60 KB of spaces in linear time", function()
    local pad = string.rep(" ", 60000)
    local out = budget.within(2000000, interp.expand, "${" .. pad .. "NOMAD_TASK_NAME" .. pad .. "}", SCOPE)
    assert.equal(SCOPE.env.NOMAD_TASK_NAME, out)
  end)
end)
