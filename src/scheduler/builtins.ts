import { MAX_BATCH, type Queue } from '../queue/queue.js';
import type { QueueStats } from '../queue/types.js';
import { requireDuration } from '../queue/validate.js';
import { checkOptions, optionNames } from '../validate.js';
import type { Scheduler } from './scheduler.js';

/**
 * The built-in jobs of the seed system. Its outbox relay (every 60 s) arrives with the outbox, as one
 * more entry here and one more cleanup step.
 */
export const BUILTIN_JOB_NAMES = {
  /** every 10 s: promote due delayed messages and reclaim expired deliveries of each queue */
  maintenance: 'sluice.queue-maintenance',
  /** every 300 s: log getQueueStats() of each queue */
  monitoring: 'sluice.queue-monitoring',
  /** every 3,600 s: forget the status of scheduler jobs no process has run for the retention */
  cleanup: 'sluice.cleanup',
} as const;

export interface BuiltinJobsLogger {
  info(message: string, details?: unknown): void;
}

export interface BuiltinJobsOptions {
  /** the queues the maintenance and monitoring jobs look after */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- queues of any payload types (Queue<T> is invariant in T)
  queues: readonly Queue<any>[];
  /** where monitoring and cleanup report (default console) */
  logger?: BuiltinJobsLogger;
  /** cleanup forgets jobs whose next tick is this overdue (default 7 days, the seed's outbox retention) */
  cleanupRetentionMs?: number;
}

const SECOND = 1000;
export const DEFAULT_CLEANUP_RETENTION_MS = 7 * 24 * 3600 * SECOND;
/** batches per queue per run, so that one huge backlog cannot hold the job for long; the rest waits 10 s */
const MAX_BATCHES = 10;

const BUILTIN_OPTIONS = optionNames<BuiltinJobsOptions>({ queues: true, logger: true, cleanupRetentionMs: true });

export function addBuiltinJobs(scheduler: Scheduler, options: BuiltinJobsOptions): string[] {
  checkOptions(options, BUILTIN_OPTIONS, 'addBuiltinJobs(options)');
  const queues = [...(options.queues ?? [])];
  const logger = options.logger ?? console;
  const retentionMs = requireDuration('cleanupRetentionMs', options.cleanupRetentionMs ?? DEFAULT_CLEANUP_RETENTION_MS);

  // A safety net: dequeue already promotes and reclaims, but a queue nobody consumes would not.
  scheduler.addJob({
    name: BUILTIN_JOB_NAMES.maintenance,
    every: 10 * SECOND,
    handler: async () => {
      const done: Record<string, { promoted: number; reclaimed: number }> = {};
      for (const queue of queues) {
        done[queue.name] = { promoted: await drain(() => queue.promote()), reclaimed: await drain(() => queue.reclaim()) };
      }
      return done;
    },
  });

  // Every process logs in the seed; once per tick is enough when the logs are collected in one place.
  scheduler.addJob({
    name: BUILTIN_JOB_NAMES.monitoring,
    every: 300 * SECOND,
    handler: async () => {
      const stats: QueueStats[] = [];
      for (const queue of queues) {
        const queueStats = await queue.getQueueStats();
        logger.info(`[sluice] queue ${queue.name} stats`, queueStats);
        stats.push(queueStats);
      }
      return stats;
    },
  });

  // Cleans only what sluice itself would otherwise keep forever and nobody needs. Dead letters are left
  // alone: each is a failure someone has to look at, and purging them is the operator's call
  // (purgeDeadLetters). Lock fence counters are left alone: deleting one would let fences repeat.
  scheduler.addJob({
    name: BUILTIN_JOB_NAMES.cleanup,
    every: 3600 * SECOND,
    handler: async () => {
      const forgottenJobs = await scheduler.forgetAbandonedJobs(retentionMs);
      if (forgottenJobs.length > 0) logger.info(`[sluice] cleanup forgot abandoned scheduler jobs`, forgottenJobs);
      return { forgottenJobs };
    },
  });

  return Object.values(BUILTIN_JOB_NAMES);
}

async function drain(step: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const moved = await step();
    total += moved;
    if (moved < MAX_BATCH) break;
  }
  return total;
}
