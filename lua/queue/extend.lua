--[[ queue/extend: push back the visibility deadline of in-flight messages still held under their receipt.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] visibility ms from now  ARGV[4..] pairs: message id, receipt
  Returns: one integer per pair: 1 extended, 0 stale (not in flight under that receipt; nothing changed)
  Errors: none
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's results,
  without moving the deadline again.
]]
--@include "queue"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local k = queueKeys(KEYS[1])
local deadline = nowMs() + tonumber(ARGV[3])
local members = {}
for i = 4, #ARGV, 2 do members[#members + 1] = ARGV[i] .. '|' .. ARGV[i + 1] end
local scores = redis.call('ZMSCORE', k.inflight, unpack(members))
local results, scored = {}, {}
for n, member in ipairs(members) do
  results[n] = scores[n] and REPLY.OK or REPLY.STALE
  if scores[n] then
    scored[#scored + 1] = deadline
    scored[#scored + 1] = member
  end
end
if #scored == 0 then return unchanged(results) end
redis.call('ZADD', k.inflight, 'XX', unpack(scored))
return rememberInts(requestKey, results)
