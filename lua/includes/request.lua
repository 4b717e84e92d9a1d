--[[ request: the reply memory that makes a state-changing script safe to run twice.

  A request reaches Redis more than once when its reply is lost: ioredis re-sends a command that was
  written but not answered when the connection dropped, and sluice's own retries repeat a call. The caller
  (src/scripts.ts) generates a request id before the first attempt and sends it unchanged with every
  attempt, as ARGV[1]. The first run stores its reply, compactly encoded by the script, under
  `KEYS[1] .. REQUEST_KEY_SUFFIX .. <request id>` (KEYS[1] carries the hash tag, so the key shares its
  slot) for REQUEST_TTL_MS; a repeat finds it, changes nothing and answers with the first run's reply.

  The caller also names, in ARGV[2] (space-separated, '' none), earlier requests on the same KEYS[1] whose
  replies it has read: they can never be re-sent, so their memory is deleted by this run (after its own
  writes: see forgetConfirmed). Only a request whose reply was really lost, or a caller's last one on each
  KEYS[1], waits for its TTL: memory grows with the number of distinct keys a caller touches in the window,
  not with the rate of calls. (Locks, the busiest source of distinct keys, need no memory: their token
  recognises a repeat.) On a queue's or a bus's key the caller sends confirmations in batches
  (CONFIRM_BATCH in src/scripts.ts), so up to that many replies per caller and key outlive their use.
  A run that changed nothing remembers nothing: its repeat runs again, which is the same as the one call
  arriving later (the caller only ever reads the repeat's reply), and a refused call writes nothing.
  REQUEST_KEY_SUFFIX and REQUEST_TTL_MS are generated from src/keys.ts.
]]

local requestBase

-- Returns this request's key and its remembered reply (nil if the request is new). Writes nothing.
local function beginRequest(base)
  requestBase = base
  local key = base .. REQUEST_KEY_SUFFIX .. ARGV[1]
  local prior = redis.call('GET', key)
  return key, prior or nil
end

-- For a script that writes on nearly every call (send): begins the request as beginRequest does, and in the
-- same command remembers '' for it, the reply such a call usually leaves (one command instead of a GET now
-- and a SET at the end). A run that ends otherwise calls remember (another reply) or forgetRequest (none).
-- It is the script's first write: over maxmemory it is refused, and the script stops having written nothing.
local function claimRequest(base)
  requestBase = base
  local key = base .. REQUEST_KEY_SUFFIX .. ARGV[1]
  local prior = redis.pcall('SET', key, '', 'NX', 'PX', REQUEST_TTL_MS, 'GET')
  if type(prior) == 'table' then
    -- Refused (over maxmemory): read the memory instead, so that a repeat is still answered and a refusal
    -- still writes nothing; a new call is refused at its own first write.
    return key, redis.call('GET', key) or nil, false
  end
  return key, prior or nil, true
end

-- Deletes the memory of the requests the caller confirmed. Called only once the script's own writes are
-- done: Redis refuses a script's first write when over maxmemory, but lets every write through once the
-- script has written anything, so a DEL first would let a send past the memory limit.
local function forgetConfirmed()
  if ARGV[2] == '' then return end
  local confirmed = {}
  for id in string.gmatch(ARGV[2], '%S+') do
    -- A caller that repeats a request after reading its reply still gets one effect.
    if id ~= ARGV[1] then confirmed[#confirmed + 1] = requestBase .. REQUEST_KEY_SUFFIX .. id end
  end
  if #confirmed > 0 then redis.call('DEL', unpack(confirmed)) end
end

local function remember(key, encoded)
  forgetConfirmed()
  redis.call('SET', key, encoded, 'PX', REQUEST_TTL_MS)
end

-- A claimed request (claimRequest) whose run changed nothing: its claim goes too, so it remembers nothing.
local function forgetRequest(key, reply)
  forgetConfirmed()
  redis.call('DEL', key)
  return reply
end

-- The reply of a run that changed nothing (or of a repeat): nothing to remember, only to forget.
local function unchanged(reply)
  forgetConfirmed()
  return reply
end

-- Replies that are integers (or arrays of them) are remembered as decimal text.
local function encodeInts(list)
  local out = {}
  for n, value in ipairs(list) do out[n] = string.format('%.0f', value) end
  return table.concat(out, ',')
end

local function decodeInts(text)
  local out = {}
  for value in string.gmatch(text, '-?%d+') do out[#out + 1] = tonumber(value) end
  return out
end

-- Remembers an integer reply and returns it: `return rememberInt(key, n)`.
local function rememberInt(key, value)
  remember(key, string.format('%.0f', value))
  return value
end

local function rememberInts(key, list)
  remember(key, encodeInts(list))
  return list
end
