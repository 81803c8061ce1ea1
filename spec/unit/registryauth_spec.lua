local cjson = require("cjson")
local driver = require("drv.driver")
local ra = require("drv.registryauth")

local HUB = "https://index.docker.io/v1/"
local REG = "127.0.0.1:5443"
local PATH = "/etc/drvctl/docker.json"

-- the JSON inside an X-Registry-Auth value
local function unheader(h)
  assert.is_string(h)
  assert.is_nil(h:find("[+/]"), "base64url alphabet")
  assert.equal(0, #h % 4, "padded")
  local plain = assert(ra.base64_decode((h:gsub("[-_]", { ["-"] = "+", ["_"] = "/" }))))
  return cjson.decode(plain)
end

local function b64(s)
  return ra.base64_encode(s)
end

local function conf(t)
  return { registry = t.registry or REG, config = cjson.encode(t.file), config_path = PATH,
           helper = t.helper }
end

-- the secrets used below: never in a message
local SECRETS = { "s3cret", "hunter2", "tok-123", "c2VjcmV0" }

local function no_secret(msg)
  for _, s in ipairs(SECRETS) do
    assert.is_nil(msg:find(s, 1, true), "secret in message: " .. msg)
  end
end

local function fails(q, pattern)
  local r, err = ra.resolve(q)
  assert.is_nil(r)
  assert.is_string(err)
  assert.truthy(err:find(pattern, 1, true), err)
  no_secret(err)
  return err
end


describe("registryauth base64", function()
  it("round-trips every tail length", function()
    for _, s in ipairs({ "", "a", "ab", "abc", "abcd", "\0\255\1", "user:pa:ss" }) do
      assert.equal(s, ra.base64_decode(ra.base64_encode(s)))
    end
    assert.equal("dGVzdHVzZXI6dGVzdHBhc3M=", ra.base64_encode("testuser:testpass"))
    assert.equal("dGVzdDoxMjM0", ra.base64_encode("test:1234"))
  end)

  it("decodes like Go's StdEncoding: padding required, CR/LF ignored, no url alphabet", function()
    assert.equal("test:1234", ra.base64_decode("dGVzdDox\nMjM0\r\n"))
    assert.is_nil(ra.base64_decode("dGVzdDoxMjM"))          -- missing padding
    assert.is_nil(ra.base64_decode("dGVzdDoxMj=0"))         -- padding inside
    assert.is_nil(ra.base64_decode("dGVz=DoxMjM0"))
    assert.is_nil(ra.base64_decode("dG-zdDoxMjM0"))         -- url alphabet
    assert.is_nil(ra.base64_decode("dGVzdDox MjM0"))
    assert.is_nil(ra.base64_decode("a==="))
    assert.equal("", ra.base64_decode(""))
  end)

  it("encodes the header as padded base64url", function()
    assert.equal("-_-_", ra.base64url_encode("\251\255\191"))
    assert.equal("Pz8_", ra.base64url_encode("???"))
    assert.equal("YQ==", ra.base64url_encode("a"))
  end)
end)


describe("registryauth helper names", function()
  it("accepts what helpers are called", function()
    for _, n in ipairs({ "pass", "secretservice", "ecr-login", "gcloud", "acr-env", "a.b_c", "0" }) do
      assert.is_true(ra.valid_helper(n), n)
    end
  end)

  it("refuses paths, options and odd bytes", function()
    for _, n in ipairs({ "", "../../bin/sh", "/bin/sh", "a/b", "-x", ".hidden", "_x", "A",
                         "pass ", "pa\nss", "pa\0ss", "x;rm", string.rep("a", 101), 42, false }) do
      assert.is_false(ra.valid_helper(n), tostring(n))
    end
    assert.is_true(ra.valid_helper(string.rep("a", 100)))
  end)
end)


describe("registryauth.resolve order", function()
  it("uses the task's auth when any of username, password, server_address is set", function()
    local r = ra.resolve({ registry = REG, username = "u", password = "s3cret",
                           config_path = PATH, config = "not json", helper = "rsx" })
    assert.same({ username = "u", password = "s3cret", serveraddress = REG }, unheader(r.header))
    assert.truthy(r.source:find("task's auth block", 1, true))
    no_secret(r.source)
    r = ra.resolve({ registry = REG, password = "s3cret" })
    assert.same({ username = "", password = "s3cret", serveraddress = REG }, unheader(r.header))
    r = ra.resolve({ registry = "docker.io", server = "reg.example" })
    assert.same({ username = "", password = "", serveraddress = "reg.example" }, unheader(r.header))
  end)

  it("keeps a hostile task auth inside the header value (no CR, LF or space)", function()
    local user = "u\r\nX-Evil: 1\0\"}"
    local pass = string.rep("\255p\n", 5000)
    local r = ra.resolve({ registry = REG, username = user, password = pass, server = "a\r\nb" })
    assert.truthy(r.header:find("^[A-Za-z0-9_=-]+$"))
    local t = unheader(r.header)
    assert.equal(user, t.username)
    assert.equal("a\r\nb", t.serveraddress)
  end)

  it("ignores a task auth block holding only an email or empty strings", function()
    local r = ra.resolve({ registry = REG, email = "a@b", username = "", password = "", server = "",
                           helper = "rsx" })
    assert.equal("rsx", r.helper)
  end)

  it("is anonymous when nothing is configured", function()
    local r = ra.resolve({ registry = REG })
    assert.is_nil(r.header)
    assert.is_nil(r.helper)
    assert.truthy(r.source:find("no credentials", 1, true))
  end)

  it("takes auths, then credHelpers, then credsStore, then docker.auth.helper", function()
    local file = {
      auths = { [REG] = { auth = b64("user:s3cret") } },
      credHelpers = { [REG] = "helper-a" },
      credsStore = "store-b",
    }
    local r = ra.resolve(conf({ file = file, helper = "agent-c" }))
    assert.same({ username = "user", password = "s3cret", serveraddress = REG }, unheader(r.header))
    assert.equal('registry auth for "' .. REG .. '" from docker.auth.config "' .. PATH
      .. '": auths["' .. REG .. '"]', r.source)

    file.auths = nil
    r = ra.resolve(conf({ file = file, helper = "agent-c" }))
    assert.same({ helper = "helper-a", input = REG,
      source = 'registry auth for "' .. REG .. '" from docker.auth.config "' .. PATH
        .. '": credHelpers["' .. REG .. '"] "helper-a"' }, r)

    file.credHelpers = { ["other:1"] = "x" }
    r = ra.resolve(conf({ file = file, helper = "agent-c" }))
    assert.equal("store-b", r.helper)
    assert.equal(REG, r.input)
    assert.truthy(r.source:find('credsStore "store-b"', 1, true))

    file.credsStore = nil
    r = ra.resolve(conf({ file = file, helper = "agent-c" }))
    assert.same({ helper = "agent-c", input = REG,
      source = 'registry auth for "' .. REG .. '" from docker.auth.helper "agent-c"' }, r)

    r = ra.resolve(conf({ file = file }))
    assert.is_nil(r.header)
    assert.is_nil(r.helper)
  end)

  it("lets an empty auths entry (docker login with a store) fall through", function()
    local file = { auths = { [REG] = {} }, credsStore = "pass" }
    local r = ra.resolve(conf({ file = file }))
    assert.equal("pass", r.helper)
    file = { auths = { [REG] = { auth = "" } } }
    r = ra.resolve(conf({ file = file, helper = "h" }))
    assert.equal("h", r.helper)
  end)

  it("reads username/password entries and identity tokens", function()
    local r = ra.resolve(conf({ file = { auths = { [REG] = { username = "u", password = "hunter2" } } } }))
    assert.same({ username = "u", password = "hunter2", serveraddress = REG }, unheader(r.header))
    r = ra.resolve(conf({ file = { auths = { [REG] = { identitytoken = "tok-123" } } } }))
    assert.same({ identitytoken = "tok-123", serveraddress = REG }, unheader(r.header))
    -- auth wins over username/password, as Docker decodes it over them
    r = ra.resolve(conf({ file = { auths = { [REG] = { auth = b64("a:b"), username = "u",
                                                        password = "hunter2" } } } }))
    assert.same({ username = "a", password = "b", serveraddress = REG }, unheader(r.header))
  end)

  it("splits auth at the first colon; the password may be empty or hold colons", function()
    local r = ra.resolve(conf({ file = { auths = { [REG] = { auth = b64("u:p:q:") } } } }))
    assert.same({ username = "u", password = "p:q:", serveraddress = REG }, unheader(r.header))
    r = ra.resolve(conf({ file = { auths = { [REG] = { auth = b64("u:") } } } }))
    assert.same({ username = "u", password = "", serveraddress = REG }, unheader(r.header))
  end)

  it("treats JSON null as absent", function()
    local r = ra.resolve({ registry = REG, config_path = PATH,
      config = '{"auths":null,"credHelpers":null,"credsStore":null}', helper = "h" })
    assert.equal("h", r.helper)
  end)
end)


describe("registryauth keys", function()
  it("looks up Docker Hub under https://index.docker.io/v1/", function()
    local file = { auths = { [HUB] = { auth = b64("hub:s3cret") },
                             ["docker.io"] = { auth = b64("wrong:x") } } }
    for _, reg in ipairs({ "docker.io", "index.docker.io" }) do
      local r = ra.resolve(conf({ registry = reg, file = file }))
      assert.same({ username = "hub", password = "s3cret", serveraddress = HUB }, unheader(r.header))
    end
  end)

  it("does not match Hub by hostname (index.docker.io, docker.io keys)", function()
    local file = { auths = { ["docker.io"] = { auth = b64("a:b") },
                             ["https://index.docker.io/v2/"] = { auth = b64("a:b") } } }
    local r = ra.resolve(conf({ registry = "docker.io", file = file }))
    assert.is_nil(r.header)
  end)

  it("asks credHelpers and credsStore with the config key, docker.auth.helper with the host", function()
    local r = ra.resolve(conf({ registry = "docker.io", file = { credHelpers = { [HUB] = "hub" } } }))
    assert.equal("hub", r.helper)
    assert.equal(HUB, r.input)
    r = ra.resolve(conf({ registry = "docker.io", file = { credsStore = "st" } }))
    assert.equal(HUB, r.input)
    r = ra.resolve(conf({ registry = "docker.io", file = {}, helper = "h" }))
    assert.equal("docker.io", r.input)
    -- a credHelpers key other than the config key does not answer
    r = ra.resolve(conf({ registry = "docker.io", file = { credHelpers = { ["docker.io"] = "x" } } }))
    assert.is_nil(r.helper)
  end)

  it("matches legacy URL keys by their hostname, exact key first", function()
    local file = { auths = { ["https://" .. REG .. "/v1/"] = { auth = b64("legacy:x") } } }
    local r = ra.resolve(conf({ file = file }))
    assert.equal("legacy", unheader(r.header).username)
    assert.equal("https://" .. REG .. "/v1/", unheader(r.header).serveraddress)
    file.auths["http://" .. REG] = nil
    file.auths[REG] = { auth = b64("exact:x") }
    r = ra.resolve(conf({ file = file }))
    assert.equal("exact", unheader(r.header).username)
    -- another port is another registry
    r = ra.resolve(conf({ file = { auths = { ["https://127.0.0.1:5444/v1/"] = { auth = b64("a:b") } } } }))
    assert.is_nil(r.header)
    assert.equal("reg.example", ra.hostname("http://reg.example/x/y"))
    assert.equal("h:1", ra.hostname("h:1"))
  end)
end)


describe("registryauth malformed config files", function()
  it("names the file when it could not be read, only when it is consulted", function()
    local err = fails({ registry = REG, config_path = PATH,
                        config_error = "cannot read: No such file or directory" },
                      PATH)
    assert.equal('registry auth for "' .. REG .. '" from docker.auth.config "' .. PATH
      .. '": cannot read: No such file or directory', err)
    -- an error stops the search: docker.auth.helper is not asked
    fails({ registry = REG, config_path = PATH, config_error = "cannot read: x", helper = "h" },
          "cannot read: x")
    fails({ registry = REG, config_path = PATH, config = "{", helper = "h" }, "not valid JSON")
    -- the task's auth answers first: the file is not consulted
    assert.is_string(ra.resolve({ registry = REG, username = "u", config_path = PATH,
                                  config_error = "cannot read: x" }).header)
  end)

  it("refuses a file that is no JSON object", function()
    fails({ registry = REG, config_path = PATH, config = "{" }, "not valid JSON")
    fails({ registry = REG, config_path = PATH, config = "[1]" }, "expected a JSON object")
    fails({ registry = REG, config_path = PATH, config = '"x"' }, "expected a JSON object")
  end)

  it("names the key and what is wrong, never the secret", function()
    local cases = {
      { { auths = { [REG] = { auth = "c2VjcmV0" } } }, '.auth: no ":" between username and password' },
      { { auths = { [REG] = { auth = b64(":hunter2") } } }, ".auth: empty username" },
      { { auths = { [REG] = { auth = "s3cret!!" } } }, ".auth: not valid base64" },
      { { auths = { [REG] = { auth = "s3cre" } } }, ".auth: not valid base64" },
      { { auths = { [REG] = { auth = 12 } } }, ".auth: expected a string, found number" },
      { { auths = { [REG] = { password = true, username = "u" } } }, ".password: expected a string" },
      { { auths = { [REG] = "hunter2" } }, 'auths["' .. REG .. '"]: expected an object, found string' },
      { { auths = "hunter2" }, "auths: expected an object, found string" },
      { { auths = { 1, 2 } }, "auths: expected an object" },
      { { credHelpers = "x" }, "credHelpers: expected an object" },
      { { credHelpers = { [REG] = 1 } }, 'credHelpers["' .. REG .. '"]: expected a string' },
      { { credsStore = {} }, "credsStore: expected a string" },
    }
    for _, c in ipairs(cases) do
      local err = fails(conf({ file = c[1] }), c[2])
      assert.truthy(err:find('docker.auth.config "' .. PATH .. '"', 1, true), err)
    end
  end)

  it("refuses a malformed entry for another registry too (Docker decodes the whole file)", function()
    local err = fails(conf({ file = { auths = { ["other:1"] = { auth = b64(":x") },
                                                 [REG] = { auth = b64("u:p") } } } }),
                      'auths["other:1"].auth: empty username')
    assert.truthy(err:find(PATH, 1, true))
  end)

  it("refuses hostile helper names from the file and from the agent", function()
    for _, name in ipairs({ "../../../bin/sh", "/usr/bin/id", "x y", "-rf", "A" }) do
      local err = fails(conf({ file = { credHelpers = { [REG] = name } } }), "helper name not allowed")
      assert.truthy(err:find('credHelpers["' .. REG .. '"]', 1, true), err)
      fails(conf({ file = { credsStore = name } }), "credsStore: helper name not allowed")
      fails({ registry = REG, helper = name }, "docker.auth.helper: helper name not allowed")
    end
    local err = fails({ registry = REG, helper = "a\27]0;x\7" }, "helper name not allowed")
    assert.is_nil(err:find("[%c]"), "no control characters in messages")
  end)

  it("escapes a hostile key in messages", function()
    local err = fails(conf({ file = { auths = { ["k\27[2J"] = { auth = "!" } } } }), "not valid base64")
    assert.is_nil(err:find("%c"))
  end)
end)


describe("registryauth.helper_output", function()
  local SRC = 'registry auth for "' .. REG .. '" from docker.auth.helper "rsx"'
  local function out(t)
    t.source = SRC
    t.input = t.input or REG
    return ra.helper_output(t)
  end

  it("turns Username/Secret into username/password", function()
    local r = out({ status = "0", stdout = '{"ServerURL":"x","Username":"u","Secret":"s3cret"}\n' })
    assert.same({ username = "u", password = "s3cret", serveraddress = REG }, unheader(r.header))
    assert.equal(SRC, r.source)
  end)

  it("turns a <token> username into an identity token", function()
    local r = out({ status = 0, stdout = '{"Username":"<token>","Secret":"tok-123"}', input = HUB })
    assert.same({ identitytoken = "tok-123", serveraddress = HUB }, unheader(r.header))
  end)

  it("counts an all-empty answer as anonymous", function()
    for _, s in ipairs({ '{"ServerURL":"","Username":"","Secret":""}', "{}",
                         '{"Username":"<token>","Secret":""}', '{"Username":null}' }) do
      local r = out({ status = "0", stdout = s })
      assert.is_nil(r.header, s)
    end
  end)

  it("counts credentials not found (stdout, exit 1) as anonymous", function()
    for _, s in ipairs({ "credentials not found in native keychain\n",
                         "Credentials not found in native keychain" }) do
      local r = out({ status = "1", stdout = s, stderr = "" })
      assert.is_nil(r.header)
      assert.truthy(r.source:find("credentials not found", 1, true))
    end
  end)

  it("fails on any other exit with the stderr, never the stdout", function()
    local r, err = out({ status = "1", stdout = "s3cret leaked", stderr = "boom: no agent\n" })
    assert.is_nil(r)
    assert.equal(SRC .. ": helper failed with exit status 1: boom: no agent", err)
    r, err = out({ status = "2", stdout = "credentials not found", stderr = "" })
    assert.is_nil(r)
    assert.truthy(err:find("exit status 2", 1, true))
    assert.truthy(err:find("stderr empty", 1, true))
    no_secret(err)
  end)

  it("escapes and cuts the stderr", function()
    local _, err = out({ status = "3", stdout = "", stderr = "a\27[31mb\nc" .. string.rep("x", 2000) })
    assert.is_nil(err:find("%c"))
    assert.truthy(err:find("a\\x1b[31mb\\nc", 1, true), err)
    assert.truthy(#err < 800)
  end)

  it("refuses output that is no JSON object, without showing it", function()
    for _, s in ipairs({ "s3cret", "", "[]", '"s3cret"', '{"Username":1,"Secret":"s3cret"}' }) do
      local r, err = out({ status = "0", stdout = s })
      assert.is_nil(r, s)
      no_secret(err)
      assert.truthy(err:find(SRC, 1, true))
    end
  end)
end)


describe("driver.registry_auth", function()
  it("dispatches resolve and helper_output", function()
    local r = driver.registry_auth("resolve", { registry = REG, helper = "rsx" })
    assert.equal("rsx", r.helper)
    r = driver.registry_auth("helper_output", { status = "0", stdout = '{"Username":"u","Secret":"p"}',
                                                input = REG, source = "s" })
    assert.equal("u", unheader(r.header).username)
    local none, err = driver.registry_auth("nope", {})
    assert.is_nil(none)
    assert.truthy(err:find("unknown registry auth operation", 1, true))
  end)
end)
