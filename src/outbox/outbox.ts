import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool, PoolConnection, RowDataPacket, ResultSetHeader } from 'mysql2/promise';
import { ClosedError, OutboxMigrateBusyError, ValidationError } from '../errors.js';
import { describe } from '../keys.js';
import { MAX_BATCH, type EventBus, type ProduceScope, type PublishItem } from '../index.js';
import { mergeHeaders } from '../headers.js';
import { checkOptions, describeValue, optionNames, requireDuration, requireInteger } from '../validate.js';
import { dedupWindowOf, listenForWakes, sendWake, validateForBus, wakeChannel } from './bus.js';
import { checkMysqlUrl, databaseError, giveBack, isFatal, resolvePool } from './mysql.js';
import { relayCycle, RelayLoop, type RelayHost } from './relay.js';
import { checkServerVersion } from './server.js';
import { outboxSql, type OutboxSql } from './sql.js';
import type {
  CleanupOptions,
  FailedRow,
  OutboxEvent,
  OutboxOptions,
  OutboxStats,
  Queryable,
  RelayOptions,
  RelayResult,
  Transaction,
} from './types.js';

export const DEFAULT_OUTBOX_TABLE = 'sluice_outbox';
export const DEFAULT_MAX_ATTEMPTS = 10;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** How much longer than the retry horizon the bus must remember ids: room for relays being down a while. */
export const DEDUP_MARGIN_MS = 3600 * 1000;
const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_POLL_MS = 1000;
/**
 * Rows and bytes per INSERT statement: under MySQL's default max_allowed_packet (64 MiB on MySQL 8, 16 MiB on
 * MariaDB) with room to spare, however large each event is (at most maxEventBytes of the bus).
 */
const INSERT_CHUNK = 100;
const INSERT_CHUNK_BYTES = 4 * 1024 * 1024;
const MIGRATE_LOCK_WAIT_S = 60;
/** How long startRelay waits for its wake-up subscription before it starts on polling alone. */
const SUBSCRIBE_WAIT_MS = 2_000;

const OUTBOX_OPTIONS = optionNames<OutboxOptions>({
  mysql: true,
  bus: true,
  table: true,
  maxAttempts: true,
  retry: true,
});
const RETRY_OPTIONS = optionNames<NonNullable<OutboxOptions['retry']>>({ baseMs: true, maxMs: true });
const LIMIT_OPTIONS = optionNames<{ limit?: number }>({ limit: true });
const RETRY_FAILED_OPTIONS = optionNames<{ eventIds?: readonly string[] }>({ eventIds: true });
const RELAY_OPTIONS = optionNames<RelayOptions>({ batchSize: true, pollMs: true });
const CLEANUP_OPTIONS = optionNames<CleanupOptions>({ retentionMs: true, batchSize: true, maxBatches: true });
const EVENT_FIELDS = new Set([
  'aggregateType',
  'aggregateId',
  'type',
  'data',
  'id',
  'source',
  'correlationId',
  'metadata',
  'timestamp',
  'headers',
]);
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const AGGREGATE_TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const MAX_AGGREGATE_ID_BYTES = 255;

/** Rows as mysql2 returns them for the queries of listFailed and stats (columns named in sql.ts). */
interface FailedDbRow extends RowDataPacket {
  event_id: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  attempts: number | string;
  last_error: string | null;
  age_ms: number | string;
}
interface CountDbRow extends RowDataPacket {
  status: 'PENDING' | 'PUBLISHED' | 'FAILED';
  count: number | string;
}
interface AgeDbRow extends RowDataPacket {
  age_ms: number | string | null;
}

/** The bytes a row adds to an INSERT statement, near enough (each value is quoted and escaped). */
function rowBytes(row: Row): number {
  let bytes = 0;
  for (const value of row) bytes += Buffer.byteLength(value) + 4;
  return bytes;
}

/** One validated event, as the values of one INSERT row. */
type Row = [
  eventId: string,
  aggregateType: string,
  aggregateId: string,
  eventType: string,
  payload: string,
  metadata: string,
  headers: string,
];

/**
 * A transactional outbox on MySQL/MariaDB, relayed into an EventBus. The business write and the event
 * commit together or not at all (`publishInTransaction`); relays in any number of processes publish each
 * committed row once, in order per aggregate (`startRelay`). Built on the bus's public API only.
 *
 * Events: 'error' (error): a relay cycle failed (Redis or MySQL unreachable, a connection killed); the relay
 * retries by itself. Without a listener errors are written to the console.
 */
export class Outbox extends EventEmitter {
  readonly table: string;
  readonly bus: EventBus;
  readonly maxAttempts: number;
  readonly retry: { baseMs: number; maxMs: number };
  private readonly sql: OutboxSql;
  private readonly poolOption: unknown;
  private poolPromise: Promise<{ pool: Pool; owned: boolean }> | null = null;
  private serverCheck: Promise<void> | null = null;
  private readonly channel: string;
  private readonly relays = new Set<RelayLoop>();
  private listener: { subscribed: Promise<void>; close(): void } | null = null;
  private relayed = 0;
  private closed = false;
  private readonly host: RelayHost;

  constructor(options: OutboxOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new Outbox(options) needs options with mysql (a pool or a mysql:// URL) and bus (an EventBus)',
      );
    }
    checkOptions(options, OUTBOX_OPTIONS, 'new Outbox(options)');
    if (options.mysql === undefined)
      throw new ValidationError('mysql', 'new Outbox(options) needs mysql: a mysql2/promise Pool or a mysql:// URL');
    const bus = options.bus as Partial<EventBus> | undefined;
    if (
      typeof bus !== 'object' ||
      bus === null ||
      typeof bus.publishMany !== 'function' ||
      typeof bus.baseKey !== 'string'
    ) {
      throw new ValidationError('bus', `new Outbox(options) needs bus: an EventBus, got ${describeValue(options.bus)}`);
    }
    this.bus = options.bus;
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    if (typeof this.table !== 'string' || !TABLE_NAME.test(this.table)) {
      throw new ValidationError(
        'table',
        `table must be 1..64 letters, digits or _, not starting with a digit, got ${describe(options.table)}`,
      );
    }
    this.maxAttempts = requireInteger('maxAttempts', options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1, 1000);
    const retry = checkOptions<NonNullable<OutboxOptions['retry']>>(
      options.retry,
      RETRY_OPTIONS,
      'new Outbox(options).retry',
      'retry',
    );
    this.retry = {
      baseMs: requireDuration('retry.baseMs', retry.baseMs ?? 1000, 1),
      maxMs: requireDuration('retry.maxMs', retry.maxMs ?? 300_000, 1),
    };
    checkMysqlUrl(options.mysql);
    this.poolOption = options.mysql;
    this.sql = outboxSql(this.table);
    this.channel = wakeChannel(this.bus, this.table);
    this.host = {
      table: this.table,
      sql: this.sql,
      bus: this.bus,
      maxAttempts: this.maxAttempts,
      pool: () => this.pool(),
      backoffMs: (attempts) => this.backoffMs(attempts),
      countRelayed: (count) => (this.relayed += count),
      reportError: (error) => this.reportError(error),
    };
  }

  /** The delay after a row's `attempts`-th refused publish. */
  backoffMs(attempts: number): number {
    return Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** Math.max(0, attempts - 1));
  }

  /** The longest a row can wait between its first and its last publish attempt: the sum of its backoffs. */
  get retryHorizonMs(): number {
    let total = 0;
    for (let attempts = 1; attempts < this.maxAttempts; attempts++) total += this.backoffMs(attempts);
    return total;
  }

  private async pool(): Promise<Pool> {
    if (this.closed) throw new ClosedError(`outbox ${this.table}`);
    this.poolPromise ??= resolvePool(this.poolOption);
    return (await this.poolPromise).pool;
  }

  /** Refuses a server without SKIP LOCKED (once per Outbox). */
  private checkServer(): Promise<void> {
    this.serverCheck ??= (async () => {
      const pool = await this.pool();
      let version: string;
      try {
        const [rows] = await pool.query<RowDataPacket[]>(this.sql.version);
        version = String(rows[0]?.version);
      } catch (error) {
        throw databaseError(this.table, 'server version check', error);
      }
      checkServerVersion(version);
    })();
    this.serverCheck.catch(() => (this.serverCheck = null));
    return this.serverCheck;
  }

  /**
   * Creates the outbox table if it does not exist. Safe from several processes at once: they take turns
   * under a named server lock. Refuses servers without SKIP LOCKED (OutboxUnsupportedServerError).
   */
  async migrate(): Promise<void> {
    await this.checkServer();
    const pool = await this.pool();
    let connection: PoolConnection;
    try {
      connection = await pool.getConnection();
    } catch (error) {
      throw databaseError(this.table, 'migrate', error);
    }
    // GET_LOCK names are at most 64 characters on MySQL: a long table name is hashed.
    const lockName = `sluice.outbox.migrate.${this.table.length <= 40 ? this.table : createHash('sha1').update(this.table).digest('hex')}`;
    let broken = false;
    try {
      const [locked] = await connection.query<RowDataPacket[]>(this.sql.lockMigration, [lockName, MIGRATE_LOCK_WAIT_S]);
      if (Number(locked[0]?.locked) !== 1) {
        throw new OutboxMigrateBusyError(this.table, MIGRATE_LOCK_WAIT_S);
      }
      try {
        await connection.query(this.sql.createTable);
      } finally {
        await connection.query(this.sql.unlockMigration, [lockName]);
      }
    } catch (error) {
      broken = isFatal(error);
      throw databaseError(this.table, 'migrate', error);
    } finally {
      giveBack(connection, broken);
    }
  }

  /**
   * Validates events as bus.publish would and turns them into rows; nothing is written. With the bus's
   * instrumentation, each event gets a `create` scope whose headers (the trace context active now, in
   * the writer's request) are stored in its row, so that the relay's publish and the subscribers'
   * handlers continue that trace; the caller ends the scopes once the rows are written (or not).
   */
  private prepare(events: unknown): { rows: Row[]; eventIds: string[]; scopes: (ProduceScope | null)[] } {
    const list = Array.isArray(events) ? events : [events];
    if (list.length === 0 || list.length > MAX_BATCH) {
      throw new ValidationError(
        'events',
        `events must be an event or a list of 1..${MAX_BATCH} events, got ${Array.isArray(events) ? list.length : describeValue(events)}`,
      );
    }
    const now = Date.now();
    const rows: Row[] = [];
    const seen = new Set<string>();
    const hooks = this.bus.instrumentation;
    const scopes: (ProduceScope | null)[] = [];
    try {
      list.forEach((event: unknown, n) => {
        let added: Readonly<Record<string, string>> | null = null;
        if (hooks !== null) {
          const own = event !== null && typeof event === 'object' ? (event as OutboxEvent).headers : undefined;
          const scope = hooks.produce({
            operation: 'create',
            destination: this.bus.name,
            batch: false,
            messages: [own],
          });
          scopes.push(scope);
          added = scope?.headers ?? null;
        }
        try {
          rows.push(this.rowOf(event, now, added));
        } catch (error) {
          if (list.length === 1 || !(error instanceof ValidationError)) throw error;
          throw new ValidationError(error.field, `events[${n}]: ${error.message}`, { cause: error });
        }
        const id = rows[rows.length - 1]![0];
        if (seen.has(id)) throw new ValidationError('id', `events[${n}]: event id ${id} appears twice in one call`);
        seen.add(id);
      });
    } catch (error) {
      endScopes(scopes, null, error);
      throw error;
    }
    return { rows, eventIds: rows.map((row) => row[0]), scopes };
  }

  private rowOf(input: unknown, now: number, addedHeaders: Readonly<Record<string, string>> | null): Row {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new ValidationError(
        'event',
        `an outbox event is an object { aggregateType, aggregateId, type, data, ... }, got ${describeValue(input)}`,
      );
    }
    for (const key of Object.keys(input)) {
      if (!EVENT_FIELDS.has(key))
        throw new ValidationError(
          key,
          `unknown outbox event field ${JSON.stringify(key)}; known: ${[...EVENT_FIELDS].join(', ')}`,
        );
    }
    const event = input as OutboxEvent;
    const aggregateType = event.aggregateType;
    if (typeof aggregateType !== 'string' || aggregateType.length > 100 || !AGGREGATE_TYPE.test(aggregateType)) {
      throw new ValidationError(
        'aggregateType',
        `aggregateType must be 1..100 characters of dot-separated words of letters, digits, _ or -, like "account", got ${describe(aggregateType)}`,
      );
    }
    const rawId = event.aggregateId;
    const aggregateId = typeof rawId === 'number' && Number.isSafeInteger(rawId) ? String(rawId) : rawId;
    if (
      typeof aggregateId !== 'string' ||
      aggregateId.length === 0 ||
      Buffer.byteLength(aggregateId) > MAX_AGGREGATE_ID_BYTES
    ) {
      throw new ValidationError(
        'aggregateId',
        `aggregateId must be a non-empty string of at most ${MAX_AGGREGATE_ID_BYTES} bytes or a safe integer, got ${describe(rawId)}`,
      );
    }
    if (
      event.metadata !== undefined &&
      (event.metadata === null || typeof event.metadata !== 'object' || Array.isArray(event.metadata))
    ) {
      throw new ValidationError('metadata', `metadata must be an object, got ${describe(event.metadata)}`);
    }
    const item: PublishItem = {
      type: event.type,
      data: event.data === undefined ? null : event.data,
      metadata: { ...event.metadata, aggregateType, aggregateId },
      partitionKey: `${aggregateType}:${aggregateId}`,
      timestamp: event.timestamp ?? now,
      ...(event.id !== undefined ? { id: event.id } : {}),
      ...(event.source !== undefined ? { source: event.source } : {}),
      ...(event.correlationId !== undefined ? { correlationId: event.correlationId } : {}),
      ...(event.headers !== undefined || addedHeaders !== null
        ? { headers: mergeHeaders(event.headers, addedHeaders) as Record<string, string> }
        : {}),
    };
    const valid = validateForBus(this.bus, item);
    return [
      valid.id,
      aggregateType,
      aggregateId,
      valid.type,
      JSON.stringify(valid.data),
      JSON.stringify(valid.metadata),
      // The row's `headers` column holds the event's envelope fields, the event's own headers among them.
      JSON.stringify({
        source: valid.source,
        correlationId: valid.correlationId,
        timestamp: valid.timestamp,
        ...(valid.headers ? { headers: valid.headers } : {}),
      }),
    ];
  }

  private async insert(connection: Queryable, rows: Row[]): Promise<void> {
    for (let at = 0; at < rows.length;) {
      // At most INSERT_CHUNK rows and INSERT_CHUNK_BYTES of values per statement (events may be 1 MiB each).
      let end = at;
      let bytes = 0;
      while (
        end < rows.length &&
        end - at < INSERT_CHUNK &&
        (end === at || bytes + rowBytes(rows[end]!) <= INSERT_CHUNK_BYTES)
      ) {
        bytes += rowBytes(rows[end]!);
        end++;
      }
      const chunk = rows.slice(at, end);
      at = end;
      try {
        await connection.query(this.sql.insert(chunk.length), chunk.flat());
      } catch (error) {
        throw databaseError(this.table, 'insert', error);
      }
    }
  }

  /**
   * Runs `fn(tx)` (your writes, on `tx`) and stores the event(s) in one transaction on a connection of
   * the pool, commits, and wakes the relays. When `fn` or the insert throws, everything is rolled back and
   * nothing is ever published. Events are validated before anything is written; `events` may also be a
   * function of fn's result (an id the write generated), validated once fn has run. Returns fn's result
   * and the event ids.
   */
  async publishInTransaction<R>(
    fn: (tx: Transaction) => R | Promise<R>,
    events: OutboxEvent | readonly OutboxEvent[] | ((result: Awaited<R>) => OutboxEvent | readonly OutboxEvent[]),
  ): Promise<{ result: Awaited<R>; eventIds: string[] }> {
    if (typeof fn !== 'function')
      throw new ValidationError(
        'fn',
        `publishInTransaction(fn, events): fn must be a function of the transaction, got ${describeValue(fn)}`,
      );
    let prepared = typeof events === 'function' ? null : this.prepare(events);
    let connection: PoolConnection;
    try {
      const pool = await this.pool();
      try {
        connection = await pool.getConnection();
      } catch (error) {
        throw databaseError(this.table, 'connect', error);
      }
    } catch (error) {
      if (prepared) endScopes(prepared.scopes, null, error);
      throw error;
    }
    let broken = false;
    try {
      try {
        await connection.beginTransaction();
      } catch (error) {
        throw databaseError(this.table, 'begin', error);
      }
      const result = await fn(connection);
      prepared ??= this.prepare((events as (result: Awaited<R>) => unknown)(result));
      const { rows, eventIds, scopes } = prepared;
      await this.insert(connection, rows);
      try {
        await connection.commit();
      } catch (error) {
        throw databaseError(this.table, 'commit', error, 'the transaction may or may not have been committed');
      }
      this.wake();
      endScopes(scopes, eventIds, null);
      return { result, eventIds };
    } catch (error) {
      if (prepared) endScopes(prepared.scopes, null, error);
      broken = isFatal(error) || isFatal((error as { cause?: unknown }).cause);
      if (!broken) {
        try {
          await connection.rollback();
        } catch {
          broken = true;
        }
      }
      throw error;
    } finally {
      giveBack(connection, broken);
    }
  }

  /**
   * Stores event(s) through your own transaction (`tx`: a mysql2/promise connection inside BEGIN). They
   * are validated first; they go out once you commit. Call `wake()` after your commit for an immediate
   * relay, or let the poll find them. Returns the event ids.
   */
  async add(tx: Queryable, events: OutboxEvent | readonly OutboxEvent[]): Promise<string[]> {
    if (typeof tx !== 'object' || tx === null || typeof tx.query !== 'function') {
      throw new ValidationError(
        'tx',
        `add(tx, events): tx must be a mysql2/promise connection inside your transaction, got ${describeValue(tx)}`,
      );
    }
    const { rows, eventIds, scopes } = this.prepare(events);
    try {
      await this.insert(tx, rows);
    } catch (error) {
      endScopes(scopes, null, error);
      throw error;
    }
    endScopes(scopes, eventIds, null);
    return eventIds;
  }

  /** Wakes the relays of this table in this process at once, and in other processes through Redis. */
  wake(): void {
    for (const relay of this.relays) relay.wake();
    sendWake(this.bus, this.channel);
  }

  /** Refuses to relay when the bus could forget a published id while a row may still be published again. */
  private checkDedupWindow(): void {
    const window = dedupWindowOf(this.bus);
    const needed = this.retryHorizonMs + DEDUP_MARGIN_MS;
    if (window < needed) {
      throw new ValidationError(
        'dedupWindowMs',
        `the event bus's dedupWindowMs (${window} ms) must be at least the outbox's retry horizon plus 1 h (${needed} ms) ` +
          `so that a row published again after a relay crash is never delivered twice; raise the bus's dedupWindowMs ` +
          `(default 24 h) or lower the outbox's maxAttempts or retry.maxMs`,
      );
    }
  }

  private relayOptions(options: RelayOptions, where: string): { batchSize: number; pollMs: number } {
    checkOptions(options, RELAY_OPTIONS, where);
    return {
      batchSize: requireInteger('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE, 1, MAX_BATCH),
      pollMs: Math.max(1, requireDuration('pollMs', options.pollMs ?? DEFAULT_POLL_MS, 1, 3600 * 1000)),
    };
  }

  /** One relay cycle: claims up to `batchSize` due rows, publishes and marks them. */
  async relayOnce(options: Pick<RelayOptions, 'batchSize'> = {}): Promise<RelayResult> {
    const { batchSize } = this.relayOptions(options, 'relayOnce(options)');
    this.checkDedupWindow();
    await this.checkServer();
    return relayCycle(this.host, batchSize);
  }

  /**
   * Starts a relay in this process: a cycle after every wake-up (a commit through publishInTransaction
   * here or in any process sharing the bus's Redis), at least every `pollMs`, and at once again after a
   * full batch. Several relays (here or elsewhere) share the work. Resolves once the relay listens for
   * wake-ups (or after 2 s when Redis does not answer: it then polls, and listens once Redis is back);
   * `stop()` finishes the current cycle and stops.
   */
  async startRelay(options: RelayOptions = {}): Promise<{ stop(): Promise<void> }> {
    if (this.closed) throw new ClosedError(`outbox ${this.table}`);
    const { batchSize, pollMs } = this.relayOptions(options, 'startRelay(options)');
    this.checkDedupWindow();
    await this.checkServer();
    // close() may have run while the server was checked.
    if (this.closed) throw new ClosedError(`outbox ${this.table}`);
    this.listener ??= listenForWakes(
      this.bus,
      this.channel,
      () => {
        for (const relay of this.relays) relay.wake();
      },
      (error) => this.reportError(error),
    );
    // Wait for the wake-up subscription, so that a commit made next wakes this relay; but not for long:
    // with Redis unreachable the relay starts anyway, polls, and subscribes once Redis answers.
    const subscribed = this.listener.subscribed;
    const waited = new AbortController();
    await Promise.race([
      subscribed,
      sleep(SUBSCRIBE_WAIT_MS, undefined, { signal: waited.signal }).catch(() => undefined),
    ]);
    waited.abort();
    if (this.closed) throw new ClosedError(`outbox ${this.table}`);
    const relay = new RelayLoop(this.host, batchSize, pollMs);
    this.relays.add(relay);
    return {
      stop: async () => {
        await relay.stop();
        this.relays.delete(relay);
      },
    };
  }

  /**
   * Puts FAILED rows back to PENDING with a fresh set of attempts: those of `eventIds`, or all of them.
   * Returns how many.
   */
  async retryFailed(options: { eventIds?: readonly string[] } = {}): Promise<number> {
    checkOptions(options, RETRY_FAILED_OPTIONS, 'retryFailed(options)');
    const { eventIds } = options;
    if (eventIds !== undefined) requireIds('retryFailed(options)', eventIds);
    if (eventIds?.length === 0) return 0;
    const done = await this.run<ResultSetHeader>(
      'retryFailed',
      eventIds ? this.sql.retryFailedIds : this.sql.retryFailed,
      eventIds ? [eventIds] : [],
    );
    if (done.affectedRows > 0) this.wake();
    return done.affectedRows;
  }

  /**
   * Deletes FAILED rows (a poison event you have looked at), releasing the later events of their
   * aggregates. Returns how many were deleted.
   */
  async discardFailed(eventIds: readonly string[]): Promise<number> {
    requireIds('discardFailed(eventIds)', eventIds);
    if (eventIds.length === 0) return 0;
    const done = await this.run<ResultSetHeader>('discardFailed', this.sql.discardFailedIds, [eventIds]);
    if (done.affectedRows > 0) this.wake();
    return done.affectedRows;
  }

  /** The oldest FAILED rows (at most `limit`, default 100), with their last error. */
  async listFailed(options: { limit?: number } = {}): Promise<FailedRow[]> {
    checkOptions(options, LIMIT_OPTIONS, 'listFailed(options)');
    const limit = requireInteger('limit', options.limit ?? 100, 1, MAX_BATCH);
    const rows = await this.run<FailedDbRow[]>('listFailed', this.sql.listFailed, [limit]);
    return rows.map((row) => ({
      eventId: row.event_id,
      aggregateType: row.aggregate_type,
      aggregateId: row.aggregate_id,
      type: row.event_type,
      attempts: Number(row.attempts),
      lastError: row.last_error,
      ageMs: Number(row.age_ms),
    }));
  }

  /** Deletes PUBLISHED rows older than the retention, in bounded batches. Returns how many were deleted. */
  async cleanup(options: CleanupOptions = {}): Promise<number> {
    checkOptions(options, CLEANUP_OPTIONS, 'cleanup(options)');
    const retentionMs = requireDuration('retentionMs', options.retentionMs ?? DEFAULT_RETENTION_MS);
    const batchSize = requireInteger('batchSize', options.batchSize ?? 1000, 1, 100_000);
    const maxBatches = requireInteger('maxBatches', options.maxBatches ?? 100, 1, 1_000_000);
    let deleted = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const done = await this.run<ResultSetHeader>('cleanup', this.sql.deletePublished, [
        Math.round(retentionMs * 1000),
        batchSize,
      ]);
      deleted += done.affectedRows;
      if (done.affectedRows < batchSize) break;
    }
    return deleted;
  }

  /** The events this instance has relayed since it was created, as `stats().relayed`, without a query. */
  get relayedCount(): number {
    return this.relayed;
  }

  /** Row counts by status, the relay lag, and the events relayed by this instance. */
  async stats(): Promise<OutboxStats> {
    const counts = await this.run<CountDbRow[]>('stats', this.sql.countByStatus, []);
    const oldest = await this.run<AgeDbRow[]>('stats', this.sql.oldestPending, []);
    const byStatus = Object.fromEntries(counts.map((row) => [row.status, Number(row.count)]));
    return {
      pending: byStatus.PENDING ?? 0,
      failed: byStatus.FAILED ?? 0,
      published: byStatus.PUBLISHED ?? 0,
      oldestPendingAgeMs: Math.max(0, Number(oldest[0]?.age_ms ?? 0)),
      relayed: this.relayed,
    };
  }

  private async run<T>(operation: string, statement: string, params: unknown[]): Promise<T> {
    const pool = await this.pool();
    try {
      const [result] = await pool.query(statement, params);
      return result as T;
    } catch (error) {
      throw databaseError(this.table, operation, error);
    }
  }

  private reportError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else console.error(`[sluice] outbox ${this.table} relay:`, error instanceof Error ? error.message : error);
  }

  /** Stops this instance's relays (each finishes its cycle), stops listening for wake-ups and, if the outbox opened it, ends the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.relays].map((relay) => relay.stop()));
    this.relays.clear();
    this.listener?.close();
    if (this.poolPromise) {
      const { pool, owned } = await this.poolPromise.catch(() => ({ pool: null, owned: false }));
      if (owned && pool) await pool.end();
    }
  }
}

/** Tells each event's create scope how its write ended (scopes and ids in the same order). */
function endScopes(scopes: readonly (ProduceScope | null)[], eventIds: readonly string[] | null, error: unknown): void {
  scopes.forEach((scope, n) => scope?.end(eventIds ? { ids: [eventIds[n]!] } : { error }));
}

function requireIds(where: string, ids: unknown): void {
  if (!Array.isArray(ids) || ids.length > MAX_BATCH || ids.some((id) => typeof id !== 'string')) {
    throw new ValidationError(
      'eventIds',
      `${where}: eventIds must be a list of at most ${MAX_BATCH} event ids (strings), got ${describeValue(ids)}`,
    );
  }
}
