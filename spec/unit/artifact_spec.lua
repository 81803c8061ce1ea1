-- Artifacts (issue 7): the client.artifact agent block, which sources the
-- plan accepts, and ctx.artifacts for policies. The download itself is
-- core/tests/test_artifact.c and spec/docker/artifact_attack_spec.lua.
local admission = require("drv.admission")
local agent = require("drv.agent")
local container = require("drv.container")
local driver = require("drv.driver")
local kit = require("policykit")

local SEED = "0123456789abcdef0123456789abcdef"
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work", alloc_seed = SEED,
  node = { ["kernel.name"] = "linux", ["cpu.arch"] = "amd64", ["unique.hostname"] = "n" } }
local GIB = 1024 * 1024 * 1024

local function job(source, extra)
  return string.format([[
job "j" {
  group "g" {
    task "web" {
      driver = "docker"
      artifact {
        source = %q
        destination = "local/x"
        options { checksum = "sha256:abcd" }
      }
      %s
      config { image = "x:1" }
    }
  }
}
]], source, extra or "")
end

describe("client.artifact agent block", function()
  it("has safe defaults without a config", function()
    local a = agent.defaults({})
    assert.same({ http_read_timeout_ms = 30 * 60 * 1000, http_max_size = 10 * GIB,
      decompression_size_limit = 10 * GIB, decompression_file_count_limit = 4096,
      local_dirs = {}, allow_private = false }, a.artifact)
  end)

  it("reads every setting", function()
    local a = assert(agent.load([[
client {
  artifact {
    http_read_timeout = "90s"
    http_max_size = "2GB"
    decompression_size_limit = "512MiB"
    decompression_file_count_limit = 100
    local_dirs = ["/srv/artifacts/", "/opt/x/../y"]
    allow_private = true
  }
}
]], "agent.hcl", {}))
    assert.same({ http_read_timeout_ms = 90000, http_max_size = 2000000000,
      decompression_size_limit = 512 * 1024 * 1024, decompression_file_count_limit = 100,
      local_dirs = { "/srv/artifacts", "/opt/y" }, allow_private = true }, a.artifact)
  end)

  it("names file, line and value of each bad setting", function()
    local a, problems = agent.load([[
client {
  artifact {
    http_read_timeout = "soon"
    http_max_size = "-1GB"
    decompression_size_limit = "0"
    decompression_file_count_limit = -1
    local_dirs = ["relative/dir", "/"]
  }
}
]], "agent.hcl", {})
    assert.is_nil(a)
    local msgs = {}
    for _, p in ipairs(problems) do
      assert.equal("config", p.kind)
      msgs[#msgs + 1] = p.message
    end
    assert.same({
      'agent.hcl:3:5: client.artifact "http_read_timeout" must be a duration of at least 1s, found "soon"',
      'agent.hcl:4:5: client.artifact "http_max_size" must be a positive size such as "10GB" or "512MiB", found "-1GB"',
      'agent.hcl:5:5: client.artifact "decompression_size_limit" must be a positive size such as '
        .. '"10GB" or "512MiB", found "0"',
      'agent.hcl:6:5: client.artifact "decompression_file_count_limit" must be at least 1, found -1',
      'agent.hcl:7:19: client.artifact "local_dirs" entries must be absolute paths, found "relative/dir"',
      'agent.hcl:7:35: client.artifact "local_dirs" must not allow the whole file system, found "/"',
    }, msgs)
  end)

  it("suggests the key on a typo", function()
    local _, problems = agent.load('client {\n  artifact {\n    allow_privat = true\n  }\n}\n',
      "agent.hcl", {})
    assert.matches('did you mean "allow_private"', problems[1].message, 1, true)
  end)

  it("parses sizes", function()
    assert.equal(10, agent.parse_size("10"))
    assert.equal(10, agent.parse_size(10))
    assert.equal(1500, agent.parse_size("1.5KB"))
    assert.equal(1024, agent.parse_size("1KiB"))
    assert.equal(100 * 1000 ^ 3, agent.parse_size("100GB"))
    assert.is_nil(agent.parse_size("1 parsec"))
    assert.is_nil(agent.parse_size("0"))
    assert.is_nil(agent.parse_size(-5))
    assert.is_nil(agent.parse_size("99999999999TB"))
  end)
end)

describe("container.artifact_source", function()
  local conf = { local_dirs = { "/srv/art" } }

  it("passes http and https URLs", function()
    assert.same({}, container.artifact_source("https://example.com/a.tgz", conf))
    assert.same({}, container.artifact_source("HTTP://example.com/a.tgz", conf))
  end)

  it("accepts local sources beneath local_dirs, decoded", function()
    assert.same({ local_path = "/srv/art/a b.tar", local_root = "/srv/art" },
      container.artifact_source("file:///srv/art/a%20b.tar", conf))
    assert.same({ local_path = "/srv/art/x", local_root = "/srv/art" },
      container.artifact_source("file://localhost/srv/art/x", conf))
    assert.same({ local_path = "/srv/art/sub/x", local_root = "/srv/art" },
      container.artifact_source("/srv/art/sub/x", conf))
  end)

  local refused = {
    { "file:///etc/shadow", "denied", "not beneath a directory in client.artifact.local_dirs" },
    { "/etc/shadow", "denied", "not beneath" },
    { "/srv/art/../../etc/shadow", "denied", 'must not contain "." or ".."' },
    { "file:///srv/art/%2e%2e/%2e%2e/etc/shadow", "denied", 'must not contain "." or ".."' },
    { "/srv/art", "denied", "not beneath" },
    { "/srv/artifacts-other/x", "denied", "not beneath" },
    { "file://otherhost/srv/art/x", "type", "must name a local absolute path" },
    { "file:///srv/art/%zz", "type", "bad percent-encoding" },
    { "file:///srv/art/a%00b", "type", "bad percent-encoding" },
    { "ftp://example.com/x", "type", "unsupported source" },
    { "git::https://example.com/x", "type", "unsupported source" },
    { "s3::https://bucket/x", "type", "unsupported source" },
    { "relative/x", "type", "unsupported source" },
    { "https://example.com/\nx", "type", "control characters" },
  }
  for _, c in ipairs(refused) do
    it("refuses " .. c[1]:gsub("\n", "\\n"), function()
      local src, kind, why = container.artifact_source(c[1], conf)
      assert.is_nil(src)
      assert.equal(c[2], kind)
      assert.matches(c[3], why, 1, true)
    end)
  end

  it("refuses every local source when local_dirs is empty (the default)", function()
    local src, kind, why = container.artifact_source("/srv/art/x", {})
    assert.is_nil(src)
    assert.equal("denied", kind)
    assert.matches("only http:// and https:// are allowed by default", why, 1, true)
  end)
end)

describe("driver.plan with artifacts", function()
  it("denies file:///etc/shadow by default, naming file, task and source", function()
    local plan, problems = driver.plan(job("file:///etc/shadow"), "j.hcl", nil, nil, HOST)
    assert.is_nil(plan)
    assert.equal("denied", problems[1].kind)
    assert.matches('^j%.hcl:6:%d+: task "web": artifact "file:///etc/shadow": local sources are '
      .. "refused unless client%.artifact%.local_dirs", problems[1].message)
  end)

  it("plans an allowed local source with its root and the agent's limits", function()
    local plan = assert(driver.plan(job("/srv/art/app.tar.gz"), "j.hcl", [[
client {
  artifact {
    local_dirs = ["/srv/art"]
    http_max_size = "1MB"
    http_read_timeout = "5s"
    decompression_size_limit = "2MB"
    decompression_file_count_limit = 7
    allow_private = true
  }
}
]], "agent.hcl", HOST))
    local a = plan.tasks[1].artifacts[1]
    local task_dir = plan.tasks[1].alloc_dir .. "/web"
    assert.same({ source = "/srv/art/app.tar.gz", local_path = "/srv/art/app.tar.gz",
      local_root = "/srv/art", task_dir = task_dir, dest = "local/x",
      dest_dir = task_dir .. "/local/x", checksum = "sha256:abcd", max_size = 1000000,
      read_timeout_ms = 5000, max_unpacked_bytes = 2000000, max_unpacked_files = 7,
      allow_private = true }, a)
  end)
end)

describe("ctx.artifacts", function()
  local ALLOC = "/var/lib/drvctl/alloc/11111111-2222-4333-8444-555555555555"
  local POLICY = [[
return {
  policy_format = 1,
  name = "artifact-hosts",
  description = "artifacts only from artifacts.example.com",
  check = function(ctx)
    for _, a in ipairs(ctx.artifacts) do
      if not a.source:match("^https://artifacts%.example%.com/") then
        return nil, "artifact source not allowed: " .. a.source .. " -> " .. a.destination
          .. " " .. tostring(a.options.checksum)
      end
      a.source = "https://artifacts.example.com/changed"   -- a copy: changes nothing
    end
    return true
  end,
}
]]

  local function apply(artifacts)
    assert(admission.prepare({ policies = { { path = "policies/artifact-hosts.lua",
      source = POLICY } }, guard = kit.default_guard }, { options = {} }))
    return admission.apply({}, { Image = "x:1", HostConfig = {} }, {
      task = { name = "web", config = {}, artifacts = artifacts },
      agent = { options = {} }, node = {}, alloc_dir = ALLOC, task_dir = ALLOC .. "/web",
    })
  end

  it("shows a policy every artifact with its destination and options", function()
    local list = { { source = "https://artifacts.example.com/a.tgz", destination = "local/",
      options = {} }, { source = "https://evil.example.net/b.tgz", destination = "local/b",
      options = { checksum = "sha256:00" } } }
    local out, problems = apply(list)
    assert.is_nil(out)
    assert.equal("denied", problems[1].kind)
    assert.equal('policies/artifact-hosts.lua: task "web": artifact source not allowed: '
      .. "https://evil.example.net/b.tgz -> local/b sha256:00", problems[1].message)
    assert.equal("https://artifacts.example.com/a.tgz", list[1].source)
  end)

  it("passes when every artifact is allowed, and with no artifacts", function()
    assert.is_table(apply({ { source = "https://artifacts.example.com/a.tgz",
      destination = "local/", options = {} } }))
    assert.is_table(apply(nil))
  end)
end)
