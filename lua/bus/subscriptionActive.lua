--[[ bus/subscriptionActive: pause a subscriber (publish skips it: events published meanwhile are not
  delivered to it) or resume it. Its queue and consumers are untouched.
  KEYS[1] bus base key `{prefix:bus/name}`; every other key is derived from it (includes/bus.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] subscriber id  ARGV[4] '1' active, '0' paused
  Returns: 1 done, 0 no such subscriber (nothing changed)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua): a pause re-sent after a later resume does
  not pause the subscriber again.
]]
--@include "queue"
--@include "placement"
--@include "bus"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local bus = busKeys(KEYS[1])
local subscriberId = ARGV[3]
if redis.call('HEXISTS', bus.subscriptions, subscriberId) == 0 then return unchanged(REPLY.UNKNOWN) end
if ARGV[4] == '1' then
  redis.call('SREM', bus.paused, subscriberId)
else
  redis.call('SADD', bus.paused, subscriberId)
end
return rememberInt(requestKey, REPLY.OK)
