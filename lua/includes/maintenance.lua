--[[ maintenance: promotion of due delayed messages and reclaim of expired in-flight ones.
  dequeue runs both before it pops, so no background poller is needed; reclaim.lua and promote.lua
  expose them for the scheduler's safety-net jobs.
]]
--@include "queue"
--@include "placement"
--@include "failure"

-- Moves up to `limit` due messages from the delayed set to the back of their ready lists.
local function promoteDue(k, now, limit)
  -- Everything due at or before `now` (scores carry a fraction of a millisecond, see placement.lua).
  local ids = redis.call('ZRANGEBYSCORE', k.delayed, '-inf', '(' .. (now + 1), 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local recs = redis.call('HMGET', k.records, unpack(ids))
  local ready, moved = { {}, {}, {}, {} }, {}
  for i, id in ipairs(ids) do
    local rec = recs[i]
    local msg = rec and parseRecord(rec)
    if msg then
      table.insert(ready[msg.priority], rec)
      moved[#moved + 1] = id
    elseif rec then
      deadLetter(k, id, rec, 'corrupt record in delayed set', now)
    end
  end
  redis.call('ZREM', k.delayed, unpack(ids))
  if #moved > 0 then redis.call('HDEL', k.records, unpack(moved)) end
  for priority = 4, 1, -1 do pushReady(k, priority, ready[priority]) end
  return #moved
end

-- Fails up to `limit` in-flight messages whose visibility deadline has passed (their consumer died or
-- stalled): each counts as a failed attempt, exactly as a nack with retry.
local function reclaimExpired(k, now, limit, policy)
  local members = redis.call('ZRANGEBYSCORE', k.inflight, '-inf', now, 'LIMIT', 0, limit)
  if #members == 0 then return 0 end
  -- Parse everything before the first write: Redis does not roll back a script that fails halfway.
  local expired = {}
  for _, member in ipairs(members) do
    local id, receipt = string.match(member, '^(.+)|(%d+)$')
    if id then expired[#expired + 1] = { id = id, receipt = receipt } end
  end
  redis.call('ZREM', k.inflight, unpack(members))
  for _, entry in ipairs(expired) do
    local rec = redis.call('HGET', k.records, entry.id)
    if rec then
      failMessage(k, entry.id, rec, 'visibility timeout expired (receipt ' .. entry.receipt .. ')', true, -1, now, policy)
    end
  end
  redis.call('HINCRBY', k.stats, 'reclaimed', #members)
  return #members
end

-- ms until the next delayed message is due or in-flight deadline passes; WAIT_UNKNOWN when there is neither.
local function nextWakeMs(k, now)
  local wait = REPLY.WAIT_UNKNOWN
  for _, key in ipairs({ k.delayed, k.inflight }) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then
      local ms = math.max(1, math.ceil(tonumber(first[2]) - now))
      if wait < 0 or ms < wait then wait = ms end
    end
  end
  return wait
end
