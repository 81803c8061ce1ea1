--- Program name and version.
local meta = {
  name = "drvctl",
  version = "0.1.0",
}

return meta
