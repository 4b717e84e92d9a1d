--[[ queue/dequeue: hand up to ARGV[3] ready messages, highest priority first, FIFO within one, to a consumer.
  Before popping it reclaims expired in-flight messages and promotes due delayed ones, so neither needs
  a background poller. Partitions need no work here: only a partition's head is ever in a ready list.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] max messages (1..1000)  ARGV[4] visibility ms  ARGV[5] retry policy `<baseMs> <capMs> <jitter>`
  ARGV[6] random seed (for backoff jitter of reclaimed messages; includes/failure.lua)
  Returns: {waitMs, firstReceipt, record, record, ...}
    With messages: the n-th record's receipt is firstReceipt + n - 1; each record's id is now in flight
    as `id|receipt` until now + visibility. waitMs is 0 when the batch is full (more may be ready), else,
    the ready lists having run dry, as without messages (the new deliveries' deadline counted).
    Without: firstReceipt 0 and waitMs = ms until something may become deliverable (next delayed message
    due or in-flight deadline), the ms left in the rate-limit window, or -1 (paused, or nothing scheduled).
    A repeated call may answer '' in place of a record: that delivery is no longer in flight under its
    receipt (its visibility deadline passed before the repeat arrived).
  Errors: none; a record that does not parse is dead-lettered with the reason, never delivered.
  Repeat: recognised by the request id (includes/request.lua). A call that delivered messages remembers its
  first receipt and their ids; the repeat hands the same deliveries back, as they are now in flight, and
  takes nothing new. So a dequeue whose reply was lost strands nothing: its caller gets the messages it
  took. A call that delivered nothing remembers nothing; its repeat simply looks again.
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"
--@include "request"

local k = queueKeys(KEYS[1])
local requestKey, prior = beginRequest(KEYS[1])
if prior then
  local first, rest = string.match(prior, '^(%d+)|(.*)$')
  local out = { 0, tonumber(first) }
  local receipt = tonumber(first)
  for id in string.gmatch(rest, '[^|]+') do
    local rec = redis.call('ZSCORE', k.inflight, id .. '|' .. string.format('%.0f', receipt))
      and redis.call('HGET', k.records, id)
    out[#out + 1] = rec or ''
    receipt = receipt + 1
  end
  return unchanged(out)
end

local want, visibility = tonumber(ARGV[3]), tonumber(ARGV[4])
local policy = retryPolicy(ARGV[5], ARGV[6])
local now = nowMs()

local delayedFirst, inflightFirst = maintain(k, now, policy)

local meta = redis.call('HMGET', k.meta, 'paused', 'rateMax', 'rateWindowMs')
if meta[1] == '1' then return unchanged({ REPLY.WAIT_UNKNOWN, REPLY.NO_DELIVERY }) end
if meta[2] then
  local left = tonumber(meta[2]) - tonumber(redis.call('GET', k.rateCounter) or '0')
  if left <= 0 then return unchanged({ math.max(1, redis.call('PTTL', k.rateCounter)), REPLY.NO_DELIVERY }) end
  if left < want then want = left end
end

-- LMPOP takes from the first non-empty ready list, highest priority first: one command for the usual batch
-- (and none more to learn that all four are empty), where LPOP took one per list.
local popped = {}
while #popped < want do
  local got = redis.call('LMPOP', 4, k.ready4, k.ready3, k.ready2, k.ready1, 'LEFT', 'COUNT', want - #popped)
  if not got then break end
  for _, rec in ipairs(got[2]) do popped[#popped + 1] = rec end
end
if #popped == 0 then return unchanged({ waitUntilFirst(now, delayedFirst, inflightFirst), REPLY.NO_DELIVERY }) end

local good, ids = {}, {}
for _, rec in ipairs(popped) do
  local id = string.match(rec, RECORD_ID)
  if id then
    good[#good + 1] = rec
    ids[#ids + 1] = id
  else
    deadLetter(k, corruptId(k), rec, 'corrupt record: its header does not parse', now)
  end
end
if #good == 0 then return unchanged({ 0, REPLY.NO_DELIVERY }) end

local last = redis.call('HINCRBY', k.stats, 'delivered', #good)
local first = last - #good + 1
local deadline = now + visibility
local scored, stored = {}, {}
for n, id in ipairs(ids) do
  scored[#scored + 1] = deadline
  scored[#scored + 1] = id .. '|' .. (first + n - 1)
  stored[#stored + 1] = id
  stored[#stored + 1] = good[n]
end
redis.call('ZADD', k.inflight, unpack(scored))
redis.call('HSET', k.records, unpack(stored))
if meta[2] then
  redis.call('SET', k.rateCounter, 0, 'PX', meta[3], 'NX')
  redis.call('INCRBY', k.rateCounter, #good)
end
-- A full batch suggests more is ready: pass the wake-up on to the next idle consumer.
if #popped == want then wake(k) end
remember(requestKey, string.format('%.0f', first) .. '|' .. table.concat(ids, '|'))

-- The ready lists ran dry before the batch was full: say how long nothing can become deliverable (as an
-- empty call would), so that the consumer blocks at once instead of asking again. 0: more may be ready.
local wait = 0
if #popped < want then
  local ownDeadline = now + visibility
  wait = waitUntilFirst(now, delayedFirst, inflightFirst and math.min(inflightFirst, ownDeadline) or ownDeadline)
end
local out = { wait, first }
for _, rec in ipairs(good) do out[#out + 1] = rec end
return out
