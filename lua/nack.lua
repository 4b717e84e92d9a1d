--[[ nack: fail in-flight messages: retry after a backoff, dead-letter, or hand back untouched.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] retry policy JSON {baseMs, capMs, jitter}  ARGV[2] random seed (backoff jitter)
  ARGV[3..] 5 per message: id, receipt, mode, delay ms, reason
    mode 'retry': one failed attempt; to the delayed set after delay ms (< 0: the policy's backoff) while
                  attempts <= maxRetries, else to the dead-letter queue
    mode 'dead':  one failed attempt, straight to the dead-letter queue
    mode 'release': back to the front of its ready list, attempts unchanged (consumer shutdown)
  Returns: one integer per message: 0 stale receipt (nothing changed), 1 retried, 2 dead-lettered, 3 released
  Errors: none; released messages keep their order at the front of their ready list
]]
--@include "queue"
--@include "placement"
--@include "failure"

local k = queueKeys(KEYS[1])
local policy = cjson.decode(ARGV[1])
math.randomseed(tonumber(ARGV[2]))
local now = nowMs()
local OUTCOME = { retried = 1, dead = 2 }

local results = {}
local released = { {}, {}, {}, {} }
for i = 3, #ARGV, 5 do
  local id, mode, delayMs, reason = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  local outcome = 0
  if redis.call('ZREM', k.inflight, id .. '|' .. ARGV[i + 1]) == 1 then
    local rec = redis.call('HGET', k.records, id)
    local msg = rec and parseRecord(rec)
    if mode == 'release' and msg then
      redis.call('HDEL', k.records, id)
      table.insert(released[msg.priority], rec)
      outcome = 3
    elseif rec then
      outcome = OUTCOME[failMessage(k, id, rec, reason, mode == 'retry', delayMs, now, policy)]
    end
  end
  results[#results + 1] = outcome
end
-- LPUSH puts its last argument first: push in reverse so the released keep their order at the front.
for priority = 4, 1, -1 do
  local records = released[priority]
  if #records > 0 then
    local reversed = {}
    for n = #records, 1, -1 do reversed[#reversed + 1] = records[n] end
    chunks(reversed, function(...) redis.call('LPUSH', k['ready' .. priority], ...) end)
    wake(k)
  end
end
return results
