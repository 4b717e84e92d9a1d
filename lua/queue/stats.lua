--[[ queue/stats: counts per state and the queue's counters. Changes nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  Returns: {ready LOW, ready NORMAL, ready HIGH, ready CRITICAL, in flight, delayed, dead-lettered,
            waiting in partition backlogs, paused 0/1, counter name, value, counter name, value, ...}
  Errors: none
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"

local k = queueKeys(KEYS[1])
local out = {}
for priority = 1, 4 do out[#out + 1] = redis.call('LLEN', k.ready[priority]) end
out[#out + 1] = redis.call('ZCARD', k.inflight)
out[#out + 1] = redis.call('ZCARD', k.delayed)
out[#out + 1] = redis.call('ZCARD', k.deadLetter)
-- Each partition counts its head plus its backlog.
local backlog = 0
local counts = redis.call('HVALS', k.partitions)
for _, count in ipairs(counts) do backlog = backlog + tonumber(count) - 1 end
out[#out + 1] = backlog
out[#out + 1] = redis.call('HGET', k.meta, 'paused') == '1' and 1 or 0
for _, value in ipairs(redis.call('HGETALL', k.stats)) do out[#out + 1] = value end
return out
