--[[ queue/wake: leave a wake-up token for the queue's idle consumers, unless one is already waiting there.
  A consumer sets a timer for the earliest due time it was told of and calls this when it fires, because
  Redis checks blocking timeouts only every 100 ms.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  Returns: 1
  Errors: none
  Repeat: naturally idempotent: at most one token ever waits, so a repeat leaves nothing more.
]]
--@include "queue"
--@include "placement"

wake(queueKeys(KEYS[1]))
return REPLY.OK
