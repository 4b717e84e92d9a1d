--[[ queue/request: send one message as a request (queue.request) and register it as awaiting a reply.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] timeout ms  ARGV[4] message id `<uuid>@<requester id>` (includes/respond.lua)  ARGV[5] priority 1..4
  ARGV[6] partition key ('' none)  ARGV[7] record (includes/queue.lua)
  then, only for a queue with a maxLength: ARGV[8] maxLength
  Returns: OK (the message is placed as send places it, and its id is in `requests` until now + timeout),
           or QUEUE_FULL (the queue is at maxLength: nothing written)
  Errors: none; arguments are validated by the caller (src/queue/requester.ts). Entries of `requests` whose
  deadline passed (their requester died before withdrawing them) are swept here.
  Repeat: recognised by the request id (includes/request.lua) and answered OK writing nothing: a request
  whose reply was lost sends its message once. A refused call remembers nothing.
]]
--@include "queue"
--@include "placement"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end

local k = queueKeys(KEYS[1])
local timeoutMs, id, priority, partitionKey, rec = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if ARGV[8] then
  local c = redis.call('HMGET', k.stats, 'sent', 'replayed', 'acked', 'deadLettered')
  local outstanding = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) - (tonumber(c[3]) or 0) - (tonumber(c[4]) or 0)
  if outstanding >= tonumber(ARGV[8]) then return unchanged(REPLY.QUEUE_FULL) end
end
local now = nowMs()
if partitionKey == '' then
  pushReady(k, priority, { rec })
else
  placeNew(k, id, priority, partitionKey, now, rec, now)
end
redis.call('HINCRBY', k.stats, 'sent', 1)
redis.call('ZADD', k.requests, now + timeoutMs, id)
redis.call('ZREMRANGEBYSCORE', k.requests, '-inf', '(' .. now)
return rememberInt(requestKey, REPLY.OK)
