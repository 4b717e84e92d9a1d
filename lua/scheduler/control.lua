--[[ scheduler/control: pause, resume or restart a job, for every process at once.
  pause: no process claims a tick until resume; a run in progress finishes.
  resume: ticks are claimed again; an overdue tick runs at once.
  restart: resumes the job, breaks the run lock of a run in progress (its process sees the lock lost at
  its next extension and aborts the run's signal) and makes a tick due now.
  KEYS[1] the job's status hash `{prefix:scheduler/}:job:<name>`  KEYS[2] its run lock `{prefix:scheduler/}:run:<name>`
  ARGV[1] request id  ARGV[2] confirmed request ids (includes/request.lua)
  ARGV[3] 'pause', 'resume' or 'restart'
  Returns: 1 done; 0 the job is not registered: nothing changed
  Repeat: recognised by the request id (includes/request.lua) and answered with the first run's reply: a
  restart re-sent does not break the lock of the run it started.
]]
--@include "clock"
--@include "request"

local status, runLock, action = KEYS[1], KEYS[2], ARGV[3]
if action ~= 'pause' and action ~= 'resume' and action ~= 'restart' then
  return redis.error_reply('ERR scheduler/control: unknown action ' .. tostring(action))
end
local requestKey, prior = beginRequest(KEYS[1])
if prior then return unchanged(tonumber(prior)) end
if redis.call('HEXISTS', status, 'nextRunAt') == 0 then return unchanged(REPLY.UNKNOWN) end
if action == 'pause' then
  redis.call('HSET', status, 'paused', '1')
elseif action == 'resume' then
  redis.call('HSET', status, 'paused', '0')
elseif action == 'restart' then
  if redis.call('DEL', runLock) == 1 then
    redis.call('HSET', status, 'state', 'failed', 'lastError', 'restarted by restartJob while running')
    redis.call('HDEL', status, 'lastResult')
  end
  redis.call('HSET', status, 'paused', '0', 'nextRunAt', nowMs())
end
return rememberInt(requestKey, REPLY.OK)
