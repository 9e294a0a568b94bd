-- wrk script for bench/run_bench.py: sets the request from the environment and prints the run as
-- one JSON line (latency percentiles in microseconds), which wrk's own summary does not offer.
--
--   BENCH_METHOD  GET (default) or POST
--   BENCH_TOKEN   sent as "Authorization: Bearer <token>" when set
--   BENCH_BODY    request body (sent with Content-Type: application/json)
--   BENCH_HEADERS more request headers, "Name: value" lines separated by newlines (a Host header
--                 replaces the one wrk derives from the URL: the previews section reaches the proxy
--                 on 127.0.0.1 as p-<id>.localhost, with the preview cookie)
-- The path comes from the URL given to wrk. There is deliberately no response() callback: it would
-- make wrk parse every response in Lua and cost the load generator CPU the servers need. Answers
-- with a status of 400 or more are counted by wrk itself (errors.status), which the harness checks.

local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_BODY")
local headers = os.getenv("BENCH_HEADERS")

wrk.method = method
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if headers and headers ~= "" then
  for line in headers:gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      wrk.headers[name] = value
    end
  end
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
