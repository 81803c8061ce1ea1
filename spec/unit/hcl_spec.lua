local hcl = require("drv.hcl")

local FIXTURES = "spec/fixtures/hcl/"
-- The spec pages live next to the repository (../shared/, relative to the
-- repository root busted runs from); a missing page fails the spec.
local SPEC_PAGE = "../shared/spec/nomad-0.8.3-docker-driver.md"


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


local function parse(src, name)
  local tree, err = hcl.parse(src, name or "t.hcl")
  assert(tree, err)
  return tree
end


local function fixture(file)
  return parse(read(FIXTURES .. file), file)
end


local function pos(t, k)
  return { hcl.pos(t, k) }
end


describe("drv.hcl", function()

  describe("values", function()
    it("parses an empty file as an empty object", function()
      assert.same({}, parse(""))
    end)

    it("parses a file of only comments and blank lines", function()
      assert.same({}, parse("# one\n\n// two\n/* three\n */\n"))
    end)

    it("keeps integers as Lua integers", function()
      local t = parse("a = 3\nb = -7\nc = 0")
      assert.same({ a = 3, b = -7, c = 0 }, t)
      assert.equal("integer", math.type(t.a))
      assert.equal("integer", math.type(t.b))
    end)

    it("reads decimals and exponents as floats", function()
      local t = parse("a = 1.5\nb = -0.25\nc = 1e3\nd = 2.5E-1")
      assert.same({ a = 1.5, b = -0.25, c = 1000.0, d = 0.25 }, t)
      assert.equal("float", math.type(t.a))
      assert.equal("float", math.type(t.c))
    end)

    it("reads hex and leading-zero octal integers as HCL1 does", function()
      local t = parse("a = 0x1F\nb = 0755\nc = -0x10")
      assert.same({ a = 31, b = 493, c = -16 }, t)
      assert.equal("integer", math.type(t.b))
    end)

    it("reads the largest integer", function()
      assert.equal(math.maxinteger, parse("a = 9223372036854775807").a)
    end)

    it("reads booleans", function()
      assert.same({ a = true, b = false }, parse("a = true\nb = false"))
    end)

    it("decodes string escapes", function()
      local t = parse([[a = "q\"b\\s\n\t\r/"]])
      assert.equal('q"b\\s\n\t\r/', t.a)
    end)

    it("decodes unicode, hex and octal escapes", function()
      local t = parse([[a = "\u00e9\U0001F600\x41\101"]])
      assert.equal("é😀AA", t.a)
    end)

    it("keeps ${...} verbatim", function()
      local t = parse([[a = "-bind=${NOMAD_PORT_http} ${nomad.datacenter}"]])
      assert.equal("-bind=${NOMAD_PORT_http} ${nomad.datacenter}", t.a)
    end)

    it("keeps quotes inside ${...} without ending the string", function()
      local t = parse([[a = "${meta["x"]}-y"]])
      assert.equal('${meta["x"]}-y', t.a)
    end)

    it("keeps escaped quotes inside ${...} verbatim", function()
      local t = parse([[a = "${meta[\"x\"]}"]])
      assert.equal('${meta[\\"x\\"]}', t.a)
    end)

    it("keeps braces and escapes inside quoted strings in ${...}", function()
      local t = parse([[a = "${replace(x, "}", "\"")}\t"]])
      assert.equal('${replace(x, "}", "\\"")}\t', t.a)
    end)

    it("keeps $${ and lone dollars verbatim", function()
      assert.equal("$${x} cost $5", parse([[a = "$${x} cost $5"]]).a)
    end)

    it("reads a heredoc with its final newline", function()
      local t = parse("a = <<EOF\nline one\n  line two\nEOF\nb = 1\n")
      assert.same({ a = "line one\n  line two\n", b = 1 }, t)
    end)

    it("strips common indentation from <<- heredocs", function()
      local t = parse("a = <<-EOT\n    one\n\n      two\n    EOT\n")
      assert.equal("one\n\n  two\n", t.a)
    end)

    it("accepts an indented closing anchor for << heredocs", function()
      assert.equal("  x\n", parse("a = <<EOF\n  x\n  EOF\n").a)
    end)

    it("reads an empty heredoc as an empty string", function()
      assert.equal("", parse("a = <<EOF\nEOF").a)
    end)

    it("does not end a heredoc on a line that only contains the anchor", function()
      assert.equal("EOFX\nx EOF\n", parse("a = <<EOF\nEOFX\nx EOF\nEOF\n").a)
    end)

    it("reads heredocs with CRLF line ends", function()
      assert.equal("x\r\n", parse("a = <<EOF\r\nx\r\nEOF\r\nb = 2\r\n").a)
    end)
  end)

  describe("keys", function()
    it("keeps dotted and hyphenated keys whole", function()
      local t = parse('net.core.somaxconn = "16384"\nfluentd-address = "h:1"\n_x9 = 1')
      assert.same({ ["net.core.somaxconn"] = "16384", ["fluentd-address"] = "h:1", _x9 = 1 }, t)
    end)

    it("unquotes quoted keys", function()
      local t = parse('"docker.auth.helper" = "ecr"\n"a b\\"c" = 1')
      assert.same({ ["docker.auth.helper"] = "ecr", ['a b"c'] = 1 }, t)
    end)

    it("reads several items on one line", function()
      assert.same({ a = 1, b = "x", c = { 1 } }, parse('a = 1 b = "x" c = [1]'))
    end)

    it("skips a UTF-8 byte order mark", function()
      local t = parse("\239\187\191a = 1")
      assert.same({ a = 1 }, t)
      assert.same({ 1, 1 }, pos(t, "a"))
    end)
  end)

  describe("blocks", function()
    it("turns a block into a block list of one object", function()
      local t = parse('config {\n  image = "redis"\n}')
      assert.same({ config = { { image = "redis" } } }, t)
      assert.is_true(hcl.is_block_list(t.config))
      assert.same({}, hcl.labels(t.config[1]))
    end)

    it("appends repeated blocks in file order", function()
      local t = parse('task "a" {}\ntask "b" { x = 1 }')
      assert.same({ task = { {}, { x = 1 } } }, t)
      assert.same({ "a" }, hcl.labels(t.task[1]))
      assert.same({ "b" }, hcl.labels(t.task[2]))
    end)

    it("keeps several labels in order", function()
      local t = parse('plugin "docker" "v2" { x = 1 }')
      assert.same({ "docker", "v2" }, hcl.labels(t.plugin[1]))
    end)

    it("accepts bare identifier labels", function()
      local t = parse("job docs {}")
      assert.same({ "docs" }, hcl.labels(t.job[1]))
    end)

    it("nests labelled blocks", function()
      local t = parse('group "g" {\n  task "t" {\n    driver = "docker"\n  }\n}')
      assert.same({ group = { { task = { { driver = "docker" } } } } }, t)
      assert.same({ "g" }, hcl.labels(t.group[1]))
      assert.same({ "t" }, hcl.labels(t.group[1].task[1]))
    end)

    it("allows commas between items of a block", function()
      assert.same({ b = { { x = 1, y = 2 } } }, parse("b { x = 1, y = 2, }"))
    end)

    it("returns a fresh copy of the labels", function()
      local t = parse('port "http" {}')
      hcl.labels(t.port[1])[1] = "changed"
      assert.same({ "http" }, hcl.labels(t.port[1]))
    end)

    it("returns no labels for tables that are not blocks", function()
      assert.same({}, hcl.labels(parse("a = {}").a))
      assert.same({}, hcl.labels({}))
    end)
  end)

  describe("lists and objects", function()
    it("reads lists with newlines, comments and a trailing comma", function()
      local t = parse('a = [\n  "x", # one\n  2,\n  // two\n  true,\n]')
      assert.same({ a = { "x", 2, true } }, t)
    end)

    it("reads empty and nested lists", function()
      assert.same({ a = {}, b = { { 1, 2 }, {} } }, parse("a = []\nb = [[1, 2], []]"))
    end)

    it("reads object literals with commas or newlines", function()
      local t = parse('a = { x = 1, y = "z" }\nb = {\n  x = 1\n  y = 2\n}')
      assert.same({ a = { x = 1, y = "z" }, b = { x = 1, y = 2 } }, t)
    end)

    it("does not make a block list of an object literal", function()
      local t = parse("a = { x = 1 }")
      assert.is_false(hcl.is_block_list(t.a))
      assert.equal("object", hcl.kind(t.a))
    end)

    it("tells an empty list from an empty object", function()
      local t = parse("a = []\nb = {}\nc {}")
      assert.equal("list", hcl.kind(t.a))
      assert.equal("object", hcl.kind(t.b))
      assert.equal("block_list", hcl.kind(t.c))
    end)

    it("reads blocks inside objects inside lists", function()
      local t = parse('mounts = [{ target = "/x" volume_options { labels { a = "b" } } }]')
      assert.same({
        mounts = { { target = "/x", volume_options = { { labels = { { a = "b" } } } } } },
      }, t)
      assert.is_true(hcl.is_block_list(t.mounts[1].volume_options))
      assert.is_false(hcl.is_block_list(t.mounts))
    end)

    it("reads lists of objects separated by commas", function()
      local t = parse("d = [\n  { a = 1 },\n  { b = 2 }\n]")
      assert.same({ d = { { a = 1 }, { b = 2 } } }, t)
    end)

    it("leaves every data table without a metatable", function()
      local t = parse('a = [{ x = 1 }]\nb { c = {} }')
      for _, v in ipairs({ t, t.a, t.a[1], t.b, t.b[1], t.b[1].c }) do
        assert.is_nil(getmetatable(v))
      end
    end)

    it("accepts nesting 150 levels deep", function()
      local t = parse("a = " .. string.rep("[", 150) .. string.rep("]", 150))
      local depth, v = 0, t.a
      while v[1] do
        depth, v = depth + 1, v[1]
      end
      assert.equal(149, depth)
    end)
  end)

  describe("positions", function()
    local src = table.concat({
      "# header",                 -- 1
      "job \"web\" {",            -- 2
      "  /* c */ count = 2",      -- 3
      "  list = [",               -- 4
      "    \"a\",",               -- 5
      "      \"b\" ]",            -- 6
      "  port \"x\" {}",          -- 7
      "\tport \"y\" {}",          -- 8
      "  obj = { k = 1 }",        -- 9
      "  s = \"${a}\\n\"",        -- 10 (an escaped newline)
      "  h = <<EOF",              -- 11
      "text",                     -- 12
      "EOF",                      -- 13
      "  \"é\" = \"ü\"  z = 1",   -- 14
      "}",
    }, "\n")
    local t = parse(src, "job.hcl")
    local job = t.job[1]

    it("gives the position of keys in the root", function()
      assert.same({ 2, 1 }, pos(t, "job"))
    end)

    it("gives the position of each block in a block list", function()
      assert.same({ 2, 1 }, pos(t.job, 1))
      assert.same({ 7, 3 }, pos(job.port, 1))
      assert.same({ 8, 2 }, pos(job.port, 2))
    end)

    it("gives the position of keys after comments", function()
      assert.same({ 3, 11 }, pos(job, "count"))
    end)

    it("gives the position of list elements", function()
      assert.same({ 4, 3 }, pos(job, "list"))
      assert.same({ 5, 5 }, pos(job.list, 1))
      assert.same({ 6, 7 }, pos(job.list, 2))
    end)

    it("gives the position of keys inside object literals", function()
      assert.same({ 9, 11 }, pos(job.obj, "k"))
    end)

    it("counts lines after strings and heredocs", function()
      assert.same({ 10, 3 }, pos(job, "s"))
      assert.same({ 11, 3 }, pos(job, "h"))
      assert.same({ 14, 3 }, pos(job, "é"))
    end)

    it("counts columns in characters, not bytes", function()
      assert.same({ 14, 14 }, pos(job, "z"))
    end)

    it("gives the position of a table itself when no key is given", function()
      assert.same({ 1, 1 }, pos(t))
      assert.same({ 2, 1 }, pos(job))
      assert.same({ 4, 10 }, pos(job.list))
      assert.same({ 9, 9 }, pos(job.obj))
    end)

    it("formats positions with hcl.where", function()
      assert.equal("job.hcl:3:11", hcl.where(job, "count"))
      assert.equal("job.hcl:8:2", hcl.where(job.port, 2))
    end)

    it("falls back to the file name for unknown keys", function()
      assert.same({}, pos(job, "nope"))
      assert.equal("job.hcl", hcl.where(job, "nope"))
    end)

    it("answers for tables the parser did not make", function()
      assert.is_nil(hcl.pos({}, "a"))
      assert.equal("?", hcl.where({}, "a"))
      assert.is_false(hcl.is_block_list({}))
      assert.is_nil(hcl.kind({}))
    end)

    it("keeps the names of separate parses apart", function()
      local a = parse("x = 1", "a.hcl")
      local b = parse("\n y = 1", "b.hcl")
      assert.equal("a.hcl:1:1", hcl.where(a, "x"))
      assert.equal("b.hcl:2:2", hcl.where(b, "y"))
    end)

    it("names the input when no name is given", function()
      local tree = hcl.parse("x = 1")
      assert.equal("input:1:1", hcl.where(tree, "x"))
    end)
  end)

  describe("errors", function()
    local cases = {
      { "a missing = after a key", 'config {\n  image "redis"\n}',
        't.hcl:2:9: expected "=" or "{" after key "image", found string "redis"' },
      { "a key at the end of a block", "config {\n  image\n}",
        't.hcl:3:1: expected "=" or "{" after key "image", found "}"' },
      { "a key at the end of the file", "image",
        't.hcl:1:6: expected "=" or "{" after key "image", found end of file' },
      { "labels followed by =", 'port "http" = 1',
        't.hcl:1:6: expected "=" or "{" after key "port", found string "http"' },
      { "an unterminated string", 'a = 1\nb = "abc\nc = 2',
        "t.hcl:2:5: unterminated string" },
      { "a string left open at the end of the file", 'a = "abc',
        "t.hcl:1:5: unterminated string" },
      { "an unterminated interpolation", 'a = "${foo',
        "t.hcl:1:5: unterminated string" },
      { "an unterminated heredoc", "x = 1\n  a = <<EOF\nabc\nEO\n",
        't.hcl:2:7: unterminated heredoc "EOF"' },
      { "a heredoc without anchor", "a = << EOF\nx\nEOF\n",
        't.hcl:1:7: expected heredoc anchor after "<<"' },
      { "text after a heredoc anchor", "a = <<EOF x\nEOF\n",
        't.hcl:1:10: expected newline after heredoc anchor "EOF"' },
      { "an unterminated block comment", "a = 1\n  /* open\n",
        "t.hcl:2:3: unterminated comment" },
      { "a stray closing brace", "a = 1\n}\n",
        't.hcl:2:1: unexpected "}"' },
      { "an attribute set twice", 'image = "a"\n  image = "b"',
        't.hcl:2:3: duplicate key "image"' },
      { "an attribute then a block", "a = 1\na {}",
        't.hcl:2:1: duplicate key "a"' },
      { "a block then an attribute", "a {}\na = 1",
        't.hcl:2:1: duplicate key "a"' },
      { "a duplicate key in an object literal", "o = { a = 1, a = 2 }",
        't.hcl:1:14: duplicate key "a"' },
      { "an unclosed block", 'task "x" {\n  a = 1\n',
        't.hcl:3:1: expected "}" to close block "task" opened at 1:10, found end of file' },
      { "an unclosed object", "o = {\n  a = 1",
        't.hcl:2:8: expected "}" to close object opened at 1:5, found end of file' },
      { "list elements without comma", "a = [1\n  2]",
        't.hcl:2:3: expected "," or "]" after list element, found number 2' },
      { "an unclosed list", "a = [1,\n",
        't.hcl:2:1: expected "]" to close list opened at 1:5, found end of file' },
      { "a stray token in a list", "a = [1, }]",
        't.hcl:1:9: expected value or "]" in list, found "}"' },
      { "a bare word as value", "a = redis",
        't.hcl:1:5: expected value after "=" for key "a", found identifier "redis"' },
      { "a missing value", "a =\n",
        't.hcl:2:1: expected value after "=" for key "a", found end of file' },
      { "a number as key", "1 = 2",
        "t.hcl:1:1: expected key, found number 1" },
      { "a top-level comma", "a = 1,\nb = 2",
        't.hcl:1:6: expected key, found ","' },
      { "a list where a key belongs in a block", "b {\n  [1]\n}",
        't.hcl:2:3: expected key or "}", found "["' },
      { "an unexpected character", "a = 1\nb = @x",
        't.hcl:2:5: unexpected character "@"' },
      { "an unexpected non-ASCII character", "é = 1",
        't.hcl:1:1: unexpected character "é"' },
      { "a malformed number", "a = 12abc",
        't.hcl:1:5: invalid number "12abc"' },
      { "a bad octal number", "a = 089",
        't.hcl:1:5: invalid number "089"' },
      { "a too large integer", "a = 9223372036854775808",
        't.hcl:1:5: integer out of range "9223372036854775808"' },
      { "a too large hex integer", "a = 0x10000000000000000",
        't.hcl:1:5: integer out of range "0x10000000000000000"' },
      { "an invalid escape", 'a = "x\\qy"',
        't.hcl:1:7: invalid escape "\\\\q"' },
      { "a short unicode escape", 'a = "\\u12"',
        't.hcl:1:6: invalid escape "\\\\u12\\""' },
      { "a surrogate unicode escape", 'a = "\\uD800"',
        't.hcl:1:6: invalid unicode escape "\\\\uD800"' },
      { "an error after a multi-line comment and string", '/*\n\n*/ a = "${x\n}" b',
        't.hcl:4:5: expected "=" or "{" after key "b", found end of file' },
      { "nesting too deep", "a = " .. string.rep("[", 300),
        "t.hcl:1:205: nesting too deep" },
    }
    for _, case in ipairs(cases) do
      it("reports " .. case[1], function()
        local tree, err = hcl.parse(case[2], "t.hcl")
        assert.is_nil(tree)
        assert.equal(case[3], err)
      end)
    end

    it("refuses a source that is not a string", function()
      local tree, err = hcl.parse(nil, "job.hcl")
      assert.is_nil(tree)
      assert.equal("job.hcl: expected HCL source text, found nil", err)
    end)

    it("never raises on any truncation of a valid job", function()
      local src = read(FIXTURES .. "full_job.hcl")
      for i = 0, #src do
        local ok, tree, err = pcall(hcl.parse, src:sub(1, i), "cut.hcl")
        assert(ok, tree)
        assert(tree or err:match("^cut%.hcl:%d+:%d+: "), "bad result at " .. i)
      end
    end)

    it("never raises when a byte of a valid job is replaced", function()
      local src = read(FIXTURES .. "full_job.hcl")
      for i = 1, #src, 3 do
        for _, c in ipairs({ "{", "}", '"', "[", "=", "$", "\\", "\n", "<" }) do
          local mutated = src:sub(1, i - 1) .. c .. src:sub(i + 1)
          local ok, tree, err = pcall(hcl.parse, mutated, "m.hcl")
          assert(ok, tree)
          assert(tree or err:match("^m%.hcl:%d+:%d+: "), "bad result at " .. i)
        end
      end
    end)
  end)

  describe("the v0.8.3 docker driver page", function()
    it("has every hcl example stored as a fixture", function()
      local page = read(SPEC_PAGE)
      local n = 0
      for indent, body in page:gmatch("\n([ \t]*)```hcl\n(.-)\n[ \t]*```") do
        n = n + 1
        local lines = {}
        for l in (body .. "\n"):gmatch("(.-)\n") do
          lines[#lines + 1] = l:sub(1, #indent) == indent and l:sub(#indent + 1) or l
        end
        local file = string.format("%sspec_page_%02d.hcl", FIXTURES, n)
        assert.equal(table.concat(lines, "\n") .. "\n", read(file))
      end
      assert.equal(24, n)
    end)

    it("parses example 1 (task with config labels)", function()
      local t = fixture("spec_page_01.hcl")
      assert.same({ task = { {
        driver = "docker",
        config = { { image = "redis:3.2", labels = { { group = "webservice-cache" } } } },
      } } }, t)
      assert.same({ "webservice" }, hcl.labels(t.task[1]))
    end)

    it("parses example 2 (image with registry URL)", function()
      assert.same({ config = { { image = "https://hub.docker.internal/redis:3.2" } } },
        fixture("spec_page_02.hcl"))
    end)

    it("parses example 3 (args with interpolation and trailing comma)", function()
      assert.same({ config = { { args = {
        "-bind", "${NOMAD_PORT_http}", "${nomad.datacenter}", "${MY_ENV}", "${meta.foo}",
      } } } }, fixture("spec_page_03.hcl"))
    end)

    it("parses example 4 (command)", function()
      assert.same({ config = { { command = "my-command" } } }, fixture("spec_page_04.hcl"))
    end)

    it("parses example 5 (sysctl with a dotted key)", function()
      assert.same({ config = { { sysctl = { { ["net.core.somaxconn"] = "16384" } } } } },
        fixture("spec_page_05.hcl"))
    end)

    it("parses example 6 (ulimit)", function()
      assert.same({ config = { { ulimit = { { nproc = "4242", nofile = "2048:4096" } } } } },
        fixture("spec_page_06.hcl"))
    end)

    it("parses example 7 (labels)", function()
      assert.same({ config = { { labels = { { foo = "bar", zip = "zap" } } } } },
        fixture("spec_page_07.hcl"))
    end)

    it("parses example 8 (artifact and load)", function()
      assert.same({
        artifact = { { source = "http://path.to/redis.tar" } },
        config = { { load = "redis.tar", image = "redis" } },
      }, fixture("spec_page_08.hcl"))
    end)

    it("parses example 9 (logging with a hyphenated key)", function()
      local t = fixture("spec_page_09.hcl")
      assert.same({ config = { { logging = { {
        type = "fluentd",
        config = { { ["fluentd-address"] = "localhost:24224", tag = "your_tag" } },
      } } } } }, t)
    end)

    it("parses example 10 (network mode and aliases)", function()
      assert.same({ config = { {
        network_mode = "user-network",
        network_aliases = { "${NOMAD_TASK_NAME}", "${NOMAD_TASK_NAME}-${NOMAD_ALLOC_INDEX}" },
      } } }, fixture("spec_page_10.hcl"))
    end)

    it("parses example 11 (security_opt)", function()
      assert.same({ config = { { security_opt = { "credentialspec=file://gmsaUser.json" } } } },
        fixture("spec_page_11.hcl"))
    end)

    it("parses example 12 (volumes with comments)", function()
      assert.same({ config = { { volumes = {
        "/path/on/host:/path/in/container", "relative/to/task:/also/in/container",
      } } } }, fixture("spec_page_12.hcl"))
    end)

    it("parses example 13 (named volume and volume_driver)", function()
      assert.same({ config = { {
        volumes = { "name-of-the-volume:/path/in/container" },
        volume_driver = "pxd",
      } } }, fixture("spec_page_13.hcl"))
    end)

    it("parses example 14 (mounts with blocks inside a list object)", function()
      local t = fixture("spec_page_14.hcl")
      assert.same({ config = { { mounts = { {
        target = "/path/in/container",
        source = "name-of-volume",
        readonly = false,
        volume_options = { {
          no_copy = false,
          labels = { { foo = "bar" } },
          driver_config = { { name = "pxd", options = { foo = "bar" } } },
        } },
      } } } } }, t)
      assert.equal("bar", t.config[1].mounts[1].volume_options[1].driver_config[1].options.foo)
      assert.equal("spec_page_14.hcl:15:13",
        hcl.where(t.config[1].mounts[1].volume_options[1].driver_config[1].options, "foo"))
    end)

    it("parses example 15 (devices list of objects)", function()
      assert.same({ config = { { devices = {
        { host_path = "/dev/sda1", container_path = "/dev/xvdc", cgroup_permissions = "r" },
        { host_path = "/dev/sda2", container_path = "/dev/xvdd" },
      } } } }, fixture("spec_page_15.hcl"))
    end)

    it("parses example 16 (cap_add)", function()
      assert.same({ config = { { cap_add = { "SYS_TIME" } } } }, fixture("spec_page_16.hcl"))
    end)

    it("parses example 17 (cap_drop)", function()
      assert.same({ config = { { cap_drop = { "MKNOD" } } } }, fixture("spec_page_17.hcl"))
    end)

    it("parses example 18 (auth)", function()
      local t = fixture("spec_page_18.hcl")
      assert.same({ task = { { driver = "docker", config = { {
        image = "secret/service",
        auth = { { username = "dockerhub_user", password = "dockerhub_password" } },
      } } } } }, t)
      assert.same({ "example" }, hcl.labels(t.task[1]))
    end)

    it("parses example 19 (client options with a quoted key)", function()
      assert.same({ client = { {
        enabled = true,
        options = { { ["docker.auth.helper"] = "ecr" } },
      } } }, fixture("spec_page_19.hcl"))
    end)

    it("parses example 20 (dynamic ports)", function()
      local t = fixture("spec_page_20.hcl")
      local ports = t.task[1].resources[1].network[1].port
      assert.same({ {}, {} }, ports)
      assert.same({ "http" }, hcl.labels(ports[1]))
      assert.same({ "https" }, hcl.labels(ports[2]))
    end)

    it("parses example 21 (a lone port block)", function()
      local t = fixture("spec_page_21.hcl")
      assert.same({ port = { {} } }, t)
      assert.same({ "http" }, hcl.labels(t.port[1]))
    end)

    it("parses example 22 (port_map and mbits)", function()
      local t = fixture("spec_page_22.hcl")
      local task = t.task[1]
      assert.same({ { image = "redis", port_map = { { redis = 6379 } } } }, task.config)
      assert.equal("integer", math.type(task.config[1].port_map[1].redis))
      assert.equal(20, task.resources[1].network[1].mbits)
      assert.same({ "redis" }, hcl.labels(task.resources[1].network[1].port[1]))
    end)

    it("parses example 23 (cleanup option as a string)", function()
      assert.same({ client = { { options = { { ["docker.cleanup.image"] = "false" } } } } },
        fixture("spec_page_23.hcl"))
    end)

    it("parses example 24 (job constraint)", function()
      local t = fixture("spec_page_24.hcl")
      assert.same({ job = { { constraint = { {
        attribute = "${driver.docker.version}", operator = ">", version = "1.2",
      } } } } }, t)
      assert.same({ "docs" }, hcl.labels(t.job[1]))
    end)
  end)

  describe("a full job", function()
    local t = fixture("full_job.hcl")
    local job = t.job[1]
    local group = job.group[1]
    local nginx = group.task[1]

    it("reads the job stanza", function()
      assert.same({ "web" }, hcl.labels(job))
      assert.same({ "dc1", "dc2" }, job.datacenters)
      assert.equal("global", job.region)
      assert.same({ { owner = "platform", ["team.name"] = "edge" } }, job.meta)
      assert.same({ { attribute = "${attr.kernel.name}", value = "linux" } }, job.constraint)
    end)

    it("reads the group stanza", function()
      assert.same({ "frontend" }, hcl.labels(group))
      assert.equal(2, group.count)
      assert.same({ { tier = "web" } }, group.meta)
      assert.equal(">", group.constraint[1].operator)
    end)

    it("reads both tasks in order", function()
      assert.equal(2, #group.task)
      assert.same({ "nginx" }, hcl.labels(group.task[1]))
      assert.same({ "sidecar" }, hcl.labels(group.task[2]))
    end)

    it("reads the task attributes", function()
      assert.equal("docker", nginx.driver)
      assert.equal("nginx", nginx.user)
      assert.equal("20s", nginx.kill_timeout)
      assert.equal("SIGINT", nginx.kill_signal)
    end)

    it("reads the docker config", function()
      local config = nginx.config[1]
      assert.equal("nginx:1.15", config.image)
      assert.same({ "-g", "daemon off;" }, config.args)
      assert.same({ { http = 80 } }, config.port_map)
      assert.same({ { ["com.example.app"] = "web" } }, config.labels)
      assert.same({ { type = "fluentd", config = { {
        ["fluentd-address"] = "localhost:24224", tag = "${NOMAD_JOB_NAME}",
      } } } }, config.logging)
      assert.same({ {
        target = "/cache", source = "web-cache", readonly = false,
        volume_options = { { no_copy = true, driver_config = { {
          name = "local", options = { type = "tmpfs" },
        } } } },
      } }, config.mounts)
    end)

    it("reads env with an indented heredoc", function()
      assert.same({ {
        LISTEN_PORT = "${NOMAD_PORT_http}",
        GREETING = "hello\n  world\n",
      } }, nginx.env)
    end)

    it("reads repeated artifacts with options", function()
      assert.same({
        { source = "https://example.com/site.tar.gz", destination = "local/site",
          options = { { checksum = "sha256:0123456789abcdef0123456789abcdef"
            .. "0123456789abcdef0123456789abcdef" } } },
        { source = "https://example.com/robots.txt" },
      }, nginx.artifact)
    end)

    it("reads resources, network and ports", function()
      local resources = nginx.resources[1]
      assert.equal(500, resources.cpu)
      assert.equal(256, resources.memory)
      local network = resources.network[1]
      assert.equal(10, network.mbits)
      assert.same({ {}, { static = 8081 } }, network.port)
      assert.same({ "admin" }, hcl.labels(network.port[2]))
    end)

    it("reads meta and logs", function()
      assert.same({ { version = "1.15" } }, nginx.meta)
      assert.same({ { max_files = 3, max_file_size = 15 } }, nginx.logs)
    end)

    it("records where the second task and its config start", function()
      assert.equal("full_job.hcl:117:5", hcl.where(group.task, 2))
      assert.equal("full_job.hcl:120:7", hcl.where(group.task[2], "config"))
    end)
  end)
end)


describe("hcl positions on hostile input", function()
  local budget = require("support.budget")

  local function one_line(n)
    local t = {}
    for i = 1, n do
      t[i] = string.format('task "t%d"{}', i)
    end
    return 'job "j" { group "g" { ' .. table.concat(t, " ") .. " } }"
  end

  it("parses 5,000 tasks on one 60 KB line and locates each in linear time", function()
    local src = one_line(5000)
    assert.is_true(#src > 60000)
    -- the old column lookup walked back to the line start for every
    -- position: ~9 s and billions of instructions for this line
    local cols = budget.within(10000000, function()
      local tree = assert(hcl.parse(src, "long.hcl"))
      local tasks = tree.job[1].group[1].task
      local out = {}
      for i = 1, #tasks do
        local l, c = hcl.pos(tasks, i)
        assert.equal(1, l)
        out[i] = c
      end
      return out
    end)
    assert.equal(5000, #cols)
    assert.equal(src:find('task "t1"', 1, true), cols[1])
    assert.equal(src:find('task "t5000"', 1, true), cols[5000])
  end)

  it("counts columns in characters after multi-byte text on a long line", function()
    local src = 'a = "' .. string.rep("é", 3000) .. '" b = 1'
    local tree = parse(src)
    local l, c = hcl.pos(tree, "b")
    assert.equal(1, l)
    assert.equal(5 + 3000 + 3, c) -- 'a = "', the é's, '" ', then b
  end)

  it("counts columns after a byte order mark and on later lines", function()
    local tree = parse("\239\187\191a = 1\n  \"é\" = 2  c = 3")
    assert.same({ 1, 1 }, pos(tree, "a"))
    assert.same({ 2, 3 }, pos(tree, "é"))
    assert.same({ 2, 12 }, pos(tree, "c"))
  end)

  it("names the line and column of an error at the end of a 60 KB line", function()
    local src = one_line(5000) .. " ="
    local tree, err = budget.within(10000000, hcl.parse, src, "long.hcl")
    assert.is_nil(tree)
    assert.matches("^long%.hcl:1:" .. #src .. ": ", err)
  end)

  it("escapes control characters and invalid UTF-8 in messages", function()
    local _, err = hcl.parse('a = "x\\u0007y" \n b = = 1 \n c \27[31m', "t.hcl")
    assert.matches("^t%.hcl:2:", err)
    local _, err2 = hcl.parse("a = 1\n\255\254 = 2", "t.hcl")
    assert.equal('t.hcl:2:1: unexpected character "\\xff"', err2)
    local _, err3 = hcl.parse('x "a\\nforged: line" = 1', "t.hcl")
    assert.is_nil(err3:find("\n", 1, true))
  end)
end)
