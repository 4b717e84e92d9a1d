--[[ lockAcquire: take a free lock for a TTL and hand out the next fencing token.
  KEYS[1] lock key `{prefix:lock/<name>}`: the holder's token, expiring with the lock
  KEYS[2] fence counter `{prefix:lock/<name>}:fence` (same hash tag); never expires, so fences only grow
  ARGV[1] token of the new holder  ARGV[2] TTL ms
  Returns: {1, fence} acquired, fence strictly greater than any earlier one of this lock;
           {0, ms} held by another holder, ms until its TTL runs out (-1: no TTL)
]]

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return { 1, redis.call('INCR', KEYS[2]) }
end
return { 0, redis.call('PTTL', KEYS[1]) }
