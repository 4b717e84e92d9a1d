--[[ queue/send: add a batch of messages; each goes to its ready list, the delayed set or its partition's backlog.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3..] 8 per message: id, '1' if the sender chose the id else '0', priority 1..4, partition key
            ('' none), delay ms (<= 0 now), dedup key ('' none), dedup TTL ms, record (includes/queue.lua)
  Returns: one id per message, in order. Nothing is written for a message whose dedup key is still held
           (its reply is the id of the message holding the key) or whose sender-chosen id is still live
           (not yet acked or purged; its reply is that id).
  Errors: none; arguments are validated by the caller (src/queue/validate.ts).
  Repeat: a re-sent or retried call is recognised by its request id (includes/request.lua) and answered with
  the first run's ids, writing nothing: a send whose reply was lost writes its messages once. The reply is
  remembered as '' when every id is the message's own (the usual case), else as the JSON of the ids.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then
  if prior ~= '' then return unchanged(cjson.decode(prior)) end
  local ids = {}
  for i = 3, #ARGV, 8 do ids[#ids + 1] = ARGV[i] end
  return unchanged(ids)
end

local k = queueKeys(KEYS[1])
-- The clock is read only for a message that needs it (delayed or partitioned).
local now
local ids, sent, ownIds = {}, 0, true
-- Plain messages (no delay, no partition) are grouped into one RPUSH per priority; the group is flushed
-- before any other placement so that FIFO within a priority holds inside a batch too.
local pending = { {}, {}, {}, {} }
local function flush()
  for priority = 4, 1, -1 do
    if #pending[priority] > 0 then
      pushReady(k, priority, pending[priority])
      pending[priority] = {}
    end
  end
end

for i = 3, #ARGV, 8 do
  local id, chosen, priority, partitionKey = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local delayMs, dedupKey, rec = tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 7]
  local holder = false
  if dedupKey ~= '' then
    local key = k.dedupPrefix .. dedupKey
    if not redis.call('SET', key, id, 'NX', 'PX', ARGV[i + 6]) then holder = redis.call('GET', key) end
  end
  -- Generated ids (uuid v4) are unique; an id the sender chose may still be in use.
  if not holder and chosen == '1' and redis.call('HSETNX', k.liveIds, id, 1) == 0 then holder = id end
  if holder then
    ids[#ids + 1] = holder
    ownIds = ownIds and holder == id
  else
    ids[#ids + 1] = id
    sent = sent + 1
    if partitionKey == '' and delayMs <= 0 then
      table.insert(pending[priority], rec)
    else
      flush()
      now = now or nowMs()
      placeNew(k, id, priority, partitionKey, now + math.max(delayMs, 0), rec, now)
    end
  end
end
flush()
if sent > 0 then redis.call('HINCRBY', k.stats, 'sent', sent) end
remember(requestKey, ownIds and '' or cjson.encode(ids))
return ids
