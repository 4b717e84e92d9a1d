--[[ queue/skipProcessed: of a batch just delivered, ack the deliveries whose key is marked processed
  (queue/ackProcessed), so that their handler does not run again: the consumer's idempotency guard.
  KEYS[1] queue base key `{prefix:name}`; the marks are `KEYS[1] .. processedPrefix .. <key>`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3..] triples: message id, receipt, idempotency key
  Returns: one integer per triple: 1 marked and acked (skip it), 0 marked but not in flight under that
  receipt (nothing changed; skip it too), -1 not marked (run its handler)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's results,
  so a delivery acked by a run whose reply was lost is reported skipped, not stale. A run that acked
  nothing is not remembered: its repeat reads the marks again, as a later call would.
]]
--@include "complete"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local markPrefix = KEYS[1] .. QUEUE_KEY_SUFFIXES.processedPrefix
local results, members, ids, at = {}, {}, {}, {}
for i = 3, #ARGV, 3 do
  local n = #results + 1
  if redis.call('EXISTS', markPrefix .. ARGV[i + 2]) == 1 then
    members[#members + 1] = ARGV[i] .. '|' .. ARGV[i + 1]
    ids[#ids + 1] = ARGV[i]
    at[#at + 1] = n
    results[n] = REPLY.STALE
  else
    results[n] = REPLY.UNPROCESSED
  end
end
local acks, acked = completeDeliveries(queueKeys(KEYS[1]), members, ids)
for m, n in ipairs(at) do results[n] = acks[m] end
if acked == 0 then return unchanged(results) end
return rememberInts(requestKey, results)
