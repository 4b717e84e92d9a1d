--[[ send: add a batch of messages; each goes to its ready list, the delayed set or its partition's backlog.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1..] 7 per message: id, priority 1..4, partition key ('' none), delay ms (<= 0 now),
            dedup key ('' none), dedup TTL ms, record (includes/queue.lua)
  Returns: one id per message, in order; for a message whose dedup key is still held, the id of the
           message that took it (nothing is written for that one).
  Errors: none; arguments are validated by the caller (src/queue/queue.ts).
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
-- The clock is read only for a message that needs it (delayed or partitioned).
local now
local ids, sent = {}, 0
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

for i = 1, #ARGV, 7 do
  local id, priority, partitionKey = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local delayMs, dedupKey, rec = tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 6]
  local holder = false
  if dedupKey ~= '' then
    local key = k.dedupPrefix .. dedupKey
    if not redis.call('SET', key, id, 'NX', 'PX', ARGV[i + 5]) then holder = redis.call('GET', key) end
  end
  if holder then
    ids[#ids + 1] = holder
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
return ids
