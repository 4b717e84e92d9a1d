--[[ scheduler/register: make a job known under this prefix. Its first tick is set only if it has none yet,
  or if the schedule changed (a deploy with a new interval or expression), so that a process joining later
  never moves the schedule the others follow, and a new schedule does not wait for the old one's next tick.
  KEYS[1] set of job names `{prefix:scheduler/}:jobs`  KEYS[2] the job's status hash `{prefix:scheduler/}:job:<name>`
  ARGV[1] job name  ARGV[2] first tick (ms since the epoch)  ARGV[3] schedule, as text for status readers
  ARGV[4] 'shared' (once per tick across processes) or 'local' (every process runs every tick)
  Returns: the job's next tick as stored
  Repeat: naturally idempotent: the same job, first tick and schedule write the same status again, and a
  next tick already stored is kept; the reply is the stored next tick either way.
]]

redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'schedule') ~= ARGV[3] then
  redis.call('HSET', KEYS[2], 'nextRunAt', ARGV[2])
else
  redis.call('HSETNX', KEYS[2], 'nextRunAt', ARGV[2])
end
redis.call('HSET', KEYS[2], 'schedule', ARGV[3], 'mode', ARGV[4])
return tonumber(redis.call('HGET', KEYS[2], 'nextRunAt'))
