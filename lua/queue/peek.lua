--[[ queue/peek: read a page of the ready, delayed or in-flight messages, in the order they would leave
  that state: ready highest priority first and FIFO within a priority (as dequeue takes them), delayed by due
  time, in flight by visibility deadline. Changes nothing; reads at most ARGV[3] entries of each structure.
  Messages waiting behind their partition's head (backlogs) are not ready and are not listed.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] 'ready', 'delayed' or 'inflight'  ARGV[2] offset (entries to skip)  ARGV[3] max entries
  Returns: flat array, 4 per entry: id, record (false if missing), last error (false if none),
           due time or visibility deadline in ms (false for ready messages)
  Errors: none; arguments are validated by the caller (src/queue/queue.ts).
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"

local k = queueKeys(KEYS[1])
local state = ARGV[1]
local offset = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local ids, recs, scores = {}, {}, {}
if state == 'ready' then
  for priority = 4, 1, -1 do
    if #ids >= limit then break end
    local length = redis.call('LLEN', k.ready[priority])
    if offset >= length then
      offset = offset - length
    else
      for _, rec in ipairs(redis.call('LRANGE', k.ready[priority], offset, offset + limit - #ids - 1)) do
        ids[#ids + 1] = string.match(rec, '^[^|]*')
        recs[#ids] = rec
        scores[#ids] = false
      end
      offset = 0
    end
  end
else
  local set = state == 'delayed' and k.delayed or k.inflight
  local entries = redis.call('ZRANGE', set, offset, offset + limit - 1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    -- In-flight entries are `id|receipt`.
    ids[#ids + 1] = string.match(entries[i], '^[^|]*')
    scores[#ids] = math.floor(tonumber(entries[i + 1]))
  end
  if #ids > 0 then
    local found = redis.call('HMGET', k.records, unpack(ids))
    for n = 1, #ids do recs[n] = found[n] end
  end
end
if #ids == 0 then return {} end
local reasons = redis.call('HMGET', k.errors, unpack(ids))
local out = {}
for n, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = recs[n]
  out[#out + 1] = reasons[n]
  out[#out + 1] = scores[n]
end
return out
