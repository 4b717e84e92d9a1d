--[[ bus/publish: accept a batch of events; each is appended to its type's capped history and copied into the
  queue of every active subscriber whose patterns and filter match it.
  Candidates: the exact-type index set of the event's type, plus the subscribers with a wildcard pattern;
  no other subscription is read. Subscriber queues, history streams and index sets are derived from the
  hash-tagged base in KEYS[1] (includes/bus.lua), so every key is in its slot.
  KEYS[1] bus base key `{prefix:bus/name}`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] options JSON {historyLimit (0: keep none), dedupMs (0: no deduplication)}
  ARGV[4..] 4 per event: event id, type, partition key ('' none), event JSON
  Returns: one integer per event, in order: the number of subscribers that received it, or -1 when its id
           was published within the deduplication window (nothing is written for it but the duplicates counter)
  Errors: none; arguments are validated by the caller (src/events/validate.ts).
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's counts,
  delivering nothing again, with deduplication on or off: a publisher whose reply was lost is told how
  many subscribers received its events, not that they were duplicates. (Deduplication by event id is a
  separate matter: it refuses a different call that publishes an id again.)
]]
--@include "queue"
--@include "placement"
--@include "bus"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local bus = busKeys(KEYS[1])
local options = cjson.decode(ARGV[3])
local now = nowMs()
local subscriptions = subscriptionCache(bus)
local wildcard = redis.call('SMEMBERS', bus.wildcard)
subscriptions.load(wildcard)
local paused = {}
for _, subscriberId in ipairs(redis.call('SMEMBERS', bus.paused)) do paused[subscriberId] = true end
local exactByType = {}
local out = deliveries(bus, now)

local results, published, delivered = {}, 0, 0
for i = 4, #ARGV, 4 do
  local eventId, eventType, partitionKey, eventJson = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local fresh = options.dedupMs == 0
    or redis.call('SET', bus.dedupPrefix .. eventId, '1', 'NX', 'PX', options.dedupMs)
  if not fresh then
    results[#results + 1] = REPLY.DUPLICATE
  else
    published = published + 1
    local sequence = redis.call('INCR', bus.sequence)
    if options.historyLimit > 0 then
      redis.call('XADD', bus.historyPrefix .. eventType, 'MAXLEN', options.historyLimit, '*',
        'id', eventId, 'pk', partitionKey, 'event', eventJson)
    end
    local typeWords = splitWords(eventType)
    local messageId = eventId .. ':' .. sequence
    local event -- decoded only when a candidate has a filter; false when it does not decode (too deep)
    local records = {} -- by maxRetries: subscribers with the same setting share one record string
    local seen, count = {}, 0
    local function offer(subscriberId)
      if seen[subscriberId] or paused[subscriberId] then return end
      seen[subscriberId] = true
      local sub = subscriptions.get(subscriberId)
      if not sub then return end
      if not matchesAnyPattern(sub, typeWords) then return end
      if sub.filter then
        if event == nil then
          local ok, decoded = pcall(cjson.decode, eventJson)
          event = ok and decoded or false
        end
        if not (event and passesFilter(sub.filter, event)) then return end
      end
      local rec = records[sub.maxRetries]
      if not rec then
        rec = eventRecord(messageId, sub.maxRetries, now, eventType, partitionKey, eventJson)
        records[sub.maxRetries] = rec
      end
      out.add(subscriberId, messageId, partitionKey, rec)
      count = count + 1
    end
    local exact = exactByType[eventType]
    if not exact then
      exact = redis.call('SMEMBERS', bus.exactPrefix .. eventType)
      exactByType[eventType] = exact
      subscriptions.load(exact)
    end
    for _, subscriberId in ipairs(exact) do offer(subscriberId) end
    for _, subscriberId in ipairs(wildcard) do offer(subscriberId) end
    delivered = delivered + count
    results[#results + 1] = count
  end
end
out.flush()
if published > 0 then
  redis.call('HINCRBY', bus.stats, 'published', published)
  redis.call('HINCRBY', bus.stats, 'delivered', delivered)
end
if published < #results then redis.call('HINCRBY', bus.stats, 'duplicates', #results - published) end
-- Remembered even when every event was a duplicate: the duplicates counter was written.
return rememberInts(requestKey, results)
