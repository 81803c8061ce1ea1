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
    node = opts.node, ports = opts.ports, job_path = "job.hcl",
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
        task_dir = dir .. "/frontend", dest = "local/assets",
        dest_dir = dir .. "/frontend/local/assets", checksum = "sha256:abcd",
        read_timeout_ms = 30 * 60 * 1000, max_size = 10 * 1024 ^ 3 // 1,
        max_unpacked_bytes = 10 * 1024 ^ 3 // 1, max_unpacked_files = 4096,
        allow_private = false } }, entry.artifacts)
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

  it("never sees a / in a task name: the job loader refuses it", function()
    local job, problems = jobspec.load(task('image = "x:1"', nil, "a/b"), "job.hcl")
    assert.is_nil(job)
    assert.matches('task name not allowed .*: "a/b"$', problems[1].message)
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


local DIGEST = "sha256:" .. string.rep("0123456789abcdef", 4)

describe("container.pull_policy", function()
  it("always pulls latest or untagged images", function()
    assert.equal("always", container.pull_policy("redis"))
    assert.equal("always", container.pull_policy("redis:latest"))
    assert.equal("always", container.pull_policy("127.0.0.1:5000/redis"))
    assert.equal("always", container.pull_policy("https://127.0.0.1:5000/redis:latest"))
  end)

  it("pulls a tagged image only when missing", function()
    assert.equal("missing", container.pull_policy("127.0.0.1:5000/redis:3.2"))
    assert.equal("missing", container.pull_policy("redis:3.2"))
    assert.equal("missing", container.pull_policy("redis:LATEST"))
    assert.equal("missing", container.pull_policy("localhost:5000/x"
      .. ":1"))
  end)

  it("pulls a digest only when missing, even when it also names latest", function()
    assert.equal("missing", container.pull_policy("redis@" .. DIGEST))
    assert.equal("missing", container.pull_policy("redis:latest@" .. DIGEST))
  end)

  it("always pulls with force_pull", function()
    assert.equal("always", container.pull_policy("redis:3.2", true))
    assert.equal("always", container.pull_policy("redis@" .. DIGEST, true))
  end)
end)


describe("container.image_ref", function()
  it("parses what imageref parses", function()
    local ref = assert(container.image_ref("https://127.0.0.1:5000/x:1"))
    assert.equal("127.0.0.1:5000/x", ref.repo)
    assert.equal("1", ref.tag)
  end)

  it("gives the old reason for characters that would change the URL", function()
    for _, img in ipairs({ "redis?platform=x", "a&b", "a%2f", "../../v1.41/containers/json",
        "-redis", "a#b", "a\\b" }) do
      local ref, why = container.image_ref(img)
      assert.is_nil(ref, img)
      assert.equal(container.IMAGE_CHARS, why, img)
    end
  end)

  it("refuses variables: images are not interpolated", function()
    local ref, why = container.image_ref("x:${NOMAD_TASK_NAME}")
    assert.is_nil(ref)
    assert.matches("not interpolated", why)
  end)
end)


describe("container.auth_server", function()
  it("keeps host[:port] and drops a scheme and a path", function()
    assert.equal("registry.example.com", container.auth_server("registry.example.com"))
    assert.equal("127.0.0.1:5000", container.auth_server("127.0.0.1:5000"))
    assert.equal("index.docker.io", container.auth_server("https://index.docker.io/v1/"))
    assert.equal("r.io:443", container.auth_server("HTTPS://r.io:443"))
    assert.equal("r.io", container.auth_server("http://r.io/"))
    assert.equal("[::1]:5000", container.auth_server("[::1]:5000"))
  end)

  it("refuses what is not a registry host", function()
    for _, s in ipairs({ "https://", "/x", "a b", "r.io:0", "r.io:99999", "r.io:x", "-r.io",
        "r..io", "r.io\n", "user@r.io", "ftp://r.io" }) do
      local host, why = container.auth_server(s)
      assert.is_nil(host, s)
      assert.is_string(why, s)
    end
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


-- The spec pages live next to the repository (../shared/, relative to the
-- repository root busted runs from); a missing page fails the spec.
describe("container.SCHEMA", function()
  it("knows every option of the v0.8.3 spec page", function()
    local page = read("../shared/spec/nomad-0.8.3-docker-driver.md")
    local section = page:match("## Task Configuration(.-)### Container Name")
    local count = 0
    for name in section:gmatch("\n%* `([%w_]+)`") do
      count = count + 1
      assert.is_not_nil(container.SCHEMA[name], name)
    end
    assert.is_true(count > 40)
  end)

  it("knows every option of the reference table", function()
    local ref = read("../shared/reference/nomad-docker-driver.md")
    local section = ref:match("## 1%. Task config options(.-)### 1%.1")
    local count = 0
    for cell in section:gmatch("\n| `([^`]+)`") do
      local name = cell:match("^([%w_]+)")
      count = count + 1
      assert.is_not_nil(container.SCHEMA[name], name)
    end
    assert.is_true(count > 50)
  end)

  it("leaves no option unsupported", function()
    assert.same({}, container.UNSUPPORTED)
  end)

  it("gates only known options", function()
    for _, name in ipairs(container.POLICY_GATED) do
      assert.is_not_nil(container.SCHEMA[name], name)
    end
    for name in pairs(container.POLICY_GATED_VALUES) do
      assert.is_not_nil(container.SCHEMA[name], name)
    end
  end)

  it("does not gate sysctl", function()
    assert.same({}, container.gated({ image = "x", sysctl = { ["net.core.somaxconn"] = "1" } }))
  end)
end)


-- Problems of a job whose single task has this config body.
local function problems(config_body, extra)
  local job, p = jobspec.load(task(config_body, extra), "job.hcl")
  assert.is_nil(job)
  return p
end

local function messages(p)
  local out = {}
  for i, x in ipairs(p) do
    out[i] = x.message
  end
  return out
end

local function warnings(config_body, extra)
  local job, w = jobspec.load(task(config_body, extra), "job.hcl")
  assert(job, w and w[1] and w[1].message)
  return w
end

local DIR = "/var/lib/drvctl/alloc/" .. ALLOC

describe("option mapping", function()
  describe("dns_servers", function()
    it("skips entries that are not IPs", function()
      local _, body = build(task('image = "x:1"\ndns_servers = ["8.8.8.8", "dns.example", "2001:db8::1"]'))
      assert.same({ "8.8.8.8", "2001:db8::1" }, body.HostConfig.Dns)
    end)

    it("warns about each skipped entry", function()
      assert.same({
        'job.hcl:6:16: task "web" config: dns_servers entry is not an IP address and is skipped: "dns.example"' },
        warnings('dns_servers = ["dns.example"]\nimage = "x:1"'))
    end)

    it("omits Dns when no entry is an IP", function()
      local _, body = build(task('image = "x:1"\ndns_servers = ["nope"]'))
      assert.is_nil(body.HostConfig.Dns)
    end)
  end)

  describe("extra_hosts", function()
    it("interpolates entries", function()
      local _, body = build(task('image = "x:1"\nextra_hosts = ["${NOMAD_TASK_NAME}:10.0.0.1"]'))
      assert.same({ "web:10.0.0.1" }, body.HostConfig.ExtraHosts)
    end)

    it("refuses an entry without an IP", function()
      assert.same({ 'job.hcl:6:16: task "web" config: extra_hosts entry must be "host:IP": "db"' },
        messages(problems('extra_hosts = ["db"]\nimage = "x:1"')))
    end)
  end)

  describe("network endpoint", function()
    it("puts aliases and addresses under the user network", function()
      local _, body = build(task([[
image = "x:1"
network_mode = "backend"
network_aliases = ["${NOMAD_TASK_NAME}-${NOMAD_ALLOC_INDEX}"]
ipv4_address = "172.20.0.5"
ipv6_address = "2001:db8::5"]]))
      assert.equal("backend", body.HostConfig.NetworkMode)
      assert.same({ EndpointsConfig = { backend = {
        IPAMConfig = { IPv4Address = "172.20.0.5", IPv6Address = "2001:db8::5" },
        Aliases = { "web-0" },
      } } }, body.NetworkingConfig)
    end)

    it("refuses aliases without a user-defined network", function()
      assert.same({
        'job.hcl:6:1: task "web" config: network_aliases needs a user-defined network_mode, found "bridge"' },
        messages(problems('network_aliases = ["a"]\nimage = "x:1"')))
    end)

    it("refuses a static address on the host network", function()
      assert.same({ 'job.hcl:7:1: task "web" config: ipv4_address needs a user-defined network_mode, found "host"' },
        messages(problems('network_mode = "host"\nipv4_address = "10.0.0.9"\nimage = "x:1"')))
    end)

    it("refuses an IPv6 value for ipv4_address", function()
      assert.same({ 'job.hcl:7:1: task "web" config: ipv4_address is not an IPv4 address: "::1"' },
        messages(problems('network_mode = "n"\nipv4_address = "::1"\nimage = "x:1"')))
    end)

    it("sends no NetworkingConfig for a plain network_mode", function()
      local _, body = build(task('image = "x:1"\nnetwork_mode = "none"'))
      assert.equal("none", body.HostConfig.NetworkMode)
      assert.is_nil(body.NetworkingConfig)
    end)
  end)

  describe("mac_address", function()
    it("goes to Config.MacAddress", function()
      local _, body = build(task('image = "x:1"\nmac_address = "02:68:b3:29:da:98"'))
      assert.equal("02:68:b3:29:da:98", body.MacAddress)
    end)

    it("refuses a malformed address", function()
      assert.same({ 'job.hcl:6:1: task "web" config: invalid mac_address: "02:68"' },
        messages(problems('mac_address = "02:68"\nimage = "x:1"')))
    end)
  end)

  describe("volumes", function()
    it("appends user binds after the built-in ones", function()
      local _, body = build(task('image = "x:1"\nvolumes = ["/srv/data:/data:ro", "/tmp/x/../y:/y"]'))
      assert.same({ DIR .. "/alloc:/alloc", DIR .. "/web/local:/local", DIR .. "/web/secrets:/secrets",
        "/srv/data:/data:ro", "/tmp/y:/y" }, body.HostConfig.Binds)
    end)

    it("resolves a relative source against the task dir", function()
      local _, body = build(task('image = "x:1"\nvolumes = ["relative/to/task:/also/in/container"]'))
      assert.equal(DIR .. "/web/relative/to/task:/also/in/container", body.HostConfig.Binds[4])
    end)

    it("keeps a relative source as a named volume with a volume_driver", function()
      local _, body = build(task('image = "x:1"\nvolumes = ["vol:/v"]\nvolume_driver = "pxd"'))
      assert.equal("vol:/v", body.HostConfig.Binds[4])
      assert.equal("pxd", body.HostConfig.VolumeDriver)
    end)

    it("interpolates the source", function()
      local _, body = build(task('image = "x:1"\nvolumes = ["/srv/${NOMAD_JOB_NAME}:/d"]'))
      assert.equal("/srv/j:/d", body.HostConfig.Binds[4])
    end)

    it("merges the mode with the selinux label", function()
      local a = agent.defaults(HOST)
      a.options.volumes_selinuxlabel = "z"
      local _, body = build(task('image = "x:1"\nvolumes = ["/a:/a:ro", "/b:/b"]'), { agent = a })
      assert.equal("/a:/a:ro,z", body.HostConfig.Binds[4])
      assert.equal("/b:/b:z", body.HostConfig.Binds[5])
    end)

    it("refuses a volume without a destination", function()
      assert.same({ 'job.hcl:6:12: task "web" config: invalid docker volume: "/data"' },
        messages(problems('volumes = ["/data"]\nimage = "x:1"')))
    end)
  end)

  describe("mounts", function()
    it("maps a volume mount with all its options", function()
      local _, body = build(task([[
image = "x:1"
mounts = [{
  target = "/in/${NOMAD_TASK_NAME}"
  source = "vol-${NOMAD_ALLOC_INDEX}"
  readonly = true
  volume_options {
    no_copy = true
    labels { owner = "${NOMAD_JOB_NAME}" }
    driver_config {
      name = "pxd"
      options = { size = "1G" }
    }
  }
}]
]]))
      assert.same({ {
        Type = "volume", Target = "/in/web", Source = "vol-0", ReadOnly = true,
        VolumeOptions = { NoCopy = true, Labels = { owner = "j" },
          DriverConfig = { Name = "pxd", Options = { size = "1G" } } },
      } }, body.HostConfig.Mounts)
    end)

    it("maps repeatable mount blocks after the mounts list", function()
      local _, body = build(task([[
image = "x:1"
mounts = [{ target = "/a", source = "va" }]
mount {
  type = "bind"
  source = "local/conf"
  target = "/etc/conf"
  bind_options { propagation = "rslave" }
}
mount {
  type = "tmpfs"
  target = "/scratch"
  tmpfs_options {
    size = 1048576
    mode = 1777
  }
}]]))
      assert.same({
        { Type = "volume", Target = "/a", Source = "va", ReadOnly = false },
        { Type = "bind", Source = DIR .. "/web/local/conf", Target = "/etc/conf", ReadOnly = false,
          BindOptions = { Propagation = "rslave" } },
        { Type = "tmpfs", Target = "/scratch", ReadOnly = false,
          TmpfsOptions = { SizeBytes = 1048576, Mode = 1777 } },
      }, body.HostConfig.Mounts)
    end)

    it("refuses an unknown mount type with Nomad's text", function()
      assert.same({ 'job.hcl:6:13: task "web" config: invalid mount type, must be "bind", "volume", "tmpfs": "npipe"' },
        messages(problems('mounts = [{ type = "npipe", target = "/a" }]\nimage = "x:1"')))
    end)

    it("refuses a tmpfs with a source with Nomad's text", function()
      assert.same({ 'job.hcl:6:29: task "web" config: invalid source, must be "" for tmpfs: "x"' },
        messages(problems('mounts = [{ type = "tmpfs", source = "x", target = "/a" }]\nimage = "x:1"')))
    end)

    it("refuses options of another mount type", function()
      local p = problems('mount {\n  type = "tmpfs"\n  target = "/t"\n'
        .. '  bind_options { propagation = "rshared" }\n}\nimage = "x:1"')
      assert.same({
        'job.hcl:9:3: task "web" config: bind_options is only valid for a mount of type "bind", found "tmpfs"' },
        messages(p))
    end)

    it("refuses a mount without a target", function()
      local p = problems('mounts = [{ source = "v" }]\nimage = "x:1"')
      assert.equal("missing", p[1].kind)
      assert.equal('job.hcl:6:11: task "web" config: field "target" is required in a mount', p[1].message)
    end)

    it("refuses an unknown propagation", function()
      local p = problems('mount {\n  type = "bind"\n  source = "/a"\n  target = "/t"\n'
        .. '  bind_options { propagation = "up" }\n}\nimage = "x:1"')
      assert.same({ 'job.hcl:10:18: task "web" config: invalid bind propagation: "up"' }, messages(p))
    end)
  end)

  describe("devices", function()
    it("defaults the container path and the permissions", function()
      local _, body = build(task('image = "x:1"\ndevices = [{ host_path = "/dev/fuse" }, '
        .. '{ host_path = "/dev/sda1", container_path = "/dev/xvdc", cgroup_permissions = "r" }]'))
      assert.same({
        { PathOnHost = "/dev/fuse", PathInContainer = "/dev/fuse", CgroupPermissions = "rwm" },
        { PathOnHost = "/dev/sda1", PathInContainer = "/dev/xvdc", CgroupPermissions = "r" },
      }, body.HostConfig.Devices)
    end)

    it("requires host_path with Nomad's text", function()
      local p = problems('devices = [{ container_path = "/dev/x" }]\nimage = "x:1"')
      assert.equal("missing", p[1].kind)
      assert.equal('job.hcl:6:12: task "web" config: host path must be set in configuration for devices',
        p[1].message)
    end)

    it("refuses permission letters other than r, w, m with Nomad's text", function()
      assert.same({ 'job.hcl:6:36: task "web" config: invalid cgroup permission string: "rwx"' },
        messages(problems('devices = [{ host_path = "/dev/a", cgroup_permissions = "rwx" }]\nimage = "x:1"')))
    end)
  end)

  describe("privilege-widening options", function()
    it("maps them one to one", function()
      local _, body = build(task([[
image = "x:1"
privileged = true
cap_add = ["SYS_TIME", "net_admin"]
cap_drop = ["MKNOD"]
security_opt = ["no-new-privileges", "seccomp=unconfined"]
ipc_mode = "host"
pid_mode = "container:other"
uts_mode = "host"
userns_mode = "host"
runtime = "runsc"]]))
      local hc = body.HostConfig
      assert.is_true(hc.Privileged)
      assert.same({ "SYS_TIME", "net_admin" }, hc.CapAdd)
      assert.same({ "MKNOD" }, hc.CapDrop)
      assert.same({ "no-new-privileges", "seccomp=unconfined" }, hc.SecurityOpt)
      assert.equal("host", hc.IpcMode)
      assert.equal("container:other", hc.PidMode)
      assert.equal("host", hc.UTSMode)
      assert.equal("host", hc.UsernsMode)
      assert.equal("runsc", hc.Runtime)
    end)

    it("refuses an unknown pid_mode", function()
      assert.same({ 'job.hcl:6:1: task "web" config: invalid value for pid_mode: "private"' },
        messages(problems('pid_mode = "private"\nimage = "x:1"')))
    end)

    it("refuses a malformed security_opt", function()
      assert.same({ 'job.hcl:6:17: task "web" config: invalid security_opt: "bogus"' },
        messages(problems('security_opt = ["bogus"]\nimage = "x:1"')))
    end)

    it("lists the gated options a config uses", function()
      assert.same({ "cap_add", "network_mode", "volumes" }, container.gated({
        image = "x", cap_add = { "A" }, volumes = { "/a:/b" }, network_mode = "host", sysctl = {},
      }))
    end)

    it("does not count privileged = false or empty lists", function()
      assert.same({}, container.gated({ image = "x", privileged = false, cap_add = {} }))
    end)

    it("gates every network_mode but bridge, none and default", function()
      for _, m in ipairs({ "host", "backend", "container:db-1", "HOST", " bridge" }) do
        assert.same({ "network_mode" }, container.gated({ image = "x", network_mode = m }), m)
      end
      for _, m in ipairs({ "bridge", "none", "default" }) do
        assert.same({}, container.gated({ image = "x", network_mode = m }), m)
      end
    end)

    it("gates log drivers but json-file and local, and any log option", function()
      assert.same({ "logging" }, container.gated({ image = "x", logging = { type = "syslog" } }))
      assert.same({ "logging" }, container.gated({ image = "x", logging = { driver = "fluentd" } }))
      assert.same({ "logging" }, container.gated({ image = "x",
        logging = { type = "json-file", config = { ["max-size"] = "1g" } } }))
      assert.same({}, container.gated({ image = "x", logging = { type = "local" } }))
    end)

    it("gates a negative oom_score_adj and cgroupns", function()
      assert.same({ "oom_score_adj" }, container.gated({ image = "x", oom_score_adj = -1 }))
      assert.same({}, container.gated({ image = "x", oom_score_adj = 10 }))
      assert.same({ "cgroupns" }, container.gated({ image = "x", cgroupns = "host" }))
    end)
  end)

  describe("cpu_hard_limit", function()
    local NODE = { ["cpu.totalcompute"] = "4096", ["cpu.numcores"] = "4" }

    it("computes the quota of reference §3.11", function()
      local _, body = build(task('image = "x:1"\ncpu_hard_limit = true', 'resources { cpu = 512 }'),
        { node = NODE })
      assert.equal(50000, body.HostConfig.CpuQuota)
      assert.equal(100000, body.HostConfig.CpuPeriod)
    end)

    it("scales the quota with cpu_cfs_period", function()
      local _, body = build(task('image = "x:1"\ncpu_hard_limit = true\ncpu_cfs_period = 50000',
        'resources { cpu = 512 }'), { node = NODE })
      assert.equal(25000, body.HostConfig.CpuQuota)
      assert.equal(50000, body.HostConfig.CpuPeriod)
    end)

    it("prefers the agent's cpu_total_compute", function()
      local a = agent.defaults(HOST)
      a.cpu_total_compute = 2048
      local _, body = build(task('image = "x:1"\ncpu_hard_limit = true', 'resources { cpu = 512 }'),
        { node = NODE, agent = a })
      assert.equal(100000, body.HostConfig.CpuQuota)
    end)

    it("encodes the quota as an integer", function()
      local entry = build(task('image = "x:1"\ncpu_hard_limit = true', 'resources { cpu = 500 }'),
        { node = { ["cpu.totalcompute"] = "3000", ["cpu.numcores"] = "3" } })
      assert.matches('"CpuQuota":49998[,}]', entry.body)
    end)

    it("fails when the total compute is unknown", function()
      local entry, p = build(task('image = "x:1"\ncpu_hard_limit = true'))
      assert.is_nil(entry)
      assert.equal("config", p[1].kind)
      assert.matches('^job.hcl: task "web" config: cpu_hard_limit needs the node\'s total CPU compute', p[1].message)
    end)

    it("refuses a cpu_cfs_period out of range", function()
      assert.same({ 'job.hcl:6:1: task "web" config: invalid value for cpu_cfs_period: 500' },
        messages(problems('cpu_cfs_period = 500\nimage = "x:1"')))
    end)

    it("sets no quota without cpu_hard_limit", function()
      local _, body = build(task('image = "x:1"\ncpu_cfs_period = 50000'), { node = NODE })
      assert.is_nil(body.HostConfig.CpuQuota)
      assert.is_nil(body.HostConfig.CpuPeriod)
    end)
  end)

  describe("memory_hard_limit", function()
    it("raises Memory and reserves resources.memory", function()
      local _, body = build(task('image = "x:1"\nmemory_hard_limit = 512', 'resources { memory = 256 }'))
      assert.equal(512 * 1048576, body.HostConfig.Memory)
      assert.equal(256 * 1048576, body.HostConfig.MemoryReservation)
      assert.equal(512 * 1048576, body.HostConfig.MemorySwap)
    end)

    it("fails below resources.memory with Nomad's text", function()
      local entry, p = build(task('image = "x:1"\nmemory_hard_limit = 100', 'resources { memory = 256 }'))
      assert.is_nil(entry)
      assert.equal('job.hcl: task "web" config: task memory requirements exceed driver hard limit of 100 MB: 256',
        p[1].message)
    end)
  end)

  describe("ranges and values", function()
    it("refuses oom_score_adj out of range", function()
      assert.same({ 'job.hcl:6:1: task "web" config: oom_score_adj must be between -1000 and 1000: 5000' },
        messages(problems('oom_score_adj = 5000\nimage = "x:1"')))
    end)

    it("refuses port_map values that are not ports", function()
      assert.same({ 'job.hcl:6:12: task "web" config: port_map "http" must be a port number between 1 and 65535: 0' },
        messages(problems('port_map { http = 0 }\nimage = "x:1"')))
    end)

    it("refuses port_map values that are strings", function()
      assert.equal("type", problems('port_map { http = "80" }\nimage = "x:1"')[1].kind)
    end)

    it("refuses isolation on linux", function()
      assert.same({ 'job.hcl:6:1: task "web" config: isolation mode "hyperv" is not supported on linux' },
        messages(problems('isolation = "hyperv"\nimage = "x:1"')))
    end)

    it("refuses a negative shm_size", function()
      assert.same({ 'job.hcl:6:1: task "web" config: shm_size must not be negative: -1' },
        messages(problems('shm_size = -1\nimage = "x:1"')))
    end)

    it("refuses a load path outside the task's local dir", function()
      assert.same({
        'job.hcl:6:1: task "web" config: load must name a file inside the task\'s local directory: "../x.tar"' },
        messages(problems('load = "../x.tar"\nimage = "x:1"')))
    end)

    it("refuses a malformed image_pull_timeout", function()
      assert.same({ 'job.hcl:6:1: task "web" config: invalid duration for image_pull_timeout: "soon"' },
        messages(problems('image_pull_timeout = "soon"\nimage = "x:1"')))
    end)

    it("refuses a zero, negative or huge image_pull_timeout", function()
      for _, v in ipairs({ "0s", "-1m" }) do
        assert.same({ 'job.hcl:6:1: task "web" config: invalid duration for image_pull_timeout: "'
          .. v .. '"' }, messages(problems('image_pull_timeout = "' .. v .. '"\nimage = "x:1"')))
      end
      assert.same({ 'job.hcl:6:1: task "web" config: image_pull_timeout must be at most 24h: "25h"' },
        messages(problems('image_pull_timeout = "25h"\nimage = "x:1"')))
    end)

    it("refuses invalid image references naming the position, the value and the reason", function()
      local cases = {
        { "Redis:3", "repository name must be lowercase" },
        { "http://r.io/x", 'only an "https://" prefix is allowed, not another scheme' },
        { "x:", 'tag is empty after ":"' },
        { "x@", 'digest is empty after "@"' },
        { "a//b", 'path component is empty ("//" or a "/" at an end)' },
        { "a/", 'path component is empty ("//" or a "/" at an end)' },
        { "x@md5:" .. string.rep("a", 32), 'unsupported digest algorithm "md5" (sha256, sha384 or sha512)' },
        { "x@sha256:abc", "sha256 digest must have 64 hex digits, found 3" },
        { string.rep("a", 64), "a 64-character hexadecimal string is an image id, not a repository name" },
      }
      for _, c in ipairs(cases) do
        assert.same({ string.format('job.hcl:6:1: task "web" config: invalid image reference "%s" (%s)',
          c[1], c[2]) }, messages(problems('image = "' .. c[1] .. '"')), c[1])
      end
    end)

    it("keeps the old message for characters that would change the API URL", function()
      assert.same({ 'job.hcl:6:1: task "web" config: image reference not allowed '
        .. '(letters, digits and . _ - / : @ only): "redis?x=1"' },
        messages(problems('image = "redis?x=1"')))
    end)

    it("escapes control characters of a refused image and an auth server", function()
      local m = messages(problems('image = "a\\u001b[2Jb"'))
      assert.equal(1, #m)
      assert.is_nil(m[1]:find("%c"))
      m = messages(problems('image = "x:1"\nauth {\n  server_address = "r.io\\nx"\n}'))
      assert.equal(1, #m)
      assert.is_nil(m[1]:find("%c"))
      assert.matches('invalid auth server_address "r%.io\\nx"', m[1])
    end)

    it("refuses a bad auth server_address and never quotes a password", function()
      assert.same({ 'job.hcl:9:3: task "web" config: invalid auth server_address "r.io:99999" '
        .. "(registry port must be between 1 and 65535)" },
        messages(problems('image = "x:1"\nauth {\n  username = "u"\n  server_address = "r.io:99999"\n}')))
      local m = messages(problems('image = "x:1"\nauth {\n  password = "pw\\nsecret"\n}'))
      assert.same({ 'job.hcl:8:3: task "web" config: auth password must not contain NUL or line breaks' }, m)
    end)
  end)

  describe("options without a body field", function()
    it("keeps auth out of the body and flattens it into the secret entry fields", function()
      local entry, body = build(task('image = "x:1"\nauth_soft_fail = true\n'
        .. 'auth {\n  username = "u"\n  password = "s3cr3t-pw"\n  email = "e@x"\n'
        .. '  server_address = "https://127.0.0.1:5000/v2/"\n}'))
      assert.is_nil(entry.body:find("s3cr3t", 1, true))
      assert.is_nil(entry.auth)
      assert.equal("u", entry.auth_username)
      assert.equal("s3cr3t-pw", entry.auth_password)
      assert.equal("e@x", entry.auth_email)
      assert.equal("127.0.0.1:5000", entry.auth_server)
      assert.is_true(entry.auth_soft_fail)
      assert.is_nil(body.auth)
    end)

    it("leaves the auth fields unset without an auth block or for empty strings", function()
      local entry = build(task('image = "x:1"'))
      assert.is_false(entry.auth_soft_fail)
      for _, k in ipairs({ "auth", "auth_username", "auth_password", "auth_email", "auth_server" }) do
        assert.is_nil(entry[k], k)
      end
      entry = build(task('image = "x:1"\nauth {\n  username = ""\n  password = ""\n'
        .. '  server_address = ""\n}'))
      for _, k in ipairs({ "auth_username", "auth_password", "auth_server" }) do
        assert.is_nil(entry[k], k)
      end
    end)

    it("shows no auth field in the plan", function()
      local shown = {}
      for _, f in ipairs(require("drv.driver").PLAN_FIELDS) do
        shown[f[1]] = f.shown == true
      end
      for _, k in ipairs({ "auth_username", "auth_password", "auth_email", "auth_server" }) do
        assert.is_false(shown[k], k)
      end
    end)

    it("accepts advertise_ipv6_address, force_pull and ports", function()
      local entry, body = build(task('image = "x:1"\nadvertise_ipv6_address = true\n'
        .. 'force_pull = true\nports = ["http"]'))
      assert.equal("always", entry.pull)
      assert.is_nil(body.HostConfig.PortBindings)
    end)

    it("fills the image reference fields and the pull decision", function()
      local cases = {
        -- image, force_pull, repo, tag, registry, pull
        { "redis", false, "docker.io/library/redis", "latest", "docker.io", "always" },
        { "redis:latest", false, "docker.io/library/redis", "latest", "docker.io", "always" },
        { "redis:3.2", false, "docker.io/library/redis", "3.2", "docker.io", "missing" },
        { "redis:3.2", true, "docker.io/library/redis", "3.2", "docker.io", "always" },
        { "redis@" .. DIGEST, false, "docker.io/library/redis", DIGEST, "docker.io", "missing" },
        { "redis:3.2@" .. DIGEST, false, "docker.io/library/redis", DIGEST, "docker.io", "missing" },
        { "127.0.0.1:5000/rsx/big", false, "127.0.0.1:5000/rsx/big", "latest", "127.0.0.1:5000", "always" },
        { "127.0.0.1:5000/x:1", false, "127.0.0.1:5000/x", "1", "127.0.0.1:5000", "missing" },
        { "https://127.0.0.1:5000/x:1", false, "127.0.0.1:5000/x", "1", "127.0.0.1:5000", "missing" },
        { "index.docker.io/bitnami/redis:7", false, "docker.io/bitnami/redis", "7", "docker.io", "missing" },
        { "[::1]:5000/foo", false, "[::1]:5000/foo", "latest", "[::1]:5000", "always" },
      }
      for _, c in ipairs(cases) do
        local entry, body = build(task('image = "' .. c[1] .. '"\nforce_pull = ' .. tostring(c[2])))
        local want_image = c[1]:gsub("^https://", "")
        assert.same({ want_image, want_image, c[3], c[4], c[5], c[6] },
          { entry.image, body.Image, entry.image_repo, entry.image_tag, entry.image_registry,
            entry.pull }, c[1])
      end
    end)

    it("uses the timeout defaults and the agent's pull_activity_timeout", function()
      local entry = build(task('image = "x:1"'))
      assert.equal(300000, entry.image_pull_timeout_ms)
      assert.equal(120000, entry.pull_activity_timeout_ms)
      local a = agent.defaults(HOST)
      a.options.pull_activity_timeout_ms = 45000
      entry = build(task('image = "x:1"'), { agent = a })
      assert.equal(45000, entry.pull_activity_timeout_ms)
      a = assert(agent.load('plugin "docker" {\n  config {\n    pull_activity_timeout = "10s"\n  }\n}\n',
        "agent.hcl", HOST))
      entry = build(task('image = "x:1"'), { agent = a })
      assert.equal(10000, entry.pull_activity_timeout_ms)
    end)

    it("converts image_pull_timeout to milliseconds", function()
      local entry = build(task('image = "x:1"\nimage_pull_timeout = "2m"'))
      assert.equal(120000, entry.image_pull_timeout_ms)
    end)
  end)

  describe("other host options", function()
    it("maps runtime-neutral resource options", function()
      local _, body = build(task('image = "x:1"\ncgroupns = "private"\ncpuset_cpus = "0-1"\ngroup_add = [100]'))
      assert.equal("private", body.HostConfig.CgroupnsMode)
      assert.equal("0-1", body.HostConfig.CpusetCpus)
      assert.same({ "100" }, body.HostConfig.GroupAdd)
    end)

    it("defaults a logging block without type to json-file", function()
      local _, body = build(task('image = "x:1"\nlogging {\n  config { max-size = "${NOMAD_TASK_NAME}" }\n}'))
      assert.same({ Type = "json-file", Config = { ["max-size"] = "web" } }, body.HostConfig.LogConfig)
    end)

    it("accepts driver as an alias of type", function()
      local _, body = build(task('image = "x:1"\nlogging {\n  driver = "syslog"\n}'))
      assert.equal("syslog", body.HostConfig.LogConfig.Type)
    end)
  end)

  describe("ports", function()
    local PORTS = {
      env = { NOMAD_PORT_http = "8080", NOMAD_HOST_PORT_http = "23456",
              NOMAD_ADDR_http = "10.0.0.1:23456", NOMAD_IP_http = "10.0.0.1" },
      bindings = {
        ["8080/tcp"] = { { HostIp = "10.0.0.1", HostPort = "23456" } },
        ["8080/udp"] = { { HostIp = "10.0.0.1", HostPort = "23456" } },
      },
      exposed = { ["8080/tcp"] = {}, ["8080/udp"] = true },
    }

    it("publishes the bindings", function()
      local _, body = build(task('image = "x:1"'), { ports = PORTS })
      assert.same(PORTS.bindings, body.HostConfig.PortBindings)
    end)

    it("exposes the ports as JSON objects", function()
      local entry = build(task('image = "x:1"'), { ports = PORTS })
      assert.same({ ["8080/tcp"] = {}, ["8080/udp"] = {} }, cjson.decode(entry.body).ExposedPorts)
      assert.is_truthy(entry.body:find('"8080\\/udp":{}', 1, true))
    end)

    it("adds the port variables to the env", function()
      local _, body = build(task('image = "x:1"'), { ports = PORTS })
      assert.is_truthy(table.concat(body.Env, "\n"):find("NOMAD_PORT_http=8080", 1, true))
    end)

    it("resolves port variables in args and task env", function()
      local _, body = build(task('image = "x:1"\nargs = ["-bind", "${NOMAD_PORT_http}", "${ADDR}"]',
        'env { ADDR = "${NOMAD_ADDR_http}" }'), { ports = PORTS })
      assert.same({ "-bind", "8080", "10.0.0.1:23456" }, body.Cmd)
    end)

    it("sends no port fields without ports", function()
      local _, body = build(task('image = "x:1"'))
      assert.is_nil(body.ExposedPorts)
      assert.is_nil(body.HostConfig.PortBindings)
    end)
  end)

  describe("interpolation sources", function()
    it("resolves nomad.* and node.* variables", function()
      local a = agent.defaults(HOST)
      a.name, a.node_class, a.datacenter = "n1", "edge", "dc7"
      local _, body = build(task('image = "x:1"\nargs = ["${nomad.datacenter}", "${nomad.region}", '
        .. '"${node.unique.name}", "${node.datacenter}", "${node.class}"]'),
        { agent = a })
      assert.same({ "dc7", "global", "n1", "dc7", "edge" }, body.Cmd)
    end)

    it("resolves attr.* from the node attributes", function()
      local _, body = build(task('image = "x:1"\nhostname = "${attr.kernel.name}"'),
        { node = { ["kernel.name"] = "linux" } })
      assert.equal("linux", body.Hostname)
    end)

    it("falls back to job, group and task meta for meta.*", function()
      local _, body = build(task('image = "x:1"\nwork_dir = "/${meta.app}"', 'meta { app = "shop" }'))
      assert.equal("/shop", body.WorkingDir)
    end)

    it("prefers node meta over job meta", function()
      local a = agent.defaults(HOST)
      a.meta = { app = "node" }
      local _, body = build(task('image = "x:1"\nwork_dir = "/${meta.app}"', 'meta { app = "task" }'),
        { agent = a })
      assert.equal("/node", body.WorkingDir)
    end)

    it("does not interpolate the image: a variable in it is refused", function()
      assert.same({ 'job.hcl:6:1: task "web" config: invalid image reference '
        .. '"x:${NOMAD_TASK_NAME}" (image references are not interpolated: "${" is not allowed)' },
        messages(problems('image = "x:${NOMAD_TASK_NAME}"')))
    end)
  end)
end)
