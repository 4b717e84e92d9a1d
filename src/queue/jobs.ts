import type { JobDefinition, JobLogger } from '../scheduler/job.js';
import { checkOptions, optionNames } from '../validate.js';
import type { Queue } from './queue.js';
import type { QueueStats } from './types.js';
import { MAX_BATCH } from './validate.js';

/** The names of the jobs queueMaintenanceJobs returns (the seed system's built-in queue jobs). */
export const QUEUE_JOB_NAMES = {
  /** every 10 s: promote due delayed messages and reclaim expired deliveries of each queue */
  maintenance: 'sluice.queue-maintenance',
  /** every 300 s: log getStats() of each queue */
  monitoring: 'sluice.queue-monitoring',
} as const;

export interface QueueMaintenanceOptions {
  /** where monitoring reports (default console) */
  logger?: JobLogger;
}

const SECOND = 1000;
/** batches per queue per run, so that one huge backlog cannot hold the job for long; the rest waits 10 s */
const MAX_BATCHES = 10;
const MAINTENANCE_OPTIONS = optionNames<QueueMaintenanceOptions>({ logger: true });

/**
 * The scheduler jobs that look after `queues`, for `scheduler.addJob`: maintenance (every 10 s) promotes
 * due delayed messages and reclaims expired deliveries, a safety net for queues nobody consumes (dequeue
 * does both itself); monitoring (every 300 s) logs each queue's getStats().
 */
export function queueMaintenanceJobs(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- queues of any payload types (Queue<T> is invariant in T)
  queues: readonly Queue<any>[],
  options: QueueMaintenanceOptions = {},
): JobDefinition[] {
  checkOptions(options, MAINTENANCE_OPTIONS, 'queueMaintenanceJobs(queues, options)');
  const list = [...queues];
  const logger = options.logger ?? console;
  return [
    {
      name: QUEUE_JOB_NAMES.maintenance,
      every: 10 * SECOND,
      handler: async () => {
        const done: Record<string, { promoted: number; reclaimed: number }> = {};
        for (const queue of list) {
          done[queue.name] = {
            promoted: await drain(() => queue.promote()),
            reclaimed: await drain(() => queue.reclaim()),
          };
        }
        return done;
      },
    },
    {
      // Every process logs in the seed; once per tick is enough when the logs are collected in one place.
      name: QUEUE_JOB_NAMES.monitoring,
      every: 300 * SECOND,
      handler: async () => {
        const stats: QueueStats[] = [];
        for (const queue of list) {
          const queueStats = await queue.getStats();
          logger.info(`[sluice] queue ${queue.name} stats`, queueStats);
          stats.push(queueStats);
        }
        return stats;
      },
    },
  ];
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
