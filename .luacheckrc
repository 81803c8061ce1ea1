-- luacheck configuration (`make lint`).
std = "lua54"
max_line_length = 120
-- Comments may be longer: they quote agent-config restore lines and
-- annotation types that must stay on one line to be copied.
max_comment_line_length = false
exclude_files = {
  -- deliberately broken policies (syntax errors, unused arguments) that the
  -- policy specs load to check the error messages.
  "spec/fixtures/**",
}

-- Policies run in the sandbox of lua/drv/sandbox.lua (sandbox.env): only
-- these names exist, and `drv` is the helper library (drv.caps, drv.path,
-- drv.bind, drv.image).
files["policies"] = {
  std = "none",
  read_globals = {
    "pairs", "ipairs", "next", "type", "tostring", "tonumber", "select",
    "error", "assert", "rawequal", "rawlen",
    "string", "table", "math", "utf8", "drv",
  },
}

-- lua/drv/ stays pure transformations: no file, process or clock access
-- (the C core does all I/O).
files["lua/drv"] = { not_globals = { "io", "os", "print", "dofile", "loadfile" } }

-- busted's globals (describe, it, assert.*, spy, stub, mock, ...).
files["spec"] = { std = "+busted" }
