--[[ queue/inspect: find one message by id and say which state holds it. Changes nothing.
  Delayed, in-flight and dead messages are found by key; pending ones are searched for in the ready and
  backlog lists, which costs O(pending): a diagnostic, not a hot-path call.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] message id
  Returns: {} when the id is in no state (acked, purged or never sent), else
           {state, record, last error or false, score or false} with state one of
           'ready', 'backlog', 'delayed', 'inflight', 'dead'; score is the due time, deadline or failure time
  Errors: none
  Repeat: read-only, so running it twice changes nothing.
]]
--@include "queue"
--@include "placement"

local k = queueKeys(KEYS[1])
local id = ARGV[1]
local rec = redis.call('HGET', k.records, id)
local reason = redis.call('HGET', k.errors, id)
if rec then
  local due = redis.call('ZSCORE', k.delayed, id)
  if due then return { 'delayed', rec, reason, math.floor(tonumber(due)) } end
  local failed = redis.call('ZSCORE', k.deadLetter, id)
  if failed then return { 'dead', rec, reason, math.floor(tonumber(failed) / DEAD_LETTER_SCALE) } end
  local found = redis.call('ZSCAN', k.inflight, 0, 'MATCH', id .. '|*', 'COUNT', 1000000)
  if found[2][2] then return { 'inflight', rec, reason, found[2][2] } end
end
local head = id .. '|'
local function search(key, skip)
  for _, entry in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local candidate = string.sub(entry, skip(entry))
    if string.sub(candidate, 1, #head) == head then return candidate end
  end
end
local fromStart = function() return 1 end
for priority = 4, 1, -1 do
  local found = search(k.ready[priority], fromStart)
  if found then return { 'ready', found, reason, false } end
end
local afterDueAt = function(entry) return (string.find(entry, '|', 1, true) or 0) + 1 end
for _, partitionKey in ipairs(redis.call('HKEYS', k.partitions)) do
  local found = search(k.backlogPrefix .. partitionKey, afterDueAt)
  if found then return { 'backlog', found, reason, false } end
end
return {}
