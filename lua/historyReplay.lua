--[[ historyReplay: copy a range of one type's history into one subscriber's queue, oldest first, as new
  deliveries (patterns, filter and pause state are not consulted: the caller chose the range).
  KEYS[1] bus base key `{prefix:bus/name}`; history and queue keys are derived from it (includes/bus.lua)
  ARGV[1] subscriber id  ARGV[2] event type  ARGV[3] first stream position ('-': oldest)
  ARGV[4] last stream position ('+': newest)  ARGV[5] max events
  Returns: the number of events replayed, or -1 when there is no such subscriber (nothing changed)
  Errors: none
]]
--@include "queue"
--@include "placement"
--@include "bus"

local bus = busKeys(KEYS[1])
local subscriberId, eventType = ARGV[1], ARGV[2]
local sub = subscriptionCache(bus).get(subscriberId)
if not sub then return -1 end
local entries = redis.call('XRANGE', bus.historyPrefix .. eventType, ARGV[3], ARGV[4], 'COUNT', tonumber(ARGV[5]))
local now = nowMs()
local out = deliveries(bus, now)
for _, entry in ipairs(entries) do
  local fields = {}
  local list = entry[2]
  for n = 1, #list, 2 do fields[list[n]] = list[n + 1] end
  local sequence = redis.call('INCR', bus.sequence)
  local messageId = fields.id .. ':' .. sequence
  out.add(subscriberId, messageId, fields.pk, eventRecord(messageId, sub.maxRetries, now, eventType, fields.pk, fields.event))
end
out.flush()
if #entries > 0 then redis.call('HINCRBY', bus.stats, 'replayed', #entries) end
return #entries
