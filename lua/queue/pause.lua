--[[ queue/pause: stop (ARGV[3] '1') or restart (ARGV[3] '0') deliveries from a queue, for every process.
  Sends, acks, nacks and reclaims go on while paused; dequeue returns nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] '1' pause, '0' resume
  Returns: 1
  Errors: none
  Repeat: recognised by the request id (includes/request.lua): a pause re-sent after a later resume does
  not pause the queue again.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(REPLY.OK) end
local k = queueKeys(KEYS[1])
if ARGV[3] == '1' then
  redis.call('HSET', k.meta, 'paused', '1')
else
  redis.call('HDEL', k.meta, 'paused')
  wake(k)
end
return rememberInt(requestKey, REPLY.OK)
