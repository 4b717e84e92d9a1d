import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { closeOwned, resolveConnection, type Connection } from '../connection.js';
import { ClosedError, JobNotFoundError, ValidationError } from '../errors.js';
import { schedulerKeys, validatePrefix } from '../keys.js';
import { CLOSE_OPTIONS, checkOptions, MAX_GRACE_MS, optionNames, requireDuration } from '../validate.js';
import { REPLY } from '../replies.js';
import { runScript, type RedisClient } from '../scripts.js';
import { normaliseJob, type Job, type JobDefinition } from './job.js';
import { JobRunner, type RunOutcome, type RunnerHost } from './runner.js';
import { decodeStatus, type JobStatus } from './status.js';

export interface SchedulerOptions {
  /** an ioredis client (the caller closes it) or a redis:// URL (close() closes it) */
  connection: Connection;
  /** with a URL: how long a command waits for the connection before failing with a ConnectionError (default 5000) */
  connectTimeoutMs?: number;
  /** key prefix, so that applications can share a Redis (default `sluice`) */
  prefix?: string;
  /** names this process in job status (default `<hostname>:<pid>:<random>`) */
  instanceId?: string;
  /**
   * A waiting job looks at Redis at least this often (default 1 s), so a pause, resume or restart from
   * another process, or a run lock freed by a dead process, takes effect within about this long.
   */
  pollMs?: number;
}

/**
 * Runs interval and cron jobs so that, by default, each tick runs in exactly one of the processes that
 * share a Redis and prefix. Job status lives in Redis, so any process can read it and pause, resume or
 * restart a job, whether or not it runs that job.
 *
 * Events: 'completed' ({ name, tick, fence, result }), 'failed' ({ name, tick, fence, error }),
 * 'error' (error, jobName): an operational problem such as Redis being unreachable, or a run that lost
 * its run lock. Without an 'error' listener errors are written to the console.
 */
export interface SchedulerEvents {
  completed: [run: { name: string; tick: number; fence: number; result: unknown }];
  failed: [run: { name: string; tick: number; fence: number; error: unknown }];
  error: [error: unknown, jobName: string];
}

export interface Scheduler {
  on<E extends keyof SchedulerEvents>(event: E, listener: (...args: SchedulerEvents[E]) => void): this;
  once<E extends keyof SchedulerEvents>(event: E, listener: (...args: SchedulerEvents[E]) => void): this;
  off<E extends keyof SchedulerEvents>(event: E, listener: (...args: SchedulerEvents[E]) => void): this;
}

const SCHEDULER_OPTIONS = optionNames<SchedulerOptions>({
  connection: true,
  prefix: true,
  instanceId: true,
  pollMs: true,
  connectTimeoutMs: true,
});
/** Longest `pollMs`: 1 hour. */
export const MAX_POLL_MS = 3600 * 1000;
const DEFAULT_CLOSE_GRACE_MS = 30_000;

export class Scheduler extends EventEmitter {
  readonly prefix: string;
  readonly instanceId: string;
  readonly pollMs: number;
  readonly client: RedisClient;
  private readonly keys: ReturnType<typeof schedulerKeys>;
  private readonly ownsClient: boolean;
  private readonly runners = new Map<string, JobRunner>();
  /** jobs added before start() */
  private readonly pending = new Map<string, Job>();
  private readonly host: RunnerHost;
  private started = false;
  private closed = false;

  constructor(options: SchedulerOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new Scheduler(options) needs options with a connection (an ioredis client or a redis:// URL)',
      );
    }
    checkOptions(options, SCHEDULER_OPTIONS, 'new Scheduler(options)');
    this.prefix = validatePrefix(options.prefix ?? 'sluice');
    this.keys = schedulerKeys(this.prefix);
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    if (typeof this.instanceId !== 'string' || this.instanceId.length === 0 || this.instanceId.length > 200) {
      throw new ValidationError('instanceId', 'instanceId must be a string of 1 to 200 characters');
    }
    this.pollMs = Math.max(1, requireDuration('pollMs', options.pollMs ?? 1000, 0, MAX_POLL_MS));
    ({ client: this.client, owned: this.ownsClient } = resolveConnection(options.connection, {
      connectTimeoutMs: options.connectTimeoutMs,
    }));
    this.host = {
      client: this.client,
      keys: this.keys,
      instanceId: this.instanceId,
      pollMs: this.pollMs,
      reportError: (error, jobName) => this.reportError(error, jobName),
      reportRun: (outcome) => this.reportRun(outcome),
    };
  }

  /**
   * Adds a job to this process; it starts with start() (at once if already started). Each domain hands
   * out its own jobs as definitions: queueMaintenanceJobs(queues), schedulerCleanupJobs(scheduler).
   */
  addJob(definition: JobDefinition): this {
    this.assertOpen();
    const job = normaliseJob(definition);
    if (this.runners.has(job.name) || this.pending.has(job.name)) {
      throw new ValidationError('job name', `job ${job.name} was already added to this scheduler`);
    }
    if (this.started) this.runners.set(job.name, new JobRunner(this.host, job));
    else this.pending.set(job.name, job);
    return this;
  }

  /** Starts claiming and running the jobs added so far, and any added later. */
  start(): this {
    this.assertOpen();
    if (this.started) return this;
    this.started = true;
    for (const [name, job] of this.pending) this.runners.set(name, new JobRunner(this.host, job));
    this.pending.clear();
    return this;
  }

  /** Stops running a job in this process (a run in progress is aborted and awaited); its status stays. */
  async removeJob(name: string): Promise<void> {
    this.pending.delete(name);
    const runner = this.runners.get(name);
    this.runners.delete(name);
    await runner?.close();
  }

  /** The names of the jobs this process runs. */
  get jobNames(): string[] {
    return [...this.runners.keys(), ...this.pending.keys()];
  }

  /**
   * A job's status as every process sees it; `null` when no process registered it under this prefix (or
   * cleanup forgot it). Unlike pauseJob, resumeJob and restartJob, which throw JobNotFoundError, a query
   * for a job that is not there is not an error (as `queue.getMessage`).
   */
  async getJobStatus(name: string): Promise<JobStatus | null> {
    this.assertOpen();
    const hash = await this.client.hgetall(this.keys.status(name));
    return hash.nextRunAt === undefined ? null : decodeStatus(name, hash);
  }

  /** The status of every job registered under this prefix, by any process, sorted by name. */
  async getAllJobsStatus(): Promise<JobStatus[]> {
    this.assertOpen();
    const names = (await this.client.smembers(this.keys.jobs)).sort();
    if (names.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const name of names) pipeline.hgetall(this.keys.status(name));
    const replies = (await pipeline.exec()) ?? [];
    const statuses: JobStatus[] = [];
    names.forEach((name, n) => {
      const [error, hash] = replies[n] ?? [];
      if (error) throw error;
      const fields = hash as Record<string, string>;
      if (fields.nextRunAt !== undefined) statuses.push(decodeStatus(name, fields));
    });
    return statuses;
  }

  /** No process starts a run of the job until resumeJob; a run in progress finishes. */
  async pauseJob(name: string): Promise<void> {
    await this.control(name, 'pause');
  }

  /** Lets the job run again; a tick that fell due while it was paused runs at once. */
  async resumeJob(name: string): Promise<void> {
    await this.control(name, 'resume');
  }

  /**
   * Resumes the job and runs it now: a run in progress loses its run lock (its signal aborts at its next
   * extension and its outcome is not recorded) and a new tick is due at once, for whichever process
   * claims it first (within pollMs). The run count and the status history stay. A job with
   * oncePerTick: false keeps each process's own ticks; for it restart only resumes.
   */
  async restartJob(name: string): Promise<void> {
    await this.control(name, 'restart');
  }

  /**
   * Forgets the status of jobs whose next tick is more than `retentionMs` overdue, that nobody is running
   * and that are not paused: jobs no process runs any more. Used by the cleanup job. Returns their names.
   */
  async forgetAbandonedJobs(retentionMs: number): Promise<string[]> {
    this.assertOpen();
    requireDuration('retentionMs', retentionMs);
    const forgotten: string[] = [];
    for (const name of await this.client.smembers(this.keys.jobs)) {
      const keys = [this.keys.jobs, this.keys.status(name), this.keys.runLock(name)];
      if ((await runScript(this.client, 'scheduler/forget', keys, [name, Math.ceil(retentionMs)])) === REPLY.OK)
        forgotten.push(name);
    }
    return forgotten;
  }

  /**
   * Stops every job of this process: runs in progress are aborted (their signal) and awaited up to
   * `graceMs` (default 30 s) for their outcome to be recorded; a run still going after that is left to its
   * run lock's TTL. Then closes an owned connection.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    checkOptions(options, CLOSE_OPTIONS, 'close(options)');
    const graceMs = requireDuration('graceMs', options.graceMs ?? DEFAULT_CLOSE_GRACE_MS, 0, MAX_GRACE_MS);
    this.closed = true;
    const deadline = Date.now() + graceMs;
    await Promise.all([...this.runners.values()].map((runner) => runner.close(deadline)));
    this.runners.clear();
    this.pending.clear();
    if (this.ownsClient) await closeOwned(this.client, 'scheduler');
  }

  private async control(name: string, action: 'pause' | 'resume' | 'restart'): Promise<void> {
    this.assertOpen();
    const keys = [this.keys.status(name), this.keys.runLock(name)];
    if ((await runScript(this.client, 'scheduler/control', keys, [action])) !== REPLY.OK)
      throw new JobNotFoundError(name);
  }

  private reportError(error: unknown, jobName: string): void {
    if (this.listenerCount('error') > 0) this.emit('error', error, jobName);
    else console.error(`[sluice] scheduler job ${jobName}:`, error instanceof Error ? error.message : error);
  }

  private reportRun(outcome: RunOutcome): void {
    const { ok, ...rest } = outcome;
    const event = ok ? 'completed' : 'failed';
    if (this.listenerCount(event) > 0) this.emit(event, rest);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('scheduler');
  }
}
