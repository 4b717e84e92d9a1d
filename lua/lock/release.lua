--[[ lock/release: free a lock, only for its current holder. The fence counter stays.
  KEYS[1] lock key: the holder's token, expiring with the lock
  KEYS[2] the lock's record `{prefix:lock/<name>}:fence`: n (fence counter) and released (last released token)
  ARGV[1] token
  Returns: OK released; STALE not held under this token (expired, released or taken by another): nothing changed
  Repeat: recognised by the token: the release records the token it freed in the lock's record, so a repeat
  whose first run freed the lock answers OK again, changing nothing, until the lock is acquired again: from
  then on a repeat is of an earlier lease and answers STALE. No request id, nothing remembered beyond the
  lock's own record.
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'released', ARGV[1])
  return REPLY.OK
end
if redis.call('HGET', KEYS[2], 'released') == ARGV[1] then return REPLY.OK end
return REPLY.STALE
