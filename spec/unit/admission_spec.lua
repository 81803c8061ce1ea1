-- drv.admission: the policy set between driver.plan and the policy engine.
local admission = require("drv.admission")
local kit = require("policykit")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local SHIPPED = {}
for _, name in ipairs({ "capabilities", "confinement", "devices", "hardening", "limits", "logging",
                        "namespaces", "privileged", "registries", "resources", "runtimes",
                        "volumes" }) do
  SHIPPED[#SHIPPED + 1] = { path = "policies/" .. name .. ".lua",
    source = read("policies/" .. name .. ".lua") }
end

local ALLOC = "/var/lib/drvctl/alloc/11111111-2222-4333-8444-555555555555"

local function agent(options)
  local o = { volumes_enabled = false, privileged_enabled = false, allow_runtimes = { "runc" },
    policy_options = {} }
  for k, v in pairs(options or {}) do
    o[k] = v
  end
  return { options = o }
end

local function body(extra)
  local b = {
    Image = "busybox:1",
    HostConfig = {
      Binds = { ALLOC .. "/alloc:/alloc", ALLOC .. "/web/local:/local",
        ALLOC .. "/web/secrets:/secrets" },
      Memory = 300 * 1048576, MemorySwap = 300 * 1048576,
    },
  }
  for k, v in pairs(extra or {}) do
    b.HostConfig[k] = v
  end
  return b
end

local function apply(config, b, a)
  local entry = {}
  local out, verdicts = admission.apply(entry, b or body(), {
    task = { name = "web", config = config or {} }, agent = a or agent(), node = {},
    alloc_dir = ALLOC, task_dir = ALLOC .. "/web",
  })
  return out, verdicts, entry
end

describe("admission", function()
  describe("without a policy engine (host.policies = nil)", function()
    before_each(function()
      assert(admission.prepare({ guard = kit.default_guard }, agent()))
    end)

    it("passes a task that asks for nothing gated, unchanged", function()
      local b = body()
      local out, verdicts = apply({ image = "busybox:1" }, b)
      assert.equal(b, out)
      assert.same({}, verdicts)
    end)

    it("refuses each gated option by name", function()
      local out, problems = apply({ privileged = true, cap_add = { "NET_ADMIN" } })
      assert.is_nil(out)
      assert.equal(2, #problems)
      assert.equal("denied", problems[1].kind)
      assert.matches('config option "cap_add" needs a policy', problems[1].message, 1, true)
      assert.matches('config option "privileged" needs a policy', problems[2].message, 1, true)
    end)

    it("treats network_mode host as gated", function()
      local out, problems = apply({ network_mode = "host" })
      assert.is_nil(out)
      assert.matches('"network_mode"', problems[1].message, 1, true)
    end)
  end)

  it("denies every task when C found no policy files (fail closed)", function()
    local ok, problems = admission.prepare({ policies = {}, guard = kit.default_guard }, agent())
    assert.is_nil(ok)
    assert.equal("denied", problems[1].kind)
    assert.matches("no policy files found", problems[1].message, 1, true)
  end)

  it("fails closed when no budget guard exists", function()
    local ok, problems = admission.prepare({ policies = SHIPPED }, agent())
    assert.is_nil(ok)
    assert.matches("no budget guard", problems[1].message, 1, true)
  end)

  describe("with the shipped policies", function()
    before_each(function()
      assert(admission.prepare({ policies = SHIPPED, guard = kit.default_guard }, agent()))
    end)

    it("denies with the policy file first, then the task", function()
      local out, problems = apply({ cap_add = { "SYS_ADMIN" } }, body({ CapAdd = { "SYS_ADMIN" } }))
      assert.is_nil(out)
      assert.matches('^policies/capabilities%.lua: task "web": .*SYS_ADMIN', problems[1].message)
    end)

    it("returns the mutated body and every verdict", function()
      local out, verdicts = apply({})
      assert.same({ "NET_RAW" }, out.HostConfig.CapDrop)
      local names = {}
      for _, v in ipairs(verdicts) do
        names[#names + 1] = v.policy
      end
      assert.same({ "policies/capabilities.lua", "policies/confinement.lua",
        "policies/devices.lua", "policies/hardening.lua", "policies/limits.lua",
        "policies/logging.lua", "policies/namespaces.lua",
        "policies/privileged.lua", "policies/registries.lua", "policies/resources.lua",
        "policies/runtimes.lua", "policies/volumes.lua" }, names)
    end)

    it("returns every verdict and the judged body on a denial too (for plan)", function()
      local out, problems, verdicts, judged = admission.apply({}, body({ CapAdd = { "SYS_ADMIN" } }), {
        task = { name = "web", config = { cap_add = { "SYS_ADMIN" } } }, agent = agent(), node = {},
        alloc_dir = ALLOC, task_dir = ALLOC .. "/web",
      })
      assert.is_nil(out)
      assert.equal("denied", problems[1].kind)
      assert.equal(12, #verdicts)
      assert.same({ "SYS_ADMIN" }, judged.HostConfig.CapAdd)
      local denied = {}
      for _, v in ipairs(verdicts) do
        if not v.allowed then denied[#denied + 1] = v.name end
      end
      assert.same({ "capabilities" }, denied)
    end)

    it("lets a task join a sibling's namespaces only (ctx.siblings)", function()
      local sib = "db-11111111-2222-4333-8444-555555555555"
      local function try(mode)
        local entry = {}
        return admission.apply(entry, body({ PidMode = mode }), {
          task = { name = "web", config = {} }, agent = agent(), node = {},
          alloc_dir = ALLOC, task_dir = ALLOC .. "/web", siblings = { sib },
        })
      end
      assert.is_table(try("container:" .. sib))
      local out, problems = try("container:" .. sib .. "/../x")
      assert.is_nil(out)
      assert.matches("policies/namespaces.lua", problems[1].message, 1, true)
    end)

    it("pins every bind source under the data dir and gives Docker the staging path", function()
      local b = body({
        Binds = { ALLOC .. "/alloc:/alloc", ALLOC .. "/web/local/data:/data:ro", "/srv/x:/x" },
        Mounts = { { Type = "bind", Source = ALLOC .. "/alloc/data/m", Target = "/m" },
          { Type = "bind", Source = "/var/lib/drvctl/alloc/other/alloc/data", Target = "/o" },
          { Type = "tmpfs", Target = "/t" } },
      })
      local a = agent({ volumes_enabled = true })
      a.data_dir = "/var/lib/drvctl"
      assert(admission.prepare({ policies = SHIPPED, guard = kit.default_guard }, a))
      local entry = { alloc_id = "11111111-2222-4333-8444-555555555555" }
      local out = admission.apply(entry, b, {
        task = { name = "web", config = { volumes = { "local/data:/data:ro" } } }, agent = a,
        node = {}, alloc_dir = ALLOC, task_dir = ALLOC .. "/web", task_index = 2,
      })
      local S = "/var/lib/drvctl/binds/11111111-2222-4333-8444-555555555555-2-"
      assert.same({ S .. "0:/alloc", S .. "1:/data:ro", "/srv/x:/x" }, out.HostConfig.Binds)
      assert.equal(S .. "2", out.HostConfig.Mounts[1].Source)
      assert.equal(S .. "3", out.HostConfig.Mounts[2].Source)
      assert.is_nil(out.HostConfig.Mounts[3].Source)
      assert.equal("/var/lib/drvctl/binds", entry.binds_dir)
      assert.same({
        { source = ALLOC .. "/alloc", root = ALLOC, path = "alloc", staging = S .. "0", create = true },
        { source = ALLOC .. "/web/local/data", root = ALLOC, path = "web/local/data",
          staging = S .. "1", create = true },
        { source = ALLOC .. "/alloc/data/m", root = ALLOC, path = "alloc/data/m",
          staging = S .. "2", create = false },
        { source = "/var/lib/drvctl/alloc/other/alloc/data", root = "/var/lib/drvctl",
          path = "alloc/other/alloc/data", staging = S .. "3", create = false },
      }, entry.pins)
    end)

    it("pins nothing when no bind lies under the data dir", function()
      local a = agent()
      a.data_dir = "/elsewhere"
      assert(admission.prepare({ policies = SHIPPED, guard = kit.default_guard }, a))
      local entry = { alloc_id = "11111111-2222-4333-8444-555555555555" }
      local b = body({ Binds = {} })
      admission.apply(entry, b, { task = { name = "web", config = {} }, agent = a, node = {},
        alloc_dir = ALLOC, task_dir = ALLOC .. "/web" })
      assert.is_nil(entry.pins)
    end)
  end)

  it("keeps the previous set when a new one is broken (reload on SIGHUP)", function()
    assert(admission.prepare({ policies = SHIPPED, guard = kit.default_guard }, agent()))
    local broken = { { path = "policies/broken.lua", source = "return {" } }
    local ok = admission.prepare({ policies = broken, guard = kit.default_guard }, agent())
    assert.is_nil(ok)
    local out, problems = apply({ cap_add = { "SYS_ADMIN" } }, body({ CapAdd = { "SYS_ADMIN" } }))
    assert.is_nil(out)
    assert.matches("policies/capabilities.lua", problems[1].message, 1, true)
  end)

  describe("policy_options in the agent config", function()
    local function prepare(po)
      local a = agent({ policy_options = po })
      a.config_path = "agent.hcl"
      return admission.prepare({ policies = SHIPPED, guard = kit.default_guard }, a)
    end

    it("refuses an unknown policy name with a did-you-mean", function()
      local ok, problems = prepare({ registres = { enabled = true } })
      assert.is_nil(ok)
      assert.equal("config", problems[1].kind)
      assert.equal('agent.hcl: policy_options: unknown policy "registres", did you mean "registries"?',
        problems[1].message)
    end)

    it("refuses an unknown setting with a did-you-mean", function()
      local ok, problems = prepare({ resources = { max_memory = 10 } })
      assert.is_nil(ok)
      assert.equal('agent.hcl: policy_options.resources: unknown policy option "max_memory", '
        .. 'did you mean "max_memory_mb"?', problems[1].message)
    end)

    it("refuses a non-boolean enabled", function()
      local ok, problems = prepare({ registries = { enabled = "yes" } })
      assert.is_nil(ok)
      assert.matches("enabled must be a boolean", problems[1].message, 1, true)
    end)

    it("accepts known names and settings", function()
      assert.is_true(prepare({ limits = { min_oom_score_adj = -100 }, hardening = { enabled = true } }))
    end)

    it("is checked by check() with an agent", function()
      local a = agent({ policy_options = { privilegd = {} } })
      local ok, problems = admission.check(SHIPPED, kit.default_guard, a)
      assert.is_nil(ok)
      assert.matches('unknown policy "privilegd", did you mean "privileged"?', problems[1].message, 1, true)
    end)
  end)

  describe("without a policy set, memory", function()
    it("refuses a body below 10 MB", function()
      assert(admission.prepare({ guard = kit.default_guard }, agent()))
      local out, problems = apply({}, body({ Memory = 0, MemorySwap = 0 }))
      assert.is_nil(out)
      assert.matches("memory below 10 MB", problems[1].message, 1, true)
    end)
  end)

  describe("check", function()
    it("accepts the shipped policies", function()
      assert.is_true(admission.check(SHIPPED, kit.default_guard))
    end)

    it("reports a broken file with its path, kind config", function()
      local ok, problems = admission.check({ { path = "policies/broken.lua", source = "return 42" } },
        kit.default_guard)
      assert.is_nil(ok)
      assert.equal("config", problems[1].kind)
      assert.matches("policies/broken.lua", problems[1].message, 1, true)
    end)
  end)
end)
