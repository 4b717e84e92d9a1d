import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { EventBus, PublishItem } from '../index.js';
import { reasonOf } from '../validate.js';
import { publishToBus, validateForBus } from './bus.js';
import { databaseError, giveBack, isFatal } from './mysql.js';
import { aggregateParams, STATUS, type AggregateKey, type OutboxSql } from './sql.js';
import type { RelayResult } from './types.js';

/** What a relay needs of its Outbox. */
export interface RelayHost {
  readonly table: string;
  readonly sql: OutboxSql;
  readonly bus: EventBus;
  readonly maxAttempts: number;
  pool(): Promise<Pool>;
  /** ms to wait after a row's `attempts`-th refused publish */
  backoffMs(attempts: number): number;
  countRelayed(count: number): void;
  reportError(error: unknown): void;
}

interface LockedRow extends RowDataPacket {
  id: number;
  event_id: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  payload: string;
  metadata: string;
  headers: string;
  attempts: number;
  due: number;
}

interface RunRow extends RowDataPacket {
  id: number;
  aggregate_type: string;
  aggregate_id: string;
}

const keyOf = (row: { aggregate_type: string; aggregate_id: string }) =>
  `${row.aggregate_type}\u0000${row.aggregate_id}`;

/**
 * The rows to publish, in id order: for each claimed aggregate, its unpublished rows from its head for as
 * long as each is locked by this relay and due. An aggregate whose first unpublished row (by the plain read)
 * is not one of our heads is left alone: another relay holds that row, or it just became visible.
 */
export function composeRuns<L extends { id: number; due: number }>(
  headIds: ReadonlySet<number>,
  locked: readonly L[],
  unpublished: readonly RunRow[],
  limit: number,
): L[] {
  const lockedById = new Map(locked.map((row) => [row.id, row]));
  const open = new Map<string, boolean>();
  const runs: L[] = [];
  for (const row of unpublished) {
    const key = keyOf(row);
    if (!open.has(key)) open.set(key, headIds.has(row.id));
    if (!open.get(key)) continue;
    const mine = lockedById.get(row.id);
    if (!mine || Number(mine.due) !== 1 || runs.length >= limit) {
      open.set(key, false);
      continue;
    }
    runs.push(mine);
  }
  return runs;
}

/** A stored row as the bus's publish item: the aggregate is its partition key, so order holds to the handlers. */
function itemOf(row: LockedRow): PublishItem {
  const headers = JSON.parse(row.headers) as {
    source?: string;
    correlationId?: string | null;
    timestamp?: string;
    headers?: Record<string, string>;
  };
  return {
    id: row.event_id,
    type: row.event_type,
    data: JSON.parse(row.payload) as unknown,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    ...(headers.source !== undefined ? { source: headers.source } : {}),
    ...(typeof headers.correlationId === 'string' ? { correlationId: headers.correlationId } : {}),
    ...(headers.timestamp !== undefined ? { timestamp: headers.timestamp } : {}),
    ...(headers.headers !== undefined ? { headers: headers.headers } : {}),
    partitionKey: `${row.aggregate_type}:${row.aggregate_id}`,
  };
}

/**
 * One relay cycle: claim, publish, mark, in one transaction that holds the claimed rows' locks throughout.
 * A relay that dies anywhere in it rolls back with its connection: its rows are claimed again and published
 * again under the same event ids, which the bus recognises within its dedup window and does not deliver twice.
 * A publish that fails as a whole (Redis unreachable) marks nothing and counts no attempt: the rows wait.
 * A row the bus refuses (validation) has an attempt counted; its aggregate's later rows wait behind it.
 */
export async function relayCycle(host: RelayHost, batchSize: number): Promise<RelayResult> {
  const { sql, table } = host;
  const pool = await host.pool();
  let connection: PoolConnection;
  try {
    connection = await pool.getConnection();
  } catch (error) {
    throw databaseError(table, 'connect', error);
  }
  let step = 'claim';
  let broken = false;
  try {
    await connection.query(sql.readCommitted);
    await connection.beginTransaction();
    const [heads] = await connection.query<RunRow[]>(sql.claimHeads, [batchSize]);
    if (heads.length === 0) {
      await connection.commit();
      return { published: 0, refused: 0 };
    }
    const aggregates: AggregateKey[] = heads.map((row) => ({
      aggregateType: row.aggregate_type,
      aggregateId: row.aggregate_id,
    }));
    const params = aggregateParams(aggregates);
    const [locked] = await connection.query<LockedRow[]>(sql.lockRuns(aggregates.length), [...params, batchSize]);
    const lastId = locked.reduce((max, row) => Math.max(max, row.id), 0);
    const [unpublished] = await connection.query<RunRow[]>(sql.readRuns(aggregates.length), [...params, lastId]);
    const runs = composeRuns(new Set(heads.map((row) => row.id)), locked, unpublished, batchSize);

    const accepted: { row: LockedRow; item: PublishItem }[] = [];
    const refused: { row: LockedRow; reason: string }[] = [];
    const held = new Set<string>();
    for (const row of runs) {
      if (held.has(keyOf(row))) continue;
      try {
        const item = itemOf(row);
        validateForBus(host.bus, item);
        accepted.push({ row, item });
      } catch (error) {
        refused.push({ row, reason: reasonOf(error) });
        held.add(keyOf(row));
      }
    }

    step = 'publish';
    if (accepted.length > 0)
      await publishToBus(
        host.bus,
        accepted.map((a) => a.item),
      );
    step = 'mark';
    if (accepted.length > 0) await connection.query(sql.markPublished, [accepted.map((a) => a.row.id)]);
    for (const { row, reason } of refused) {
      const attempts = row.attempts + 1;
      const failed = attempts >= host.maxAttempts;
      const delayUs = failed ? 0 : host.backoffMs(attempts) * 1000;
      await connection.query(sql.markAttempt, [
        attempts,
        failed ? STATUS.failed : STATUS.pending,
        delayUs,
        reason,
        row.id,
      ]);
    }
    step = 'commit';
    await connection.commit();
    host.countRelayed(accepted.length);
    return { published: accepted.length, refused: refused.length };
  } catch (error) {
    broken = isFatal(error);
    if (!broken) {
      try {
        await connection.rollback();
      } catch {
        broken = true;
      }
    }
    // The bus's own errors (ConnectionError ...) say what happened to Redis; MySQL's are named here.
    throw step === 'publish' ? error : databaseError(table, `relay ${step}`, error);
  } finally {
    giveBack(connection, broken);
  }
}

const ERROR_BACKOFF_BASE_MS = 50;
const ERROR_BACKOFF_MAX_MS = 2_000;

/**
 * A relay loop: a cycle at once after a full batch (a backlog), else after a wake-up or `pollMs`. After an
 * error (Redis or MySQL unreachable, a connection killed) it backs off from 50 ms to 2 s and goes on.
 */
export class RelayLoop {
  private running = true;
  private woken = false;
  private interrupt: (() => void) | null = null;
  readonly done: Promise<void>;

  constructor(
    private readonly host: RelayHost,
    private readonly batchSize: number,
    private readonly pollMs: number,
  ) {
    this.done = this.loop();
  }

  /** Runs a cycle now, or right after the current one. */
  wake(): void {
    this.woken = true;
    this.interrupt?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.interrupt?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.woken = false;
      let full: boolean;
      try {
        const { published, refused } = await relayCycle(this.host, this.batchSize);
        failures = 0;
        full = published + refused >= this.batchSize;
      } catch (error) {
        failures += 1;
        if (this.running) this.host.reportError(error);
        await this.pause(Math.min(ERROR_BACKOFF_MAX_MS, ERROR_BACKOFF_BASE_MS * 2 ** (failures - 1)), false);
        continue;
      }
      if (!full) await this.pause(this.pollMs, true);
    }
  }

  private pause(ms: number, wakeable: boolean): Promise<void> {
    if (!this.running || (wakeable && this.woken)) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.interrupt = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.interrupt = () => {
        if (!this.running || wakeable) finish();
      };
    });
  }
}
