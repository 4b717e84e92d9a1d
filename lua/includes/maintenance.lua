--[[ maintenance: promotion of due delayed messages and reclaim of expired in-flight ones.
  dequeue runs both before it pops, so no background poller is needed; reclaim.lua and promote.lua
  expose them for the scheduler's safety-net jobs.
]]
--@include "queue"
--@include "placement"
--@include "failure"

-- Moves delayed messages to the back of their ready lists, in the order given, as when they fall due.
-- `ids` are members of the delayed set, each once, at most CHUNK of them. Their partitions need nothing:
-- only a partition's head is ever in the delayed set, and it stays the head. Returns how many moved.
local function promoteIds(k, ids, now)
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

-- Moves up to `limit` (at most CHUNK) due messages from the delayed set to the back of their ready lists.
local function promoteDue(k, now, limit)
  -- Everything due at or before `now` (scores carry a fraction of a millisecond, see placement.lua).
  local ids = redis.call('ZRANGEBYSCORE', k.delayed, '-inf', '(' .. (now + 1), 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  return promoteIds(k, ids, now)
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

-- The score of a sorted set's first member (its earliest time), or nil when the set is empty.
local function firstScore(key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
  return first and tonumber(first)
end

-- Promotes and reclaims what is due, looking first at the earliest member of each set: when nothing is due
-- (most calls) that is one command per set instead of a range query and, later, a second look for the
-- wait time. Returns the earliest delayed due time and in-flight deadline left afterwards (nil: none).
local function maintain(k, now, policy)
  local inflightFirst = firstScore(k.inflight)
  if inflightFirst and inflightFirst <= now then
    reclaimExpired(k, now, 100, policy)
    inflightFirst = firstScore(k.inflight)
  end
  -- Looked at after the reclaim, which may have scheduled retries.
  local delayedFirst = firstScore(k.delayed)
  if delayedFirst and delayedFirst < now + 1 then
    promoteDue(k, now, 1000)
    delayedFirst = firstScore(k.delayed)
  end
  return delayedFirst, inflightFirst
end

-- ms until the earlier of two times (nil: none) comes; WAIT_UNKNOWN when there is neither.
local function waitUntilFirst(now, a, b)
  local first = a and b and math.min(a, b) or a or b
  if not first then return REPLY.WAIT_UNKNOWN end
  return math.max(1, math.ceil(first - now))
end
