local schema = require("drv.schema")
local util = require("drv.util")


local function check(value, spec, label)
  local ctx = { problems = {}, warnings = {}, label = label or 'task "web"', noun = "option" }
  local out = schema.normalize(value, spec, ctx, "", nil, nil)
  return out, ctx.problems, ctx.warnings
end


describe("util.levenshtein", function()
  it("counts a transposition as one edit", function()
    assert.equal(1, util.levenshtein("imgae", "image"))
  end)

  it("counts insertions and substitutions", function()
    assert.equal(1, util.levenshtein("comand", "command"))
    assert.equal(3, util.levenshtein("abc", "xyz"))
  end)
end)


describe("util.suggest", function()
  it("returns the nearest candidate when it is close", function()
    assert.equal("image", util.suggest("imgae", { image = true, args = true }))
  end)

  it("returns nil when nothing is close", function()
    assert.is_nil(util.suggest("volumez_everywhere", { image = true, args = true }))
  end)
end)


describe("schema.duration_ms", function()
  it("parses Go durations", function()
    assert.equal(5000, schema.duration_ms("5s"))
    assert.equal(90000, schema.duration_ms("1m30s"))
    assert.equal(250, schema.duration_ms("250ms"))
    assert.equal(5400000, schema.duration_ms("1.5h"))
  end)

  it("returns integers", function()
    assert.equal("integer", math.type(schema.duration_ms("1.5s")))
  end)

  it("rejects malformed durations", function()
    assert.is_nil(schema.duration_ms("5 sec"))
    assert.is_nil(schema.duration_ms("5"))
    assert.is_nil(schema.duration_ms(""))
  end)
end)


describe("schema.normalize", function()
  local spec = { object = {
    image = "string",
    tty = "bool",
    shm_size = "int",
    args = { list = "string" },
    labels = { map = "scalar" },
    logging = { object = { type = "string" } },
  } }

  it("copies valid values", function()
    local out, problems = check({ image = "redis", tty = true, args = { "a" } }, spec)
    assert.same({}, problems)
    assert.same({ image = "redis", tty = true, args = { "a" } }, out)
  end)

  it("turns integral floats into Lua integers", function()
    local out = check({ shm_size = 67108864.0 }, spec)
    assert.equal("integer", math.type(out.shm_size))
  end)

  it("rejects integers of 1e14 and more", function()
    local _, problems = check({ shm_size = 1e14 }, spec)
    assert.equal("type", problems[1].kind)
  end)

  it("reports a wrong type with the field, the expected type and the value", function()
    local _, problems = check({ tty = "yes" }, spec)
    assert.same({ {
      kind = "type", path = "tty",
      message = '?: wrong type for option "tty" in task "web": expected bool, found string "yes"',
    } }, problems)
  end)

  it("reports unknown keys with a suggestion", function()
    local _, problems = check({ imgae = "x" }, spec)
    assert.equal("unknown", problems[1].kind)
    assert.equal('?: unknown option "imgae" in task "web", did you mean "image"?', problems[1].message)
  end)

  it("names nested fields with a dotted path", function()
    local _, problems = check({ logging = { typo = "x" } }, spec)
    assert.equal("logging.typo", problems[1].path)
  end)

  it("merges a list of maps", function()
    local out = check({ labels = { { a = "1" }, { b = "2" } } }, spec)
    assert.same({ a = "1", b = "2" }, out.labels)
  end)

  it("turns map values that are numbers into strings", function()
    local out = check({ labels = { n = 3 } }, spec)
    assert.equal("3", out.labels.n)
  end)

  it("accepts a single block for an object", function()
    local out = check({ logging = { { type = "syslog" } } }, spec)
    assert.same({ type = "syslog" }, out.logging)
  end)

  it("rejects two blocks for an object", function()
    local _, problems = check({ logging = { { type = "a" }, { type = "b" } } }, spec)
    assert.equal("type", problems[1].kind)
  end)

  it("treats JSON null as absent", function()
    local out, problems = check({ image = require("cjson").null }, spec)
    assert.same({}, problems)
    assert.is_nil(out.image)
  end)

  it("collects every problem", function()
    local _, problems = check({ tty = 1, args = "x", bogus = true }, spec)
    assert.equal(3, #problems)
  end)

  it("warns about ignored keys", function()
    local _, problems, warnings = check({ service = { { name = "x" } } },
      { object = { service = { ignore = true, warn = true } } })
    assert.same({}, problems)
    assert.equal(1, #warnings)
  end)
end)


describe("schema on hostile input", function()
  local budget = require("support.budget")

  it("suggests nothing for a 60 KB unknown key, without quadratic work", function()
    local fields = {}
    for i = 1, 100 do
      fields["option_" .. i] = "string"
    end
    local key = string.rep("x", 60000)
    local ctx = { problems = {}, label = "task \"t\"" }
    budget.within(3000000, schema.normalize, { [key] = 1 }, { object = fields }, ctx)
    assert.equal(1, #ctx.problems)
    assert.equal("unknown", ctx.problems[1].kind)
    assert.is_nil(ctx.problems[1].message:find("did you mean", 1, true))
    assert.is_true(#ctx.problems[1].message < 1200)
  end)

  it("describes strings with escapes", function()
    assert.equal('string "a\\nb\\xff"', schema.describe("a\nb\255"))
    assert.equal("null", schema.describe(require("cjson").null))
  end)
end)
