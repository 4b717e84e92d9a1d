--[[ lockRelease: free a lock, only for its current holder. The fence counter stays.
  KEYS[1] lock key: the holder's token, expiring with the lock
  ARGV[1] token
  Returns: 1 released; 0 not held under this token (expired, released or taken by another): nothing changed
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
