-- scripts/policy-bytecode.lua OUT DIR FILE...: precompiles shipped policies.
--
-- Writes OUT: the header line "drvctl-policy-bytecode 1", then per policy
-- "<path length> <text length> <bytecode length>\n" followed by the path
-- (DIR/<file name>: where the binary will read the policy), the policy's
-- text and its bytecode (compiled as "@" .. path, debug info kept, so
-- messages name the same file and line as when compiled from text).
--
-- core/plan/policyset.c hands a policy's bytecode to Lua only when the
-- policy it read has exactly this path and exactly this text: an edited or
-- overridden policy is compiled from its text as always. A file that does
-- not compile is left out (the binary then reports the error from text).
-- `make` writes build/policies.bc for the source tree, `make install`
-- DATADIR/policies.bc for the installed policies.
local out_path, dir = arg[1], arg[2]
if not out_path or not dir or not arg[3] then
  io.stderr:write("usage: policy-bytecode.lua OUT DIR FILE...\n")
  os.exit(2)
end

local parts = { "drvctl-policy-bytecode 1\n" }
for i = 3, #arg do
  local f = assert(io.open(arg[i], "rb"))
  local text = f:read("a")
  f:close()
  local path = dir .. "/" .. arg[i]:match("[^/]+$")
  local chunk = load(text, "@" .. path, "t", {})
  if chunk then
    local bc = string.dump(chunk)
    parts[#parts + 1] = string.format("%d %d %d\n", #path, #text, #bc)
    parts[#parts + 1] = path
    parts[#parts + 1] = text
    parts[#parts + 1] = bc
  end
end

local tmp = out_path .. ".tmp"
local f = assert(io.open(tmp, "wb"))
assert(f:write(table.concat(parts)))
assert(f:close())
assert(os.rename(tmp, out_path))
