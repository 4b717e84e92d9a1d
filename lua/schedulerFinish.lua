--[[ schedulerFinish: record the outcome of a run and free the job's run lock.
  In 'shared' mode only the run that still holds the run lock may record: a run whose lock expired (its
  process stalled) or was broken by restartJob changes nothing, so it never overwrites a newer run's status.
  KEYS[1] the job's status hash `{prefix:scheduler/}:job:<name>`  KEYS[2] its run lock `{prefix:scheduler/}:run:<name>`
  ARGV[1] run token  ARGV[2] 'succeeded' or 'failed'  ARGV[3] result JSON ('' none) or error message
  ARGV[4] the run's start (server ms, from schedulerClaim)  ARGV[5] 'shared' or 'local'
  Returns: 1 recorded; 0 the run no longer held its run lock: nothing changed
]]
--@include "clock"

local status, runLock = KEYS[1], KEYS[2]
local token, outcome, detail, startedAt, mode = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]

if mode == 'shared' then
  if redis.call('GET', runLock) ~= token then return 0 end
  redis.call('DEL', runLock)
end
local now = nowMs()
redis.call('HSET', status, 'state', outcome, 'lastFinishedAt', now, 'lastDurationMs', now - startedAt)
if outcome == 'succeeded' then
  redis.call('HSET', status, 'lastResult', detail)
  redis.call('HDEL', status, 'lastError')
else
  redis.call('HSET', status, 'lastError', detail)
  redis.call('HDEL', status, 'lastResult')
  redis.call('HINCRBY', status, 'failureCount', 1)
end
return 1
