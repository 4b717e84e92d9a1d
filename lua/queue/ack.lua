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
-- The fast path: one delivery, nothing to confirm, no partitioned message in the queue (a consumer acking as
-- each handler ends, at low load). It does what completeDeliveries below does for it, before the included
-- fragments are defined (as send.lua's fast path; Lua runs a script's whole text on every call).
if #ARGV == 4 and ARGV[2] == '' and redis.call('EXISTS', KEYS[1] .. QUEUE_KEY_SUFFIXES.partitions) == 0 then
  local base, id = KEYS[1], ARGV[3]
  local requestKey = base .. REQUEST_KEY_SUFFIX .. ARGV[1]
  local prior = redis.call('GET', requestKey)
  if prior then return { tonumber(prior) } end
  local inflight = base .. QUEUE_KEY_SUFFIXES.inflight
  if redis.call('ZREM', inflight, id .. '|' .. ARGV[4]) == 0 then return { REPLY.STALE } end
  redis.call('HDEL', base .. QUEUE_KEY_SUFFIXES.records, id)
  local errors = base .. QUEUE_KEY_SUFFIXES.errors
  if redis.call('EXISTS', errors) == 1 then redis.call('HDEL', errors, id) end
  redis.call('HDEL', base .. QUEUE_KEY_SUFFIXES.liveIds, id)
  redis.call('HINCRBY', base .. QUEUE_KEY_SUFFIXES.stats, 'acked', 1)
  redis.call('SET', requestKey, REPLY.OK, 'PX', REQUEST_TTL_MS)
  return { REPLY.OK }
end

--@include "complete"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local members, ids = deliveriesFromArgs(3, 2)
local results, acked = completeDeliveries(queueKeys(KEYS[1]), members, ids)
if acked == 0 then return unchanged(results) end
return rememberInts(requestKey, results)
