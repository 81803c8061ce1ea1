local constraint = require("drv.constraint")

local ATTRS = {
  ["kernel.name"] = "linux",
  ["kernel.version"] = "6.1.0-13-amd64",
  ["cpu.numcores"] = "8",
  ["cpu.arch"] = "amd64",
  ["memory.totalbytes"] = "16000000000",
  ["driver.docker"] = "1",
  ["driver.docker.version"] = "20.10.24+dfsg1",
  ["unique.hostname"] = "node-a",
}
local META = { rack = "r12", tags = "ssd, gpu,fast" }
local NODE = { ["unique.name"] = "node-a", datacenter = "dc1", class = "batch" }


local function check(attribute, operator, value)
  return constraint.check({ attribute = attribute, operator = operator, value = value },
    ATTRS, META, NODE)
end


local function met(attribute, operator, value)
  return check(attribute, operator, value) == true
end


local function version(v, c)
  return constraint.version_matches(v, c)
end


local function re(pattern, s)
  local compiled = assert(constraint.regexp(pattern))
  return constraint.re_find(compiled, s)
end


describe("constraint.resolve", function()
  it("reads ${attr.X} from the attributes", function()
    assert.equal("linux", constraint.resolve("${attr.kernel.name}", ATTRS, META, NODE))
  end)

  it("reads ${driver.docker.version} as the spec page writes it", function()
    assert.equal("20.10.24+dfsg1", constraint.resolve("${driver.docker.version}", ATTRS, META, NODE))
  end)

  it("reads ${meta.X} from the node meta", function()
    assert.equal("r12", constraint.resolve("${meta.rack}", ATTRS, META, NODE))
  end)

  it("reads node name, datacenter and class", function()
    assert.same({ "node-a", "dc1", "batch" }, {
      constraint.resolve("${node.unique.name}", ATTRS, META, NODE),
      constraint.resolve("${node.datacenter}", ATTRS, META, NODE),
      constraint.resolve("${node.class}", ATTRS, META, NODE),
    })
  end)

  it("takes text without ${ as a literal", function()
    assert.equal("linux", constraint.resolve("linux", ATTRS, META, NODE))
  end)

  it("returns nil for an unknown variable", function()
    assert.is_nil(constraint.resolve("${attr.nope}", ATTRS, META, NODE))
    assert.is_nil(constraint.resolve("${bogus.x}", ATTRS, META, NODE))
  end)
end)


describe("constraint.check", function()
  describe("equality", function()
    it("meets = on equal values", function()
      assert.is_true(met("${attr.kernel.name}", "=", "linux"))
    end)

    it("accepts == and is as =", function()
      assert.is_true(met("${attr.kernel.name}", "==", "linux"))
      assert.is_true(met("${attr.kernel.name}", "is", "linux"))
    end)

    it("defaults the operator to =", function()
      assert.is_true(constraint.check({ attribute = "${attr.kernel.name}", value = "linux" }, ATTRS))
    end)

    it("reports an unmet = with the actual value", function()
      local ok, msg = check("${attr.kernel.name}", "=", "windows")
      assert.is_false(ok)
      assert.equal('constraint not met: ${attr.kernel.name} = "windows" (actual: "linux")', msg)
    end)

    it("fails = on an unset attribute and says so", function()
      local ok, msg = check("${attr.nope}", "=", "x")
      assert.is_false(ok)
      assert.equal('constraint not met: ${attr.nope} = "x" (actual: unset)', msg)
    end)

    it("meets != on different values", function()
      assert.is_true(met("${attr.kernel.name}", "!=", "windows"))
      assert.is_false(met("${attr.kernel.name}", "!=", "linux"))
    end)

    it("meets != on an unset attribute", function()
      assert.is_true(met("${attr.nope}", "!=", "x"))
    end)

    it("compares two targets", function()
      assert.is_true(met("${node.unique.name}", "=", "${attr.unique.hostname}"))
    end)
  end)

  describe("ordering", function()
    it("compares numbers numerically", function()
      assert.is_false(met("${attr.cpu.numcores}", ">", "10"))
      assert.is_true(met("${attr.cpu.numcores}", "<", "10"))
      assert.is_true(met("${attr.cpu.numcores}", ">=", "8"))
      assert.is_true(met("${attr.cpu.numcores}", "<=", "8"))
    end)

    it("compares large numbers numerically", function()
      assert.is_true(met("${attr.memory.totalbytes}", ">", "8000000000"))
    end)

    it("compares text lexically", function()
      assert.is_true(met("${attr.cpu.arch}", "<", "arm64"))
      assert.is_true(met("${attr.kernel.name}", ">", "darwin"))
    end)

    it("fails on an unset attribute", function()
      assert.is_false(met("${attr.nope}", "<", "10"))
    end)
  end)

  describe("version", function()
    it("meets the spec page example against Docker 20.10", function()
      assert.is_true(met("${driver.docker.version}", "version", "> 1.2"))
    end)

    it("meets a range", function()
      assert.is_true(met("${attr.driver.docker.version}", "version", ">= 19.03, < 21.0"))
      assert.is_false(met("${attr.driver.docker.version}", "version", ">= 19.03, < 20.10"))
    end)

    it("accepts semver as an operator name", function()
      assert.is_true(met("${driver.docker.version}", "semver", ">= 20.10.24"))
    end)

    it("fails on an unparsable version", function()
      assert.is_false(met("${attr.kernel.name}", "version", ">= 1.0"))
    end)

    it("reports a malformed constraint as invalid", function()
      local ok, msg = check("${driver.docker.version}", "version", ">= x.y")
      assert.is_nil(ok)
      assert.equal('invalid constraint: malformed version constraint ">= x.y"', msg)
    end)
  end)

  describe("regexp", function()
    it("matches anywhere in the value", function()
      assert.is_true(met("${attr.kernel.version}", "regexp", "amd64"))
    end)

    it("honours anchors", function()
      assert.is_true(met("${attr.kernel.version}", "regexp", "^6\\.1\\."))
      assert.is_false(met("${attr.kernel.version}", "regexp", "^1\\."))
    end)

    it("fails on an unset attribute", function()
      assert.is_false(met("${attr.nope}", "regexp", ".*"))
    end)

    it("reports an invalid regexp as invalid", function()
      local ok, msg = check("${attr.kernel.name}", "regexp", "(lin")
      assert.is_nil(ok)
      assert.matches('^invalid constraint: invalid regexp "%(lin": missing closing %)', msg)
    end)
  end)

  describe("sets", function()
    it("meets set_contains when every item is present", function()
      assert.is_true(met("${meta.tags}", "set_contains", "gpu, ssd"))
      assert.is_false(met("${meta.tags}", "set_contains", "gpu,nvme"))
    end)

    it("accepts set_contains_all as set_contains", function()
      assert.is_true(met("${meta.tags}", "set_contains_all", "fast"))
    end)

    it("meets set_contains_any when one item is present", function()
      assert.is_true(met("${meta.tags}", "set_contains_any", "nvme,gpu"))
      assert.is_false(met("${meta.tags}", "set_contains_any", "nvme"))
    end)

    it("does not match parts of items", function()
      assert.is_false(met("${meta.tags}", "set_contains", "gp"))
    end)
  end)

  describe("is_set and is_not_set", function()
    it("meets is_set on a present attribute", function()
      assert.is_true(met("${meta.rack}", "is_set"))
      assert.is_false(met("${meta.room}", "is_set"))
    end)

    it("meets is_not_set on an absent attribute", function()
      assert.is_true(met("${meta.room}", "is_not_set"))
      assert.is_false(met("${meta.rack}", "is_not_set"))
    end)

    it("describes an unmet is_set without a value", function()
      local _, msg = check("${meta.room}", "is_set")
      assert.equal("constraint not met: ${meta.room} is_set (actual: unset)", msg)
    end)
  end)

  it("reports an unknown operator as invalid", function()
    local ok, msg = check("${attr.kernel.name}", "like", "linux")
    assert.is_nil(ok)
    assert.equal('invalid constraint: unknown constraint operator "like"', msg)
  end)

  it("reports a missing value as invalid", function()
    local ok, msg = check("${attr.kernel.name}", "=", nil)
    assert.is_nil(ok)
    assert.equal('invalid constraint: constraint operator "=" needs a value', msg)
  end)

  it("treats distinct_hosts as met on one host", function()
    assert.is_true(constraint.check({ operator = "distinct_hosts" }, ATTRS))
  end)
end)


describe("constraint.version_matches", function()
  it("takes a bare version as equality", function()
    assert.is_true(version("1.2.0", "1.2"))
    assert.is_false(version("1.2.1", "1.2"))
  end)

  it("compares segments numerically, not as text", function()
    assert.is_true(version("1.10.0", "> 1.9"))
    assert.is_true(version("20.10.24", ">= 9.0"))
  end)

  it("ignores build metadata", function()
    assert.is_true(version("20.10.24+dfsg1", "= 20.10.24"))
    assert.is_true(version("v1.2.3+build.7", "= 1.2.3"))
  end)

  it("supports !=", function()
    assert.is_true(version("1.2.3", "!= 1.2.4"))
    assert.is_false(version("1.2.3", "!= 1.2.3"))
  end)

  it("implements ~> on two segments", function()
    assert.is_true(version("1.2.0", "~> 1.2"))
    assert.is_true(version("1.9.7", "~> 1.2"))
    assert.is_false(version("2.0.0", "~> 1.2"))
    assert.is_false(version("1.1.9", "~> 1.2"))
  end)

  it("implements ~> on three segments", function()
    assert.is_true(version("1.2.9", "~> 1.2.3"))
    assert.is_false(version("1.3.0", "~> 1.2.3"))
    assert.is_false(version("1.2.2", "~> 1.2.3"))
  end)

  it("orders a pre-release before its release", function()
    assert.is_true(version("1.0.0-rc1", "= 1.0.0-rc1"))
    assert.is_true(version("1.0.0-rc.1", "< 1.0.0-rc.2"))
    assert.is_true(version("1.0.0", "> 1.0.0-rc.9"))
  end)

  it("keeps pre-releases out of plain ranges, like go-version", function()
    assert.is_false(version("2.0.0-beta", ">= 1.0"))
  end)

  it("compares numeric pre-release parts numerically", function()
    assert.is_true(version("1.0.0-rc.10", "> 1.0.0-rc.9"))
  end)

  it("returns false for a version it cannot parse", function()
    assert.is_false(version("latest", ">= 1.0"))
  end)

  it("returns nil and a message for a malformed constraint", function()
    local ok, msg = version("1.0", "=> 1.0")
    assert.is_nil(ok)
    assert.equal('malformed version constraint "=> 1.0"', msg)
  end)
end)


describe("constraint.regexp", function()
  it("matches literals and dots", function()
    assert.is_true(re("a.c", "xxabcxx"))
    assert.is_false(re("a.c", "ac"))
  end)

  it("matches star, plus and question mark", function()
    assert.is_true(re("^ab*c$", "ac"))
    assert.is_true(re("^ab+c$", "abbbc"))
    assert.is_false(re("^ab+c$", "ac"))
    assert.is_true(re("^colou?r$", "color"))
  end)

  it("matches bracket classes, ranges and negation", function()
    assert.is_true(re("^[a-c]+$", "abcab"))
    assert.is_false(re("^[a-c]+$", "abd"))
    assert.is_true(re("^[^0-9]+$", "linux"))
    assert.is_false(re("^[^0-9]+$", "linux6"))
  end)

  it("takes ] first in a class as a literal", function()
    assert.is_true(re("^[]a]+$", "]a]"))
  end)

  it("matches alternation inside groups", function()
    assert.is_true(re("^(amd64|arm64)$", "arm64"))
    assert.is_false(re("^(amd64|arm64)$", "arm"))
    assert.is_true(re("^(?:x|y)z$", "yz"))
  end)

  it("matches alternation at the top level", function()
    assert.is_true(re("^darwin|linux$", "gnu/linux"))
  end)

  it("matches the \\d \\w \\s escapes", function()
    assert.is_true(re("^\\d+\\.\\d+$", "20.10"))
    assert.is_true(re("^\\w+\\s\\w+$", "a_1 b"))
    assert.is_false(re("^\\d+$", "2a"))
    assert.is_true(re("^\\D\\W\\S$", "a-b"))
  end)

  it("matches bounded repeats", function()
    assert.is_true(re("^a{2,3}$", "aaa"))
    assert.is_false(re("^a{2,3}$", "aaaa"))
    assert.is_true(re("^a{2}$", "aa"))
    assert.is_true(re("^a{2,}$", "aaaaa"))
  end)

  it("backtracks into earlier repeats", function()
    assert.is_true(re("^(a|ab)(c|bcd)(d*)$", "abcd"))
    assert.is_true(re("^.*foo$", "xfoofoo"))
  end)

  it("stops on repeats that match empty", function()
    assert.is_true(re("^(a*)*b$", "aab"))
    assert.is_false(re("^(a*)*b$", "aaac"))
  end)

  it("escapes punctuation", function()
    assert.is_true(re("^1\\.2\\+$", "1.2+"))
    assert.is_false(re("^1\\.2$", "112"))
  end)

  it("matches the empty pattern", function()
    assert.is_true(re("", "anything"))
  end)

  it("refuses syntax outside the subset", function()
    assert.same({ nil, "unsupported escape \\b at offset 1" }, { constraint.regexp("a\\b") })
    assert.same({ nil, "unsupported group syntax at offset 0" }, { constraint.regexp("(?i)x") })
  end)

  it("refuses malformed patterns", function()
    assert.is_nil((constraint.regexp("*a")))
    assert.is_nil((constraint.regexp("[abc")))
    assert.is_nil((constraint.regexp("a)")))
    assert.is_nil((constraint.regexp("[z-a]")))
    assert.is_nil((constraint.regexp("a**")))
  end)
end)


describe("constraint.regexp on hostile patterns", function()
  local budget = require("support.budget")

  -- Each of these ran for minutes in the old backtracking matcher; the
  -- Pike VM visits each (position, instruction) pair at most once.
  local function re_within(limit, pattern, s)
    return budget.within(limit, function()
      return re(pattern, s)
    end)
  end

  it("matches ^(.|.|.|.|.|.|.|.)*Z against 40 characters in linear time", function()
    assert.is_false(re_within(2000000, "^(.|.|.|.|.|.|.|.)*Z", string.rep("a", 40)))
    assert.is_true(re_within(2000000, "^(.|.|.|.|.|.|.|.)*Z", string.rep("a", 40) .. "Z"))
  end)

  it("matches (a|a)*$ in linear time", function()
    assert.is_true(re_within(2000000, "(a|a)*$", string.rep("a", 40) .. "b"))
    assert.is_false(re_within(2000000, "^(a|a)*$", string.rep("a", 40) .. "b"))
  end)

  it("matches nested quantifiers in linear time", function()
    assert.is_false(re_within(5000000, "^((a+)+)+c", string.rep("a", 2000)))
    assert.is_false(re_within(5000000, "^(x+x+)+y$", string.rep("x", 2000)))
    assert.is_false(re_within(5000000, "^(a*)*b$", string.rep("a", 2000)))
    assert.is_true(re_within(5000000, "^(a*)*b$", string.rep("a", 2000) .. "b"))
  end)

  it("compiles a long class in linear time", function()
    local pattern = "[" .. string.rep("a-z", 20000) .. "]"
    assert.is_true(re_within(5000000, pattern, "q"))
  end)

  it("refuses repeat counts over 1000 and programs that expand too far", function()
    assert.same({ nil, "invalid repeat count at offset 1" }, { constraint.regexp("a{1001}") })
    assert.same({ nil, "expression too large" }, { constraint.regexp("(a{1000}){1000}") })
    assert.same({ nil, "expression too large" }, { constraint.regexp("(a{99}){10}") })
    assert.is_table((constraint.regexp("^[0-9a-f]{64}$")))
  end)

  it("refuses patterns nested too deeply instead of overflowing the stack", function()
    local ok, err = constraint.regexp(string.rep("(", 5000) .. "a" .. string.rep(")", 5000))
    assert.is_nil(ok)
    assert.equal("expression nests too deeply at offset 100", err)
  end)

  it("stops a match that exceeds the shared step budget", function()
    local compiled = assert(constraint.regexp(string.rep(".*", 600) .. "Z"))
    local shared = { steps = 50000 }
    local ok, err = budget.within(10000000, constraint.re_find, compiled,
      string.rep("a", 60000), shared)
    assert.is_nil(ok)
    assert.matches("matching needs more than %d+ steps", err)
    assert.equal(0, shared.steps)
  end)

  it("reports an over-budget regexp constraint as invalid, not as unmet", function()
    local c = { attribute = string.rep("a", 60000), operator = "regexp",
      value = string.rep(".*", 600) .. "Z" }
    local ok, msg = budget.within(20000000, constraint.check, c, ATTRS, META, NODE,
      { steps = 1000 })
    assert.is_nil(ok)
    assert.matches("^invalid constraint: regexp \"", msg)
  end)
end)


describe("constraint strings padded with white space", function()
  local budget = require("support.budget")
  local pad = string.rep(" ", 60000)

  it("trims versions, constraint lists, targets and sets in linear time", function()
    assert.is_true(budget.within(3000000, constraint.version_matches, pad .. "1.2.3" .. pad,
      pad .. ">=" .. pad .. "1.2" .. pad))
    assert.equal("linux", budget.within(3000000, constraint.resolve,
      "${" .. pad .. "attr.kernel.name" .. pad .. "}", ATTRS, META, NODE))
    assert.is_true(budget.within(3000000, constraint.check, { attribute = pad .. "a," .. pad .. "b",
      operator = "set_contains", value = "b" .. pad }, ATTRS, META, NODE))
  end)
end)
