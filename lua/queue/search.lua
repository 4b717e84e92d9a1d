--[[ queue/search: the messages of one state that match a filter, reading a bounded stretch of that state.
  Walks the state in the order queue/peek lists it (ready: priority 4 to 1, FIFO within one; delayed by due
  time; in flight by visibility deadline; dead oldest failure first), from position ARGV[2], examining at most
  ARGV[3] entries and stopping after ARGV[4] matches. Positions are those of peek's offset, so a state that
  changes between calls may shift under a cursor (an entry seen twice or passed over), as with peek's pages.
  Messages waiting behind their partition's head (backlogs, includes/placement.lua) are in no state listed
  here and are never examined. A record that does not parse matches nothing.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] 'ready', 'delayed', 'inflight' or 'dead'  ARGV[2] cursor (entries to skip)
  ARGV[3] scan limit (entries examined, at most 10000)  ARGV[4] match limit (at most 1000)
  ARGV[5] filter as JSON `{ id?, type?, partitionKey?, text? }`: id, type and partitionKey match exactly,
          text is a plain substring of the payload JSON (not of the headers)
  Returns: flat array: next cursor (-1 when the state was read to its end), entries examined, then 4 per
           match as queue/peek: id, record, last error (false if none), due time, deadline or failure time
           in ms (false for ready messages)
  Errors: none; arguments are validated by the caller (src/queue/queue.ts).
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
local state = ARGV[1]
local cursor = tonumber(ARGV[2])
local scanLimit = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local filter = cjson.decode(ARGV[5])
local wantId, wantType, wantKey, wantText = filter.id, filter.type, filter.partitionKey, filter.text

local function matches(rec)
  local id, _, _, _, _, _, messageType, pkLen, keyAt = string.match(rec, RECORD_HEADER)
  if not id then return false end
  if wantId and id ~= wantId then return false end
  if wantType and messageType ~= wantType then return false end
  pkLen = tonumber(pkLen)
  if wantKey and (pkLen ~= #wantKey or string.sub(rec, keyAt, keyAt + pkLen - 1) ~= wantKey) then return false end
  if not wantText then return true end
  -- The body is the payload JSON, or `\1<headers bytes>:<headers JSON><payload JSON>` (src/queue/record.ts).
  local payloadAt = keyAt + pkLen
  if string.byte(rec, payloadAt) == 1 then
    local headerBytes, headersAt = string.match(rec, '^(%d+):()', payloadAt + 1)
    if not headerBytes then return false end
    payloadAt = headersAt + tonumber(headerBytes)
  end
  return string.find(rec, wantText, payloadAt, true) ~= nil
end

local scanned = 0
local ids, recs, times = {}, {}, {}
local function full() return scanned >= scanLimit or #ids >= limit end

-- Examines entries in order until the scan or match limit is reached; `entry(n)` gives entry n's id, record and time.
local function examine(count, entry)
  for n = 1, count do
    local id, rec, at = entry(n)
    scanned = scanned + 1
    if rec and matches(rec) then
      ids[#ids + 1] = id
      recs[#ids] = rec
      times[#ids] = at
      if #ids >= limit then return end
    end
  end
end

local total = 0
if state == 'ready' then
  local lengths = {}
  for priority = 4, 1, -1 do
    lengths[priority] = redis.call('LLEN', k.ready[priority])
    total = total + lengths[priority]
  end
  local skip = cursor
  for priority = 4, 1, -1 do
    if full() then break end
    local length = lengths[priority]
    if skip >= length then
      skip = skip - length
    else
      local from = skip
      skip = 0
      -- In pieces of at most CHUNK, so that a search stopped by its match limit reads little past its last match.
      while from < length and not full() do
        local page = redis.call('LRANGE', k.ready[priority], from, from + math.min(CHUNK, scanLimit - scanned) - 1)
        if #page == 0 then break end
        from = from + #page
        examine(#page, function(n) return string.match(page[n], '^[^|]*'), page[n], false end)
      end
    end
  end
else
  local set = state == 'delayed' and k.delayed or state == 'inflight' and k.inflight or k.deadLetter
  local scale = state == 'dead' and DEAD_LETTER_SCALE or 1
  total = redis.call('ZCARD', set)
  local from = cursor
  while from < total and not full() do
    local entries = redis.call('ZRANGE', set, from, from + math.min(CHUNK, scanLimit - scanned) - 1, 'WITHSCORES')
    if #entries == 0 then break end
    from = from + #entries / 2
    local pageIds = {}
    -- In-flight members are `id|receipt`.
    for i = 1, #entries, 2 do pageIds[#pageIds + 1] = string.match(entries[i], '^[^|]*') end
    local pageRecs = redis.call('HMGET', k.records, unpack(pageIds))
    examine(#pageIds, function(n)
      return pageIds[n], pageRecs[n], math.floor(tonumber(entries[2 * n]) / scale)
    end)
  end
end

local nextCursor = cursor + scanned
local out = { nextCursor >= total and -1 or nextCursor, scanned }
if #ids == 0 then return out end
local reasons = redis.call('HMGET', k.errors, unpack(ids))
for n, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = recs[n]
  out[#out + 1] = reasons[n]
  out[#out + 1] = times[n]
end
return out
