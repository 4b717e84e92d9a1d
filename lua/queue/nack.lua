--[[ queue/nack: fail in-flight messages: retry after a backoff, dead-letter, or hand back untouched.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] retry policy `<baseMs> <capMs> <jitter>`  ARGV[4] random seed (backoff jitter; includes/failure.lua)
  ARGV[5..] 5 per message: id, receipt, mode, delay ms, reason
    mode 'retry': one failed attempt; to the delayed set after delay ms (< 0: the policy's backoff) while
                  attempts <= maxRetries, else to the dead-letter queue
    mode 'dead':  one failed attempt, straight to the dead-letter queue
    mode 'release': back to the front of its ready list, attempts unchanged (consumer shutdown)
  Returns: one integer per message: STALE receipt (nothing changed; also for an in-flight entry whose record
           was deleted by hand, which is dropped), RETRIED, DEAD_LETTERED, RELEASED
  Errors: none; released messages keep their order at the front of their ready list
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's outcomes;
  the attempt is counted once. (Without the id the receipt alone would refuse the repeat as stale.)
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local k = queueKeys(KEYS[1])
local policy = retryPolicy(ARGV[3], ARGV[4])
local now = nowMs()
local OUTCOME = { retried = REPLY.RETRIED, dead = REPLY.DEAD_LETTERED }

local results, changed = {}, false
local released = { {}, {}, {}, {} }
for i = 5, #ARGV, 5 do
  local id, mode, delayMs, reason = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  local outcome = REPLY.STALE
  if redis.call('ZREM', k.inflight, id .. '|' .. ARGV[i + 1]) == 1 then
    local rec = redis.call('HGET', k.records, id)
    local msg = rec and parseRecord(rec)
    if mode == 'release' and msg then
      redis.call('HDEL', k.records, id)
      table.insert(released[msg.priority], rec)
      outcome = REPLY.RELEASED
    elseif rec then
      outcome = OUTCOME[failMessage(k, id, rec, reason, mode == 'retry', delayMs, now, policy)]
    end
  end
  results[#results + 1] = outcome
  changed = changed or outcome ~= REPLY.STALE
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
if not changed then return unchanged(results) end
return rememberInts(requestKey, results)
