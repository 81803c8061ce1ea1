-- policies/limits.lua, as attacks: memory = 0 produced an unlimited
-- container; a negative oom_score_adj makes the kernel kill host processes
-- first.
local kit = require("policykit")

local function memory(mb)
  return { task = ("resources {\n memory = %d\n}"):format(mb) }
end

describe("policies/limits.lua", function()
  it("allows the default 300 MB", function()
    kit.job(""):allowed():has("HostConfig.Memory", 300 * kit.MiB)
  end)

  it("allows exactly 10 MB (Nomad's minimum)", function()
    kit.job("", memory(10)):allowed()
  end)

  for _, mb in ipairs({ 0, 1, 9 }) do
    it(("refuses memory = %d"):format(mb), function()
      kit.job("", memory(mb)):blocked("memory")
    end)
  end

  it("names the minimum when it denies", function()
    kit.job("", memory(5)):denied_by("limits.lua", 'memory below the minimum of 10 MB: "5"')
  end)

  it("refuses memory_hard_limit below 10 MB", function()
    kit.job("memory_hard_limit = 5", memory(4)):blocked("memory")
  end)

  it("refuses a reservation below 10 MB under a large hard limit", function()
    kit.job("memory_hard_limit = 512", memory(4)):denied_by("limits.lua", "memory reservation below")
  end)

  it("refuses memory_hard_limit = 0 with memory = 0 (unlimited)", function()
    kit.job("memory_hard_limit = 0", memory(0)):blocked("memory")
  end)

  for _, v in ipairs({ -1, -500, -1000 }) do
    it(("denies oom_score_adj = %d"):format(v), function()
      kit.job(("oom_score_adj = %d"):format(v)):denied_by("limits.lua", "oom_score_adj below 0")
    end)
  end

  it("allows a positive oom_score_adj", function()
    kit.job("oom_score_adj = 500"):allowed()
  end)

  it("allows a negative oom_score_adj with the documented line", function()
    kit.job("oom_score_adj = -500", { agent =
      'plugin "docker" { config { policy_options { limits { min_oom_score_adj = -1000 } } } }' })
      :allowed():has("HostConfig.OomScoreAdj", -500)
  end)

  it("denies swap set by a mutation", function()
    local sources = kit.sources()
    sources[#sources + 1] = { path = "ops/zz-swap.lua", source = [[
      return { policy_format = 1, name = "zz-swap",
        mutate = function()
          return { { op = "set", path = "HostConfig.MemorySwap", value = -1 } }
        end }
    ]] }
    kit.job("", { sources = sources }):denied_by("limits.lua", "memory swap")
  end)
end)
