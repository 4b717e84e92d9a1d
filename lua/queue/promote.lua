--[[ queue/promote: move due delayed (and retrying) messages to the back of their ready lists.
  dequeue does this on every call; this script is the scheduler's safety net.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] max messages
  Returns: the number of messages promoted
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's count.
  (A promotion is safe to run twice in any case: a promoted message is no longer in the delayed set.)
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local promoted = promoteDue(queueKeys(KEYS[1]), nowMs(), tonumber(ARGV[3]))
if promoted == 0 then return unchanged(0) end
return rememberInt(requestKey, promoted)
