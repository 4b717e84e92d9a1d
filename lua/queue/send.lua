--[[ queue/send: add a batch of messages; each goes to its ready list, the delayed set or its partition's backlog.
  KEYS[1] queue base key `{prefix:name}`; every other key is derived from it (includes/queue.lua)
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] maxLength ('' none)  ARGV[4] 'each' or 'all' ('' without a maxLength; see Limit below)
  ARGV[5] layout: one character per message, in order. '1'..'4': a plain message (its id generated, no
          partition key, delay or dedup key) of that priority, which takes 1 argument: its record.
          'f': any other message, which takes 8: id, '1' if the sender chose the id else '0', priority 1..4,
          partition key ('' none), delay ms (<= 0 now), dedup key ('' none), dedup TTL ms, record.
          (Arguments cost Redis time each: a plain message, the usual one, costs one.)
  ARGV[6..] the messages' arguments; records as in includes/queue.lua
  Returns: the number of messages when every one was written under its own id (the usual case: the caller
           knows the ids), else one id per message, in order. Nothing is written for a message whose dedup key is still held
           (its reply is the id of the message holding the key) or whose sender-chosen id is still live
           (not yet acked or purged; its reply is that id). The QUEUE_FULL code in place of an id: refused.
  Limit: the messages outstanding (sent + replayed - acked - dead-lettered, from the queue's counters: ready,
  delayed, in flight and partition backlogs) may not pass maxLength. 'each' (coalesced sends): each message
  that fits is written, each that does not is refused; 'all' (sendMany): if the new messages do not all
  fit, every one is refused and nothing is written. A repeat (dedup key held, sender-chosen id live) is
  never new, so it is answered with its id even at the limit. With ARGV[3] '' no count is read.
  Errors: none; arguments are validated by the caller (src/queue/validate.ts).
  Repeat: a re-sent or retried call is recognised by its request id (includes/request.lua; claimed with
  claimRequest, one SET that both reads and writes the memory) and answered with
  the first run's reply, writing nothing: a send whose reply was lost writes its messages once. The reply is
  remembered as '' when every id is the message's own (the usual case; the repeat answers the count), else
  as the JSON of the ids (refusals included). A run that refused and wrote nothing remembers nothing: its repeat is counted again,
  as the same call arriving later would be, and still writes each message at most once.
  The claim is the first write, so nothing after it may fail: arguments are validated by the caller, and a
  wrong-typed key (a command error after the claim) would leave a claim saying all was written.
]]
-- The fast path: one plain message, no maxLength, no confirmations to delete (a producer sending one at a
-- time, or a send to an idle consumer). It does what the general path below does for it, before the
-- included fragments are defined: Lua runs a script's whole text on every call, and defining them cost
-- about 40% of such a send (measured with bench/script-ab.ts). Any other call takes the general path.
if ARGV[3] == '' and ARGV[2] == '' and #ARGV == 6 and ARGV[5] ~= 'f' then
  local base, count = KEYS[1], 1
  local prior = redis.pcall('SET', base .. REQUEST_KEY_SUFFIX .. ARGV[1], '', 'NX', 'PX', REQUEST_TTL_MS, 'GET')
  -- A table: refused (over maxmemory); the general path answers a repeat or is refused at its first write.
  if type(prior) ~= 'table' then
    if prior then return prior == '' and count or cjson.decode(prior) end
    if redis.call('RPUSH', base .. QUEUE_KEY_SUFFIXES['ready' .. ARGV[5]], ARGV[6]) == 1 then
      local wakeKey = base .. QUEUE_KEY_SUFFIXES.wake
      if redis.call('LLEN', wakeKey) == 0 then redis.call('RPUSH', wakeKey, '1') end
    end
    redis.call('HINCRBY', base .. QUEUE_KEY_SUFFIXES.stats, 'sent', count)
    return count
  end
end

--@include "queue"
--@include "placement"
--@include "request"

local layout = ARGV[5]
local count = #layout
local requestKey, prior, claimed = claimRequest(KEYS[1])
if prior then
  if prior ~= '' then return unchanged(cjson.decode(prior)) end
  return unchanged(count)
end

-- Walks the messages in order: fn(n, at, code), `at` the index of the message's first argument.
local FULL = string.byte('f')
local function eachMessage(fn)
  local at = 6
  for n = 1, count do
    local code = string.byte(layout, n)
    fn(n, at, code)
    at = at + (code == FULL and 8 or 1)
  end
end

local k = queueKeys(KEYS[1])
-- With a maxLength: how many new messages still fit (nil: no limit).
local room
if ARGV[3] ~= '' then
  local c = redis.call('HMGET', k.stats, 'sent', 'replayed', 'acked', 'deadLettered')
  room = tonumber(ARGV[3])
    - ((tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) - (tonumber(c[3]) or 0) - (tonumber(c[4]) or 0))
  if ARGV[4] == 'all' then
    -- Only when the batch might not fit: count its new messages, reading as the writes below would decide.
    if room < count then
      local new, dedupSeen, idSeen = 0, {}, {}
      eachMessage(function(_, at, code)
        local fresh = true
        if code == FULL then
          local id, dedupKey = ARGV[at], ARGV[at + 5]
          if dedupKey ~= '' then
            if dedupSeen[dedupKey] or redis.call('EXISTS', k.dedupPrefix .. dedupKey) == 1 then fresh = false end
            dedupSeen[dedupKey] = true
          end
          if fresh and ARGV[at + 1] == '1' then
            if idSeen[id] or redis.call('HEXISTS', k.liveIds, id) == 1 then fresh = false end
            idSeen[id] = true
          end
        end
        if fresh then new = new + 1 end
      end)
      if new > room then
        local answers = {}
        for n = 1, count do answers[n] = REPLY.QUEUE_FULL end
        return forgetRequest(requestKey, answers)
      end
    end
    room = nil
  end
end
-- At the limit a message is answered without writing: the holder's id if it is a repeat, else refused.
local function holderAtLimit(id, chosen, dedupKey)
  local holder = dedupKey ~= '' and redis.call('GET', k.dedupPrefix .. dedupKey)
  if holder then return holder end
  if chosen == '1' and redis.call('HEXISTS', k.liveIds, id) == 1 then return id end
  return REPLY.QUEUE_FULL
end
-- The clock is read only for a message that needs it (delayed or partitioned).
local now
-- answers[n]: the reply for message n when it is not its own id (a holder's id, or refused); written only
-- when that happens, so the usual call builds no list of ids at all.
local answers, sent, refused = nil, 0, 0
-- Plain messages (no delay, no partition) are grouped into one RPUSH per priority; the group is flushed
-- before any other placement so that FIFO within a priority holds inside a batch too.
local pending = { {}, {}, {}, {} }
local function flush()
  for priority = 4, 1, -1 do
    if #pending[priority] > 0 then
      pushReady(k, priority, pending[priority])
      pending[priority] = {}
    end
  end
end
local function answer(n, reply)
  answers = answers or {}
  answers[n] = reply
end

eachMessage(function(n, at, code)
  if code ~= FULL then
    if room and room <= 0 then
      answer(n, REPLY.QUEUE_FULL)
      refused = refused + 1
      return
    end
    local list = pending[code - 48]
    list[#list + 1] = ARGV[at]
    sent = sent + 1
    if room then room = room - 1 end
    return
  end
  local id, chosen, priority, partitionKey = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3]
  local delayMs, dedupKey, rec = tonumber(ARGV[at + 4]), ARGV[at + 5], ARGV[at + 7]
  local holder = false
  if room and room <= 0 then
    holder = holderAtLimit(id, chosen, dedupKey)
    if holder == REPLY.QUEUE_FULL then refused = refused + 1 end
  elseif dedupKey ~= '' then
    local key = k.dedupPrefix .. dedupKey
    if not redis.call('SET', key, id, 'NX', 'PX', ARGV[at + 6]) then holder = redis.call('GET', key) end
  end
  -- Generated ids (uuid v4) are unique; an id the sender chose may still be in use.
  if not holder and chosen == '1' and redis.call('HSETNX', k.liveIds, id, 1) == 0 then holder = id end
  if holder then
    if holder ~= id then answer(n, holder) end
    return
  end
  sent = sent + 1
  if room then room = room - 1 end
  if partitionKey == '' and delayMs <= 0 then
    table.insert(pending[priority], rec)
  else
    flush()
    now = now or nowMs()
    placeNew(k, id, priority, partitionKey, now + math.max(delayMs, 0), rec, now)
  end
end)
flush()
if sent > 0 then redis.call('HINCRBY', k.stats, 'sent', sent) end
if not answers then
  -- claimRequest already remembers '' (every id the message's own), unless its claim was refused.
  if claimed then forgetConfirmed() else remember(requestKey, '') end
  return count
end
-- Some message is not answered with its own id: the reply lists every id.
local ids = {}
eachMessage(function(n, at, code)
  ids[n] = answers[n] or (code == FULL and ARGV[at] or string.match(ARGV[at], '^[^|]+'))
end)
if refused > 0 and sent == 0 then return forgetRequest(requestKey, ids) end
remember(requestKey, cjson.encode(ids))
return ids
