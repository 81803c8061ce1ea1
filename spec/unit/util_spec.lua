local util = require("drv.util")
local budget = require("support.budget")


describe("util.trim", function()
  it("strips white space at both ends only", function()
    assert.equal("a b", util.trim(" \t\n a b \r\n\v\f"))
    assert.equal("", util.trim("   "))
    assert.equal("", util.trim(""))
    assert.equal("x", util.trim("x"))
  end)

  it("trims 60 KB of padding on each side in linear time", function()
    -- `^%s*(.-)%s*$` took 142 s on this input (inside one C call, so
    -- only a linear implementation finishes at all)
    local pad = string.rep(" ", 60000)
    local out = budget.within(2000000, util.trim, pad .. "x y" .. pad)
    assert.equal("x y", out)
  end)
end)


describe("util.levenshtein", function()
  it("counts edits, a transposition as one", function()
    assert.equal(1, util.levenshtein("imgae", "image"))
    assert.equal(1, util.levenshtein("comand", "command"))
    assert.equal(3, util.levenshtein("abc", "xyz"))
    assert.equal(0, util.levenshtein("", ""))
    assert.equal(4, util.levenshtein("", "abcd"))
  end)

  it("stops early past max", function()
    assert.equal(3, util.levenshtein("a", "abcdefgh", 2))
    assert.equal(3, util.levenshtein("abcdef", "uvwxyz", 2))
    assert.equal(1, util.levenshtein("imgae", "image", 2))
  end)
end)


describe("util.suggest", function()
  it("finds the nearest candidate in a set or a list", function()
    assert.equal("image", util.suggest("imgae", { image = true, args = true }))
    assert.equal("image", util.suggest("IMAGE", { "args", "image" }))
    assert.is_nil(util.suggest("volumez_everywhere", { image = true, args = true }))
  end)

  it("does not spend quadratic time on a 60 KB key", function()
    local candidates = {}
    for i = 1, 100 do
      candidates[#candidates + 1] = "option_" .. i
    end
    local key = string.rep("o", 60000)
    assert.is_nil(budget.within(200000, util.suggest, key, candidates))
    -- a long candidate is not compared either
    candidates[#candidates + 1] = key
    assert.is_nil(budget.within(200000, util.suggest, key .. "p", candidates))
  end)
end)


describe("util.sorted_keys, split_list, set_of", function()
  it("sorts keys, mixed types by their string form", function()
    assert.same({ "a", "b", "c" }, util.sorted_keys({ c = 1, a = 2, b = 3 }))
    assert.same({ 1, 2, 10 }, util.sorted_keys({ [10] = 1, [2] = 1, [1] = 1 }))
  end)

  it("splits, trims and drops empty items", function()
    assert.same({ "a", "b", "c" }, util.split_list(" a, b,,c ,"))
    assert.same({ "x", "y" }, util.split_list("x;y", ";"))
    assert.same({}, util.split_list(""))
  end)

  it("splits a 60 KB list of blanks in linear time", function()
    local s = string.rep(" ", 30000) .. "," .. string.rep(" ", 30000) .. "a"
    assert.same({ "a" }, budget.within(2000000, util.split_list, s))
  end)

  it("makes a set", function()
    assert.same({ a = true, b = true }, util.set_of({ "a", "b" }))
  end)
end)


describe("util.quote", function()
  it("keeps printable ASCII and valid UTF-8", function()
    assert.equal('"web-1 é ü 日本"', util.quote("web-1 é ü 日本"))
  end)

  it("escapes quotes and backslashes", function()
    assert.equal([["a\"b\\c"]], util.quote('a"b\\c'))
  end)

  it("never lets a newline or escape sequence through", function()
    local q = util.quote("x\ndrvctl: error: forged\r\t\27[31m\0\127")
    assert.equal([["x\ndrvctl: error: forged\r\t\x1b[31m\x00\x7f"]], q)
    assert.is_nil(q:find("[%c]"))
  end)

  it("escapes invalid UTF-8 bytes one by one", function()
    assert.equal([["\xff\xc3(\xe2\x82"]], util.quote("\255\195(\226\130"))
    -- overlong encoding of "/" and a UTF-16 surrogate
    assert.equal([["\xc0\xaf\xed\xa0\x80"]], util.quote("\192\175\237\160\128"))
  end)

  it("escapes invisible and bidi code points", function()
    assert.equal([["a\u{202e}b\u{200b}c\u{0085}"]], util.quote("a\226\128\174b\226\128\139c\194\133"))
  end)

  it("cuts long strings and says how long they were", function()
    local q = util.quote(string.rep("x", 5000))
    assert.equal(1024 + #'"..." (5000 bytes)', #q)
    assert.matches('%.%.%." %(5000 bytes%)$', q)
    assert.equal('"abc..." (6 bytes)', util.quote("abcdef", 3))
  end)

  it("quotes non-strings with tostring", function()
    assert.equal('"12"', util.quote(12))
    assert.equal('"nil"', util.quote(nil))
  end)
end)


describe("util.format", function()
  it("quotes %q arguments with util.quote and leaves the rest to string.format", function()
    assert.equal('task "a\\nb": 3 50% "x"', util.format("task %q: %d 50%% %q", "a\nb", 3, "x"))
    assert.equal("plain 7", util.format("plain %d", 7))
    assert.equal('"\\xff" 1.50', util.format("%q %.2f", "\255", 1.5))
  end)
end)
