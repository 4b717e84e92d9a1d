--[[ queue/replay: move dead-lettered messages back to PENDING with their attempts reset to 0.
  A partitioned message re-enters its partition at the back, as a new send would.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] 'ids' (replay ARGV[5..]) or 'oldest' (replay the oldest ARGV[4])  ARGV[4] max messages
  ARGV[5..] ids, with 'ids'
  Returns: the ids replayed (ids not in the dead-letter queue, or whose record is corrupt, are skipped)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's ids; a
  repeat of 'oldest' does not replay the next oldest.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(cjson.decode(prior)) end

local k = queueKeys(KEYS[1])
local ids = {}
if ARGV[3] == 'ids' then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', k.deadLetter, 0, tonumber(ARGV[4]) - 1)
end

local now = nowMs()
local replayed = {}
for _, id in ipairs(ids) do
  local rec = redis.call('ZSCORE', k.deadLetter, id) and redis.call('HGET', k.records, id)
  local msg = rec and parseRecord(rec)
  if msg then
    redis.call('ZREM', k.deadLetter, id)
    redis.call('HDEL', k.records, id)
    redis.call('HDEL', k.errors, id)
    placeNew(k, id, msg.priority, msg.partitionKey, now, withAttempts(rec, 0), now)
    replayed[#replayed + 1] = id
  end
end
if #replayed > 0 then redis.call('HINCRBY', k.stats, 'replayed', #replayed) end
if #replayed == 0 then return unchanged(replayed) end
remember(requestKey, cjson.encode(replayed))
return replayed
