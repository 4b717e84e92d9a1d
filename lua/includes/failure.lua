--[[ failure: what happens to an in-flight message that failed (nack, visibility timeout).
  The retry policy arrives as two plain arguments, `"<baseMs> <capMs> <jitter>"` and a random seed (Redis
  seeds math.random identically for every script run). The policy is parsed before any write; most calls
  never compute a backoff (a dequeue reclaims nothing, a nack dead-letters or names its delay), so the
  generator is seeded only at the first one.
]]
--@include "queue"
--@include "placement"
--@include "respond"

-- Parsed when the script starts, before any write (a policy that does not parse must fail the call, not
-- leave a message half moved); only the seeding waits for the first backoff.
local function retryPolicy(text, seed)
  local base, cap, jitter = string.match(text, '^(%S+) (%S+) (%S+)$')
  base, cap, jitter = tonumber(base), tonumber(cap), tonumber(jitter)
  if not (base and cap and jitter) then error('sluice: retry policy must be "<baseMs> <capMs> <jitter>", got ' .. text) end
  return { baseMs = base, capMs = cap, jitter = jitter, seed = seed }
end

-- min(cap, base * 2^(attempt-1)), shortened by up to `jitter` (0..1) of itself at random.
local function backoffMs(policy, attempts)
  if policy.jitter > 0 and not policy.seeded then
    math.randomseed(tonumber(policy.seed))
    policy.seeded = true
  end
  local delay = math.min(policy.capMs, policy.baseMs * 2 ^ (attempts - 1))
  if policy.jitter > 0 then delay = delay * (1 - policy.jitter * math.random()) end
  return math.floor(delay)
end

-- `rec` was in flight under `id` and has just been removed from the in-flight set. With retry and
-- retries left it goes to the delayed set after a backoff (or `delayMs` when >= 0); otherwise to the
-- dead-letter queue, releasing its partition. Returns 'retried' or 'dead'.
local function failMessage(k, id, rec, reason, retry, delayMs, now, policy)
  local msg = parseRecord(rec)
  if not msg then
    deadLetter(k, id, rec, 'corrupt record (' .. reason .. ')', now)
    return 'dead'
  end
  local attempts = msg.attempts + 1
  rec = withAttempts(rec, attempts)
  if retry and attempts <= msg.maxRetries then
    if delayMs < 0 then delayMs = backoffMs(policy, attempts) end
    schedule(k, id, now + delayMs, rec)
    redis.call('HSET', k.errors, id, reason)
    redis.call('HINCRBY', k.stats, 'retried', 1)
    return 'retried'
  end
  deadLetter(k, id, rec, reason, now)
  releasePartition(k, msg.partitionKey, now)
  -- A request whose message is dead-lettered is answered with the failure rather than left to time out.
  respond(k, id, '0', reason, now)
  return 'dead'
end
