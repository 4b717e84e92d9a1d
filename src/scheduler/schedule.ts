import { CronExpressionParser } from 'cron-parser';
import { ValidationError } from '../errors.js';
import { describe } from '../keys.js';

/**
 * When a job's ticks fall. Ticks are pure functions of the schedule (never of when a process started),
 * so every process computes the same tick identities and the compare-and-set in lua/scheduler/claim.lua can
 * tell them apart.
 */
export interface Schedule {
  /** shown in the job's status, e.g. `every 10000 ms` or `cron 0 * * * * (UTC)` */
  readonly text: string;
  /** the first tick after `now` */
  firstTick(now: number): number;
  /**
   * The tick after `tick`, which ran at `now`. With catch-up, the very next tick, even if it is already
   * past (missed ticks then run one after another); without, the first tick after `now` (missed ticks are
   * skipped; the overdue one ran once).
   */
  nextTick(tick: number, now: number, catchUp: boolean): number;
}

/** Every `everyMs`, on multiples of it since the epoch, so that ticks are the same in every process. */
export function intervalSchedule(everyMs: unknown): Schedule {
  if (typeof everyMs !== 'number' || !Number.isInteger(everyMs) || everyMs < 1) {
    throw new ValidationError('every', `every must be a whole number of ms >= 1, got ${describe(everyMs)}`);
  }
  const after = (time: number) => (Math.floor(time / everyMs) + 1) * everyMs;
  return {
    text: `every ${everyMs} ms`,
    firstTick: after,
    nextTick: (tick, now, catchUp) => after(catchUp ? tick : Math.max(tick, now)),
  };
}

/**
 * A cron expression (5 fields, or 6 with seconds first), in `timezone` (default UTC). `H` fields are seeded
 * with the job's name, so every process picks the same minute.
 */
export function cronSchedule(expression: unknown, timezone: unknown, jobName: string): Schedule {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ValidationError(
      'cron',
      `cron must be a cron expression such as "*/5 * * * *", got ${describe(expression)}`,
    );
  }
  if (timezone !== undefined && (typeof timezone !== 'string' || timezone === '')) {
    throw new ValidationError(
      'timezone',
      `timezone must be an IANA name such as "Europe/Berlin", got ${describe(timezone)}`,
    );
  }
  const tz = timezone ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new ValidationError(
      'timezone',
      `timezone ${JSON.stringify(tz)} is not an IANA time zone name such as "Europe/Berlin"`,
    );
  }
  const after = (time: number): number => {
    const parsed = CronExpressionParser.parse(expression, {
      currentDate: new Date(time),
      tz,
      hashSeed: jobName,
      strict: false,
    });
    return parsed.next().getTime();
  };
  try {
    after(Date.now());
  } catch (error) {
    throw new ValidationError(
      'cron',
      `cron expression ${JSON.stringify(expression)} (timezone ${tz}) is not valid: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    text: `cron ${expression} (${tz})`,
    firstTick: after,
    nextTick: (tick, now, catchUp) => after(catchUp ? tick : Math.max(tick, now)),
  };
}
