--[[ bus/subscribe: register a subscriber, or replace its patterns, filter and maxRetries; index its patterns.
  Exact patterns go to the set of their type, wildcard ones put the subscriber in the wildcard set; the
  index keys are derived from the hash-tagged base in KEYS[1] (includes/bus.lua).
  A replaced subscription keeps its queue (pending events stay) and its paused state.
  KEYS[1] bus base key `{prefix:bus/name}`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] subscriber id  ARGV[4] subscription JSON (includes/bus.lua)
  Returns: 1 new subscriber, 0 replaced
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply (a
  new subscriber is reported new), without replacing a subscription changed after it.
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
if old then indexPatterns(bus, subscriberId, old, 'SREM') end
redis.call('HSET', bus.subscriptions, subscriberId, ARGV[4])
indexPatterns(bus, subscriberId, ARGV[4], 'SADD')
return rememberInt(requestKey, old and REPLY.REPLACED or REPLY.OK)
