--[[ bus: keys of an event bus, its subscriptions, topic matching, filters and event deliveries.

  Keys: KEYS[1] of a bus script is the bus's base key `{prefix:bus/name}`, a whole hash tag. Every bus key
  is that base plus a suffix of BUS_KEY_SUFFIXES (generated from src/keys.ts); a subscriber's queue is the
  engine queue whose base key is `base .. subscriberPrefix .. subscriberId`, so it shares the bus's slot.
  Subscriber ids contain no ':' (src/keys.ts), which keeps every subscriber's keys apart.

  Subscription JSON (written by src/events/bus.ts, never re-encoded here):
    { patterns = {'a.*', ...}, maxRetries = n, filter = { {path = {'data','symbol'}, op = 'eq'|'in'|'exists',
      value = v, values = {...}, exists = bool}, ... } }   filter absent when there is none
]]
--@include "queue"
--@include "placement"

local function busKeys(base)
  local k = {}
  for name, suffix in pairs(BUS_KEY_SUFFIXES) do k[name] = base .. suffix end
  return k
end

local function subscriberQueueKeys(bus, subscriberId)
  return queueKeys(bus.subscriberPrefix .. subscriberId)
end

local function splitWords(text)
  local words = {}
  for word in string.gmatch(text, '[^.]+') do words[#words + 1] = word end
  return words
end

local function isWildcard(pattern)
  return string.find(pattern, '[*#]') ~= nil
end

-- RabbitMQ topic semantics: '*' is exactly one word, '#' zero or more. Patterns without '#' compare word
-- by word; with '#' the search is memoised on (pattern word, type word), so several '#' cost at most
-- #pattern * #type steps.
local function topicMatches(patternWords, typeWords)
  if not patternWords.hash then
    if #patternWords ~= #typeWords then return false end
    for n, word in ipairs(patternWords) do
      if word ~= '*' and word ~= typeWords[n] then return false end
    end
    return true
  end
  local memo = {}
  local function from(i, j)
    local key = i * 1024 + j
    local known = memo[key]
    if known ~= nil then return known end
    local result
    local word = patternWords[i]
    if word == nil then
      result = j > #typeWords
    elseif word == '#' then
      result = from(i + 1, j) or (j <= #typeWords and from(i, j + 1))
    else
      result = j <= #typeWords and (word == '*' or word == typeWords[j]) and from(i + 1, j + 1)
    end
    memo[key] = result
    return result
  end
  return from(1, 1)
end

-- The value at `path` in a decoded event; nil when any step is missing. A numeric step also indexes
-- arrays, counting from 0 as JSON users do.
local function fieldValue(event, path)
  local value = event
  for _, step in ipairs(path) do
    if type(value) ~= 'table' then return nil end
    local found = value[step]
    if found == nil and tonumber(step) then found = value[tonumber(step) + 1] end
    value = found
  end
  return value
end

-- JSON equality of scalars: same Lua type and value (cjson.null equals only cjson.null).
local function sameValue(a, b)
  return type(a) == type(b) and a == b
end

-- Conditions are data (decoded JSON), compared here; nothing a user wrote is ever run as code.
local function passesFilter(filter, event)
  for _, condition in ipairs(filter) do
    local value = fieldValue(event, condition.path)
    if condition.op == 'exists' then
      if (value ~= nil and value ~= cjson.null) ~= condition.exists then return false end
    elseif condition.op == 'eq' then
      if not sameValue(value, condition.value) then return false end
    elseif condition.op == 'in' then
      local member = false
      for _, candidate in ipairs(condition.values) do
        if sameValue(value, candidate) then
          member = true
          break
        end
      end
      if not member then return false end
    else
      return false
    end
  end
  return true
end

-- A subscription that does not decode (edited by hand) is treated as absent: it must not stop the bus.
local function decodeSubscription(json)
  local ok, sub = pcall(cjson.decode, json)
  if not ok or type(sub) ~= 'table' or type(sub.patterns) ~= 'table' or type(sub.maxRetries) ~= 'number' then
    return false
  end
  sub.patternWords = {}
  for n, pattern in ipairs(sub.patterns) do
    local words = splitWords(pattern)
    words.hash = string.find(pattern, '#', 1, true) ~= nil
    sub.patternWords[n] = words
  end
  return sub
end

-- Subscriptions decoded at most once per script run: get(id) returns one (false when there is none),
-- load(ids) reads many with one HMGET.
local function subscriptionCache(bus)
  local cache = {}
  local subscriptions = {}
  function subscriptions.load(ids)
    local missing = {}
    for _, id in ipairs(ids) do
      if cache[id] == nil then missing[#missing + 1] = id end
    end
    if #missing == 0 then return end
    local found = redis.call('HMGET', bus.subscriptions, unpack(missing))
    for n, id in ipairs(missing) do
      cache[id] = found[n] and decodeSubscription(found[n])
    end
  end
  function subscriptions.get(id)
    if cache[id] == nil then subscriptions.load({ id }) end
    return cache[id]
  end
  return subscriptions
end

local function matchesAnyPattern(sub, typeWords)
  for _, words in ipairs(sub.patternWords) do
    if topicMatches(words, typeWords) then return true end
  end
  return false
end

-- The index only narrows the candidates: publish checks every candidate's patterns itself, so an index
-- entry left behind by a subscription that no longer decodes delivers nothing.
local function indexPatterns(bus, subscriberId, json, command)
  local sub = decodeSubscription(json)
  if not sub then
    redis.call(command, bus.wildcard, subscriberId)
    return
  end
  for _, pattern in ipairs(sub.patterns) do
    if isWildcard(pattern) then
      redis.call(command, bus.wildcard, subscriberId)
    else
      redis.call(command, bus.exactPrefix .. pattern, subscriberId)
    end
  end
end

-- One delivery of an event as an engine message record, priority NORMAL, attempts 0, no runAt.
local function eventRecord(messageId, maxRetries, now, eventType, partitionKey, eventJson)
  return encodeRecord(messageId, 2, 0, maxRetries, now, '', eventType, partitionKey, eventJson)
end

-- Deliveries of one script run, copied into subscriber queues as new engine messages (competing
-- consumers, retries and the DLQ come from the engine). Plain deliveries are buffered per subscriber and
-- pushed with one RPUSH each at flush(); a partitioned one first flushes its subscriber's buffer, so every
-- queue receives its events in publish order. Message ids are `<event id>:<delivery sequence>`, unique in
-- every queue even when the same event is replayed.
local function deliveries(bus, now)
  local queues, pending, sent, order = {}, {}, {}, {}
  local buffer = {}

  local function queueOf(subscriberId)
    local k = queues[subscriberId]
    if not k then
      k = subscriberQueueKeys(bus, subscriberId)
      queues[subscriberId], pending[subscriberId], sent[subscriberId] = k, {}, 0
      order[#order + 1] = subscriberId
    end
    return k
  end

  local function pushPending(subscriberId)
    if #pending[subscriberId] > 0 then
      pushReady(queues[subscriberId], 2, pending[subscriberId])
      pending[subscriberId] = {}
    end
  end

  function buffer.add(subscriberId, messageId, partitionKey, rec)
    local k = queueOf(subscriberId)
    sent[subscriberId] = sent[subscriberId] + 1
    if partitionKey == '' then
      local list = pending[subscriberId]
      list[#list + 1] = rec
    else
      pushPending(subscriberId)
      placeNew(k, messageId, 2, partitionKey, now, rec, now)
    end
  end

  function buffer.flush()
    for _, subscriberId in ipairs(order) do
      pushPending(subscriberId)
      redis.call('HINCRBY', queues[subscriberId].stats, 'sent', sent[subscriberId])
    end
  end

  return buffer
end
