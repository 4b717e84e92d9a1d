--[[ rateLimit: at most ARGV[1] messages dequeued per window of ARGV[2] ms, across all consumers.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] max per window (0 removes the limit)  ARGV[2] window ms
  Returns: 1
  Errors: none
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
redis.call('DEL', k.rateCounter)
if tonumber(ARGV[1]) > 0 then
  redis.call('HSET', k.meta, 'rateMax', ARGV[1], 'rateWindowMs', ARGV[2])
else
  redis.call('HDEL', k.meta, 'rateMax', 'rateWindowMs')
  wake(k)
end
return 1
