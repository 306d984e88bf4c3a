-- wrk script: a realistic mix of impression pixels (GET), VAST quartiles (GET),
-- billing notices (GET, durable) and conversions (POST, JSON), each with its
-- own ids, so the tracker does the full work for every request.
local counter = 0
local campaigns = {"c-1", "c-2", "c-3", "summer-sale"}

local browser = {["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}

request = function()
  counter = counter + 1
  local cid = campaigns[(counter % #campaigns) + 1]
  if counter % 10 == 0 then
    local body = string.format('{"cid":"%s","order":"o-%d","value":"19.99","currency":"EUR"}', cid, counter)
    return wrk.format("POST", "/conv", {["Content-Type"] = "application/json"}, body)
  end
  if counter % 10 == 1 then
    return wrk.format("GET", string.format("/bill?aid=a-%d&iid=i-1&bid=b-1&cid=%s&price=2.%02d", counter, cid, counter % 100))
  end
  if counter % 10 == 2 then
    return wrk.format("GET", string.format("/vast/midpoint?cid=%s&aid=a-%d&iid=i-1&bid=b-1&dur=00:00:30.000&ph=00:00:15.000", cid, counter), browser)
  end
  local path = string.format("/imp?cid=%s&crid=cr-%d&iid=imp-%d&aid=a-%d&bid=b-1&price=1.%02d&gdpr=0&cb=%d",
    cid, counter % 7, counter, counter, counter % 100, counter)
  return wrk.format("GET", path, browser)
end

done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_s=%.1f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
