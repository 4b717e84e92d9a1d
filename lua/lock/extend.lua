--[[ lock/extend: give a held lock a fresh TTL, only for its current holder.
  Also extends the scheduler's run locks, which have the same shape (a token with a TTL).
  KEYS[1] lock key: the holder's token, expiring with the lock
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] token  ARGV[4] TTL ms from now
  Returns: 1 extended; 0 not held under this token (expired, released or taken by another): nothing changed
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply,
  without extending again.
]]
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
if redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return rememberInt(requestKey, REPLY.OK)
end
return unchanged(REPLY.STALE)
