import type { JobContext, JobDefinition } from '../index.js';
import { checkOptions, optionNames, requireDuration, requireInteger } from '../validate.js';
import { DEFAULT_OUTBOX_TABLE, DEFAULT_RETENTION_MS, type Outbox } from './outbox.js';

/** The outbox's scheduler jobs; a table other than the default adds `:<table>` to each name. */
export const OUTBOX_JOB_NAMES = {
  /** every 60 s (the seed's interval): relay what is due, a safety net under the relays' wake-ups and polling */
  relay: 'sluice.outbox-relay',
  /** every 3,600 s: delete PUBLISHED rows older than the retention, in bounded batches */
  cleanup: 'sluice.outbox-cleanup',
} as const;

export interface OutboxJobsOptions {
  /** how often the relay job runs (default 60,000 ms) */
  relayEveryMs?: number;
  /** relay batches per run at most (default 100); the rest waits for the relays or the next run */
  relayMaxBatches?: number;
  /** rows per relay batch (default 100) */
  batchSize?: number;
  /** how often cleanup runs (default 3,600,000 ms) */
  cleanupEveryMs?: number;
  /** PUBLISHED rows older than this are deleted (default 7 days, the seed's) */
  retentionMs?: number;
}

const JOBS_OPTIONS = optionNames<OutboxJobsOptions>({
  relayEveryMs: true,
  relayMaxBatches: true,
  batchSize: true,
  cleanupEveryMs: true,
  retentionMs: true,
});

/**
 * The outbox's jobs, for `scheduler.addJob`: the relay safety net and the cleanup of old PUBLISHED rows.
 * Each runs once per tick across the processes sharing the scheduler's Redis and prefix.
 *
 *   for (const job of outboxJobs(outbox)) scheduler.addJob(job);
 */
export function outboxJobs(outbox: Outbox, options: OutboxJobsOptions = {}): JobDefinition[] {
  checkOptions(options, JOBS_OPTIONS, 'outboxJobs(outbox, options)');
  const relayEveryMs = requireDuration('relayEveryMs', options.relayEveryMs ?? 60_000, 1);
  const relayMaxBatches = requireInteger('relayMaxBatches', options.relayMaxBatches ?? 100, 1, 1_000_000);
  const batchSize = requireInteger('batchSize', options.batchSize ?? 100, 1, 1000);
  const cleanupEveryMs = requireDuration('cleanupEveryMs', options.cleanupEveryMs ?? 3_600_000, 1);
  const retentionMs = requireDuration('retentionMs', options.retentionMs ?? DEFAULT_RETENTION_MS);
  const suffix = outbox.table === DEFAULT_OUTBOX_TABLE ? '' : `:${outbox.table}`;
  return [
    {
      name: OUTBOX_JOB_NAMES.relay + suffix,
      every: relayEveryMs,
      handler: async ({ signal }: JobContext) => {
        let published = 0;
        let refused = 0;
        for (let batch = 0; batch < relayMaxBatches && !signal.aborted; batch++) {
          const done = await outbox.relayOnce({ batchSize });
          published += done.published;
          refused += done.refused;
          if (done.published + done.refused < batchSize) break;
        }
        return { published, refused };
      },
    },
    {
      name: OUTBOX_JOB_NAMES.cleanup + suffix,
      every: cleanupEveryMs,
      handler: async () => ({ deleted: await outbox.cleanup({ retentionMs }) }),
    },
  ];
}
