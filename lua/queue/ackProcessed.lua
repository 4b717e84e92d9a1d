--[[ queue/ackProcessed: ack in-flight messages whose handler succeeded and mark each one's key processed,
  so that a later delivery of the same key is skipped (queue/skipProcessed): the consumer's idempotency guard.
  KEYS[1] queue base key `{prefix:name}`; the marks are `KEYS[1] .. processedPrefix .. <key>`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] retention ms (a positive integer): how long each mark is kept
  ARGV[4..] triples: message id, receipt, idempotency key
  Returns: one integer per triple: 1 acked, 0 stale (not in flight under that receipt); either way the key
  is marked, since the handler did succeed: a stale receipt means the message was redelivered after its
  visibility timeout, and the mark is what keeps that delivery from running the handler again
  Errors: `ERR ackProcessed: ...` for a retention that is not a positive integer (nothing written)
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's results;
  the marks a repeat would write again are the same keys, so even an unrecognised repeat has one effect.
]]
--@include "complete"
--@include "request"

local retentionMs = tonumber(ARGV[3])
if not retentionMs or retentionMs < 1 or retentionMs % 1 ~= 0 then
  return redis.error_reply('ERR ackProcessed: retention must be a positive integer of ms, got ' .. tostring(ARGV[3]))
end

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local members, ids = deliveriesFromArgs(4, 3)
local results = completeDeliveries(queueKeys(KEYS[1]), members, ids)
local markPrefix = KEYS[1] .. QUEUE_KEY_SUFFIXES.processedPrefix
for i = 4, #ARGV, 3 do redis.call('SET', markPrefix .. ARGV[i + 2], ARGV[i], 'PX', retentionMs) end
return rememberInts(requestKey, results)
