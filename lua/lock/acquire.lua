--[[ lock/acquire: take a free lock for a TTL and hand out the next fencing token.
  KEYS[1] lock key `{prefix:lock/<name>}`: the holder's token, expiring with the lock
  KEYS[2] the lock's record `{prefix:lock/<name>}:fence` (same hash tag), a hash that never expires:
          n, the fence counter (so fences only grow); released, the token that released the lock, until
          the next acquisition
  ARGV[1] token of the new holder, generated for this acquire call (`<holder>#<random UUID>`, opaque here:
          locks.status reads the holder part)  ARGV[2] TTL ms
  Returns: {ACQUIRED, fence} held under ARGV[1], fence strictly greater than any earlier one of this lock;
           {HELD, ms} held by another holder, ms until its TTL runs out (-1: no TTL)
  Repeat: recognised by the token: when the lock is still held under ARGV[1], this call (or its first run,
  whose reply was lost) took it, and the answer is the same lock and fence, with no second fence. Once the
  lease has ended the token proves nothing, so a late repeat acquires afresh or answers HELD, as a new call
  would: it never reports a lock its caller does not hold. No request id, and nothing remembered.
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return { REPLY.ACQUIRED, tonumber(redis.call('HGET', KEYS[2], 'n')) or 0 }
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- A new holder: a release repeated from now on is of an earlier lease, and is refused (lock/release).
  redis.call('HDEL', KEYS[2], 'released')
  return { REPLY.ACQUIRED, redis.call('HINCRBY', KEYS[2], 'n', 1) }
end
return { REPLY.HELD, redis.call('PTTL', KEYS[1]) }
