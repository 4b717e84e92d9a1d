// The public surface of sluice/outbox: a deliberate list. Importing it needs mysql2 only when the outbox
// is given a URL or pool options (it is then loaded lazily); `sluice` itself never loads it.
export { Outbox, DEFAULT_OUTBOX_TABLE, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETENTION_MS, DEDUP_MARGIN_MS } from './outbox.js';
export { outboxJobs, OUTBOX_JOB_NAMES, type OutboxJobsOptions } from './jobs.js';
export { checkServerVersion } from './server.js';
export type {
  OutboxEvent,
  OutboxOptions,
  RelayOptions,
  RelayResult,
  RetryOptions,
  OutboxStats,
  FailedRow,
  CleanupOptions,
  Transaction,
  Queryable,
} from './types.js';
export {
  OutboxUnsupportedServerError,
  OutboxDatabaseError,
  OutboxMigrateBusyError,
  MissingDependencyError,
} from '../errors.js';
