--[[ promote: move due delayed (and retrying) messages to the back of their ready lists.
  dequeue does this on every call; this script is the scheduler's safety net.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] max messages
  Returns: the number of messages promoted
  Errors: none
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"

return promoteDue(queueKeys(KEYS[1]), nowMs(), tonumber(ARGV[1]))
