--[[ lock/rateTake: take `cost` units of one key's rate limit, if its sliding window has room for them.
  KEYS[1] the key's log `{prefix:limit/<name>:<key>}`: a sorted set with one member per unit taken,
          `<request id>.<n>`, scored by the server time (ms) it was taken; it expires a window after the last take
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] limit: units per window  ARGV[4] window ms  ARGV[5] cost: units to take, 1..limit
  Returns: {ALLOWED, remaining, 0}: the units were taken; `remaining` units are left in the window
           {LIMITED, remaining, retry ms}: nothing taken; `remaining` units are free now, fewer than cost, and
           after `retry ms` enough earlier units have left the window for this take (if no one takes first)
  Errors: none (the wrapper checks every argument)
  Sliding window log: a unit taken at server time t counts against every take until t + window ms, so no span
  of one window ever holds more than `limit` units (a fixed window lets 2 x limit through around a boundary).
  The log holds at most `limit` members in the window, plus expired ones until the next allowed take trims them.
  Repeat: recognised by the request id (includes/request.lua): an allowed take answers its first run's reply and
  counts once. A limited take wrote nothing and remembers nothing: its repeat runs again, as a new take would.
]]
--@include "clock"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end

local limit, windowMs, cost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = nowMs()
local since = now - windowMs
-- Units still in the window: taken after now - window (a unit taken exactly a window ago has left it).
local used = redis.call('ZCOUNT', KEYS[1], '(' .. since, '+inf')

if used + cost > limit then
  -- The take fits once `used + cost - limit` of the oldest units in the window have left it.
  local expired = redis.call('ZCARD', KEYS[1]) - used
  local oldest = redis.call('ZRANGE', KEYS[1], expired + used + cost - limit - 1, expired + used + cost - limit - 1,
    'WITHSCORES')
  return unchanged({ REPLY.LIMITED, limit - used, tonumber(oldest[2]) + windowMs - now })
end

-- Added before the trim: the first write of a script is the one Redis refuses when over maxmemory.
local CHUNK = 500
for first = 1, cost, CHUNK do
  local args = {}
  for n = first, math.min(cost, first + CHUNK - 1) do
    args[#args + 1] = now
    args[#args + 1] = ARGV[1] .. '.' .. n
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', since)
redis.call('PEXPIRE', KEYS[1], windowMs)
return rememberInts(requestKey, { REPLY.ALLOWED, limit - used - cost, 0 })
