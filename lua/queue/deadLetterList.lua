--[[ queue/deadLetterList: read a page of the dead-letter queue, oldest failure first. Changes nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] offset  ARGV[2] max entries
  Returns: flat array, 4 per entry: id, failedAt ms, record (false if missing), reason (false if none)
  Errors: none
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
local offset = tonumber(ARGV[1])
local entries = redis.call('ZRANGE', k.deadLetter, offset, offset + tonumber(ARGV[2]) - 1, 'WITHSCORES')
if #entries == 0 then return {} end
local ids = {}
for i = 1, #entries, 2 do ids[#ids + 1] = entries[i] end
local recs = redis.call('HMGET', k.records, unpack(ids))
local reasons = redis.call('HMGET', k.errors, unpack(ids))
local out = {}
for n, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = math.floor(tonumber(entries[2 * n]) / DEAD_LETTER_SCALE)
  out[#out + 1] = recs[n]
  out[#out + 1] = reasons[n]
end
return out
