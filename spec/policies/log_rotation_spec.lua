local kit = require("policykit")

local function logging(type_, config)
  return { spec = function(s) s.HostConfig.LogConfig = { Type = type_, Config = config } end }
end

describe("policies/log_rotation.lua", function()
  it("keeps the driver's own defaults (json-file 2m x 2)", function()
    kit.task({}, logging("json-file", { ["max-size"] = "2m", ["max-file"] = "2" })):allowed()
  end)

  it("rotates a json-file log that names no options, keeping the others", function()
    local c = kit.task({}, logging("json-file", { compress = "true" })):allowed()
    assert.same({ compress = "true", ["max-size"] = "2m", ["max-file"] = "2" },
      c:field("HostConfig.LogConfig.Config"))
    kit.task({}, logging("json-file", nil)):allowed():has("HostConfig.LogConfig.Config.max-file", "2")
    kit.task({}, logging("", nil)):allowed():has("HostConfig.LogConfig.Config.max-size", "2m")
  end)

  it("leaves the local driver's bounded defaults alone", function()
    local c = kit.task({}, logging("local", nil)):allowed()
    assert.is_nil(c:field("HostConfig.LogConfig.Config"))
  end)

  it("denies a max-size above 10 MB, unlimited or not a size", function()
    for _, v in ipairs({ "100g", "11m", "10485761", "-1", "", "1x", "2 m b" }) do
      kit.task({}, logging("json-file", { ["max-size"] = v, ["max-file"] = "2" }))
        :denied_by("log_rotation.lua", "max-size", '"' .. v .. '"')
    end
    kit.task({}, logging("local", { ["max-size"] = "1g" })):denied_by("log_rotation.lua", '"1g"')
  end)

  it("accepts Docker's size spellings up to the maximum", function()
    for _, v in ipairs({ "10m", "10M", "10MiB", "10mb", "10240k", "10485760", "1.5m", "512 KiB" }) do
      kit.task({}, logging("json-file", { ["max-size"] = v, ["max-file"] = "3" })):allowed()
    end
  end)

  it("denies max-file of 0, above 10 or not a number", function()
    for _, v in ipairs({ "0", "11", "100000", "-1", "two", "99999999999" }) do
      kit.task({}, logging("local", { ["max-file"] = v }))
        :denied_by("log_rotation.lua", "max-file", '"' .. v .. '"')
    end
  end)

  it("leaves other drivers to policies/logging.lua", function()
    kit.task({}, logging("syslog", { ["max-size"] = "100g" })):not_denied_by("log_rotation.lua")
  end)

  it("takes its bounds from policy_options and can be turned off", function()
    local agent = { policy_options = { log_rotation = { max_size_mb = 200 } } }
    kit.task({}, { agent = agent, spec = logging("json-file", { ["max-size"] = "100m" }).spec })
      :not_denied_by("log_rotation.lua")
    local off = { policy_options = { log_rotation = { enabled = false } } }
    kit.task({}, { agent = off, spec = logging("json-file", { ["max-size"] = "-1" }).spec })
      :not_denied_by("log_rotation.lua")
  end)
end)
