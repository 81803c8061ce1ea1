local cjson = require("cjson")
local agent = require("drv.agent")
local container = require("drv.container")
local jobspec = require("drv.jobspec")

local ALLOC = "01234567-89ab-4def-8123-456789abcdef"
local HOST = { default_data_dir = "/var/lib/drvctl", cwd = "/work" }


local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end


-- Builds the first task of a job source as instance `index` of its group.
local function build(src, opts)
  opts = opts or {}
  local job, res = jobspec.load(src, opts.name or "job.hcl")
  assert(job, res and res[1] and res[1].message)
  local group = job.groups[1]
  local a = opts.agent or agent.defaults(HOST)
  local index = opts.index or 0
  local entry, body, unknown = container.build({
    job = job, group = group, task = group.tasks[1], agent = a,
    alloc_id = opts.alloc_id or ALLOC, alloc_index = index,
    alloc_name = string.format("%s.%s[%d]", job.name, group.name, index),
  })
  return entry, body, unknown
end


local function task(config_body, extra, name)
  return string.format([[
job "j" {
  group "g" {
    task "%s" {
      driver = "docker"
      config {
%s
      }
%s
    }
  }
}
]], name or "web", config_body, extra or "")
end


describe("container.build", function()
  describe("for a realistic task", function()
    local entry, body

    before_each(function()
      entry, body = build(read("spec/fixtures/jobs/web.hcl"), { index = 1 })
    end)

    it("produces the exact create body", function()
      local dir = "/var/lib/drvctl/alloc/" .. ALLOC
      assert.same({
        Image = "registry.example.com/shop/web:1.4",
        Cmd = { "/bin/web", "-listen", ":8080", "-name", "frontend-1", "-color", "blue" },
        WorkingDir = "/srv/shop",
        Hostname = "web-1",
        User = "nobody",
        Env = {
          "COLOR=blue",
          "GREETING=hello from web",
          "NOMAD_ALLOC_DIR=/alloc",
          "NOMAD_ALLOC_ID=" .. ALLOC,
          "NOMAD_ALLOC_INDEX=1",
          "NOMAD_ALLOC_NAME=shop.web[1]",
          "NOMAD_CPU_LIMIT=500",
          "NOMAD_DC=dc1",
          "NOMAD_GROUP_NAME=web",
          "NOMAD_JOB_NAME=shop",
          "NOMAD_MEMORY_LIMIT=256",
          "NOMAD_META_OWNER=ops",
          "NOMAD_META_TIER=front",
          "NOMAD_META_VERSION=1.4",
          "NOMAD_META_owner=ops",
          "NOMAD_META_tier=front",
          "NOMAD_META_version=1.4",
          "NOMAD_REGION=europe",
          "NOMAD_SECRETS_DIR=/secrets",
          "NOMAD_TASK_DIR=/local",
          "NOMAD_TASK_NAME=frontend",
        },
        Labels = {
          app = "shop",
          ["drvctl.job"] = "shop",
          ["drvctl.group"] = "web",
          ["drvctl.task"] = "frontend",
          ["drvctl.alloc_id"] = ALLOC,
        },
        Tty = false,
        OpenStdin = false,
        Healthcheck = { Test = { "NONE" } },
        HostConfig = {
          Binds = {
            dir .. "/alloc:/alloc",
            dir .. "/frontend/local:/local",
            dir .. "/frontend/secrets:/secrets",
          },
          Memory = 268435456,
          MemorySwap = 268435456,
          CpuShares = 500,
          LogConfig = { Type = "json-file", Config = { ["max-size"] = "2m", ["max-file"] = "2" } },
          Dns = { "10.0.0.2" },
          ExtraHosts = { "db:10.0.0.3" },
          Sysctls = { ["net.core.somaxconn"] = "16384" },
          Ulimits = {
            { Name = "nofile", Soft = 2048, Hard = 4096 },
            { Name = "nproc", Soft = 4242, Hard = 4242 },
          },
          ShmSize = 67108864,
          ReadonlyRootfs = true,
          Init = true,
          PidsLimit = 64,
        },
      }, cjson.decode(entry.body))
    end)

    it("returns the body table it encoded", function()
      assert.same(cjson.decode(entry.body), body)
    end)

    it("names the container task-alloc", function()
      assert.equal("frontend-" .. ALLOC, entry.name)
    end)

    it("fills the plan entry", function()
      local dir = "/var/lib/drvctl/alloc/" .. ALLOC
      assert.equal("missing", entry.pull)
      assert.equal("SIGINT", entry.kill_signal)
      assert.equal(30000, entry.kill_timeout_ms) -- 1m30s capped by max_kill_timeout
      assert.equal(dir, entry.alloc_dir)
      assert.equal(dir .. "/alloc/logs", entry.log_dir)
      assert.equal(5, entry.log_max_files)
      assert.equal(20 * 1048576, entry.log_max_file_size)
      assert.same({ { source = "https://example.com/assets.tar.gz",
        dest_dir = dir .. "/frontend/local/assets", checksum = "sha256:abcd" } }, entry.artifacts)
      assert.same({ dir, dir .. "/alloc", dir .. "/alloc/logs", dir .. "/alloc/data",
        dir .. "/alloc/tmp", dir .. "/frontend", dir .. "/frontend/local",
        dir .. "/frontend/secrets" }, entry.dirs)
    end)

    it("gives the same body from the JSON job", function()
      local from_json = build(read("spec/fixtures/jobs/web.json"), { index = 1, name = "web.json" })
      assert.same(cjson.decode(entry.body), cjson.decode(from_json.body))
    end)
  end)

  describe("lua-cjson pitfalls", function()
    it("encodes sizes as integers, even from JSON floats", function()
      local entry = build([[{"Job": {"ID": "j", "TaskGroups": [{"Name": "g", "Tasks": [
        {"Name": "t", "Driver": "docker", "Config": {"image": "x:1", "shm_size": 67108864.0},
         "Resources": {"CPU": 500.0, "MemoryMB": 2048.0}}]}]}}]], { name = "j.json" })
      assert.matches('"Memory":2147483648[,}]', entry.body)
      assert.matches('"ShmSize":67108864[,}]', entry.body)
      assert.matches('"CpuShares":500[,}]', entry.body)
    end)

    it("never encodes an empty list", function()
      local entry = build(task('image = "x:1"\nargs = []\ndns_servers = []\nentrypoint = []'))
      local body = cjson.decode(entry.body)
      assert.is_nil(body.Cmd)
      assert.is_nil(body.Entrypoint)
      assert.is_nil(body.HostConfig.Dns)
      assert.is_nil(entry.body:find("[]", 1, true))
    end)

    it("never encodes an empty object for a list field", function()
      local entry = build(task('image = "x:1"'))
      assert.is_nil(entry.body:find('%[%]'))
      assert.is_nil(entry.body:find('"Cmd":{}', 1, true))
      assert.is_nil(entry.body:find('"Env":{}', 1, true))
    end)

    it("refuses memory whose byte size reaches 1e14", function()
      local job, problems = jobspec.load(task('image = "x:1"', "resources { memory = 100000000 }"),
        "job.hcl")
      assert.is_nil(job)
      assert.equal("type", problems[1].kind)
    end)
  end)

  describe("command and args", function()
    it("uses args alone as Cmd without a command", function()
      local _, body = build(task('image = "x:1"\nargs = ["-v"]'))
      assert.same({ "-v" }, body.Cmd)
    end)

    it("maps entrypoint", function()
      local _, body = build(task('image = "x:1"\nentrypoint = ["/bin/sh", "-c"]'))
      assert.same({ "/bin/sh", "-c" }, body.Entrypoint)
    end)
  end)

  describe("interpolation", function()
    it("resolves NOMAD variables and task env in args", function()
      local _, body = build(task('image = "x:1"\nargs = ["${NOMAD_ALLOC_ID}", "${A}"]',
        'env { A = "${NOMAD_TASK_NAME}!" }'))
      assert.same({ ALLOC, "web!" }, body.Cmd)
    end)

    it("leaves unknown variables as written and reports them", function()
      local _, body, unknown = build(task('image = "x:1"\nargs = ["${NOPE}"]\nlabels { a = "${meta.x}" }'))
      assert.same({ "${NOPE}" }, body.Cmd)
      assert.equal("${meta.x}", body.Labels.a)
      table.sort(unknown)
      assert.same({ "${NOPE}", "${meta.x}" }, unknown)
    end)

    it("resolves node meta from the agent", function()
      local a = agent.defaults(HOST)
      a.meta = { rack = "r1" }
      local _, body = build(task('image = "x:1"\nhostname = "${meta.rack}-${node.datacenter}"'),
        { agent = a })
      assert.equal("r1-dc1", body.Hostname)
    end)
  end)

  describe("labels", function()
    it("merges a list of label maps", function()
      local _, body = build(task('image = "x:1"\nlabels = [{ a = "1" }, { b = "2" }]'))
      assert.equal("1", body.Labels.a)
      assert.equal("2", body.Labels.b)
    end)

    it("does not let users override drvctl labels", function()
      local _, body = build(task('image = "x:1"\nlabels { "drvctl.task" = "evil" }'))
      assert.equal("web", body.Labels["drvctl.task"])
    end)
  end)

  it("maps tty and interactive", function()
    local _, body = build(task('image = "x:1"\ntty = true\ninteractive = true'))
    assert.is_true(body.Tty)
    assert.is_true(body.OpenStdin)
  end)

  it("maps the simple host options one to one", function()
    local _, body = build(task([[
image = "x:1"
dns_search_domains = ["example.internal"]
dns_options = ["ndots:2"]
mac_address = "02:68:b3:29:da:98"
oom_score_adj = 500
group_add = ["100"]
storage_opt { size = "1G" }
work_dir = "/w"]]))
    local hc = body.HostConfig
    assert.same({ "example.internal" }, hc.DnsSearch)
    assert.same({ "ndots:2" }, hc.DnsOptions)
    assert.equal("02:68:b3:29:da:98", body.MacAddress)
    assert.equal(500, hc.OomScoreAdj)
    assert.same({ "100" }, hc.GroupAdd)
    assert.same({ size = "1G" }, hc.StorageOpt)
    assert.equal("/w", body.WorkingDir)
  end)

  it("maps a logging block", function()
    local _, body = build(task([[
image = "x:1"
logging {
  type = "fluentd"
  config {
    fluentd-address = "localhost:24224"
    tag = "your_tag"
  }
}]]))
    assert.same({ Type = "fluentd", Config = { ["fluentd-address"] = "localhost:24224",
      tag = "your_tag" } }, body.HostConfig.LogConfig)
  end)

  it("appends the selinux label to the built-in binds", function()
    local a = agent.defaults(HOST)
    a.options.volumes_selinuxlabel = "z"
    local _, body = build(task('image = "x:1"'), { agent = a })
    assert.equal("/var/lib/drvctl/alloc/" .. ALLOC .. "/alloc:/alloc:z", body.HostConfig.Binds[1])
  end)

  it("replaces / in task names for the container name", function()
    local entry = build(task('image = "x:1"', nil, "a/b"))
    assert.equal("a_b-" .. ALLOC, entry.name)
  end)

  it("places a loaded image under the task's local dir", function()
    local entry = build(task('image = "redis"\nload = "redis.tar"'))
    assert.equal("/var/lib/drvctl/alloc/" .. ALLOC .. "/web/local/redis.tar", entry.load)
  end)

  it("turns a kill_timeout of zero into one second", function()
    local entry = build(task('image = "x:1"', 'kill_timeout = "0s"'))
    assert.equal(1000, entry.kill_timeout_ms)
  end)
end)


describe("container.pull_policy", function()
  it("always pulls latest or untagged images", function()
    assert.equal("always", container.pull_policy("redis"))
    assert.equal("always", container.pull_policy("redis:latest"))
    assert.equal("always", container.pull_policy("127.0.0.1:5000/redis"))
  end)

  it("pulls a tagged image only when missing", function()
    assert.equal("missing", container.pull_policy("127.0.0.1:5000/redis:3.2"))
    assert.equal("missing", container.pull_policy("redis@sha256:abc"))
  end)

  it("always pulls with force_pull", function()
    assert.equal("always", container.pull_policy("redis:3.2", true))
  end)
end)


describe("container.image_name", function()
  it("strips a leading https://", function()
    assert.equal("hub.docker.internal/redis:3.2",
      container.image_name("https://hub.docker.internal/redis:3.2"))
  end)
end)


describe("container.parse_ulimit", function()
  it("uses one number as soft and hard", function()
    assert.same({ Name = "nproc", Soft = 4242, Hard = 4242 }, container.parse_ulimit("nproc", "4242"))
  end)

  it("returns integers", function()
    local u = container.parse_ulimit("nofile", "2048:4096")
    assert.equal("integer", math.type(u.Soft))
    assert.equal("integer", math.type(u.Hard))
  end)

  it("uses Nomad's exact error texts", function()
    assert.equal('Malformed ulimit specification nofile: "", cannot be empty',
      select(2, container.parse_ulimit("nofile", "")))
    assert.equal("Malformed soft ulimit nofile: abc:1234",
      select(2, container.parse_ulimit("nofile", "abc:1234")))
    assert.equal("Malformed hard ulimit nofile: 1234:abc",
      select(2, container.parse_ulimit("nofile", "1234:abc")))
  end)
end)


describe("container.SCHEMA", function()
  it("knows every option of the v0.8.3 spec page", function()
    local page = read("/work/shared/spec/nomad-0.8.3-docker-driver.md")
    local section = page:match("## Task Configuration(.-)### Container Name")
    local count = 0
    for name in section:gmatch("\n%* `([%w_]+)`") do
      count = count + 1
      assert.is_not_nil(container.SCHEMA[name], name)
    end
    assert.is_true(count > 40)
  end)

  it("knows every option of the reference table", function()
    local ref = read("/work/shared/reference/nomad-docker-driver.md")
    local section = ref:match("## 1%. Task config options(.-)### 1%.1")
    local count = 0
    for cell in section:gmatch("\n| `([^`]+)`") do
      local name = cell:match("^([%w_]+)")
      count = count + 1
      assert.is_not_nil(container.SCHEMA[name], name)
    end
    assert.is_true(count > 50)
  end)

  it("lists only known options as unsupported", function()
    for name in pairs(container.UNSUPPORTED) do
      assert.is_not_nil(container.SCHEMA[name], name)
    end
  end)
end)
