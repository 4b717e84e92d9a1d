--[[ queue/send: add a batch of messages; each goes to its ready list, the delayed set or its partition's backlog.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3..] 8 per message: id, '1' if the sender chose the id else '0', priority 1..4, partition key
            ('' none), delay ms (<= 0 now), dedup key ('' none), dedup TTL ms, record (includes/queue.lua)
  then, only for a queue with a maxLength, 2 more: maxLength, 'each' or 'all' (see Limit below)
  Returns: one id per message, in order. Nothing is written for a message whose dedup key is still held
           (its reply is the id of the message holding the key) or whose sender-chosen id is still live
           (not yet acked or purged; its reply is that id). The QUEUE_FULL code in place of an id: refused.
  Limit: the messages outstanding (sent + replayed - acked - dead-lettered, from the queue's counters: ready,
  delayed, in flight and partition backlogs) may not pass maxLength. 'each' (coalesced sends): each message
  that fits is written, each that does not is refused; 'all' (sendMany): if the new messages do not all
  fit, every one is refused and nothing is written. A repeat (dedup key held, sender-chosen id live) is
  never new, so it is answered with its id even at the limit. Without the 2 arguments no count is read.
  Errors: none; arguments are validated by the caller (src/queue/validate.ts).
  Repeat: a re-sent or retried call is recognised by its request id (includes/request.lua) and answered with
  the first run's ids, writing nothing: a send whose reply was lost writes its messages once. The reply is
  remembered as '' when every id is the message's own (the usual case), else as the JSON of the ids
  (refusals included). A run that refused and wrote nothing remembers nothing: its repeat is counted again,
  as the same call arriving later would be, and still writes each message at most once.
]]
--@include "queue"
--@include "placement"
--@include "request"

-- Messages end at `last`; a queue with a maxLength adds 2 arguments after them.
local last = #ARGV - (#ARGV - 2) % 8
local requestKey, prior = beginRequest(KEYS[1])
if prior then
  if prior ~= '' then return unchanged(cjson.decode(prior)) end
  local ids = {}
  for i = 3, last, 8 do ids[#ids + 1] = ARGV[i] end
  return unchanged(ids)
end

local k = queueKeys(KEYS[1])
-- With a maxLength: how many new messages still fit (nil: no limit).
local room
if last < #ARGV then
  local c = redis.call('HMGET', k.stats, 'sent', 'replayed', 'acked', 'deadLettered')
  room = tonumber(ARGV[last + 1])
    - ((tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) - (tonumber(c[3]) or 0) - (tonumber(c[4]) or 0))
  if ARGV[last + 2] == 'all' then
    -- Only when the batch might not fit: count its new messages, reading as the writes below would decide.
    if room < (last - 2) / 8 then
      local new, dedupSeen, idSeen = 0, {}, {}
      for i = 3, last, 8 do
        local id, dedupKey, fresh = ARGV[i], ARGV[i + 5], true
        if dedupKey ~= '' then
          if dedupSeen[dedupKey] or redis.call('EXISTS', k.dedupPrefix .. dedupKey) == 1 then fresh = false end
          dedupSeen[dedupKey] = true
        end
        if fresh and ARGV[i + 1] == '1' then
          if idSeen[id] or redis.call('HEXISTS', k.liveIds, id) == 1 then fresh = false end
          idSeen[id] = true
        end
        if fresh then new = new + 1 end
      end
      if new > room then
        local answers = {}
        for i = 3, last, 8 do answers[#answers + 1] = REPLY.QUEUE_FULL end
        return unchanged(answers)
      end
    end
    room = nil
  end
end
-- At the limit a message is answered without writing: the holder's id if it is a repeat, else refused.
local function holderAtLimit(id, chosen, dedupKey)
  local holder = dedupKey ~= '' and redis.call('GET', k.dedupPrefix .. dedupKey)
  if holder then return holder end
  if chosen == '1' and redis.call('HEXISTS', k.liveIds, id) == 1 then return id end
  return REPLY.QUEUE_FULL
end
-- The clock is read only for a message that needs it (delayed or partitioned).
local now
local ids, sent, ownIds, refused = {}, 0, true, 0
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

for i = 3, last, 8 do
  local id, chosen, priority, partitionKey = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local delayMs, dedupKey, rec = tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 7]
  local holder = false
  if room and room <= 0 then
    holder = holderAtLimit(id, chosen, dedupKey)
    if holder == REPLY.QUEUE_FULL then refused = refused + 1 end
  elseif dedupKey ~= '' then
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
    if room then room = room - 1 end
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
if refused > 0 and sent == 0 then return unchanged(ids) end
remember(requestKey, ownIds and '' or cjson.encode(ids))
return ids
