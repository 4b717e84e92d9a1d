--[[ lock/extend: give a held lock a fresh TTL, only for its current holder.
  Also extends the scheduler's run locks, which have the same shape (a token with a TTL).
  KEYS[1] lock key: the holder's token, expiring with the lock
  ARGV[1] token  ARGV[2] TTL ms from now
  Returns: OK extended; STALE not held under this token (expired, released or taken by another): nothing changed
  Repeat: naturally idempotent: a repeat extends the TTL again from its own arrival, which the holder asked
  for anyway, and a repeat that arrives after the lease ended answers STALE, as it should. No request id.
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return REPLY.OK
end
return REPLY.STALE
