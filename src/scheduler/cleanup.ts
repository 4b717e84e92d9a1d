import { checkOptions, optionNames, requireDuration } from '../validate.js';
import type { JobDefinition, JobLogger } from './job.js';
import type { Scheduler } from './scheduler.js';

/** The names of the jobs schedulerCleanupJobs returns (the seed system's built-in cleanup). */
export const SCHEDULER_JOB_NAMES = {
  /** every 3,600 s: forget the status of scheduler jobs no process has run for the retention */
  cleanup: 'sluice.cleanup',
} as const;

export interface SchedulerCleanupOptions {
  /** where cleanup reports what it forgot (default console) */
  logger?: JobLogger;
  /** forget jobs whose next tick is this overdue (default 7 days, the seed's outbox retention) */
  retentionMs?: number;
}

const SECOND = 1000;
export const DEFAULT_CLEANUP_RETENTION_MS = 7 * 24 * 3600 * SECOND;
const CLEANUP_OPTIONS = optionNames<SchedulerCleanupOptions>({ logger: true, retentionMs: true });

/**
 * The scheduler's own cleanup job, for `scheduler.addJob`: every hour it forgets the status of jobs no
 * process has run for `retentionMs` (scheduler.forgetAbandonedJobs).
 *
 * It cleans only what sluice itself would otherwise keep forever and nobody needs. Dead letters are left
 * alone: each is a failure someone has to look at, and purging them is the operator's call
 * (purgeDeadLetters). Lock fence counters are left alone: deleting one would let fences repeat.
 */
export function schedulerCleanupJobs(scheduler: Scheduler, options: SchedulerCleanupOptions = {}): JobDefinition[] {
  checkOptions(options, CLEANUP_OPTIONS, 'schedulerCleanupJobs(scheduler, options)');
  const logger = options.logger ?? console;
  const retentionMs = requireDuration('retentionMs', options.retentionMs ?? DEFAULT_CLEANUP_RETENTION_MS);
  return [
    {
      name: SCHEDULER_JOB_NAMES.cleanup,
      every: 3600 * SECOND,
      handler: async () => {
        const forgottenJobs = await scheduler.forgetAbandonedJobs(retentionMs);
        if (forgottenJobs.length > 0) logger.info(`[sluice] cleanup forgot abandoned scheduler jobs`, forgottenJobs);
        return { forgottenJobs };
      },
    },
  ];
}
