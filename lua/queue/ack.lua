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
--@include "complete"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local members, ids = deliveriesFromArgs(3, 2)
local results, acked = completeDeliveries(queueKeys(KEYS[1]), members, ids)
if acked == 0 then return unchanged(results) end
return rememberInts(requestKey, results)
