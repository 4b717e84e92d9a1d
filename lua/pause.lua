--[[ pause: stop (ARGV[1] '1') or restart (ARGV[1] '0') deliveries from a queue, for every process.
  Sends, acks, nacks and reclaims go on while paused; dequeue returns nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] '1' pause, '0' resume
  Returns: 1
  Errors: none
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
if ARGV[1] == '1' then
  redis.call('HSET', k.meta, 'paused', '1')
else
  redis.call('HDEL', k.meta, 'paused')
  wake(k)
end
return 1
