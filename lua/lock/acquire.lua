--[[ lock/acquire: take a free lock for a TTL and hand out the next fencing token.
  KEYS[1] lock key `{prefix:lock/<name>}`: the holder's token, expiring with the lock
  KEYS[2] fence counter `{prefix:lock/<name>}:fence` (same hash tag); never expires, so fences only grow
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] token of the new holder  ARGV[4] TTL ms
  Returns: {1, fence} acquired, fence strictly greater than any earlier one of this lock;
           {0, ms} held by another holder, ms until its TTL runs out (-1: no TTL)
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply: an
  acquire whose reply was lost returns the lock it took, with its fence, and takes no second fence.
]]
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then
  return rememberInts(requestKey, { REPLY.ACQUIRED, redis.call('INCR', KEYS[2]) })
end
return unchanged({ REPLY.HELD, redis.call('PTTL', KEYS[1]) })
