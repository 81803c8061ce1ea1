-- Every HCL example of the v0.8.3 docker driver page goes through the entry
-- point it belongs to: task config fragments through driver.plan with the
-- shipped policies (under an agent that allows what the examples ask for),
-- agent configs through driver.agent, and the constraint job against real
-- and too-old Docker versions. The exact bodies are in golden_spec.lua.
local driver = require("drv.driver")
local kit = require("policykit")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local SOURCES = {}
for _, name in ipairs({ "capabilities", "hardening", "privileged", "registries", "resources",
                        "runtimes", "volumes" }) do
  local path = "policies/" .. name .. ".lua"
  SOURCES[#SOURCES + 1] = { path = path, source = read(path) }
end

local PERMISSIVE = [[
client {
  options {
    "docker.volumes.enabled" = "true"
    "docker.privileged.enabled" = "true"
    "docker.caps.whitelist" = "ALL"
  }
}
]]

local function host(extra)
  local h = {
    default_data_dir = "/var/lib/drvctl", alloc_seed = "00112233445566778899aabbccddeeff",
    cwd = "/work", policies = SOURCES, guard = kit.default_guard, network_ip = "127.0.0.1",
    node = { ["kernel.name"] = "linux", ["cpu.numcores"] = "2", ["cpu.totalcompute"] = "4000",
      ["driver.docker"] = "1", ["driver.docker.version"] = "20.10.24+dfsg1" },
    docker_facts = true,
  }
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end

local function wrap_config(fragment)
  local body = fragment
  if not body:find("image%s*=") then
    body = body:gsub("config%s*{", 'config {\n    image = "busybox:1"', 1)
  end
  return 'job "docs" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n'
    .. body .. "\n    }\n  }\n}\n"
end

local function problems_text(problems)
  local out = {}
  for _, p in ipairs(problems or {}) do
    out[#out + 1] = p.message
  end
  return table.concat(out, "\n")
end

describe("the spec page's HCL examples", function()
  for i = 1, 24 do
    local name = string.format("spec_page_%02d", i)
    local src = read("spec/fixtures/hcl/" .. name .. ".hcl")
    local first = src:gsub("%s*#[^\n]*", ""):match("^%s*(%a+)")
    if first == "config" or first == "artifact" or (first == "task" and src:find("config%s*{")) then
      it(name .. " plans as a task, judged by the shipped policies", function()
        local job = first == "task" and ('job "docs" {\n  group "g" {\n' .. src .. "\n  }\n}\n")
          or wrap_config(src)
        -- pass 2 needs every port request allocated: plan once to collect them
        local p1 = assert(driver.plan(job, name .. ".hcl", PERMISSIVE, "agent.hcl",
          host({ skip_policies = true })))
        local ports, next_port = {}, 20000
        for _, req in ipairs(p1.port_requests or {}) do
          ports[req.key] = req.static or next_port
          next_port = next_port + 1
        end
        local plan, problems = driver.plan(job, name .. ".hcl", PERMISSIVE, "agent.hcl",
          host({ ports = ports }))
        assert.is_table(plan, problems_text(problems))
        assert.equal(1, #plan.tasks)
      end)
    end
  end

  it("spec_page_19 and spec_page_23 load as agent configs", function()
    for _, name in ipairs({ "spec_page_19", "spec_page_23" }) do
      local a, problems = driver.agent(read("spec/fixtures/hcl/" .. name .. ".hcl"), name .. ".hcl",
        host())
      assert.is_table(a, problems_text(problems))
    end
    local a = driver.agent(read("spec/fixtures/hcl/spec_page_23.hcl"), "x.hcl", host())
    assert.is_false(a.options.cleanup_image)
  end)

  it("spec_page_20 (a task with two ports) plans with two port requests", function()
    local src = read("spec/fixtures/hcl/spec_page_20.hcl")
      :gsub('driver = "docker"', 'driver = "docker"\n  config {\n    image = "redis:3.2"\n  }', 1)
    local plan, problems = driver.plan('job "docs" {\n  group "g" {\n' .. src .. "\n  }\n}\n",
      "ports.hcl", nil, nil, host({ skip_policies = true }))
    assert.is_table(plan, problems_text(problems))
    assert.equal(2, #plan.port_requests)
  end)

  it("spec_page_21 (a port stanza) plans inside a network block", function()
    local port = read("spec/fixtures/hcl/spec_page_21.hcl")
    local job = 'job "docs" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n'
      .. '      config {\n        image = "redis:3.2"\n      }\n'
      .. "      resources {\n        network {\n" .. port .. "\n        }\n      }\n    }\n  }\n}\n"
    local plan, problems = driver.plan(job, "port.hcl", nil, nil, host({ skip_policies = true }))
    assert.is_table(plan, problems_text(problems))
    assert.equal("http", plan.port_requests[1].label)
  end)

  describe("spec_page_24 (require docker newer than 1.2)", function()
    local src = read("spec/fixtures/hcl/spec_page_24.hcl"):gsub("\n}%s*$",
      '\n  group "g" {\n    task "t" {\n      driver = "docker"\n      config {\n'
      .. '        image = "redis:3.2"\n      }\n    }\n  }\n}\n')

    it("is met by Docker 20.10", function()
      local plan, problems = driver.plan(src, "docs.hcl", nil, nil, host({ skip_policies = true }))
      assert.is_table(plan, problems_text(problems))
    end)

    it("is not met by Docker 1.1, naming the actual version", function()
      local h = host({ skip_policies = true })
      h.node["driver.docker.version"] = "1.1.0"
      local plan, problems = driver.plan(src, "docs.hcl", nil, nil, h)
      assert.is_nil(plan)
      assert.equal("constraint", problems[1].kind)
      assert.matches("1.1.0", problems[1].message, 1, true)
    end)
  end)
end)
