-- wrk script for bench/load.sh: scrape /metrics as Prometheus does and count
-- every response whose status is not 2xx (wrk itself counts only >= 400).
--
-- Defining response() makes wrk buffer each body to hand it to Lua; the
-- client cost that adds (a memcpy per page) is the price of seeing every
-- status. done() prints one machine-readable line, "LOAD key=value ...",
-- that bench/load_rotate.py reads; wrk's own report is printed above it.

wrk.method = "GET"
wrk.headers["Accept"] =
  "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  responses = 0
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non2xx, responses = 0, 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("non2xx")
    responses = responses + t:get("responses")
  end
  local e = summary.errors
  io.write(string.format(
    "LOAD requests=%d responses=%d bytes=%d duration_us=%d non2xx=%d "
      .. "connect=%d read=%d write=%d timeout=%d status_ge400=%d "
      .. "lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d lat_mean_us=%.0f\n",
    summary.requests, responses, summary.bytes, summary.duration, non2xx,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
