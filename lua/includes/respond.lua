--[[ respond: answer a request (queue.request) on its requester's reply list.

  A request's message id is `<uuid>@<requester id>`: '@' occurs in no id a sender may choose, so the id
  alone says whether a message is a request and whose reply list `replyPrefix .. <requester id>` (derived
  from the queue's base key, so under its hash tag) gets the answer. The `requests` set holds the id,
  scored by its deadline, until the request is answered, withdrawn (requestCancel) or past its deadline.
  An answer is pushed as `<id>|<1 ok, 0 failed>|<reply JSON or error text>` only while the entry is there
  and not past its deadline: a late answer is dropped, and its message is settled all the same.
]]
--@include "queue"

-- A reply list is read within milliseconds by a live requester; one whose requester died expires.
local REPLY_LIST_TTL_MS = 60000

-- Answers the request `id` if it still waits; returns whether an answer was pushed. `now` may be nil.
local function respond(k, id, ok, text, now)
  local at = string.find(id, '@', 1, true)
  if not at then return false end
  local deadline = redis.call('ZSCORE', k.requests, id)
  if not deadline then return false end
  redis.call('ZREM', k.requests, id)
  if tonumber(deadline) < (now or nowMs()) then return false end
  local list = k.replyPrefix .. string.sub(id, at + 1)
  redis.call('RPUSH', list, id .. '|' .. ok .. '|' .. text)
  redis.call('PEXPIRE', list, REPLY_LIST_TTL_MS)
  return true
end
