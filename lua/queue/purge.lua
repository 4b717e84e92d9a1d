--[[ queue/purge: delete dead-lettered messages for good.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] 'ids' (delete ARGV[5..]) or 'oldest' (delete the oldest ARGV[4])  ARGV[4] max messages
  ARGV[5..] ids, with 'ids'
  Returns: the number deleted (ids not in the dead-letter queue are skipped)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's count; a
  repeat of 'oldest' does not delete the next oldest.
]]
--@include "queue"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end

local k = queueKeys(KEYS[1])
local ids = {}
if ARGV[3] == 'ids' then
  for i = 5, #ARGV do
    if redis.call('ZSCORE', k.deadLetter, ARGV[i]) then ids[#ids + 1] = ARGV[i] end
  end
else
  ids = redis.call('ZRANGE', k.deadLetter, 0, tonumber(ARGV[4]) - 1)
end
if #ids == 0 then return unchanged(0) end
chunks(ids, function(...)
  redis.call('ZREM', k.deadLetter, ...)
  redis.call('HDEL', k.records, ...)
  redis.call('HDEL', k.errors, ...)
  redis.call('HDEL', k.liveIds, ...)
end)
return rememberInt(requestKey, #ids)
