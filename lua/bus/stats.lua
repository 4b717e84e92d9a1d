--[[ bus/stats: the bus's counters and every subscription with its state. Changes nothing.
  KEYS[1] bus base key `{prefix:bus/name}`; subscriber queue keys are derived from it (includes/bus.lua)
  Returns: {counter name, value, ..., '', subscriber id, subscription JSON, paused 0/1,
            queue dead-lettered count, queue retried count, ...}
  Errors: none
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"
--@include "placement"
--@include "bus"

local bus = busKeys(KEYS[1])
local out = redis.call('HGETALL', bus.stats)
out[#out + 1] = ''
local subscriptions = redis.call('HGETALL', bus.subscriptions)
for n = 1, #subscriptions, 2 do
  local subscriberId = subscriptions[n]
  local k = subscriberQueueKeys(bus, subscriberId)
  local counters = redis.call('HMGET', k.stats, 'deadLettered', 'retried')
  out[#out + 1] = subscriberId
  out[#out + 1] = subscriptions[n + 1]
  out[#out + 1] = redis.call('SISMEMBER', bus.paused, subscriberId)
  out[#out + 1] = tonumber(counters[1] or '0')
  out[#out + 1] = tonumber(counters[2] or '0')
end
return out
