--[[ reclaim: fail in-flight messages whose visibility deadline has passed, as a nack with retry would.
  dequeue does this on every call; this script is the scheduler's safety net for queues nobody consumes.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] max messages  ARGV[2] retry policy JSON {baseMs, capMs, jitter}  ARGV[3] random seed
  Returns: the number of messages reclaimed
  Errors: none
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"

local k = queueKeys(KEYS[1])
math.randomseed(tonumber(ARGV[3]))
return reclaimExpired(k, nowMs(), tonumber(ARGV[1]), cjson.decode(ARGV[2]))
