local cjson = require("cjson")
local driver = require("drv.driver")
local imagetar = require("drv.imagetar")

local HEX = string.rep("ab", 32)

local function manifest(tags)
  return cjson.encode({ { Config = HEX .. ".json", RepoTags = tags, Layers = { "l/layer.tar" } } })
end

describe("imagetar.normalize", function()
  it("resolves short names the way Docker does", function()
    assert.equal("docker.io/library/busybox:latest", imagetar.normalize("busybox"))
    assert.equal("docker.io/library/busybox:latest", imagetar.normalize("docker.io/library/busybox:latest"))
    assert.equal("docker.io/library/busybox:latest", imagetar.normalize("index.docker.io/busybox"))
    assert.equal("docker.io/library/busybox:latest", imagetar.normalize("library/busybox"))
    assert.equal("docker.io/drvctl-test/busybox:1", imagetar.normalize("drvctl-test/busybox:1"))
    assert.equal("localhost:5000/x:latest", imagetar.normalize("localhost:5000/x"))
    assert.equal("localhost/x:2", imagetar.normalize("localhost/x:2"))
    assert.equal("reg.example/a/b:latest", imagetar.normalize("https://reg.example/a/b"))
    assert.equal("docker.io/library/x@sha256:" .. HEX, imagetar.normalize("x@sha256:" .. HEX))
  end)

  it("rejects what is no reference", function()
    assert.is_nil(imagetar.normalize(""))
    assert.is_nil(imagetar.normalize("a b"))
    assert.is_nil(imagetar.normalize("x:\n1"))
    assert.is_nil(imagetar.normalize("x:"))
    assert.is_nil(imagetar.normalize(42))
  end)
end)

describe("imagetar.check", function()
  it("accepts the task's own tag, in any spelling, and returns the config digest", function()
    assert.same({ id = "sha256:" .. HEX },
      imagetar.check({ image = "busybox", manifest = manifest({ "docker.io/library/busybox:latest" }) }))
    assert.same({ id = "sha256:" .. HEX },
      imagetar.check({ image = "x:1", manifest = manifest({ "x:1" }),
        repositories = cjson.encode({ x = { ["1"] = HEX } }) }))
  end)

  it("refuses any other tag in RepoTags", function()
    local r = imagetar.check({ image = "x:1", manifest = manifest({ "x:1", "alpine:latest" }) })
    assert.equal('manifest.json tags "alpine:latest", but only the task\'s image "x:1" may be tagged', r.error)
    r = imagetar.check({ image = "x:1", manifest = manifest({ "x:1", "busybox" }) })
    assert.truthy(r.error:find('tags "busybox"', 1, true))
    r = imagetar.check({ image = "x", manifest = manifest({ "x:2" }) })
    assert.truthy(r.error)
  end)

  it("refuses other tags in repositories and in index.json", function()
    local r = imagetar.check({ image = "x:1", manifest = manifest({ "x:1" }),
      repositories = cjson.encode({ alpine = { latest = HEX } }) })
    assert.equal('repositories tags "alpine:latest", but only the task\'s image "x:1" may be tagged', r.error)
    r = imagetar.check({ image = "x:1", repositories = cjson.encode({ x = { ["1"] = HEX, ["2"] = HEX } }) })
    assert.truthy(r.error:find('"x:2"', 1, true))
    r = imagetar.check({ image = "x:1", manifest = manifest({ "x:1" }), index = cjson.encode({
      manifests = { { annotations = { ["io.containerd.image.name"] = "docker.io/library/alpine:3" } } } }) })
    assert.truthy(r.error:find("index.json tags", 1, true))
  end)

  it("refuses archives that tag nothing, lack both files, or are not JSON", function()
    assert.truthy(imagetar.check({ image = "x:1", manifest = manifest({}) }).error:find("tags nothing"))
    assert.truthy(imagetar.check({ image = "x:1" }).error:find("neither manifest.json nor repositories"))
    assert.truthy(imagetar.check({ image = "x:1", manifest = "[{" }).error:find("not valid JSON"))
    assert.truthy(imagetar.check({ image = "x:1", manifest = '"x"' }).error)
    assert.truthy(imagetar.check({ image = "x:1", manifest = '[{"RepoTags":"x:1"}]' }).error)
    assert.truthy(imagetar.check({ image = "x:1", manifest = '[{"RepoTags":[1]}]' }).error)
    assert.truthy(imagetar.check({ image = "x:1", manifest = "[1]" }).error)
  end)

  it("returns no id when the config is not named by its digest", function()
    local m = cjson.encode({ { Config = "../../etc/passwd", RepoTags = { "x:1" } } })
    assert.same({}, imagetar.check({ image = "x:1", manifest = m }))
  end)

  it("is reached through driver.decode('load_manifest')", function()
    local body = cjson.encode({ image = "x:1", manifest = manifest({ "x:1", "y:1" }) })
    local r = driver.decode("load_manifest", 200, body)
    assert.truthy(r.error:find('"y:1"', 1, true))
  end)
end)
