-- Pre-signed LINE webhook bodies: BENCH_BODIES is a file the bench wrote, one
-- "<signature>\t<body>" per line, each body with a unique webhookEventId and
-- replyToken. Threads take disjoint slices; wrapping around (which would
-- re-send an event id, answered as a redelivery) is counted and reported.
package.path = (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua;" .. package.path
require("common")

local file = os.getenv("BENCH_BODIES")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local path = os.getenv("BENCH_PATH") or "/webhooks/line"

function init(args)
  sent = 0
  wraps = 0
  sigs, bodies = {}, {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local tab = line:find("\t", 1, true)
      table.insert(sigs, line:sub(1, tab - 1))
      table.insert(bodies, line:sub(tab + 1))
    end
    i = i + 1
  end
  n = #bodies
  pos = 0
end

function request()
  sent = sent + 1
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Line-Signature"] = sigs[pos],
  }, bodies[pos])
end

done = report
