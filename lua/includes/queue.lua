--[[ queue: keys, clock and the message record, shared by every queue script.

  Keys: KEYS[1] of a queue script is the queue's base key `{prefix:name}`. Its whole text is a hash tag,
  so every key derived from it by appending a suffix of QUEUE_KEY_SUFFIXES (generated from src/keys.ts
  and prepended by the loader) lands in the same Redis Cluster slot.

  Record: one string carries a message through every state (encoded and decoded in src/queue/record.ts):
    <id>|<priority>|<attempts>|<maxRetries>|<createdAt>|<runAt>|<type>|<pkLen>|<partitionKey><payload JSON>
  id and type never contain '|'; the partition key is length-prefixed so it may contain anything. Scripts
  read the header and rewrite only `attempts`. Ready and backlog lists hold records inline (one list entry
  per pending message, which keeps memory low); delayed, in-flight and dead messages keep theirs in
  the records hash.
]]
--@include "clock"


-- Keys are derived on first use: a send touches 3 of the 16, and building all of them took about as
-- long as the rest of a one-message send.
local function queueKeys(base)
  return setmetatable({}, {
    __index = function(k, name)
      local key
      if name == 'ready' then
        key = { k.ready1, k.ready2, k.ready3, k.ready4 }
      else
        local suffix = QUEUE_KEY_SUFFIXES[name]
        if not suffix then return nil end
        key = base .. suffix
      end
      rawset(k, name, key)
      return key
    end,
  })
end

local RECORD_HEADER = '^([^|]+)|([1-4])|(%d+)|(%d+)|(%d+)|(%d*)|([^|]*)|(%d+)|()'
-- The same header check capturing only the id: cheaper where only the id is needed (dequeue).
local RECORD_ID = '^([^|]+)|[1-4]|%d+|%d+|%d+|%d*|[^|]*|%d+|'

-- Returns the header fields Lua needs, or nil when the record does not parse.
local function parseRecord(rec)
  local id, priority, attempts, maxRetries, _, _, _, pkLen, bodyAt = string.match(rec, RECORD_HEADER)
  if not id then return nil end
  pkLen = tonumber(pkLen)
  return {
    id = id,
    priority = tonumber(priority),
    attempts = tonumber(attempts),
    maxRetries = tonumber(maxRetries),
    partitionKey = string.sub(rec, bodyAt, bodyAt + pkLen - 1),
  }
end

-- The one place Lua writes a whole record (an event delivery; sends arrive encoded by src/queue/record.ts).
-- `#partitionKey` counts bytes, as record.ts does.
local function encodeRecord(id, priority, attempts, maxRetries, createdAt, runAt, messageType, partitionKey, payloadJson)
  return id .. '|' .. priority .. '|' .. attempts .. '|' .. maxRetries .. '|' .. createdAt .. '|' .. runAt .. '|'
    .. messageType .. '|' .. #partitionKey .. '|' .. partitionKey .. payloadJson
end

local function withAttempts(rec, attempts)
  local head, rest = string.match(rec, '^([^|]+|[1-4]|)%d+(|.*)$')
  return head .. attempts .. rest
end

-- Commands take at most this many arguments from one unpack() (Lua's C stack holds about 8,000).
local CHUNK = 1000

local function chunks(list, fn)
  for from = 1, #list, CHUNK do
    fn(unpack(list, from, math.min(from + CHUNK - 1, #list)))
  end
end
