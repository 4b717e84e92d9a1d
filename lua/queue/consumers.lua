--[[ queue/consumers: the consumers that count as present (their TTL not run out), soonest deadline first.
  Changes nothing.
  KEYS[1] queue base key `{prefix:name}`; the consumers set is derived from it (includes/queue.lua)
  ARGV[1] most entries to return
  Returns: flat array [member, deadline ms, ...] (see queue/presence.lua for the member's shape)
  Errors: none
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"

local k = queueKeys(KEYS[1])
return redis.call('ZRANGEBYSCORE', k.consumers, '(' .. nowMs(), '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
