--[[ complete: the body of an ack, shared by queue/ack, queue/ackProcessed, queue/skipProcessed and queue/reply.

  A delivery is `id|receipt` (the member of the in-flight set). Each one in flight under that receipt
  leaves Redis, and the next message of its partition is released.
]]
--@include "queue"
--@include "placement"

-- The deliveries named in ARGV from `from` on, `stride` arguments apart (message id, receipt, ...): their
-- in-flight members `id|receipt` and their ids, in order.
local function deliveriesFromArgs(from, stride)
  local members, ids = {}, {}
  for i = from, #ARGV, stride do
    members[#members + 1] = ARGV[i] .. '|' .. ARGV[i + 1]
    ids[#ids + 1] = ARGV[i]
  end
  return members, ids
end

-- Acks `members` (`id|receipt`; `ids` their message ids, in the same order). Returns one result per
-- delivery, REPLY.OK acked or REPLY.STALE (not in flight under that receipt, or named twice: acked once),
-- and how many were acked. Writes nothing when none is in flight.
local function completeDeliveries(k, members, ids)
  local results, current, acked, seen = {}, {}, {}, {}
  if #members == 0 then return results, 0 end
  local scores = redis.call('ZMSCORE', k.inflight, unpack(members))
  for n, member in ipairs(members) do
    if scores[n] and not seen[member] then
      seen[member] = true
      results[n] = REPLY.OK
      current[#current + 1] = member
      acked[#acked + 1] = ids[n]
    else
      results[n] = REPLY.STALE
    end
  end
  if #acked == 0 then return results, 0 end

  redis.call('ZREM', k.inflight, unpack(current))
  -- A message with a partition key keeps a count in `partitions` until it is acked or dead-lettered, so
  -- when that hash does not exist none of these has one, and their records need not be read back and parsed
  -- (the larger part of an ack's cost). Likewise `errors` is touched only when some message has one.
  local recs = redis.call('EXISTS', k.partitions) == 1 and redis.call('HMGET', k.records, unpack(acked)) or {}
  redis.call('HDEL', k.records, unpack(acked))
  if redis.call('EXISTS', k.errors) == 1 then redis.call('HDEL', k.errors, unpack(acked)) end
  redis.call('HDEL', k.liveIds, unpack(acked))
  redis.call('HINCRBY', k.stats, 'acked', #acked)
  local now
  for _, rec in ipairs(recs) do
    local msg = rec and parseRecord(rec)
    if msg and msg.partitionKey ~= '' then
      now = now or nowMs()
      releasePartition(k, msg.partitionKey, now)
    end
  end
  return results, #acked
end
