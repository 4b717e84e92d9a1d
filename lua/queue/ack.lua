--[[ queue/ack: complete in-flight messages. Each leaves Redis, and the next message of its partition is released.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3..] pairs: message id, receipt
  Returns: one integer per pair: 1 acked, 0 stale (not in flight under that receipt; nothing changed)
  Errors: none; a receipt named twice in one call is acked once
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's results,
  so an ack whose reply was lost reports its messages acked, not stale. (Without the id an ack would still
  act once, since an acked receipt is no longer in flight, but the repeat would answer stale.)
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local k = queueKeys(KEYS[1])
local members = {}
for i = 3, #ARGV, 2 do members[#members + 1] = ARGV[i] .. '|' .. ARGV[i + 1] end
local scores = redis.call('ZMSCORE', k.inflight, unpack(members))

-- A receipt named twice in one batch is acked once; the repeat is stale, as it would be in a later call.
local results, current, ids, seen = {}, {}, {}, {}
for n, member in ipairs(members) do
  if scores[n] and not seen[member] then
    seen[member] = true
    results[n] = REPLY.OK
    current[#current + 1] = member
    ids[#ids + 1] = ARGV[2 * n + 1]
  else
    results[n] = REPLY.STALE
  end
end
if #ids == 0 then return unchanged(results) end

redis.call('ZREM', k.inflight, unpack(current))
-- A message with a partition key keeps a count in `partitions` until it is acked or dead-lettered, so
-- when that hash does not exist none of these has one, and their records need not be read back and parsed
-- (the larger part of an ack's cost). Likewise `errors` is touched only when some message has one.
local recs = redis.call('EXISTS', k.partitions) == 1 and redis.call('HMGET', k.records, unpack(ids)) or {}
redis.call('HDEL', k.records, unpack(ids))
if redis.call('EXISTS', k.errors) == 1 then redis.call('HDEL', k.errors, unpack(ids)) end
redis.call('HDEL', k.liveIds, unpack(ids))
redis.call('HINCRBY', k.stats, 'acked', #ids)
local now
for _, rec in ipairs(recs) do
  local msg = rec and parseRecord(rec)
  if msg and msg.partitionKey ~= '' then
    now = now or nowMs()
    releasePartition(k, msg.partitionKey, now)
  end
end
return rememberInts(requestKey, results)
