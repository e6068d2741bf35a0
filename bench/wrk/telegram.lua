-- Telegram updates with unique update_ids (a per-thread counter above a base
-- the bench passes in BENCH_UPDATE_BASE) over BENCH_CHATS chats; BENCH_CHAT
-- pins every update to one chat (the hot-chat case).
package.path = (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua;" .. package.path
require("common")

local base = tonumber(os.getenv("BENCH_UPDATE_BASE") or "1000000")
local chats = tonumber(os.getenv("BENCH_CHATS") or "1000")
local hot = tonumber(os.getenv("BENCH_CHAT") or "0")
local path = os.getenv("BENCH_PATH") or "/webhooks/telegram"
local headers = {["Content-Type"] = "application/json"}
local fmt = '{"update_id":%d,"message":{"message_id":%d,"date":1700000000,' ..
  '"chat":{"id":%d,"type":"private","first_name":"Bench"},' ..
  '"from":{"id":%d,"is_bot":false,"first_name":"Bench"},"text":"hi"}}'

function init(args)
  sent = 0
  wraps = 0
  math.randomseed(base + tid)
  -- threads get disjoint update_id ranges of 10^8
  first = base + tid * 100000000
end

function request()
  sent = sent + 1
  local chat = hot
  if hot == 0 then chat = math.random(chats) end
  local body = string.format(fmt, first + sent, sent, chat, chat)
  return wrk.format("POST", path, headers, body)
end

done = report
