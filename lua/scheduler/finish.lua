--[[ scheduler/finish: record the outcome of a run and free the job's run lock.
  In 'shared' mode only the run that still holds the run lock may record: a run whose lock expired (its
  process stalled) or was broken by restartJob changes nothing, so it never overwrites a newer run's status.
  KEYS[1] the job's status hash `{prefix:scheduler/}:job:<name>`  KEYS[2] its run lock `{prefix:scheduler/}:run:<name>`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] run token  ARGV[4] 'succeeded' or 'failed'  ARGV[5] result JSON ('' none) or error message
  ARGV[6] the run's start (server ms, from scheduler/claim)  ARGV[7] 'shared' or 'local'
  Returns: 1 recorded; 0 the run no longer held its run lock: nothing changed
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply (a
  recorded outcome is reported recorded), counting a failure once.
]]
--@include "clock"
--@include "request"

local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
local status, runLock = KEYS[1], KEYS[2]
local token, outcome, detail, startedAt, mode = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]

if mode == 'shared' then
  if redis.call('GET', runLock) ~= token then return unchanged(REPLY.STALE) end
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
return rememberInt(requestKey, REPLY.OK)
