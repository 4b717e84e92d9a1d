--[[ bus/unsubscribe: remove a subscriber and its index entries; optionally delete its queue.
  Without dropping, the queue stays so that consumers can drain what was delivered before.
  KEYS[1] bus base key `{prefix:bus/name}`; index and queue keys are derived from it (includes/bus.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] subscriber id  ARGV[4] '1' also delete the subscriber's queue (pending, in-flight and dead events)
  Returns: 1 removed, 0 no such subscriber (nothing changed)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply
  (removed, not "no such subscriber"), without removing a subscription made again after it.
]]
--@include "queue"
--@include "placement"
--@include "bus"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local bus = busKeys(KEYS[1])
local subscriberId = ARGV[3]
local old = redis.call('HGET', bus.subscriptions, subscriberId)
if not old then return unchanged(REPLY.UNKNOWN) end
indexPatterns(bus, subscriberId, old, 'SREM')
redis.call('HDEL', bus.subscriptions, subscriberId)
redis.call('SREM', bus.paused, subscriberId)
if ARGV[4] == '1' then
  local k = subscriberQueueKeys(bus, subscriberId)
  for _, partitionKey in ipairs(redis.call('HKEYS', k.partitions)) do
    redis.call('DEL', k.backlogPrefix .. partitionKey)
  end
  -- Every fixed key of the queue; the `...Prefix` entries name families handled above (bus events
  -- carry no queue dedup keys).
  for name in pairs(QUEUE_KEY_SUFFIXES) do
    if not string.find(name, 'Prefix$') then redis.call('DEL', k[name]) end
  end
end
return rememberInt(requestKey, REPLY.OK)
