-- wrk script for bench/run.sh.
--
--   wrk ... -s bench/wrk.lua URL                              GET URL (with -H headers)
--   wrk ... -s bench/wrk.lua URL -- answer TOKENS THREADS     POST wizard answers
--
-- In answer mode each wrk thread takes its share of the case tokens in the
-- file TOKENS (one a line; THREADS must equal wrk's -t) and posts, case
-- after case, the answer to the question "Who are you in this?"
-- (node role-gateway), alternating the choice on every round through its
-- cases. The first round answers the current step; later rounds change
-- that answer. Either way the server appends to the case's step log and
-- answers 303: every accepted request is a real write. A case is not asked
-- again before the thread has gone through all its other cases, so no two
-- requests for one case are in flight at once.
--
-- done prints one line that run.sh reads:
--   RESULT requests=N seconds=S rps=R p50=MS p95=MS p99=MS max=MS errors=E status=E4xx5xx socket=E bytes=B

local mode = "get"
local tokens = {}
local n, i = 0, 0
local choices = { "owner", "user" }
local plain
local counter = 0

function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
end

function init(args)
  mode = args[1] or "get"
  if mode == "answer" then
    local threads = tonumber(args[3])
    local k = 0
    for line in io.lines(args[2]) do
      if line ~= "" then
        if k % threads == thread_index then
          tokens[#tokens + 1] = line
        end
        k = k + 1
      end
    end
    n = #tokens
    if n == 0 then
      error("no case tokens for thread " .. thread_index)
    end
  else
    plain = wrk.format()
  end
end

local form = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  -- What a browser sends with a form from gatecheck's own page; the
  -- server's cross-origin protection lets it through.
  ["Sec-Fetch-Site"] = "same-origin",
}

function request()
  if mode ~= "answer" then
    return plain
  end
  local k = i % n + 1
  local round = math.floor(i / n)
  i = i + 1
  local body = "node=role-gateway&choice=" .. choices[round % 2 + 1]
  return wrk.format("POST", "/c/" .. tokens[k] .. "/answer", form, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.1f p50=%.2f p95=%.2f p99=%.2f max=%.2f errors=%d status=%d socket=%d bytes=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status + socket, e.status, socket, summary.bytes))
end
