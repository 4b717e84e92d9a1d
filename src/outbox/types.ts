import type { Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import type { EventBus } from '../index.js';

/** An event to store in the outbox: the bus's publish item, plus the aggregate it belongs to. */
export interface OutboxEvent<T = unknown> {
  /** what the event is about, as dotted words: `account`, `order` (at most 100 characters) */
  aggregateType: string;
  /** which one: events of one aggregate are published in the order they were written (at most 255 bytes) */
  aggregateId: string | number;
  /** the event type, as for bus.publish: `account.created` */
  type: string;
  data: T;
  /** the event id (default a uuid v4); publishing is idempotent on it */
  id?: string;
  source?: string;
  correlationId?: string;
  /** merged with `{ aggregateType, aggregateId }`, which every outbox event carries in its metadata */
  metadata?: Record<string, unknown>;
  /** the event's time (default: when it was written to the outbox) */
  timestamp?: Date | number | string;
  /** the event's headers, as for bus.publish; stored in the row and published with the event */
  headers?: Record<string, string>;
}

/** The connection `publishInTransaction` hands to the business writes: a mysql2/promise pool connection in a transaction. */
export type Transaction = PoolConnection;

/** What `add` writes through: the caller's connection, inside the caller's transaction. */
export interface Queryable {
  query: PoolConnection['query'];
}

export interface RetryOptions {
  /** the delay after a row's first refused publish (default 1,000 ms); doubled after each further one */
  baseMs?: number;
  /** the longest delay (default 300,000 ms) */
  maxMs?: number;
}

export interface OutboxOptions {
  /** a mysql2/promise Pool (you end it), or a mysql:// URL or mysql2 pool options (the outbox owns the pool) */
  mysql: Pool | string | PoolOptions;
  /** the event bus the relay publishes into; its dedupWindowMs must outlast the relay's retry horizon */
  bus: EventBus;
  /** the outbox table (default `sluice_outbox`): letters, digits and `_` */
  table?: string;
  /** publish attempts a row gets before it is FAILED (default 10); only refused events count, not Redis outages */
  maxAttempts?: number;
  retry?: RetryOptions;
}

export interface RelayOptions {
  /** at most this many rows per claim and publishMany (default 100, at most 1,000) */
  batchSize?: number;
  /** look for due rows at least this often even without a wake-up (default 1,000 ms) */
  pollMs?: number;
}

export interface OutboxStats {
  pending: number;
  failed: number;
  published: number;
  /** age of the oldest pending row in ms (the relay's lag); 0 when none is pending */
  oldestPendingAgeMs: number;
  /** events this Outbox instance has relayed since it was created (duplicates of a repeated publish included) */
  relayed: number;
}

export interface FailedRow {
  eventId: string;
  aggregateType: string;
  aggregateId: string;
  type: string;
  attempts: number;
  lastError: string | null;
  ageMs: number;
}

/** The outcome of one relay cycle. */
export interface RelayResult {
  /** rows published and marked PUBLISHED */
  published: number;
  /** rows the bus refused; each got an attempt counted (and is FAILED at maxAttempts) */
  refused: number;
}

export interface CleanupOptions {
  /** delete PUBLISHED rows published longer ago than this (default 7 days, the seed's) */
  retentionMs?: number;
  /** rows per DELETE (default 1,000) */
  batchSize?: number;
  /** DELETEs per call at most (default 100); the rest waits for the next run */
  maxBatches?: number;
}
