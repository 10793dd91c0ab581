-- wrk script for scripts/scale: /iam/auth/check with 10,000 distinct valid tokens in turn.
local tokens = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = "APIKey " .. line
  end
  i = math.random(#tokens)
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/iam/auth/check", { ["Authorization"] = tokens[i] })
end
