import { afterEach, describe, expect, it } from 'vitest';
import {
  QUEUE_JOB_NAMES,
  queueMaintenanceJobs,
  Scheduler,
  SCHEDULER_JOB_NAMES,
  schedulerCleanupJobs,
  type JobDefinition,
  type JobStatus,
  type QueueMaintenanceOptions,
  type Queue,
} from '../src/index.js';
import { schedulerKeys } from '../src/keys.js';
import { ON_CLUSTER, redisUrl, useRedis, waitFor } from './helpers.js';

const env = useRedis();
let open: Scheduler[] = [];

afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

function scheduler(prefix: string, instanceId: string): Scheduler {
  const s = new Scheduler({ connection: ON_CLUSTER ? env.connection() : redisUrl(), prefix, instanceId, pollMs: 100 });
  s.on('error', () => undefined);
  open.push(s);
  return s;
}

const BUILTIN_JOB_NAMES = { ...QUEUE_JOB_NAMES, ...SCHEDULER_JOB_NAMES };

/** The seed system's built-in jobs, as each domain hands them out. */
function builtinJobs(s: Scheduler, queues: readonly Queue<any>[], options: QueueMaintenanceOptions): JobDefinition[] {
  return [...queueMaintenanceJobs(queues, options), ...schedulerCleanupJobs(s, options)];
}

function addAll(s: Scheduler, jobs: readonly JobDefinition[]): string[] {
  for (const job of jobs) s.addJob(job);
  return jobs.map((job) => job.name);
}

/** Runs a job now (its interval is 10 s to an hour) and waits until that run has been recorded. */
async function runNow(s: Scheduler, name: string): Promise<JobStatus> {
  const before = (await waitFor(() => s.getJobStatus(name), `${name} to be registered`)).runCount;
  await s.restartJob(name);
  return waitFor(async () => {
    const status = await s.getJobStatus(name);
    return status && status.runCount > before && status.state !== 'running' ? status : null;
  }, `a run of ${name}`);
}

describe('scheduler jobs of the queue and scheduler domains (the seed system’s built-in jobs)', () => {
  it('are plain job definitions with the seed system’s intervals', async () => {
    const prefix = env.prefix();
    const s = scheduler(prefix, 'a');
    const names = addAll(s, builtinJobs(s, [env.queue('orders', { prefix })], { logger: { info: () => undefined } }));
    expect(names.sort()).toEqual(Object.values(BUILTIN_JOB_NAMES).sort());
    s.start();
    await waitFor(async () => (await s.getAllJobsStatus()).length === 3, 'the built-in jobs to be registered');
    const schedules = Object.fromEntries((await s.getAllJobsStatus()).map((st) => [st.name, st.schedule]));
    expect(schedules).toEqual({
      [BUILTIN_JOB_NAMES.maintenance]: 'every 10000 ms',
      [BUILTIN_JOB_NAMES.monitoring]: 'every 300000 ms',
      [BUILTIN_JOB_NAMES.cleanup]: 'every 3600000 ms',
    });
  });

  it('maintenance promotes due delayed messages and reclaims expired deliveries of queues nobody consumes', async () => {
    const prefix = env.prefix();
    const queue = env.queue<string>('orders', { prefix });
    const sentAt = Date.now();
    await queue.send('later', { delayMs: 300 });
    await queue.send('stalled');
    // (dequeue promotes and reclaims too, so nothing dequeues once 'later' is due)
    const [stalled] = await queue.dequeue({ visibilityMs: 1 });
    expect(stalled!.payload).toBe('stalled');
    expect((await queue.getStats()).delayed).toBe(1);
    await waitFor(() => Date.now() > sentAt + 400, 'the delay and the visibility timeout to pass');

    const s = scheduler(prefix, 'a');
    addAll(s, queueMaintenanceJobs([queue], { logger: { info: () => undefined } }));
    s.start();
    const status = await runNow(s, BUILTIN_JOB_NAMES.maintenance);
    expect(status.state).toBe('succeeded');
    const stats = await queue.getStats();
    expect(stats.ready.normal).toBe(1); // 'later' promoted to ready
    expect(stats.inflight).toBe(0);
    expect(stats.delayed).toBe(1); // 'stalled' reclaimed: waits for its retry
    expect(stats.counters.reclaimed).toBe(1);
  });

  it('monitoring logs the stats of every queue', async () => {
    const prefix = env.prefix();
    const queues = [env.queue('orders', { prefix }), env.queue('mails', { prefix })];
    await queues[0]!.send({ n: 1 });
    const logged: { message: string; details: unknown }[] = [];
    const s = scheduler(prefix, 'a');
    addAll(
      s,
      queueMaintenanceJobs(queues, { logger: { info: (message, details) => logged.push({ message, details }) } }),
    );
    s.start();
    await runNow(s, BUILTIN_JOB_NAMES.monitoring);
    expect(logged.map((l) => l.message)).toEqual(['[sluice] queue orders stats', '[sluice] queue mails stats']);
    expect(logged[0]!.details).toMatchObject({ name: 'orders', ready: { normal: 1 } });
  });

  it('cleanup forgets jobs no process has run for the retention, and keeps paused and live ones', async () => {
    const prefix = env.prefix();
    const keys = schedulerKeys(prefix);
    const gone = scheduler(prefix, 'gone');
    gone.addJob({ name: 'retired', every: 60_000, handler: () => undefined });
    gone.addJob({ name: 'on-hold', every: 60_000, handler: () => undefined });
    gone.start();
    await waitFor(async () => (await gone.getAllJobsStatus()).length === 2, 'the old jobs to be registered');
    await gone.pauseJob('on-hold');
    await gone.close();
    // As if eight days had passed since any process ran them.
    const longAgo = Date.now() - 8 * 24 * 3600 * 1000;
    await env.redis.hset(keys.status('retired'), 'nextRunAt', longAgo);
    await env.redis.hset(keys.status('on-hold'), 'nextRunAt', longAgo);

    const logged: unknown[] = [];
    const s = scheduler(prefix, 'a');
    addAll(s, builtinJobs(s, [], { logger: { info: (_message, details) => logged.push(details) } }));
    s.start();
    const status = await runNow(s, BUILTIN_JOB_NAMES.cleanup);
    expect(status.lastResult).toEqual({ forgottenJobs: ['retired'] });
    expect(logged).toEqual([['retired']]);
    expect(await s.getJobStatus('retired')).toBeNull();
    expect((await s.getJobStatus('on-hold'))!.paused).toBe(true);
    expect((await s.getAllJobsStatus()).map((st) => st.name)).toEqual([
      'on-hold',
      BUILTIN_JOB_NAMES.cleanup,
      BUILTIN_JOB_NAMES.maintenance,
      BUILTIN_JOB_NAMES.monitoring,
    ]);
  });
});
