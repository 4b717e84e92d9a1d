--[[ purge: delete dead-lettered messages for good.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] 'ids' (delete ARGV[3..]) or 'oldest' (delete the oldest ARGV[2])  ARGV[2] max messages
  ARGV[3..] ids, with 'ids'
  Returns: the number deleted (ids not in the dead-letter queue are skipped)
  Errors: none
]]
--@include "queue"

local k = queueKeys(KEYS[1])
local ids = {}
if ARGV[1] == 'ids' then
  for i = 3, #ARGV do
    if redis.call('ZSCORE', k.deadLetter, ARGV[i]) then ids[#ids + 1] = ARGV[i] end
  end
else
  ids = redis.call('ZRANGE', k.deadLetter, 0, tonumber(ARGV[2]) - 1)
end
if #ids == 0 then return 0 end
chunks(ids, function(...)
  redis.call('ZREM', k.deadLetter, ...)
  redis.call('HDEL', k.records, ...)
  redis.call('HDEL', k.errors, ...)
  redis.call('HDEL', k.liveIds, ...)
end)
return #ids
