--[[ scheduler/claim: claim one tick of a job for this process, or report why not.
  In 'shared' mode this is a compare-and-set on the job's next tick (as pg-boss's timekeeper): the caller
  names the tick it believes is next (ARGV[3]) and the one after it (ARGV[4]); the claim succeeds only when
  the stored next tick is still ARGV[3], is due, the job is not paused and no run holds the run lock. It then
  moves the next tick to ARGV[4] and takes the run lock in the same step, so each tick is claimed once.
  In 'local' mode (every process runs every tick) only the pause flag is checked and the start recorded;
  the stored next tick is then only for display.
  KEYS[1] the job's status hash `{prefix:scheduler/}:job:<name>`  KEYS[2] its run lock `{prefix:scheduler/}:run:<name>`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] tick the caller claims  ARGV[4] the tick after it
  ARGV[5] run token  ARGV[6] run lock TTL ms  ARGV[7] instance id  ARGV[8] 'shared' or 'local'
  Returns: {CLAIMED, fence, started at} claimed: fence is the job's run count, which grows with every run
           {NOT_CLAIMED, next tick, now, paused 0/1, run lock ms left (-2 none)} not claimed
           {NOT_REGISTERED} the job is not registered (its status was never written, or cleanup forgot it)
  Repeat: a claim whose reply was lost is still claimed by its caller, who runs the tick (the tick is not
  left `running` with nobody running it). In 'shared' mode the repeat is recognised by the run token: while
  the run lock holds ARGV[5] the answer is the same claim; once the lock was lost (expired, restarted) the
  tick has moved on and the repeat is not claimed, as a new call would be; nothing is remembered. In 'local'
  mode it is recognised by the request id (includes/request.lua) and answered with the first run's reply,
  so the run is counted once.
]]
--@include "clock"
--@include "request"

local status, runLock = KEYS[1], KEYS[2]
local tick, nextTick, token, ttl, instance, mode = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(decodeInts(prior)) end
if mode == 'shared' and redis.call('GET', runLock) == token then
  local run = redis.call('HMGET', status, 'runCount', 'lastStartedAt')
  return unchanged({ REPLY.CLAIMED, tonumber(run[1]), tonumber(run[2]) })
end

local stored = redis.call('HGET', status, 'nextRunAt')
if not stored then return unchanged({ REPLY.NOT_REGISTERED }) end
local now = nowMs()
local paused = redis.call('HGET', status, 'paused') == '1'
local lockLeft = redis.call('PTTL', runLock)

local claimable = mode == 'local' or (tick == stored and tonumber(stored) <= now and lockLeft == -2)

if claimable and not paused then
  if mode == 'shared' then redis.call('SET', runLock, token, 'PX', ttl) end
  redis.call('HSET', status, 'nextRunAt', nextTick)
  local fence = redis.call('HINCRBY', status, 'runCount', 1)
  redis.call('HSET', status, 'state', 'running', 'lastTick', tick, 'lastStartedAt', now, 'lastInstance', instance)
  if mode == 'shared' then return unchanged({ REPLY.CLAIMED, fence, now }) end
  return rememberInts(requestKey, { REPLY.CLAIMED, fence, now })
end
return unchanged({ REPLY.NOT_CLAIMED, tonumber(stored), now, paused and 1 or 0, lockLeft })
