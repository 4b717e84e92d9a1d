--[[ queue/promote: move delayed (and retrying) messages to the back of their ready lists: those due, or the
  ones named whatever their due time. Either way a message is placed exactly as a due one is (its priority's
  ready list; a partition's head stays its head) and an idle consumer is woken when a ready list was empty.
  dequeue promotes what is due on every call; 'due' here is the scheduler's safety net, 'ids' an operator's
  "run these now".
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] 'due' (promote up to ARGV[4] due messages) or 'ids' (promote ARGV[5..], ARGV[4] of them)
  ARGV[4] max messages (at most 1000)  ARGV[5..] ids, with 'ids'
  Returns: the number of messages promoted (named ids not in the delayed set are skipped)
  Errors: none; arguments are validated by the caller (src/queue/queue.ts).
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's count.
  (A promotion is safe to run twice in any case: a promoted message is no longer in the delayed set, so a
  second 'ids' call naming it skips it and changes nothing.)
]]
--@include "queue"
--@include "placement"
--@include "failure"
--@include "maintenance"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local k = queueKeys(KEYS[1])
local promoted
if ARGV[3] == 'ids' then
  -- Only ids still in the delayed set, each once: a repeated id or one promoted already is skipped.
  local ids, seen = {}, {}
  for i = 5, #ARGV do
    local id = ARGV[i]
    if not seen[id] and redis.call('ZSCORE', k.delayed, id) then ids[#ids + 1] = id end
    seen[id] = true
  end
  promoted = #ids == 0 and 0 or promoteIds(k, ids, nowMs())
else
  promoted = promoteDue(k, nowMs(), tonumber(ARGV[4]))
end
if promoted == 0 then return unchanged(0) end
return rememberInt(requestKey, promoted)
