import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler, type JobContext, type JobStatus, type SchedulerOptions } from '../src/index.js';
import { schedulerKeys } from '../src/keys.js';
import type { ScriptName } from '../src/scripts.js';
import { useProxy } from './faults.helpers.js';
import { scriptCall, type LoseReplyOptions } from './proxy.js';
import { redisUrl, useRedis, waitFor } from './helpers.js';

/**
 * Guarantee 10 for the scheduler: the reply of one scheduler script is lost and ioredis re-sends the call
 * after reconnecting. A claimed tick must run (once), a finished run must be recorded once without a
 * spurious "lost its run lock", and pause, resume and restart must each act once. The faulty scheduler
 * is made from a URL to the fault proxy, as a user would; checks read Redis directly.
 */

const env = useRedis();
const faults = useProxy();
let open: Scheduler[] = [];

afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

interface Watched {
  scheduler: Scheduler;
  errors: unknown[];
  completed: { tick: number; fence: number; result: unknown }[];
  failed: { tick: number; fence: number; error: unknown }[];
}

/** A scheduler reaching Redis through the fault proxy (or, with `direct`, straight), with its events recorded. */
function scheduler(prefix: string, options: Partial<SchedulerOptions> = {}, direct = false): Watched {
  const connection = direct ? redisUrl() : faults.proxy.url;
  const s = new Scheduler({ connection, prefix, instanceId: 'faulty', pollMs: 50, ...options });
  const watched: Watched = { scheduler: s, errors: [], completed: [], failed: [] };
  s.on('error', (error) => watched.errors.push(error));
  s.on('completed', (run) => watched.completed.push(run));
  s.on('failed', (run) => watched.failed.push(run));
  open.push(s);
  return watched;
}

function loseReplyOf(script: ScriptName, options: Partial<LoseReplyOptions> = {}) {
  const lost = faults.proxy.loseReply({ command: scriptCall(script), ...options });
  return () => expect(lost.hasFired, `the reply of ${script} was lost and the call re-sent`).toBe(true);
}

/** schedulerClaim's reply when it claimed the tick: `{1, fence, now}` */
const claimed = (reply: Buffer) => reply.toString('latin1').startsWith('*3\r\n:1\r\n');

async function status(s: Scheduler, name: string): Promise<JobStatus> {
  const found = await s.getJobStatus(name);
  expect(found, `status of job ${name}`).not.toBeNull();
  return found!;
}

describe('scheduler: a lost reply re-sent by ioredis has the effect of one call', () => {
  it('claim: the claimed tick runs, once, and the job is not left running and blocked', async () => {
    const prefix = env.prefix();
    const { scheduler: s, errors } = scheduler(prefix);
    const runs: JobContext[] = [];
    const fired = loseReplyOf('scheduler/claim', { reply: claimed });
    // A long run-lock TTL: a tick claimed but not run would block the job far past the test's deadline.
    s.addJob({ name: 'job', every: 200, lockTtlMs: 300_000, handler: (context) => void runs.push(context) }).start();
    await waitFor(() => runs.length > 0, 'the claimed tick to run').catch(async (error: Error) => {
      throw new Error(`${error.message}; job status: ${JSON.stringify(await s.getJobStatus('job'))}`);
    });
    fired();
    const first = runs[0]!;
    expect(first.fence).toBe(1);
    await waitFor(() => runs.length >= 3, 'two more ticks to run');
    await s.close();
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size, `each tick runs once: ${ticks.join(', ')}`).toBe(ticks.length);
    expect(runs.map((r) => r.fence)).toEqual(runs.map((_, n) => n + 1));
    const after = await status(scheduler(prefix).scheduler, 'job');
    expect(after).toMatchObject({ state: 'succeeded', runCount: runs.length, lastTick: ticks.at(-1), failureCount: 0 });
    expect(errors).toEqual([]);
  });

  it('finish of a successful run records it once, with no "lost its run lock" error, and frees the run lock', async () => {
    const prefix = env.prefix();
    const { scheduler: s, errors, completed } = scheduler(prefix);
    const fired = loseReplyOf('scheduler/finish');
    s.addJob({ name: 'job', every: 200, lockTtlMs: 300_000, handler: (context) => ({ fence: context.fence }) }).start();
    await waitFor(() => completed.length > 0, 'the first run to complete');
    fired();
    expect(errors).toEqual([]);
    expect(await env.redis.exists(schedulerKeys(prefix).runLock('job'))).toBe(0);
    // The next tick is claimed and runs: nothing holds the run lock.
    await waitFor(() => completed.length >= 2, 'the next tick to run');
    await s.close();
    expect(errors).toEqual([]);
    expect(await status(scheduler(prefix).scheduler, 'job')).toMatchObject({
      state: 'succeeded',
      runCount: completed.length,
      failureCount: 0,
      lastResult: { fence: completed.length },
    });
  });

  it('finish of a failed run counts the failure once, with no "lost its run lock" error', async () => {
    const prefix = env.prefix();
    const { scheduler: s, errors, completed, failed } = scheduler(prefix);
    const fired = loseReplyOf('scheduler/finish');
    s.addJob({
      name: 'job',
      every: 200,
      lockTtlMs: 300_000,
      handler: (context) => {
        if (context.fence === 1) throw new Error('first run fails');
      },
    }).start();
    await waitFor(() => failed.length > 0, 'the first run to fail');
    fired();
    expect(errors).toEqual([]);
    expect(await status(s, 'job')).toMatchObject({
      state: 'failed',
      runCount: 1,
      failureCount: 1,
      lastError: 'Error: first run fails',
    });
    await waitFor(() => completed.length > 0, 'the next tick to run');
    await s.close();
    expect(errors).toEqual([]);
    expect(await status(scheduler(prefix).scheduler, 'job')).toMatchObject({ state: 'succeeded', failureCount: 1 });
  });

  it('pause and resume of a job each take effect once', async () => {
    const prefix = env.prefix();
    const { scheduler: runner, completed } = scheduler(prefix);
    runner.addJob({ name: 'job', every: 200, handler: () => undefined }).start();
    await waitFor(() => completed.length > 0, 'the job to run');
    const control = scheduler(prefix).scheduler;
    let fired = loseReplyOf('scheduler/control');
    await control.pauseJob('job');
    fired();
    expect(await status(control, 'job')).toMatchObject({ paused: true });
    fired = loseReplyOf('scheduler/control');
    await control.resumeJob('job');
    fired();
    expect(await status(control, 'job')).toMatchObject({ paused: false });
    const ran = completed.length;
    await waitFor(() => completed.length > ran, 'the job to run again after resume');
  });

  it('restart breaks the lock of the run in progress once, not the lock of the run it started', async () => {
    const prefix = env.prefix();
    // Two processes run an hourly job (it runs only when restarted); each run is held until let go.
    const started: JobContext[] = [];
    const finish: (() => void)[] = [];
    const runners = ['a', 'b'].map((id) => scheduler(prefix, { instanceId: id }, true));
    for (const { scheduler: runner } of runners) {
      runner
        .addJob({
          name: 'job',
          every: 3_600_000,
          lockTtlMs: 300_000,
          handler: (context) => {
            started.push(context);
            return new Promise<void>((resolve) => {
              finish.push(resolve);
              context.signal.addEventListener('abort', () => resolve());
            });
          },
        })
        .start();
    }
    const control = scheduler(prefix, { instanceId: 'control' }).scheduler;
    await waitFor(() => control.getJobStatus('job'), 'the job to be registered');

    // The first restart makes a tick due: one process runs it and stays busy with it.
    await control.restartJob('job');
    await waitFor(() => started.length === 1, 'the restarted tick to start');

    // The second restart breaks that run's lock and makes a tick due, which the other process runs. Its
    // reply is lost and the client stays away until that run is going: the re-send then finds the run
    // the restart started, which it must leave alone.
    const fired = loseReplyOf('scheduler/control', { refuseAfter: true });
    const restarted = control.restartJob('job');
    await waitFor(() => started.length === 2, 'the second restart to start a run');
    faults.proxy.accept();
    await restarted;
    fired();
    expect(started.map((run) => run.fence)).toEqual([1, 2]);
    const keys = schedulerKeys(prefix);
    expect(await env.redis.exists(keys.runLock('job')), 'the run the restart started still holds the run lock').toBe(1);
    expect(await status(control, 'job')).toMatchObject({
      state: 'running',
      runCount: 2,
      lastTick: started[1]!.tick,
      paused: false,
    });

    for (const resolve of finish) resolve();
    const completed = () => runners.flatMap((r) => r.completed);
    await waitFor(() => completed().some((run) => run.fence === 2), 'the second run to complete');
    expect(started).toHaveLength(2);
    expect(started[1]!.signal.aborted, 'the run the restart started was never aborted').toBe(false);
    expect(await status(control, 'job')).toMatchObject({ state: 'succeeded', runCount: 2, failureCount: 0 });
  });
});
