--[[ queue/requestCancel: withdraw a request (queue.request) that timed out or whose requester closed.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] message id  ARGV[4] the record as sent (includes/queue.lua)
  Returns: OK when the message was still waiting (ready, waiting for a retry, or behind its partition's
           head) and is removed, as if never sent (`sent` is counted down); STALE when it is in flight or
           already settled: it stays, and its answer will be dropped. Either way its `requests` entry is gone.
  Errors: none. A waiting message is found by its record: in its ready list as sent or with any attempts
  count up to its maxRetries (LREM, O(length of that list): this runs only when a request gives up).
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's result.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end

local k = queueKeys(KEYS[1])
local id, rec = ARGV[3], ARGV[4]
local msg = parseRecord(rec)
if not msg then return unchanged(REPLY.STALE) end
local now = nowMs()

local function fromReady()
  for attempts = 0, msg.maxRetries do
    if redis.call('LREM', k.ready[msg.priority], 1, withAttempts(rec, attempts)) == 1 then return true end
  end
  return false
end

local function fromBacklog()
  if msg.partitionKey == '' then return false end
  local backlog = k.backlogPrefix .. msg.partitionKey
  for _, entry in ipairs(redis.call('LRANGE', backlog, 0, -1)) do
    local bar = string.find(entry, '|', 1, true)
    if bar and string.sub(entry, bar + 1) == rec then
      redis.call('LREM', backlog, 1, entry)
      -- Not the partition's head: the count stays above zero and nothing is released.
      redis.call('HINCRBY', k.partitions, msg.partitionKey, -1)
      return true
    end
  end
  return false
end

local removed = false
if fromReady() then
  removed = true
  releasePartition(k, msg.partitionKey, now)
elseif redis.call('ZREM', k.delayed, id) == 1 then
  removed = true
  redis.call('HDEL', k.records, id)
  releasePartition(k, msg.partitionKey, now)
else
  removed = fromBacklog()
end
local registered = redis.call('ZREM', k.requests, id) == 1
if removed then
  -- A message that waited for a retry has a last error.
  redis.call('HDEL', k.errors, id)
  redis.call('HINCRBY', k.stats, 'sent', -1)
end
if not removed and not registered then return unchanged(REPLY.STALE) end
return rememberInt(requestKey, removed and REPLY.OK or REPLY.STALE)
