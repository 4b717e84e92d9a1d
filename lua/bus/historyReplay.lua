--[[ bus/historyReplay: copy a range of one type's history into one subscriber's queue, oldest first, as new
  deliveries (patterns, filter and pause state are not consulted: the caller chose the range).
  KEYS[1] bus base key `{prefix:bus/name}`; history and queue keys are derived from it (includes/bus.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] subscriber id  ARGV[4] event type  ARGV[5] first stream position ('-': oldest)
  ARGV[6] last stream position ('+': newest)  ARGV[7] max events
  Returns: the number of events replayed, or -1 when there is no such subscriber (nothing changed)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's count,
  copying nothing again.
]]
--@include "queue"
--@include "placement"
--@include "bus"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local bus = busKeys(KEYS[1])
local subscriberId, eventType = ARGV[3], ARGV[4]
local sub = subscriptionCache(bus).get(subscriberId)
if not sub then return unchanged(REPLY.NO_SUBSCRIBER) end
local entries = redis.call('XRANGE', bus.historyPrefix .. eventType, ARGV[5], ARGV[6], 'COUNT', tonumber(ARGV[7]))
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
return rememberInt(requestKey, #entries)
