--[[ scheduler/forget: drop the status of a job that no process has run for a long time (the cleanup job).
  A job counts as abandoned when its next tick is more than the retention overdue, nobody holds its run
  lock and it is not paused (a pause is an operator's decision, kept however old). A process that still
  has the job registers it again on its next claim, with a fresh status.
  KEYS[1] set of job names `{prefix:scheduler/}:jobs`  KEYS[2] the job's status hash  KEYS[3] its run lock
  ARGV[1] job name  ARGV[2] retention ms
  Returns: 1 forgotten; 0 kept
  Repeat: naturally idempotent: a forgotten job has no status left, so a repeat deletes nothing more (it
  answers 1 again). No request id: this is the cleanup job's, and its reply is only counted.
]]
--@include "clock"

local jobs, status, runLock = KEYS[1], KEYS[2], KEYS[3]
local nextRunAt = redis.call('HGET', status, 'nextRunAt')
if nextRunAt then
  if redis.call('HGET', status, 'paused') == '1' then return REPLY.KEPT end
  if redis.call('EXISTS', runLock) == 1 then return REPLY.KEPT end
  if tonumber(nextRunAt) >= nowMs() - tonumber(ARGV[2]) then return REPLY.KEPT end
end
redis.call('DEL', status)
redis.call('SREM', jobs, ARGV[1])
return REPLY.OK
