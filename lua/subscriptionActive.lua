--[[ subscriptionActive: pause a subscriber (publish skips it: events published meanwhile are not
  delivered to it) or resume it. Its queue and consumers are untouched.
  KEYS[1] bus base key `{prefix:bus/name}`; every other key is derived from it (includes/bus.lua)
  ARGV[1] subscriber id  ARGV[2] '1' active, '0' paused
  Returns: 1 done, 0 no such subscriber (nothing changed)
  Errors: none
]]
--@include "queue"
--@include "placement"
--@include "bus"

local bus = busKeys(KEYS[1])
local subscriberId = ARGV[1]
if redis.call('HEXISTS', bus.subscriptions, subscriberId) == 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('SREM', bus.paused, subscriberId)
else
  redis.call('SADD', bus.paused, subscriberId)
end
return 1
