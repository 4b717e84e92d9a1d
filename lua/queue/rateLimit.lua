--[[ queue/rateLimit: at most ARGV[3] messages dequeued per window of ARGV[4] ms, across all consumers.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] max per window (0 removes the limit)  ARGV[4] window ms
  Returns: 1
  Errors: none
  Repeat: recognised by the request id (includes/request.lua): a repeat neither resets the current window's
  count nor overrides a limit set after it.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(REPLY.OK) end
local k = queueKeys(KEYS[1])
redis.call('DEL', k.rateCounter)
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', k.meta, 'rateMax', ARGV[3], 'rateWindowMs', ARGV[4])
else
  redis.call('HDEL', k.meta, 'rateMax', 'rateWindowMs')
  wake(k)
end
return rememberInt(requestKey, REPLY.OK)
