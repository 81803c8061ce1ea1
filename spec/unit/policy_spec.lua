local policy = require("drv.policy")
local kit = require("policykit")

local guard = kit.default_guard
local FIXTURES = "spec/fixtures/policies/"

-- src("a.lua", "return {...}") -> a source entry
local function src(path, text)
  return { path = "policies/" .. path, source = text }
end

-- one-policy source whose check body is `body`
local function checking(path, body)
  return src(path, "return { policy_format = 1, name = '" .. path:gsub("%.lua$", "")
    .. "', check = function(ctx)\n" .. body .. "\nend }")
end

local function fixture(name)
  return { path = FIXTURES .. name, source = kit.read(FIXTURES .. name) }
end

local function load_ok(sources)
  local set, problems = policy.load(sources, guard)
  assert.same({}, problems)
  return set
end

local function messages(list)
  local out = {}
  for _, p in ipairs(list) do out[#out + 1] = p.message end
  return out
end

local function evaluate(sources, ctx)
  return policy.evaluate(load_ok(sources), ctx or kit.ctx(), guard)
end

local function only_message(r)
  assert.is_false(r.allowed)
  assert.equal(1, #r.problems)
  return r.problems[1].message
end

describe("policy.load", function()
  it("loads a well-formed policy without problems", function()
    local set = load_ok({ checking("ok.lua", "return true") })
    assert.equal(1, #set.policies)
    assert.equal("ok", set.policies[1].name)
  end)

  it("orders policies by path whatever the input order", function()
    local set = load_ok({ checking("b.lua", "return true"), checking("a.lua", "return true") })
    assert.equal("policies/a.lua", set.policies[1].path)
    assert.equal("policies/b.lua", set.policies[2].path)
  end)

  it("refuses to run policy code without a guard", function()
    local _, problems = policy.load({ checking("ok.lua", "return true") }, nil)
    assert.equal(1, #problems)
    assert.equal("denied", problems[1].kind)
    assert.matches("no budget guard", problems[1].message, 1, true)
  end)

  it("fails closed when there are no policy files", function()
    local _, problems = policy.load({}, guard)
    assert.matches("no policy files", problems[1].message, 1, true)
  end)

  it("reports a syntax error with file and line", function()
    local _, problems = policy.load({ fixture("syntax_error.lua") }, guard)
    assert.matches("^spec/fixtures/policies/syntax_error%.lua:4: '}' expected",
      problems[1].message)
  end)

  it("rejects bytecode", function()
    local _, problems = policy.load({ src("bin.lua", string.dump(function() return {} end)) }, guard)
    assert.matches("^policies/bin%.lua: .*binary chunk", problems[1].message)
  end)

  it("loads the precompiled bytecode C attached, sandboxed like the text", function()
    local entry = checking("pre.lua", "return true")
    -- compiled as the build does (scripts/policy-bytecode.lua): same chunk name
    entry.bytecode = string.dump(assert(load(
      "return { policy_format = 1, name = 'pre', check = function(ctx) return os == nil and io == nil, 'escaped' end }",
      "@" .. entry.path, "t", {})))
    local set = load_ok({ entry })
    assert.equal("pre", set.policies[1].name)
    local r = policy.evaluate(set, kit.ctx(), guard)
    assert.is_true(r.allowed, r.problems[1] and r.problems[1].message)
  end)

  it("compiles the text when the attached bytecode does not load", function()
    local entry = checking("pre.lua", "return true")
    entry.bytecode = "\27Lua not really bytecode"
    local set = load_ok({ entry })
    assert.equal("pre", set.policies[1].name)
  end)

  it("names the policy file and line of an error in precompiled code", function()
    local entry = checking("pre.lua", "return true")
    entry.bytecode = string.dump(assert(load("local x = nil\nreturn x.y", "@" .. entry.path, "t", {})))
    local _, problems = policy.load({ entry }, guard)
    assert.matches("^policies/pre%.lua:2: attempt to index", problems[1].message)
  end)

  it("reports an error raised while loading with file and line", function()
    local _, problems = policy.load({ fixture("load_error.lua") }, guard)
    assert.matches("^spec/fixtures/policies/load_error%.lua:3: attempt to index a nil value",
      problems[1].message)
  end)

  it("rejects a file that does not return a table", function()
    local _, problems = policy.load({ fixture("not_a_table.lua") }, guard)
    assert.equal("spec/fixtures/policies/not_a_table.lua: policy must return a table, got string",
      problems[1].message)
  end)

  it("rejects unknown keys and suggests the intended one", function()
    local _, problems = policy.load({ fixture("unknown_key.lua") }, guard)
    assert.matches('unknown key "chek" in policy, did you mean "check"?',
      messages(problems)[1], 1, true)
  end)

  it("rejects an unsupported policy_format", function()
    local _, problems = policy.load({ fixture("wrong_format.lua") }, guard)
    assert.matches('unsupported policy_format: "2"', problems[1].message, 1, true)
  end)

  it("rejects a policy with nothing to enforce", function()
    local _, problems = policy.load({ fixture("no_rules.lua") }, guard)
    assert.matches("none of check, mutate, rules", problems[1].message, 1, true)
  end)

  it("rejects unknown keys inside declarative rules", function()
    local _, problems = policy.load({ fixture("bad_rule.lua") }, guard)
    assert.matches('rule 1: unknown key "maximum"', problems[1].message, 1, true)
  end)

  it("rejects two files with the same policy name", function()
    local _, problems = policy.load({ checking("a.lua", "return true"),
      src("b.lua", "return { policy_format = 1, name = 'a', check = function() return true end }") }, guard)
    assert.matches('^policies/b%.lua: duplicate policy name, also used by policies/a%.lua: "a"',
      problems[1].message)
  end)

  it("reports every broken file, not just the first", function()
    local _, problems = policy.load({ fixture("syntax_error.lua"), fixture("not_a_table.lua"),
      fixture("wrong_format.lua") }, guard)
    assert.equal(3, #problems)
  end)

  it("denies every task once any file failed to load", function()
    local set = policy.load({ checking("ok.lua", "return true"), fixture("not_a_table.lua") }, guard)
    local r = policy.evaluate(set, kit.ctx(), guard)
    assert.is_false(r.allowed)
    assert.matches("not_a_table.lua: policy must return a table", r.problems[1].message, 1, true)
  end)
end)

describe("policy sandbox", function()
  local escapes = {
    { "os.execute", "os.execute('touch /tmp/drvctl-pwned') return true", "global 'os'" },
    { "io.open", "io.open('/etc/shadow') return true", "global 'io'" },
    { "require", "require('os') return true", "global 'require'" },
    { "load", "load(ctx.bytecode)() return true", "global 'load'" },
    { "loadstring", "loadstring('return 1') return true", "global 'loadstring'" },
    { "dofile", "dofile('/etc/passwd') return true", "global 'dofile'" },
    { "debug", "debug.sethook() return true", "global 'debug'" },
    { "string.dump", "string.dump(function() end) return true", "field 'dump'" },
    { "string.dump through a string method", "(''):dump() return true", "method 'dump'" },
    { "getmetatable", "getmetatable('').__index.dump = nil return true", "global 'getmetatable'" },
    { "setmetatable", "setmetatable({}, {}) return true", "global 'setmetatable'" },
    { "rawset", "rawset(_ENV, 'x', 1) return true", "global 'rawset'" },
    { "collectgarbage", "collectgarbage('stop') return true", "global 'collectgarbage'" },
    { "pcall", "pcall(error) return true", "global 'pcall'" },
    { "coroutine", "coroutine.wrap(function() end)() return true", "global 'coroutine'" },
    { "package", "package.loaded.os.exit() return true", "global 'package'" },
    { "_G", "_G.os.exit() return true", "global '_G'" },
    { "_ENV", "_ENV.os.exit() return true", "global 'os'" },
  }
  for _, e in ipairs(escapes) do
    it("blocks " .. e[1], function()
      local r = evaluate({ checking("escape.lua", e[2]) })
      local msg = only_message(r)
      assert.matches("^policies/escape%.lua:2: ", msg)
      assert.matches(e[3], msg, 1, true)
    end)
  end

  it("leaves string methods of other policies and of the host intact", function()
    local r = evaluate({
      checking("a.lua", "string.upper = function() return 'hacked' end return true"),
      checking("b.lua", "if ('x'):upper() ~= 'X' then return nil, 'leaked' end return true"),
    })
    assert.is_true(r.allowed)
    assert.equal("X", ("x"):upper())
    assert.equal(string, getmetatable("").__index)
  end)

  it("gives every file a fresh environment", function()
    local r = evaluate({
      src("a.lua", "shared = 1 return { policy_format = 1, name = 'a', check = function() return true end }"),
      checking("b.lua", "if shared ~= nil then return nil, 'globals leak between files' end return true"),
    })
    assert.is_true(r.allowed)
  end)

  it("hands each policy its own copy of the context", function()
    local r = evaluate({
      checking("a.lua", "ctx.spec.HostConfig.Privileged = true ctx.agent.x = 1 return true"),
      checking("b.lua",
        "if ctx.spec.HostConfig.Privileged or ctx.agent.x then return nil, 'ctx leaked' end return true"),
    })
    assert.is_true(r.allowed)
    assert.is_nil(r.spec.HostConfig.Privileged)
  end)

  it("copies the context lazily but completely: pairs, #, next, rawlen and returned values see every field", function()
    local ctx = kit.ctx({ cap_add = { "CHOWN", "KILL" }, labels = { a = "1", b = "2" } })
    local r = evaluate({
      checking("a.lua", [[
        local hc = ctx.spec.HostConfig
        if #hc.CapAdd ~= 2 or rawlen(hc.CapAdd) ~= 2 then return nil, "len" end
        local n = 0
        for _ in pairs(ctx.spec.Labels) do n = n + 1 end
        local m, k = 0, next(hc)
        while k ~= nil do m = m + 1; k = next(hc, k) end
        if n < 2 or m < 2 then return nil, "iteration missed fields" end
        if table.concat(hc.CapAdd, ",") ~= "CHOWN,KILL" then return nil, "concat" end
        hc.CapAdd[1] = "SYS_ADMIN"
        table.insert(hc.CapAdd, "NET_ADMIN")
        ctx.spec.Labels = nil
        return true]]),
      checking("b.lua", [[
        local c = ctx.spec.HostConfig.CapAdd
        if #c ~= 2 or c[1] ~= "CHOWN" or ctx.spec.Labels == nil then return nil, "ctx leaked" end
        return true]]),
    }, ctx)
    assert.is_true(r.allowed, r.problems[1] and r.problems[1].message)
    assert.same({ "CHOWN", "KILL" }, r.spec.HostConfig.CapAdd)
  end)

  it("copies a mutation value taken from the context in full", function()
    local ctx = kit.ctx({ labels = { a = "1", b = "2" } })
    local r = evaluate({
      src("m.lua", "return { policy_format = 1, name = 'm', mutate = function(ctx) "
        .. "return { { op = 'set', path = 'Labels', value = ctx.spec.Labels } } end }"),
    }, ctx)
    assert.is_true(r.allowed, r.problems[1] and r.problems[1].message)
    assert.equal("1", r.spec.Labels.a)
    assert.equal("2", r.spec.Labels.b)
  end)

  it("never hands a function in the context to a policy, however deep", function()
    local ctx = kit.ctx()
    ctx.task.config.hook = function() return "host code" end
    local r = evaluate({ checking("a.lua", [[
      local ok = ctx.task.config.hook == nil
      return ok, "a function reached the policy"]]) }, ctx)
    assert.matches("not plain data: a function value", only_message(r), 1, true)
    r = evaluate({ checking("a.lua", [[
      for _, v in pairs(ctx.task.config) do
        if type(v) == "function" then return nil, "a function reached the policy" end
      end
      return true]]) }, ctx)
    assert.matches("not plain data: a function value", only_message(r), 1, true)
    ctx.hook = print
    r = evaluate({ checking("a.lua", "return true") }, ctx)
    assert.matches("context is not plain data", only_message(r), 1, true)
  end)

  it("does not let a policy change the caller's context", function()
    local ctx = kit.ctx()
    evaluate({ checking("a.lua", "ctx.spec.Image = 'evil' return true") }, ctx)
    assert.equal("busybox:1.36", ctx.spec.Image)
  end)

  it("caps string.rep so one C call cannot allocate without bound", function()
    local msg = only_message(evaluate({ checking("rep.lua", "local s = ('x'):rep(1e10) return true") }))
    assert.matches("^policies/rep%.lua:2: budget exceeded: string.rep", msg)
  end)

  it("refuses a backtracking pattern on a long subject", function()
    local ctx = kit.ctx({ labels = { x = ("a"):rep(4096) } })
    local r = evaluate({ checking("re.lua", "return not ctx.spec.Labels.x:find('.-.-b')") }, ctx)
    assert.matches("^policies/re%.lua:2: budget exceeded: pattern with 2 repetitions on a 4096%-byte string",
      only_message(r))
  end)

  it("still runs linear patterns on long subjects", function()
    local ctx = kit.ctx({ labels = { x = ("a"):rep(100000) } })
    local r = evaluate({ checking("re.lua", "return #ctx.spec.Labels.x:gsub('a', 'b') > 0") }, ctx)
    assert.is_true(r.allowed)
  end)

  it("caps table.concat amplification", function()
    local msg = only_message(evaluate({ checking("cat.lua",
      "local s = ('x'):rep(1000000) local t = {} for i = 1, 2000 do t[i] = s end return #table.concat(t) > 0") }))
    assert.matches("budget exceeded: table.concat", msg, 1, true)
  end)
end)

-- How long the budget takes to stop these is measured by
-- bench/policy_limits.lua, not here.
describe("policy budget", function()
  it("stops an endless loop and denies", function()
    local r = evaluate({ checking("loop.lua", "while true do end") })
    assert.matches("^policies/loop%.lua: budget exceeded: ", only_message(r))
  end)

  it("names the line the endless loop was stopped at", function()
    local r = evaluate({ checking("loop.lua", "while true do end") })
    assert.matches("at policies/loop.lua:2", only_message(r), 1, true)
  end)

  it("stops endless allocation and denies", function()
    local r = evaluate({ checking("alloc.lua",
      "local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end") })
    assert.matches("^policies/alloc%.lua: budget exceeded: ", only_message(r))
  end)

  it("stops doubling string concatenation", function()
    -- one `..` is a single VM instruction, so the count hook sees the heap
    -- only between doublings; an 8 MiB limit keeps the page faults of the
    -- last doubling small
    local small = kit.guard({ memory_kb = 8 * 1024 })
    local set = load_ok({ checking("double.lua",
      "local s = ('x'):rep(1000000) for i = 1, 40 do s = s .. s end return true") })
    local r = policy.evaluate(set, kit.ctx(), small)
    assert.matches("budget exceeded: ", only_message(r), 1, true)
  end)

  it("stops a policy that loops while loading", function()
    local _, problems = policy.load({ fixture("load_loop.lua") }, guard)
    assert.matches("^spec/fixtures/policies/load_loop%.lua: budget exceeded: ", problems[1].message)
  end)

  it("restores the previous debug hook state", function()
    evaluate({ checking("loop.lua", "while true do end") })
    assert.is_nil(debug.gethook())
  end)
end)

describe("policy.evaluate", function()
  it("allows a task every policy accepts", function()
    local r = evaluate({ checking("a.lua", "return true") })
    assert.is_true(r.allowed)
    assert.same({}, r.problems)
    assert.is_true(r.verdicts[1].allowed)
  end)

  it("reports every violation of every policy, in path order, each naming its file", function()
    local r = evaluate({
      checking("c.lua", "return nil, 'third'"),
      checking("a.lua", "return nil, { 'first', 'second' }"),
      checking("b.lua", "return true"),
    })
    assert.same({ "policies/a.lua: first", "policies/a.lua: second", "policies/c.lua: third" },
      messages(r.problems))
  end)

  it("records a verdict per policy", function()
    local r = evaluate({ checking("a.lua", "return nil, 'no'"), checking("b.lua", "return true") })
    assert.same({ "policies/a.lua", false, { "no" } },
      { r.verdicts[1].policy, r.verdicts[1].allowed, r.verdicts[1].messages })
    assert.is_true(r.verdicts[2].allowed)
  end)

  it("denies with file and line when check raises", function()
    local msg = only_message(evaluate({ checking("boom.lua", "local x = nil\nreturn x.y") }))
    assert.matches("^policies/boom%.lua:3: attempt to index a nil value", msg)
  end)

  local malformed = {
    { "a string", "return 'fine'", "got a string" },
    { "nothing", "return", "check returned nothing" },
    { "false without a message", "return false", "denied without a message" },
    { "a list holding a table", "return nil, { {} }", "message list with a table" },
  }
  for _, m in ipairs(malformed) do
    it("denies when check returns " .. m[1], function()
      local msg = only_message(evaluate({ checking("bad.lua", m[2]) }))
      assert.matches("^policies/bad%.lua: ", msg)
      assert.matches(m[3], msg, 1, true)
    end)
  end

  it("applies mutations and records them for plan", function()
    local r = evaluate({ src("m.lua", [[return { policy_format = 1, name = 'm',
      mutate = function(ctx) return { { op = 'append', path = 'HostConfig.CapDrop', value = 'NET_RAW' },
        { op = 'set', path = 'Labels.team', value = 'ops' } } end }]]) })
    assert.is_true(r.allowed)
    assert.same({ "NET_RAW" }, r.spec.HostConfig.CapDrop)
    assert.equal("ops", r.spec.Labels.team)
    assert.same({ op = "set", path = "Labels.team", value = "ops" }, r.verdicts[1].mutations[2])
  end)

  it("does not record mutations that change nothing", function()
    local r = evaluate({ src("m.lua", [[return { policy_format = 1, name = 'm',
      mutate = function(ctx) return { { op = 'set', path = 'Image', value = ctx.spec.Image } } end }]]) })
    assert.same({}, r.verdicts[1].mutations)
  end)

  it("runs checks against the spec after every mutation", function()
    local r = evaluate({
      src("z.lua", [[return { policy_format = 1, name = 'z',
        mutate = function() return { { op = 'set', path = 'Labels.team', value = 'ops' } } end }]]),
      checking("a.lua", "if ctx.spec.Labels.team ~= 'ops' then return nil, 'unmutated' end return true"),
    })
    assert.is_true(r.allowed)
  end)

  it("denies a malformed mutation", function()
    local msg = only_message(evaluate({ src("m.lua", [[return { policy_format = 1, name = 'm',
      mutate = function() return { { op = 'delete', path = 'Image' } } end }]]) }))
    assert.matches('^policies/m%.lua: mutation op must be "set", "append" or "remove", got "delete"', msg)
  end)

  it("denies a mutation path that is not a spec path", function()
    local msg = only_message(evaluate({ src("m.lua", [[return { policy_format = 1, name = 'm',
      mutate = function() return { { op = 'set', path = '../x', value = 1 } } end }]]) }))
    assert.matches("mutation path must be a dotted spec path", msg, 1, true)
  end)

  it("evaluates declarative rules", function()
    local r = evaluate({ src("r.lua", [[return { policy_format = 1, name = 'r', rules = {
      { field = 'HostConfig.CpuShares', max = 50, message = 'cpu above 50 MHz' },
      { field = 'HostConfig.Runtime', required = true },
      { field = 'Image', one_of = { 'busybox:1.36' } } } }]]) })
    assert.same({ 'policies/r.lua: cpu above 50 MHz: "100"',
      'policies/r.lua: HostConfig.Runtime is required: "HostConfig.Runtime"' }, messages(r.problems))
  end)

  it("skips a policy the agent disables through policy_options", function()
    local ctx = kit.ctx({}, { agent = { policy_options = { a = { enabled = false } } } })
    local r = evaluate({ checking("a.lua", "return nil, 'no'") }, ctx)
    assert.is_true(r.allowed)
    assert.is_false(r.verdicts[1].enabled)
  end)

  it("runs a policy shipped disabled when the agent enables it", function()
    local ctx = kit.ctx({}, { agent = { policy_options = { off = { enabled = true } } } })
    local r = evaluate({ src("off.lua", [[return { policy_format = 1, name = 'off', enabled = false,
      check = function() return nil, 'ran' end }]]) }, ctx)
    assert.same({ "policies/off.lua: ran" }, messages(r.problems))
  end)

  it("overrides declared settings from policy_options", function()
    local ctx = kit.ctx({}, { agent = { policy_options = { s = { limit = 7 } } } })
    local r = evaluate({ src("s.lua", [[return { policy_format = 1, name = 's', settings = { limit = 1 },
      check = function(ctx) return nil, 'limit ' .. ctx.settings.limit end }]]) }, ctx)
    assert.same({ "policies/s.lua: limit 7" }, messages(r.problems))
  end)

  it("denies an unknown policy option instead of ignoring a typo", function()
    local ctx = kit.ctx({}, { agent = { policy_options = { s = { limt = 7 } } } })
    local r = evaluate({ src("s.lua", [[return { policy_format = 1, name = 's', settings = { limit = 1 },
      check = function() return true end }]]) }, ctx)
    assert.matches('unknown policy option "limt", did you mean "limit"?', only_message(r), 1, true)
  end)

  it("denies without a guard", function()
    local set = load_ok({ checking("a.lua", "return true") })
    local r = policy.evaluate(set, kit.ctx(), nil)
    assert.is_false(r.allowed)
    assert.matches("no budget guard", r.problems[1].message, 1, true)
  end)
end)

describe("policy.check", function()
  it("accepts the shipped policies", function()
    local report = policy.check(kit.sources({ "policies" }), guard)
    assert.same({}, report.problems)
    assert.is_true(report.ok)
  end)

  it("lists every policy with its enabled state", function()
    local report = policy.check(kit.sources({ "policies" }), guard)
    local states = {}
    for _, p in ipairs(report.policies) do states[p.name] = p.enabled end
    assert.is_true(states.capabilities)
    assert.is_false(states.registries)
  end)

  it("finds runtime errors in check code, even in a disabled policy", function()
    local report = policy.check({ src("x.lua", [[return { policy_format = 1, name = 'x', enabled = false,
      check = function(ctx)
        return ctx.spec.NoSuchField.x
      end }]]) }, guard)
    assert.is_false(report.ok)
    assert.matches("^policies/x%.lua:3: attempt to index a nil value", report.problems[1].message)
  end)

  it("does not count a denial of the sample task as a problem", function()
    local report = policy.check({ checking("no.lua", "return nil, 'never'") }, guard)
    assert.is_true(report.ok)
  end)
end)


describe("policy.validate_options", function()
  local set
  before_each(function()
    set = load_ok({
      src("limits.lua", "return { policy_format = 1, name = 'limits', settings = { min_memory_mb = 10 },"
        .. " check = function() return true end }"),
      src("registries.lua", "return { policy_format = 1, name = 'registries', enabled = false,"
        .. " settings = { allow = {} }, check = function() return true end }"),
    })
  end)

  it("accepts nil and known names and settings", function()
    assert.same({}, policy.validate_options(set, nil))
    assert.same({}, policy.validate_options(set, { limits = { min_memory_mb = 4 },
      registries = { enabled = true, allow = { "docker.io" } } }))
  end)

  it("names an unknown policy with the closest known name", function()
    assert.same({ 'policy_options: unknown policy "registry", did you mean "registries"?' },
      policy.validate_options(set, { registry = { enabled = true } }))
  end)

  it("suggests a setting that starts with the unknown one", function()
    assert.same({ 'policy_options.limits: unknown policy option "min_memory", did you mean "min_memory_mb"?' },
      policy.validate_options(set, { limits = { min_memory = 4 } }))
  end)

  it("reports every problem, sorted by policy name", function()
    assert.equal(2, #policy.validate_options(set, { zzz = {}, limits = { enabled = "no" } }))
  end)

  it("refuses a non-table policy_options", function()
    assert.same({ "policy_options must be an object" }, policy.validate_options(set, "x"))
  end)
end)
