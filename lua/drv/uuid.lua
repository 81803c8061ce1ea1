--- Deterministic UUIDv4-shaped allocation ids.
local uuid = {}


local ZERO_SEED = string.rep("0", 32)


--- Returns the alloc id for instance `n` (1-based) derived from a 32-hex seed.
---@param seed string|nil 32 hex characters
---@param n integer global instance counter
---@return string
function uuid.alloc_id(seed, n)
  if type(seed) ~= "string" or #seed ~= 32 or seed:find("[^%x]") then
    seed = ZERO_SEED
  end
  seed = seed:lower()
  local tail = tonumber(seed:sub(25, 32), 16) ~ (n & 0xffffffff)
  local hex = seed:sub(1, 24) .. string.format("%08x", tail)
  -- version nibble (index 13) is 4, variant nibble (index 17) is 8..b
  local variant = (tonumber(hex:sub(17, 17), 16) & 0x3) | 0x8
  hex = hex:sub(1, 12) .. "4" .. hex:sub(14, 16) .. string.format("%x", variant) .. hex:sub(18)
  return string.format("%s-%s-%s-%s-%s",
    hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16), hex:sub(17, 20), hex:sub(21, 32))
end

return uuid
