--[[ subscribe: register a subscriber, or replace its patterns, filter and maxRetries; index its patterns.
  Exact patterns go to the set of their type, wildcard ones put the subscriber in the wildcard set; the
  index keys are derived from the hash-tagged base in KEYS[1] (includes/bus.lua).
  A replaced subscription keeps its queue (pending events stay) and its paused state.
  KEYS[1] bus base key `{prefix:bus/name}`
  ARGV[1] subscriber id  ARGV[2] subscription JSON (includes/bus.lua)
  Returns: 1 new subscriber, 0 replaced
  Errors: none
]]
--@include "queue"
--@include "placement"
--@include "bus"

local bus = busKeys(KEYS[1])
local subscriberId = ARGV[1]
local old = redis.call('HGET', bus.subscriptions, subscriberId)
if old then indexPatterns(bus, subscriberId, old, 'SREM') end
redis.call('HSET', bus.subscriptions, subscriberId, ARGV[2])
indexPatterns(bus, subscriberId, ARGV[2], 'SADD')
return old and 0 or 1
