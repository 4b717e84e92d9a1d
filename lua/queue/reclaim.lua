--[[ queue/reclaim: fail in-flight messages whose visibility deadline has passed, as a nack with retry would.
  dequeue does this on every call; this script is the scheduler's safety net for queues nobody consumes.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] max messages  ARGV[4] retry policy `<baseMs> <capMs> <jitter>`  ARGV[5] random seed
  Returns: the number of messages reclaimed
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's count.
  (A reclaim is safe to run twice in any case: a reclaimed message is no longer in flight.)
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local k = queueKeys(KEYS[1])
local reclaimed = reclaimExpired(k, nowMs(), tonumber(ARGV[3]), retryPolicy(ARGV[4], ARGV[5]))
if reclaimed == 0 then return unchanged(0) end
return rememberInt(requestKey, reclaimed)
