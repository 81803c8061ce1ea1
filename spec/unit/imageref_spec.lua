local imageref = require("drv.imageref")

local H64 = string.rep("0123456789abcdef", 4)
local D256 = "sha256:" .. H64


local function parse(s)
  local ref, why = imageref.parse(s)
  assert(ref, string.format("%q: %s", s, tostring(why)))
  return ref
end

local function refused(s)
  local ref, why = imageref.parse(s)
  assert.is_nil(ref, s)
  assert.is_string(why, s)
  return why
end


describe("imageref.parse", function()
  -- docker-api.md §4.4: input, domain, path, tag, digest
  local TABLE = {
    { "redis", "docker.io", "library/redis", "latest", nil },
    { "redis:7", "docker.io", "library/redis", "7", nil },
    { "bitnami/redis", "docker.io", "bitnami/redis", "latest", nil },
    { "docker.io/redis", "docker.io", "library/redis", "latest", nil },
    { "index.docker.io/redis", "docker.io", "library/redis", "latest", nil },
    { "localhost/foo", "localhost", "foo", "latest", nil },
    { "localhost:5000/foo/bar:1", "localhost:5000", "foo/bar", "1", nil },
    { "127.0.0.1:5443/rsx/big:1", "127.0.0.1:5443", "rsx/big", "1", nil },
    { "registry.example.com/a/b@" .. D256, "registry.example.com", "a/b", nil, D256 },
    { "repo:tag@" .. D256, "docker.io", "library/repo", "tag", D256 },
    { "foo:5000", "docker.io", "library/foo", "5000", nil },
    { "[::1]:5000/foo", "[::1]:5000", "foo", "latest", nil },
  }

  for _, row in ipairs(TABLE) do
    it("normalises " .. row[1], function()
      local ref = parse(row[1])
      assert.same({ row[2], row[3], row[2] .. "/" .. row[3], row[4], row[5], row[2] },
        { ref.domain, ref.path, ref.repo, ref.tag, ref.digest, ref.registry })
    end)
  end

  it("strips a leading https://", function()
    local ref = parse("https://127.0.0.1:5000/x:1")
    assert.same({ "127.0.0.1:5000", "x", "1" }, { ref.domain, ref.path, ref.tag })
    assert.equal("docker.io/library/redis", parse("https://redis").repo)
  end)

  it("keeps a library/ path on docker.io and adds none to a nested path", function()
    assert.equal("docker.io/library/redis", parse("library/redis").repo)
    assert.equal("docker.io/a/b/c", parse("a/b/c").repo)
    assert.equal("docker.io/library/redis", parse("index.docker.io/library/redis").repo)
  end)

  it("treats a first component with an uppercase letter as a domain, like Docker", function()
    local ref = parse("Registry.Example.COM/a")
    assert.same({ "Registry.Example.COM", "a" }, { ref.domain, ref.path })
    assert.equal("Foo", parse("Foo/bar").domain)
  end)

  it("takes a first component without . or : as a docker.io path", function()
    assert.equal("docker.io/registry/x", parse("registry/x").repo)
  end)

  it("takes a domain for localhost only when a path follows", function()
    assert.equal("localhost:5000", parse("localhost:5000/x").domain)
    local ref = parse("localhost:5000")
    assert.same({ "docker.io/library/localhost", "5000" }, { ref.repo, ref.tag })
  end)

  it("marks an explicit tag and implies latest only without a digest", function()
    assert.is_false(parse("redis").tagged)
    assert.is_true(parse("redis:latest").tagged)
    local ref = parse("redis@" .. D256)
    assert.is_nil(ref.tag)
    assert.is_false(ref.tagged)
  end)

  it("accepts the three digest algorithms with their lengths", function()
    assert.equal(D256, parse("x@" .. D256).digest)
    assert.equal("sha384:" .. string.rep("a", 96), parse("x@sha384:" .. string.rep("a", 96)).digest)
    assert.equal("sha512:" .. string.rep("b", 128), parse("x@sha512:" .. string.rep("b", 128)).digest)
  end)

  it("accepts Docker's separators and tag characters", function()
    for _, s in ipairs({ "a.b", "a_b", "a__b", "a-b", "a---b", "a.b_c-d__e", "0/1/2",
        "x:A_z.9-", "x:_", "x:" .. string.rep("t", 128), "a/b.c:V1.0-rc_1" }) do
      parse(s)
    end
  end)

  it("accepts a name of exactly 255 characters, counting the domain", function()
    local path = string.rep("a", 255 - #"docker.io/library/")
    assert.equal(255, #parse(path).repo)
    local ref = parse("r.io/" .. string.rep("b", 250))
    assert.equal(255, #ref.repo)
  end)

  it("gives Docker's familiar form", function()
    assert.equal("redis:latest", parse("redis").familiar)
    assert.equal("redis:7", parse("docker.io/library/redis:7").familiar)
    assert.equal("bitnami/redis:latest", parse("bitnami/redis").familiar)
    assert.equal("library/a/b:latest", parse("library/a/b").familiar)
    assert.equal("localhost:5000/foo/bar:1", parse("localhost:5000/foo/bar:1").familiar)
    assert.equal("repo:tag@" .. D256, parse("repo:tag@" .. D256).familiar)
  end)

  describe("refuses", function()
    local CASES = {
      { "", "empty" },
      { "https://", 'empty after "https://"' },
      { "http://r.io/x", 'only an "https://" prefix is allowed, not another scheme' },
      { "ftp://r.io/x", 'only an "https://" prefix is allowed, not another scheme' },
      { "Redis", "repository name must be lowercase" },
      { "Redis:3", "repository name must be lowercase" },
      { "docker.io/Redis", "repository name must be lowercase" },
      { "r.io/a/B", "repository name must be lowercase" },
      { "a b", "contains white space, control characters or non-ASCII bytes" },
      { "a\tb", "contains white space, control characters or non-ASCII bytes" },
      { "a\nb", "contains white space, control characters or non-ASCII bytes" },
      { "a\0b", "contains white space, control characters or non-ASCII bytes" },
      { "a\27[2J", "contains white space, control characters or non-ASCII bytes" },
      { "a\127", "contains white space, control characters or non-ASCII bytes" },
      { "r\195\169dis", "contains white space, control characters or non-ASCII bytes" },
      { "x:", 'tag is empty after ":"' },
      { "x@", 'digest is empty after "@"' },
      { "a//b", 'path component is empty ("//" or a "/" at an end)' },
      { "a/", 'path component is empty ("//" or a "/" at an end)' },
      { "r.io/a/", 'path component is empty ("//" or a "/" at an end)' },
      { "/a", 'path component is empty ("//" or a "/" at an end)' },
      { "r.io/", "repository path is empty after the registry" },
      { ":1", "repository name is empty" },
      { "@" .. D256, "repository name is empty" },
      { H64, "a 64-character hexadecimal string is an image id, not a repository name" },
      { "https://" .. H64, "a 64-character hexadecimal string is an image id, not a repository name" },
      { "x@md5:" .. string.rep("a", 32), 'unsupported digest algorithm "md5" (sha256, sha384 or sha512)' },
      { "x@sha1:" .. string.rep("a", 40), 'unsupported digest algorithm "sha1" (sha256, sha384 or sha512)' },
      { "x@sha256:abc", "sha256 digest must have 64 hex digits, found 3" },
      { "x@sha256:" .. H64 .. "0", "sha256 digest must have 64 hex digits, found 65" },
      { "x@sha512:" .. H64, "sha512 digest must have 128 hex digits, found 64" },
      { "x@sha256:" .. H64:upper(), "digest must be lowercase hexadecimal" },
      { "x@sha256:" .. string.rep("g", 64), "digest must be lowercase hexadecimal" },
      { "x@" .. H64, "digest must be <algorithm>:<hex>" },
      { "x@1sha:" .. H64, "digest algorithm is not a name" },
      { "x@" .. D256 .. "@" .. D256, "digest must be lowercase hexadecimal" },
      { "x:-1", 'tag must be 1 to 128 of A-Z, a-z, 0-9, "_", "." and "-", not starting with "." or "-"' },
      { "x:.1", 'tag must be 1 to 128 of A-Z, a-z, 0-9, "_", "." and "-", not starting with "." or "-"' },
      { "x:" .. string.rep("t", 129),
        'tag must be 1 to 128 of A-Z, a-z, 0-9, "_", "." and "-", not starting with "." or "-"' },
      { "x:a+b", 'tag must be 1 to 128 of A-Z, a-z, 0-9, "_", "." and "-", not starting with "." or "-"' },
      { "a:1:2", 'repository name may hold only a-z, 0-9, ".", "_", "-" and "/"' },
      { "a:1:2/x", "registry port must be a number" },
      { "-a", "path components must start and end with a letter or digit" },
      { "a-", "path components must start and end with a letter or digit" },
      { "_a", "path components must start and end with a letter or digit" },
      { "a.", "path components must start and end with a letter or digit" },
      { "a...b", 'path component has the separator "..." (only ".", "_", "__" or dashes)' },
      { "a___b", 'path component has the separator "___" (only ".", "_", "__" or dashes)' },
      { "a._b", 'path component has the separator "._" (only ".", "_", "__" or dashes)' },
      { "a-.b", 'path component has the separator "-." (only ".", "_", "__" or dashes)' },
      { "a/../b", "path components must start and end with a letter or digit" },
      { "a?b=1", 'repository name may hold only a-z, 0-9, ".", "_", "-" and "/"' },
      { "a%2fb", 'repository name may hold only a-z, 0-9, ".", "_", "-" and "/"' },
      { "a&b", 'repository name may hold only a-z, 0-9, ".", "_", "-" and "/"' },
      { "x:${A}", 'tag must be 1 to 128 of A-Z, a-z, 0-9, "_", "." and "-", not starting with "." or "-"' },
      { "r.io:0/x", "registry port must be between 1 and 65535" },
      { "r.io:65536/x", "registry port must be between 1 and 65535" },
      { "r.io:0000080000/x", "registry port must be between 1 and 65535" },
      { "r.io:/x", "registry port must be a number" },
      { "r.io:x/y", "registry port must be a number" },
      { ":5000/x", "registry host is empty" },
      { "-r.io/x", "registry host is not a host name, IPv4 or [IPv6] address" },
      { "r-.io/x", "registry host is not a host name, IPv4 or [IPv6] address" },
      { "r_x.io/x", "registry host is not a host name, IPv4 or [IPv6] address" },
      { "r..io/x", "registry host has an empty name component" },
      { ".r.io/x", "registry host has an empty name component" },
      { "[::1/x", 'registry host has an unclosed "["' },
      { "[::g]:5000/x", "registry host is not an IPv6 address in brackets" },
      { "[]:5000/x", "registry host is not an IPv6 address in brackets" },
      { "[::1]x/y", 'registry host has text after "]"' },
    }
    for _, c in ipairs(CASES) do
      it(string.format("%q", c[1]):sub(1, 60), function()
        assert.equal(c[2], refused(c[1]))
      end)
    end

    it("a name longer than 255 characters", function()
      local path = string.rep("a", 256 - #"docker.io/library/")
      assert.equal("repository name must not be more than 255 characters", refused(path))
      assert.equal("repository name must not be more than 255 characters",
        refused("r.io/" .. string.rep("b", 251) .. ":1"))
    end)

    it("what is not a string", function()
      assert.equal("not a string", refused(nil))
      assert.equal("not a string", refused(42))
    end)
  end)

  describe("on hostile input", function()
    -- Each input is refused by a scan over its bytes: a backtracking
    -- pattern would take seconds on some of these. No clock is asserted:
    -- the whole set runs in a few milliseconds, a regression makes this
    -- spec file hang visibly.
    local big = 10000
    local inputs = {
      string.rep("a", big),
      string.rep(":", big),
      string.rep("/", big),
      string.rep("a-", big / 2),
      string.rep("a.", big / 2) .. "!",
      string.rep("a/", big / 2),
      "https://" .. string.rep("a", big),
      string.rep("[", big),
      "x@sha256:" .. string.rep("a", big),
      "x:" .. string.rep("a", big),
      string.rep("a:", big / 2) .. "/x",
      string.rep("a", 64 * 150),
    }

    it("refuses 10k-character inputs by their length", function()
      for _, s in ipairs(inputs) do
        assert.equal(string.format("longer than %d bytes", imageref.MAX_INPUT), refused(s))
      end
    end)

    it("scans inputs just under the limit in one pass", function()
      local n = imageref.MAX_INPUT
      local cases = {
        string.rep(":", n),
        string.rep("a.", n // 2),
        string.rep("a-", (n - 1) // 2) .. "-",
        string.rep("a_", (n - 1) // 2) .. "_",
        "r.io:" .. string.rep("1", n - 10) .. "/x",
        string.rep("a", n - 20) .. "/" .. string.rep(":", 10),
        "[" .. string.rep(":", n - 10) .. "]:1/x",
        "x@" .. string.rep("a", n - 3),
      }
      for _, s in ipairs(cases) do
        assert.is_true(#s <= n)
        refused(s)
      end
    end)
  end)
end)


describe("imageref.pull_policy", function()
  local function policy(s, force)
    return imageref.pull_policy(parse(s), force)
  end

  it("always pulls latest or an untagged reference", function()
    assert.equal("always", policy("redis"))
    assert.equal("always", policy("redis:latest"))
    assert.equal("always", policy("127.0.0.1:5000/x"))
  end)

  it("pulls another tag or a digest only when missing", function()
    assert.equal("missing", policy("redis:3.2"))
    assert.equal("missing", policy("redis:Latest"))
    assert.equal("missing", policy("redis@" .. D256))
    assert.equal("missing", policy("redis:latest@" .. D256))
  end)

  it("always pulls with force_pull", function()
    assert.equal("always", policy("redis:3.2", true))
    assert.equal("always", policy("redis@" .. D256, true))
  end)
end)


describe("imageref.pull_tag", function()
  it("is the digest when there is one, else the tag", function()
    assert.equal("latest", imageref.pull_tag(parse("redis")))
    assert.equal("3", imageref.pull_tag(parse("redis:3")))
    assert.equal(D256, imageref.pull_tag(parse("redis:3@" .. D256)))
  end)
end)


describe("imageref.check_domain", function()
  it("accepts host names, IPv4 and [IPv6] with an optional port", function()
    for _, d in ipairs({ "localhost", "r.io", "r-1.example.com:443", "127.0.0.1:5000", "[::1]",
        "[fe80::1]:65535", "R.IO" }) do
      assert.is_nil(imageref.check_domain(d), d)
    end
  end)
end)
