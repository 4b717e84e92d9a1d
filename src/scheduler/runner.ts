import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClosedError, JobTimeoutError, LockLostError } from '../errors.js';
import type { schedulerKeys } from '../keys.js';
import { LeaseKeeper } from '../lease.js';
import { REPLY } from '../replies.js';
import { newRequestId, runScript, type RedisClient } from '../scripts.js';
import type { Job, JobContext } from './job.js';
import { encodeResult } from './status.js';
import { reasonOf } from '../validate.js';

/** What a runner needs from its Scheduler. */
export interface RunnerHost {
  readonly client: RedisClient;
  readonly keys: ReturnType<typeof schedulerKeys>;
  readonly instanceId: string;
  readonly pollMs: number;
  reportError(error: unknown, jobName: string): void;
  reportRun(outcome: RunOutcome): void;
}

/** One claim of a tick, kept across attempts until Redis has answered it. */
interface ClaimAttempt {
  tick: number;
  next: number;
  token: string;
  requestId: string;
  at: number;
}

export type RunOutcome =
  | { name: string; tick: number; fence: number; ok: true; result: unknown }
  | { name: string; tick: number; fence: number; ok: false; error: unknown };

const MAX_ERROR_CHARS = 2_000;

/**
 * Runs one job in one process. For a oncePerTick job it competes with the other processes through
 * lua/scheduler/claim.lua, sleeping until the next tick is due (or at most pollMs, so that a pause, a resume,
 * a restart or a freed run lock is noticed); otherwise it runs every tick itself.
 */
export class JobRunner {
  private readonly stopping = new AbortController();
  private running: AbortController | null = null;
  /** the lease keeper of the run in progress, stopped if close() gives up on the run */
  private keeper: LeaseKeeper | null = null;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly host: RunnerHost,
    readonly job: Job,
  ) {
    this.loopDone = job.oncePerTick ? this.sharedLoop() : this.localLoop();
  }

  /**
   * Stops claiming ticks; a run in progress has its signal aborted and is awaited until `deadline` (local
   * ms). After that it is abandoned: its run lock is no longer extended and frees itself at its TTL.
   */
  async close(deadline?: number): Promise<void> {
    this.stopping.abort();
    this.running?.abort(new ClosedError(`scheduler (job ${this.job.name} was running)`));
    if (deadline === undefined) return this.loopDone;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.loopDone.then(() => false),
      new Promise<boolean>(
        (resolve) =>
          (timer = setTimeout(() => resolve(true), Math.min(2 ** 31 - 1, Math.max(0, deadline - Date.now())))),
      ),
    ]);
    clearTimeout(timer);
    if (gaveUp) this.keeper?.stop();
  }

  private get keys() {
    const { keys } = this.host;
    return [keys.status(this.job.name), keys.runLock(this.job.name)];
  }

  /**
   * The claim of `tick`: the one still unanswered when it is for the same tick (its call failed and may
   * have run: repeating it with the same token and request id lets claim.lua recognise it), else a new one.
   */
  private attempt(unanswered: ClaimAttempt | null, tick: number, nextTick: () => number): ClaimAttempt {
    if (unanswered?.tick === tick) return unanswered;
    return { tick, next: nextTick(), token: randomUUID(), requestId: newRequestId(), at: Date.now() };
  }

  private claim(attempt: ClaimAttempt, mode: 'shared' | 'local'): Promise<number[]> {
    const { job, host } = this;
    const args = [attempt.tick, attempt.next, attempt.token, job.lockTtlMs, host.instanceId, mode];
    return runScript(host.client, 'scheduler/claim', this.keys, args, attempt.requestId);
  }

  private async sharedLoop(): Promise<void> {
    const { job, host } = this;
    let known: number | null = null; // the next tick as last read from Redis
    let serverOffset = 0; // Redis clock minus ours, for computing "now" as the scripts see it
    // A claim whose call failed may have run (its reply lost and not re-sent in time): the next attempt at
    // the same tick repeats it with the same token and request id, so it is recognised (lua/scheduler/claim.lua).
    let unanswered: ClaimAttempt | null = null;
    while (!this.stopping.signal.aborted) {
      try {
        if (known === null) {
          known = await this.register();
          continue;
        }
        const from: number = known;
        const attempt: ClaimAttempt = this.attempt(unanswered, from, () =>
          job.schedule.nextTick(from, Date.now() + serverOffset, job.catchUp),
        );
        unanswered = attempt;
        const { next, token, at: claimedAt } = attempt;
        const reply = await this.claim(attempt, 'shared');
        unanswered = null;
        if (reply[0] === REPLY.NOT_REGISTERED) {
          known = null; // cleanup forgot the job while this process still runs it
          continue;
        }
        if (reply[0] === REPLY.CLAIMED) {
          await this.run(known, reply[1]!, reply[2]!, token, claimedAt);
          known = next;
          continue;
        }
        const [, stored, now, paused, lockLeftMs] = reply as [number, number, number, number, number];
        serverOffset = now - Date.now();
        const staleView = stored !== known;
        known = stored;
        let waitMs: number;
        if (paused === 1) waitMs = this.host.pollMs;
        else if (stored > now) waitMs = Math.min(stored - now, host.pollMs);
        else if (lockLeftMs > 0)
          waitMs = Math.min(lockLeftMs, host.pollMs); // a long run holds the due tick
        else if (staleView)
          waitMs = 0; // another process moved the schedule: claim with the fresh view
        else waitMs = host.pollMs;
        if (waitMs > 0) await this.pause(waitMs);
      } catch (error) {
        host.reportError(error, job.name);
        await this.pause(host.pollMs);
      }
    }
  }

  private async localLoop(): Promise<void> {
    const { job, host } = this;
    let tick = job.schedule.firstTick(Date.now());
    let registered = false;
    let unanswered: ClaimAttempt | null = null; // as in sharedLoop
    while (!this.stopping.signal.aborted) {
      try {
        if (!registered) {
          await this.register();
          registered = true;
        }
        const waitMs = tick - Date.now();
        if (waitMs > 0) {
          await this.pause(Math.min(waitMs, 2 ** 31 - 1));
          continue;
        }
        const from: number = tick;
        const attempt: ClaimAttempt = this.attempt(unanswered, from, () =>
          job.schedule.nextTick(from, Date.now(), job.catchUp),
        );
        unanswered = attempt;
        const { next, token } = attempt;
        const reply = await this.claim(attempt, 'local');
        unanswered = null;
        if (reply[0] === REPLY.NOT_REGISTERED) {
          registered = false;
          continue;
        }
        if (reply[0] === REPLY.CLAIMED) await this.run(tick, reply[1]!, reply[2]!, token, Date.now());
        tick = next; // a paused job skips the tick
      } catch (error) {
        host.reportError(error, job.name);
        await this.pause(host.pollMs);
      }
    }
  }

  private async register(): Promise<number> {
    const { job, host } = this;
    const reply = await runScript(
      host.client,
      'scheduler/register',
      [host.keys.jobs, host.keys.status(job.name)],
      [job.name, job.schedule.firstTick(Date.now()), job.schedule.text, job.oncePerTick ? 'shared' : 'local'],
    );
    return Number(reply);
  }

  /** Runs the handler for a claimed tick and records the outcome. Never throws. */
  private async run(tick: number, fence: number, startedAt: number, token: string, claimedAt: number): Promise<void> {
    const { job, host } = this;
    const controller = new AbortController();
    this.running = controller;
    if (this.stopping.signal.aborted) controller.abort(new ClosedError('scheduler'));
    const [statusKey, runLockKey] = this.keys as [string, string];
    const keeper = job.oncePerTick
      ? new LeaseKeeper(
          async () => (await runScript(host.client, 'lock/extend', [runLockKey], [token, job.lockTtlMs])) === REPLY.OK,
          job.lockTtlMs,
          (cause) => new LockLostError(`scheduler-run:${job.name}`, { cause }),
          claimedAt,
        )
      : null;
    this.keeper = keeper;
    keeper?.signal.addEventListener('abort', () => controller.abort(keeper.signal.reason), { once: true });
    const context: JobContext = { name: job.name, tick, fence, signal: controller.signal, instanceId: host.instanceId };
    let timer: NodeJS.Timeout | undefined;
    let outcome: RunOutcome;
    try {
      if (job.jitterMs > 0) await sleep(Math.random() * job.jitterMs, undefined, { signal: controller.signal });
      const work = Promise.resolve().then(() => job.handler(context));
      const result = await (job.timeoutMs === null
        ? work
        : Promise.race([
            work,
            new Promise<never>((_resolve, reject) => {
              timer = setTimeout(() => {
                const error = new JobTimeoutError(job.name, job.timeoutMs!);
                controller.abort(error);
                reject(error);
              }, job.timeoutMs!);
            }),
          ]));
      outcome = { name: job.name, tick, fence, ok: true, result };
    } catch (error) {
      outcome = { name: job.name, tick, fence, ok: false, error };
    } finally {
      clearTimeout(timer);
      keeper?.stop();
      this.keeper = null;
      this.running = null;
    }
    const detail = outcome.ok ? encodeResult(outcome.result) : errorText(outcome.error);
    try {
      const recorded = await runScript(
        host.client,
        'scheduler/finish',
        [statusKey, runLockKey],
        [token, outcome.ok ? 'succeeded' : 'failed', detail, startedAt, job.oncePerTick ? 'shared' : 'local'],
      );
      if (recorded !== REPLY.OK) {
        host.reportError(
          new LockLostError(`scheduler-run:${job.name}`, {
            detail: `the run for tick ${tick} finished after losing its run lock; its outcome was not recorded`,
          }),
          job.name,
        );
      }
    } catch (error) {
      host.reportError(error, job.name);
    }
    host.reportRun(outcome);
  }

  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.stopping.signal });
    } catch {
      // closed: the loop ends
    }
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : reasonOf(error);
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}...` : text;
}
