-- Replays the requests of a file written by loadtest/load.py, in a loop, and
-- prints one "BENCH {json}" line at the end. Line format, tab-separated:
-- method, target, body (may be empty), then "Name: value" headers.
-- The requests are formatted once in init(), so wrk spends no time per request.
local formatted = {}
local count = 0
local next_index = 0

init = function(args)
  for line in io.lines(args[1]) do
    local fields = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      fields[#fields + 1] = field
    end
    local headers = {}
    for k = 4, #fields do
      local name, value = fields[k]:match("^([^:]+): (.*)$")
      if name then headers[name] = value end
    end
    local body = nil
    if fields[3] ~= "" then body = fields[3] end
    count = count + 1
    formatted[count] = wrk.format(fields[1], fields[2], headers, body)
  end
end

request = function()
  next_index = next_index % count + 1
  return formatted[next_index]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"p999_us":%d,"max_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx_3xx":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
