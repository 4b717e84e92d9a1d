--[[ queue/stats: counts per state and the queue's counters. Changes nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  Returns: {ready LOW, ready NORMAL, ready HIGH, ready CRITICAL, in flight, delayed, dead-lettered,
            waiting in partition backlogs, paused 0/1, ms the oldest ready message has been ready (-1 none),
            rate limit max ('' none), rate limit window ms ('' none), consumers present (queue/presence.lua),
            counter name, value, ...}
  The oldest ready message is the oldest head of the four ready lists, counted from the runAt it was sent with
  (a delayed message) or else its createdAt (the sender's clock), to Redis's clock; a retry keeps both.
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
local meta = redis.call('HMGET', k.meta, 'paused', 'rateMax', 'rateWindowMs')
out[#out + 1] = meta[1] == '1' and 1 or 0
local oldest
for priority = 1, 4 do
  local head = redis.call('LINDEX', k.ready[priority], 0)
  local createdAt, runAt
  if head then createdAt, runAt = string.match(head, '^[^|]+|[1-4]|%d+|%d+|(%d+)|(%d*)|') end
  local since = createdAt and tonumber(runAt ~= '' and runAt or createdAt)
  if since and (not oldest or since < oldest) then oldest = since end
end
local now = nowMs()
out[#out + 1] = oldest and math.max(0, now - oldest) or -1
out[#out + 1] = meta[2] or ''
out[#out + 1] = meta[3] or ''
out[#out + 1] = redis.call('ZCOUNT', k.consumers, '(' .. now, '+inf')
for _, value in ipairs(redis.call('HGETALL', k.stats)) do out[#out + 1] = value end
return out
