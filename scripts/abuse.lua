-- wrk script for scripts/abuse: anonymous floods of the expensive endpoints.
-- ATTACK = set-password | login | jwt-login | made-up-tokens | leak-reports | otp-guess |
-- passkey; COOKIE and CSRF come from one GET /login; VICTIM and PASSWORD are the person whose
-- password the otp-guess attackers have (phished), with two-factor authentication on;
-- PASSKEY_COOKIE carries a passkey sign-in begun (a live ceremony), which the passkey
-- attackers answer with made-up credentials.
local attack = os.getenv("ATTACK")
local cookie = os.getenv("COOKIE") or ""
local csrf = os.getenv("CSRF") or ""
local victim = os.getenv("VICTIM") or ""
local password = os.getenv("PASSWORD") or ""
local passkey_cookie = os.getenv("PASSKEY_COOKIE") or ""
local counter = 0
local threads = {}

local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(bytes)
  local out, pad = {}, (3 - #bytes % 3) % 3
  bytes = bytes .. string.rep("\0", pad)
  for i = 1, #bytes, 3 do
    local n = bytes:byte(i) * 65536 + bytes:byte(i + 1) * 256 + bytes:byte(i + 2)
    for j = 3, 0, -1 do
      local k = math.floor(n / 64 ^ j) % 64 + 1
      table.insert(out, b64chars:sub(k, k))
    end
  end
  local s = table.concat(out)
  return s:sub(1, #s - pad) .. string.rep("=", pad)
end

-- A well-formed DER ECDSA signature of two random 31-byte integers: it parses, so each one
-- costs the server a full P-256 verification (junk that doesn't parse costs nothing).
local function der_signature()
  local function int()
    local t = {}
    for i = 1, 31 do t[i] = string.char(math.random(1, 255)) end
    return "\2\31" .. table.concat(t)
  end
  local body = int() .. int()
  return base64("\48" .. string.char(#body) .. body)
end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (id or 0))
  statuses = {}
end

-- Every request from another address (a botnet), believed because the server trusts the
-- loopback proxy: the per-address limit doesn't save the server, the password budget must.
local function botnet()
  return string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
end

function request()
  counter = counter + 1
  if attack == "set-password" then
    local body = "csrf_token=" .. csrf .. "&token=" .. hex(64) ..
      "&password=correct+horse+battery+staple+" .. counter ..
      "&confirm=correct+horse+battery+staple+" .. counter
    return wrk.format("POST", "/set-password",
      { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = cookie, ["X-Forwarded-For"] = botnet() }, body)
  elseif attack == "login" then
    local body = "csrf_token=" .. csrf .. "&email=victim" .. hex(6) .. "%40example.com&password=guess" .. counter
    return wrk.format("POST", "/login",
      { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = cookie, ["X-Forwarded-For"] = botnet() }, body)
  elseif attack == "otp-guess" then
    -- The right password, a guessed code, from a botnet: what stands is the per-person count.
    local body = '{"username":"' .. victim .. '","password":"' .. password .. '","one_time_password":"' ..
      string.format("%06d", math.random(0, 999999)) .. '"}'
    return wrk.format("POST", "/iam/auth/jwt/login",
      { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = botnet() }, body)
  elseif attack == "passkey" then
    -- Half start a passkey sign-in (anonymous, nothing written), half answer a live ceremony
    -- with a made-up credential (a random id: one indexed read, then refused).
    if counter % 2 == 0 then
      return wrk.format("POST", "/login/passkey/options",
        { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = cookie, ["X-Forwarded-For"] = botnet() },
        "csrf_token=" .. csrf)
    end
    local b = function(n) return (base64(hex(n)):gsub("=", ""):gsub("%+", "-"):gsub("/", "_")) end
    local credential = '{"id":"' .. b(32) .. '","rawId":"' .. b(32) .. '","type":"public-key","response":' ..
      '{"authenticatorData":"' .. b(37) .. '","clientDataJSON":"' .. b(120) .. '","signature":"' .. b(70) ..
      '","userHandle":"' .. b(16) .. '"},"extensions":{}}'
    local encoded = credential:gsub("[^%w%-_%.]", function(c) return string.format("%%%02X", string.byte(c)) end)
    return wrk.format("POST", "/login/passkey",
      { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = passkey_cookie, ["X-Forwarded-For"] = botnet() },
      "csrf_token=" .. csrf .. "&next=%2F&credential=" .. encoded)
  elseif attack == "leak-reports" then
    -- Reports signed by "the" key id with signatures that parse but don't verify.
    local body = '[{"token":"' .. math.random(1, 2^40) .. "_" .. hex(64) .. '","type":"apitokens","url":"https://x","source":"content"}]'
    return wrk.format("POST", "/iam/secret-scanning/report",
      { ["Content-Type"] = "application/json", ["Github-Public-Key-Identifier"] = "abuse-key",
        ["Github-Public-Key-Signature"] = der_signature(), ["X-Forwarded-For"] = botnet() }, body)
  elseif attack == "made-up-tokens" then
    -- Gateway checks with tokens that don't exist: ids from 1 to about a trillion.
    local token = string.format("%d", math.random(1, 2^40)) .. "_" .. hex(64)
    return wrk.format("GET", "/iam/auth/check", { ["Authorization"] = "APIKey " .. token, ["X-Forwarded-For"] = botnet() })
  else
    local body = '{"username":"victim' .. hex(6) .. '@example.com","password":"guess' .. counter .. '"}'
    return wrk.format("POST", "/iam/auth/jwt/login", { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = botnet() }, body)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, code .. ":" .. n) end
  table.sort(parts)
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
end
