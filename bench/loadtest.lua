-- wrk script of `make loadtest` (bench/loadtest.py): posts the JSON body in the file named by
-- LOADTEST_BODY, counts the answers by status in each wrk thread, and prints one line
-- "LOADTEST {json}" when the run is done: requests, duration and latency percentiles in
-- microseconds, wrk's socket errors, and the statuses.
--
-- wrk runs this script in one Lua state per thread, and setup and done in another: the counts
-- made by `response` in a thread reach `done` only through thread:get.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(assert(os.getenv("LOADTEST_BODY"), "LOADTEST_BODY is not set"), "rb"))
wrk.body = file:read("*a") -- from a file: a JSON body inlined in a Lua long string breaks on "]]"
file:close()

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function json_counts(counts)
  local parts = {}
  for key, count in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', key, count))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format(
    'LOADTEST {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%s,"statuses":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    json_counts({connect = e.connect, read = e.read, write = e.write, timeout = e.timeout}),
    json_counts(total)))
end
