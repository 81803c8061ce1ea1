-- Golden create bodies: every task `config { ... }` example of the spec page
-- (spec/fixtures/hcl/spec_page_*.hcl), wrapped into a minimal job and planned,
-- compared with a hand-reviewed body in spec/fixtures/golden/<name>.json.
local cjson = require("cjson")
local agent = require("drv.agent")
local container = require("drv.container")
local driver = require("drv.driver")
local jobspec = require("drv.jobspec")
local uuid = require("drv.uuid")

local SEED = "00112233445566778899aabbccddeeff"
-- policies = nil: no policy engine in this plan (admission then refuses the
-- gated options, which go through container.build below instead)
local HOST = {
  default_data_dir = "/var/lib/drvctl", alloc_seed = SEED, cwd = "/work", policies = nil,
  network_ip = "10.0.0.1",
}
-- port allocations for the fixtures that declare network ports (plan pass 2)
local PORTS = {
  spec_page_22 = { redis = 23456 },
}


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


---Wraps a spec-page fragment into a job: a task block goes into a group, a
---config fragment (with its siblings such as `artifact`) into a docker task;
---an image is added when the example has none.
local function wrap(fragment)
  local body = fragment
  if not body:find("image%s*=") then
    body = body:gsub("config%s*{", 'config {\n    image = "busybox:1"', 1)
  end
  if body:match("^%s*task%s") then
    return 'job "docs" {\n  group "g" {\n' .. body .. "\n  }\n}\n"
  end
  return 'job "docs" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n'
    .. body .. "\n    }\n  }\n}\n"
end


---Plans a wrapped job and returns the first task's body (decoded). Options
---gated by policy are mapped through container.build directly, building the
---instance as the driver does, so the goldens do not depend on a policy set.
local function plan_body(name, src)
  local job = assert(jobspec.load(src, name .. ".hcl"))
  local task = job.groups[1].tasks[1]
  if #container.gated(task.config) > 0 then
    local a = assert(agent.load(nil, nil, HOST))
    local entry, body = container.build({
      job = job, group = job.groups[1], task = task, agent = a,
      alloc_id = uuid.alloc_id(SEED, 1), alloc_index = 0,
      alloc_name = string.format("%s.%s[0]", job.name, job.groups[1].name),
      job_path = name .. ".hcl",
    })
    assert(entry, body and body[1] and body[1].message)
    return cjson.decode(entry.body)
  end
  local host = {}
  for k, v in pairs(HOST) do
    host[k] = v
  end
  if PORTS[name] then
    host.ports = {}
    for label, port in pairs(PORTS[name]) do
      host.ports[string.format("%s/%s/%s", uuid.alloc_id(SEED, 1), task.name, label)] = port
    end
  end
  local plan, problems = driver.plan(src, name .. ".hcl", nil, nil, host)
  assert(plan, problems and problems[1] and problems[1].message)
  return cjson.decode(plan.tasks[1].body)
end


local FIXTURES = {}
for i = 1, 30 do
  local name = string.format("spec_page_%02d", i)
  local f = io.open("spec/fixtures/hcl/" .. name .. ".hcl", "rb")
  if f then
    local text = f:read("a")
    f:close()
    if text:find("config%s*{") and not text:match("^%s*client") and not text:match("^%s*job") then
      FIXTURES[#FIXTURES + 1] = name
    end
  end
end


describe("golden create bodies", function()
  it("cover every task config example of the spec page", function()
    assert.equal(19, #FIXTURES)
  end)

  for _, name in ipairs(FIXTURES) do
    it("match for " .. name, function()
      local src = wrap(read("spec/fixtures/hcl/" .. name .. ".hcl"))
      local golden = cjson.decode(read("spec/fixtures/golden/" .. name .. ".json"))
      assert.same(golden, plan_body(name, src))
    end)
  end
end)
