import { ValidationError } from '../errors.js';
import { validateName } from '../keys.js';
import { checkOptions, optionalBoolean, optionNames, requireDuration, requireInteger } from '../validate.js';
import { cronSchedule, intervalSchedule, type Schedule } from './schedule.js';

/** What a job's handler receives for one run. */
export interface JobContext {
  readonly name: string;
  /**
   * The tick this run is for (ms since the epoch): the same number in every process, and with
   * oncePerTick run by exactly one of them.
   */
  readonly tick: number;
  /** grows with every run of this job (its run count): a fencing token for what the job writes */
  readonly fence: number;
  /** fires when the run timed out, its run lock was lost (restartJob, or a stall past lockTtlMs), or the scheduler closed */
  readonly signal: AbortSignal;
  /** the scheduler instance running it */
  readonly instanceId: string;
}

export type JobHandler = (context: JobContext) => unknown;

/** Where the jobs that sluice's domains hand out (queueMaintenanceJobs ...) report; `console` is one. */
export interface JobLogger {
  info(message: string, details?: unknown): void;
}

export interface JobDefinition {
  /** unique under the prefix: letters, digits and `_ - . :` */
  name: string;
  /** run every this many ms, on multiples of it since the epoch (give `every` or `cron`) */
  every?: number;
  /** a cron expression, 5 fields or 6 with seconds first (give `every` or `cron`) */
  cron?: string;
  /** time zone of `cron` (default UTC) */
  timezone?: string;
  handler: JobHandler;
  /** run each tick once across all processes (default true); false: every process runs every tick */
  oncePerTick?: boolean;
  /** a run taking longer is recorded as failed with JobTimeoutError and its signal aborted (default: none) */
  timeoutMs?: number;
  /** wait a random 0..jitterMs after claiming a tick before running, to spread jobs due together (default 0) */
  jitterMs?: number;
  /** run every missed tick, one after another, after downtime or a long run (default false: run the latest once) */
  catchUp?: boolean;
  /**
   * TTL of the run lock of a oncePerTick job, extended about every third of it while the handler runs
   * (default 30 s). A process that dies mid-run blocks the job for at most this long.
   */
  lockTtlMs?: number;
}

export interface Job {
  readonly name: string;
  readonly schedule: Schedule;
  readonly handler: JobHandler;
  readonly oncePerTick: boolean;
  readonly timeoutMs: number | null;
  readonly jitterMs: number;
  readonly catchUp: boolean;
  readonly lockTtlMs: number;
}

const JOB_OPTIONS = optionNames<JobDefinition>({
  name: true,
  every: true,
  cron: true,
  timezone: true,
  handler: true,
  oncePerTick: true,
  timeoutMs: true,
  jitterMs: true,
  catchUp: true,
  lockTtlMs: true,
});
const DEFAULT_LOCK_TTL_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export function normaliseJob(definition: JobDefinition): Job {
  if (typeof definition !== 'object' || definition === null) {
    throw new ValidationError('job', 'a job is an object with name, every or cron, and handler');
  }
  checkOptions(definition, JOB_OPTIONS, 'addJob(definition)', 'job');
  const name = validateName('job name', definition.name);
  if ((definition.every === undefined) === (definition.cron === undefined)) {
    throw new ValidationError('every', `job ${name} needs exactly one of every (ms) or cron (expression)`);
  }
  const schedule =
    definition.every !== undefined
      ? intervalSchedule(definition.every)
      : cronSchedule(definition.cron, definition.timezone, name);
  if (typeof definition.handler !== 'function') {
    throw new ValidationError('handler', `job ${name} needs a handler function`);
  }
  const optionalMs = (field: string, value: number | undefined, min: number): number | null =>
    value === undefined ? null : requireInteger(field, Math.ceil(requireDuration(field, value)), min, MAX_TIMER_MS);
  return {
    name,
    schedule,
    handler: definition.handler,
    oncePerTick: optionalBoolean('oncePerTick', definition.oncePerTick, true),
    timeoutMs: optionalMs('timeoutMs', definition.timeoutMs, 1),
    jitterMs: optionalMs('jitterMs', definition.jitterMs, 0) ?? 0,
    catchUp: optionalBoolean('catchUp', definition.catchUp, false),
    lockTtlMs: optionalMs('lockTtlMs', definition.lockTtlMs, 1) ?? DEFAULT_LOCK_TTL_MS,
  };
}
