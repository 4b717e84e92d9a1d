--[[ placement: where a message goes when it becomes free to run, and partition hand-over.

  Partitions (as SQS FIFO message groups): the hash `partitions` counts, per partition key, the messages
  not yet acked or dead-lettered. Only the oldest of them (the head) is ever in a ready list, the delayed
  set or in flight; the others wait in the backlog list `backlogPrefix .. key` as `<dueAt>|<record>`.
  Acking or dead-lettering the head releases the next one.
]]
--@include "queue"

-- Leaves one token for idle consumers blocked on the wake list (at most one is ever queued).
local function wake(k)
  if redis.call('LLEN', k.wake) == 0 then redis.call('RPUSH', k.wake, '1') end
end

-- Appends records to the ready list of one priority; wakes idle consumers when the list was empty.
local function pushReady(k, priority, records)
  local key = k['ready' .. priority]
  -- One RPUSH per CHUNK records; the usual single chunk goes without a closure (this is the send path).
  for from = 1, #records, CHUNK do
    local to = math.min(from + CHUNK - 1, #records)
    if redis.call('RPUSH', key, unpack(records, from, to)) == to - from + 1 then wake(k) end
  end
end

-- Delayed scores are dueAt plus a sequence number in 1/1024ths of a millisecond, so that messages due in
-- the same millisecond keep the order they were scheduled in (ties would sort by id). Binary fractions
-- stay exact in a double while dueAt < 2^43 ms (the year 2248); the sequence wraps every 1,024.
local DELAYED_TIE_SCALE = 1024

-- Into the delayed set. Idle consumers sleep until the earliest due time they were told of, so a
-- message that becomes the earliest wakes one of them to learn the new time.
local function schedule(k, id, dueAt, rec)
  local sequence = redis.call('HINCRBY', k.stats, 'scheduled', 1)
  redis.call('ZADD', k.delayed, dueAt + (sequence % DELAYED_TIE_SCALE) / DELAYED_TIE_SCALE, id)
  redis.call('HSET', k.records, id, rec)
  if redis.call('ZRANGE', k.delayed, 0, 0)[1] == id then wake(k) end
end

-- A message free to run: into the delayed set when it is not yet due, else to the back of its ready list.
local function enterQueue(k, id, priority, dueAt, rec, now)
  if dueAt > now then
    schedule(k, id, dueAt, rec)
  elseif redis.call('RPUSH', k['ready' .. priority], rec) == 1 then
    wake(k)
  end
end

-- A new message (send, replay, fan-out): behind the head of its partition if that has one outstanding.
local function placeNew(k, id, priority, partitionKey, dueAt, rec, now)
  if partitionKey ~= '' and redis.call('HINCRBY', k.partitions, partitionKey, 1) > 1 then
    redis.call('RPUSH', k.backlogPrefix .. partitionKey, dueAt .. '|' .. rec)
    return
  end
  enterQueue(k, id, priority, dueAt, rec, now)
end

-- DLQ scores are failedAt * 1000 + a sequence number, so that failures within one millisecond keep
-- their order (ZSET ties would sort by id); still an exact integer in a double until the year 2255.
local DEAD_LETTER_SCALE = 1000

-- An id for a record whose own id cannot be read; unique within the queue.
local function corruptId(k)
  return 'corrupt:' .. redis.call('HINCRBY', k.stats, 'corrupt', 1)
end

local function deadLetter(k, id, rec, reason, now)
  local sequence = redis.call('HINCRBY', k.stats, 'deadLettered', 1)
  redis.call('ZADD', k.deadLetter, now * DEAD_LETTER_SCALE + sequence % DEAD_LETTER_SCALE, id)
  redis.call('HSET', k.records, id, rec)
  redis.call('HSET', k.errors, id, reason)
end

-- The head of a partition was acked or dead-lettered: the next message of the partition may run.
local function releasePartition(k, partitionKey, now)
  if partitionKey == '' then return end
  local backlog = k.backlogPrefix .. partitionKey
  while true do
    if redis.call('HINCRBY', k.partitions, partitionKey, -1) <= 0 then
      redis.call('HDEL', k.partitions, partitionKey)
      return
    end
    local entry = redis.call('LPOP', backlog)
    if not entry then
      -- The count and the backlog disagree (keys deleted by hand): the backlog is the truth.
      redis.call('HDEL', k.partitions, partitionKey)
      return
    end
    local dueAt, rec = string.match(entry, '^(%d+)|(.*)$')
    local msg = rec and parseRecord(rec)
    if msg then
      enterQueue(k, msg.id, msg.priority, tonumber(dueAt), rec, now)
      return
    end
    -- A corrupt backlog entry is dead-lettered and the one after it released instead.
    deadLetter(k, corruptId(k), entry, 'corrupt record in partition backlog of ' .. partitionKey, now)
  end
end
