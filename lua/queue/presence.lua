--[[ queue/presence: a running consumer announces itself (a heartbeat) or leaves, and entries whose TTL ran
  out are dropped. Only consumers write here; the hot path (dequeue, ack) never does.
  KEYS[1] queue base key `{prefix:name}`; the consumers set is derived from it (includes/queue.lua)
  ARGV[1] member `<consumer id>|<ttl ms>|<info JSON>`, fixed for the consumer's life (src/queue/presence.ts)
  ARGV[2] TTL ms: the entry counts until its last heartbeat plus this, by Redis's clock; 0 removes the member
  Returns: how many consumers count as present after the call
  Errors: a TTL that is not a number, before any write (the wrapper validates it; the member is opaque here)
  Repeat: a repeated heartbeat re-adds the same member with a later deadline, and a repeated removal removes
  a member already gone: both harmless. No request id.
]]
--@include "queue"

local ttlMs = tonumber(ARGV[2])
if not ttlMs then return redis.error_reply('ERR presence TTL must be a number of ms') end
local k = queueKeys(KEYS[1])
local now = nowMs()
redis.call('ZREMRANGEBYSCORE', k.consumers, '-inf', now)
if ttlMs > 0 then
  redis.call('ZADD', k.consumers, now + ttlMs, ARGV[1])
else
  redis.call('ZREM', k.consumers, ARGV[1])
end
-- The set lives as long as its latest deadline: consumers that all died leave nothing behind.
local last = redis.call('ZRANGE', k.consumers, -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', k.consumers, last[2]) end
return redis.call('ZCARD', k.consumers)
