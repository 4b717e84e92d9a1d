--[[ complete: the effect of acking in-flight deliveries, shared by ack and reply.
  `members` are their in-flight entries `id|receipt`, each known to be in flight; `ids` their message ids.
]]
--@include "queue"
--@include "placement"

local function complete(k, members, ids)
  redis.call('ZREM', k.inflight, unpack(members))
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
end

-- The in-flight entries of `pairs` (message id, receipt; `stride` arguments apart from ARGV[from]) that are
-- in flight, each once: returns per pair OK or STALE, and the current entries and their ids.
local function currentDeliveries(k, from, stride)
  local members = {}
  for i = from, #ARGV, stride do members[#members + 1] = ARGV[i] .. '|' .. ARGV[i + 1] end
  local scores = redis.call('ZMSCORE', k.inflight, unpack(members))
  -- A receipt named twice in one batch is acked once; the repeat is stale, as it would be in a later call.
  local results, current, ids, seen = {}, {}, {}, {}
  for n, member in ipairs(members) do
    if scores[n] and not seen[member] then
      seen[member] = true
      results[n] = REPLY.OK
      current[#current + 1] = member
      ids[#ids + 1] = ARGV[from + stride * (n - 1)]
    else
      results[n] = REPLY.STALE
    end
  end
  return results, current, ids
end
