--[[ lock/release: free a lock, only for its current holder. The fence counter stays.
  KEYS[1] lock key: the holder's token, expiring with the lock
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] token
  Returns: 1 released; 0 not held under this token (expired, released or taken by another): nothing changed
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply: a
  release whose reply was lost reports the lock released, not "not held".
]]
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
if redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('DEL', KEYS[1])
  return rememberInt(requestKey, REPLY.OK)
end
return unchanged(REPLY.STALE)
