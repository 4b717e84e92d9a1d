--[[ queue/reply: ack in-flight request messages (queue.request) and answer each on its requester's reply list.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3..] triples: message id, receipt, the handler's reply as JSON
  Returns: one integer per triple: 1 acked, 0 stale (not in flight under that receipt; nothing changed, no answer)
  Errors: none. Each delivery is acked as by queue/ack; the answer is pushed only while its request still
  waits (includes/respond.lua): a reply to a request that timed out is dropped, and the message acked.
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's results;
  the answer is pushed once.
]]
--@include "queue"
--@include "complete"
--@include "respond"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local k = queueKeys(KEYS[1])
local members, ids = deliveriesFromArgs(3, 3)
local results, acked = completeDeliveries(k, members, ids)
if acked == 0 then return unchanged(results) end
local now
for n, result in ipairs(results) do
  if result == REPLY.OK then
    now = now or nowMs()
    respond(k, ARGV[3 * n], '1', ARGV[3 * n + 2], now)
  end
end
return rememberInts(requestKey, results)
