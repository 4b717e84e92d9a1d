import { afterEach, describe, expect, it } from 'vitest';
import { JobNotFoundError, LockLostError, Scheduler, type JobStatus, type SchedulerOptions } from '../src/index.js';
import { schedulerKeys } from '../src/keys.js';
import { runScript } from '../src/scripts.js';
import { startChild, type Child } from './children.js';
import { ON_CLUSTER, redisUrl, useRedis, waitFor } from './helpers.js';
import { recordRun, recorderKeys } from './fixtures/tick-recorder.js';

const env = useRedis();
let open: Scheduler[] = [];
let children: Child[] = [];

afterEach(async () => {
  for (const child of children) child.process.kill('SIGKILL');
  await Promise.all(open.map((s) => s.close()));
  open = [];
  children = [];
});

/** A scheduler on its own connection, as another process would have. */
function scheduler(prefix: string, instanceId: string, options: Partial<SchedulerOptions> = {}): Scheduler {
  const s = new Scheduler({
    connection: ON_CLUSTER ? env.connection() : redisUrl(),
    prefix,
    instanceId,
    pollMs: 100,
    ...options,
  });
  s.on('error', () => undefined);
  open.push(s);
  return s;
}

function child(prefix: string, mode: string, extra: Record<string, string> = {}): Child {
  const c = startChild('scheduler-child', { REDIS_URL: redisUrl(), PREFIX: prefix, MODE: mode, ...extra });
  children.push(c);
  return c;
}

const isReady = (m: unknown): m is 'ready' => m === 'ready';

describe('scheduler: once per tick across processes', () => {
  it('three instances, one in a separate process: an interval job runs exactly once per tick, no tick missed', async () => {
    const prefix = env.prefix();
    const everyMs = 200;
    const keys = recorderKeys(prefix);
    const other = child(prefix, 'count', { EVERY_MS: String(everyMs) });
    await other.message(isReady, 'ready');
    // The child runs alone first, so the separate process surely takes part.
    await waitFor(async () => (await env.redis.hlen(keys.runs)) >= 2, 'the child to run two ticks');
    for (const id of ['a', 'b']) {
      scheduler(prefix, id)
        .addJob({
          name: 'tick',
          every: everyMs,
          catchUp: true,
          handler: (context) => recordRun(env.redis, prefix, context),
        })
        .start();
    }
    await waitFor(async () => (await env.redis.hlen(keys.runs)) >= 20, 'twenty ticks to run', 40_000);
    await other.stop();
    await Promise.all(open.map((s) => s.close()));

    const runs = await env.redis.hgetall(keys.runs);
    const ticks = Object.keys(runs)
      .map(Number)
      .sort((x, y) => x - y);
    for (const tick of ticks) expect({ tick, runs: runs[tick] }).toEqual({ tick, runs: '1' });
    // Ticks are the schedule's, not a process's: multiples of the interval, none skipped (catchUp).
    for (const tick of ticks) expect(tick % everyMs).toBe(0);
    for (let n = 1; n < ticks.length; n++) expect(ticks[n]! - ticks[n - 1]!).toBe(everyMs);
    const by = await env.redis.hgetall(keys.by);
    expect(Object.values(by)).toContain('child');

    const status = await scheduler(prefix, 'reader').getJobStatus('tick');
    expect(status!.runCount).toBe(ticks.length);
    expect(status!.lastTick).toBe(ticks.at(-1));
  });

  it('under contention (six instances, a tick every 25 ms) still runs each tick exactly once', async () => {
    const prefix = env.prefix();
    const everyMs = 25;
    const keys = recorderKeys(prefix);
    for (let n = 0; n < 6; n++) {
      scheduler(prefix, `i${n}`)
        .addJob({
          name: 'fast',
          every: everyMs,
          catchUp: true,
          handler: (context) => recordRun(env.redis, prefix, context),
        })
        .start();
    }
    await waitFor(async () => (await env.redis.hlen(keys.runs)) >= 150, '150 ticks to run', 40_000);
    await Promise.all(open.map((s) => s.close()));
    const runs = await env.redis.hgetall(keys.runs);
    const ticks = Object.keys(runs)
      .map(Number)
      .sort((x, y) => x - y);
    expect(Object.entries(runs).filter(([, count]) => count !== '1')).toEqual([]);
    for (let n = 1; n < ticks.length; n++) expect(ticks[n]! - ticks[n - 1]!).toBe(everyMs);
  });

  it('the claim is a compare-and-set on the next tick: a stale view is refused even when a later tick is due', async () => {
    // Drives lua/schedulerClaim.lua directly: a process whose view of the schedule is stale only in a
    // narrow race, which the end-to-end tests above cannot force.
    const prefix = env.prefix();
    const keys = schedulerKeys(prefix);
    const jobKeys = [keys.status('job'), keys.runLock('job')];
    await runScript(
      env.redis,
      'scheduler/register',
      [keys.jobs, keys.status('job')],
      ['job', 1000, 'every 1000 ms', 'shared'],
    );
    const claim = (tick: number, next: number, token: string) =>
      runScript(env.redis, 'scheduler/claim', jobKeys, [tick, next, token, 30_000, token, 'shared']);

    expect((await claim(1000, 2000, 'a'))[0]).toBe(1);
    expect(await runScript(env.redis, 'scheduler/finish', jobKeys, ['a', 'succeeded', '', 0, 'shared'])).toBe(1);
    // Tick 2000 is due (long past) and the run lock is free, but b still believes 1000 is next.
    const refused = await claim(1000, 2000, 'b');
    expect(refused.slice(0, 2)).toEqual([0, 2000]);
    expect(await env.redis.hget(keys.status('job'), 'runCount')).toBe('1');
    expect((await claim(2000, 3000, 'b'))[0]).toBe(1);
    // While b's run holds the lock, the due tick 3000 waits.
    expect((await claim(3000, 4000, 'c')).slice(0, 2)).toEqual([0, 3000]);
  });

  it('a process killed mid-run blocks the job only until its run lock expires', async () => {
    const prefix = env.prefix();
    const everyMs = 100;
    const lockTtlMs = 3000; // renewed every second by the child, however busy the machine is
    const keys = recorderKeys(prefix);
    const stuck = child(prefix, 'hang', { EVERY_MS: String(everyMs), LOCK_TTL_MS: String(lockTtlMs) });
    const { started: childFence } = await stuck.message(
      (m): m is { started: number } => typeof m === 'object' && m !== null && 'started' in m,
      'the start of a run',
    );

    const local = scheduler(prefix, 'local');
    local
      .addJob({
        name: 'stuck',
        every: everyMs,
        lockTtlMs,
        handler: async (context) => {
          await env.redis.hset(keys.started, String(context.fence), 'local');
        },
      })
      .start();
    // While the child lives it keeps extending its run lock: the job is overdue, yet nobody else runs it.
    await waitFor(async () => {
      const status = await local.getJobStatus('stuck');
      return status!.nextRunAt! < Date.now() - 5 * everyMs ? status : null;
    }, 'the job to be overdue');
    let status = (await local.getJobStatus('stuck'))!;
    expect(status).toMatchObject({ state: 'running', lastInstance: 'child', runCount: childFence });
    expect(await env.redis.hkeys(keys.started)).toEqual([String(childFence)]);

    stuck.process.kill('SIGKILL');
    await stuck.exited;
    await waitFor(
      async () => (await env.redis.hget(keys.started, String(childFence + 1))) === 'local',
      'the next run, in this process',
    );
    status = (await waitFor(async () => {
      const s = await local.getJobStatus('stuck');
      return s?.state === 'succeeded' ? s : null;
    }, 'a recorded run'))!;
    expect(status.lastInstance).toBe('local');
    expect(status.runCount).toBeGreaterThan(childFence);
  });

  it('runs cron jobs once per tick across instances, on the expression’s seconds', async () => {
    const prefix = env.prefix();
    const keys = recorderKeys(prefix);
    for (const id of ['a', 'b', 'c']) {
      scheduler(prefix, id)
        .addJob({
          name: 'every-second',
          cron: '* * * * * *',
          handler: (context) => recordRun(env.redis, prefix, context),
        })
        .start();
    }
    await waitFor(async () => (await env.redis.hlen(keys.runs)) >= 3, 'three ticks');
    await Promise.all(open.map((s) => s.close()));
    const runs = await env.redis.hgetall(keys.runs);
    for (const [tick, count] of Object.entries(runs)) {
      expect(Number(tick) % 1000).toBe(0);
      expect(count).toBe('1');
    }
  });

  it('with oncePerTick: false every instance runs every tick', async () => {
    const prefix = env.prefix();
    const seen = new Map<number, Set<string>>();
    for (const id of ['a', 'b']) {
      scheduler(prefix, id)
        .addJob({
          name: 'everywhere',
          every: 100,
          oncePerTick: false,
          handler: ({ tick, instanceId }) => {
            seen.set(tick, (seen.get(tick) ?? new Set()).add(instanceId));
          },
        })
        .start();
    }
    await waitFor(() => [...seen.values()].filter((ids) => ids.size === 2).length >= 3, 'three ticks run by both');
    const status = await open[0]!.getJobStatus('everywhere');
    expect(status!.oncePerTick).toBe(false);
  });
});

describe('scheduler: status in Redis and control from any process', () => {
  it('another instance sees last start and end, duration, result or error, next run, run count and paused', async () => {
    const prefix = env.prefix();
    const failKey = `{${prefix}:test}:fail`;
    const runner = scheduler(prefix, 'runner');
    const reader = scheduler(prefix, 'reader');
    runner
      .addJob({
        name: 'report',
        every: 200,
        jitterMs: 20,
        handler: async ({ fence }) => {
          if (await env.redis.get(failKey)) throw new Error('disk full');
          return { fence };
        },
      })
      .start();
    const waitStatus = (what: string, check: (s: JobStatus) => boolean) =>
      waitFor(async () => {
        const s = await reader.getJobStatus('report');
        return s && check(s) ? s : null;
      }, what);

    let status = await waitStatus('two successful runs', (s) => s.runCount >= 2 && s.state === 'succeeded');
    expect(status).toMatchObject({
      name: 'report',
      schedule: 'every 200 ms',
      oncePerTick: true,
      paused: false,
      lastError: null,
      lastInstance: 'runner',
      lastResult: { fence: status.runCount },
    });
    expect(status.lastFinishedAt! - status.lastStartedAt!).toBe(status.lastDurationMs);
    expect(status.lastStartedAt!).toBeGreaterThanOrEqual(status.lastTick!);
    expect(status.nextRunAt!).toBeGreaterThan(status.lastTick!);

    await env.redis.set(failKey, '1');
    status = await waitStatus('a failed run', (s) => s.state === 'failed');
    expect(status.lastError).toContain('disk full');
    expect(status.lastResult).toBeUndefined();
    expect(status.failureCount).toBeGreaterThanOrEqual(1);
    await env.redis.del(failKey);

    await reader.pauseJob('report');
    expect((await runner.getJobStatus('report'))!.paused).toBe(true);
    status = await waitStatus('the run in progress to end', (s) => s.state !== 'running');
    const pausedAt = status.runCount;
    // Paused: ticks fall due and pass, and no process starts a run.
    await waitStatus('the job to be overdue', (s) => s.nextRunAt! < Date.now() - 1000);
    expect((await reader.getJobStatus('report'))!.runCount).toBe(pausedAt);

    await reader.resumeJob('report');
    await waitStatus('runs after resume', (s) => s.runCount > pausedAt + 1 && !s.paused);

    const all = await reader.getAllJobsStatus();
    expect(all.map((s) => s.name)).toEqual(['report']);
    await expect(reader.pauseJob('nope')).rejects.toBeInstanceOf(JobNotFoundError);
    expect(await reader.getJobStatus('nope')).toBeNull();
  });

  it('restartJob aborts the run in progress (its run lock is broken) and runs the job again at once', async () => {
    const prefix = env.prefix();
    const runner = scheduler(prefix, 'runner');
    const reasons: unknown[] = [];
    const errors: unknown[] = [];
    runner.on('error', (error) => errors.push(error));
    runner
      .addJob({
        name: 'hourly',
        every: 3_600_000,
        lockTtlMs: 900,
        handler: async ({ fence, signal }) => {
          if (fence > 1) return 'second run';
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          reasons.push(signal.reason);
          return 'aborted';
        },
      })
      .start();
    const other = scheduler(prefix, 'other');
    await waitFor(() => other.getJobStatus('hourly'), 'the job to be registered');
    await other.restartJob('hourly'); // the first tick is up to an hour away: run it now
    await waitFor(async () => (await other.getJobStatus('hourly'))?.state === 'running', 'the first run');
    await other.restartJob('hourly');
    const status = await waitFor(async () => {
      const s = await other.getJobStatus('hourly');
      return s?.runCount === 2 && s.state === 'succeeded' ? s : null;
    }, 'the second run');
    expect(status.lastResult).toBe('second run');
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(LockLostError);
    // The aborted run finished without its lock, so it did not overwrite the status.
    await waitFor(() => errors.some((e) => e instanceof LockLostError), 'the lost run to be reported');
  });

  it('a run past timeoutMs is recorded as failed and its signal aborted', async () => {
    const prefix = env.prefix();
    const reasons: unknown[] = [];
    const s = scheduler(prefix, 'a');
    s.addJob({
      name: 'slow',
      every: 200,
      timeoutMs: 100,
      handler: ({ signal }) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            reasons.push(signal.reason);
            resolve();
          }),
        ),
    }).start();
    const status = await waitFor(async () => {
      const st = await s.getJobStatus('slow');
      return st?.state === 'failed' ? st : null;
    }, 'a timed-out run');
    expect(status.lastError).toContain('timed out after 100 ms');
    expect(reasons[0]).toMatchObject({ code: 'JOB_TIMEOUT' });
  });

  it('a changed schedule takes effect at once instead of after the old schedule’s next tick', async () => {
    const prefix = env.prefix();
    const before = scheduler(prefix, 'old-version');
    before.addJob({ name: 'sync', every: 3_600_000, handler: () => 'old' }).start();
    await waitFor(() => before.getJobStatus('sync'), 'the job to be registered');
    await before.close();

    const after = scheduler(prefix, 'new-version');
    after.addJob({ name: 'sync', every: 100, handler: () => 'new' }).start();
    const status = await waitFor(async () => {
      const s = await after.getJobStatus('sync');
      return s?.state === 'succeeded' ? s : null;
    }, 'a run on the new schedule');
    expect(status).toMatchObject({ schedule: 'every 100 ms', lastResult: 'new', lastInstance: 'new-version' });
  });

  it('refuses bad job definitions with a message naming the fix', () => {
    const s = scheduler(env.prefix(), 'a');
    const handler = () => undefined;
    expect(() => s.addJob({ name: 'x', handler })).toThrow(/exactly one of every \(ms\) or cron/);
    expect(() => s.addJob({ name: 'x', every: 0, handler })).toThrow(/every must be a whole number of ms >= 1, got 0/);
    expect(() => s.addJob({ name: 'x', cron: 'not a cron', handler })).toThrow(
      /cron expression "not a cron".*is not valid/,
    );
    expect(() => s.addJob({ name: 'x', cron: '* * * * *', timezone: 'Mars/Olympus', handler })).toThrow(
      /timezone "Mars\/Olympus" is not an IANA time zone/,
    );
    expect(() => s.addJob({ name: 'bad name', every: 10, handler })).toThrow(/job name may contain only/);
    s.addJob({ name: 'x', every: 10, handler });
    expect(() => s.addJob({ name: 'x', every: 10, handler })).toThrow(/already added/);
  });
});
