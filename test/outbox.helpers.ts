import { randomBytes } from 'node:crypto';
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach } from 'vitest';
import { EventBus, type Event, type EventBusOptions } from '../src/index.js';
import { Outbox, type OutboxOptions } from '../src/outbox/index.js';
import { deletePrefix, newClient, ON_CLUSTER, redisUrl, uniquePrefix } from './helpers.js';

export const mysqlUrl = (): string => process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** A table name no other test uses, so files run in parallel on one database. */
export function uniqueTable(label = 'outbox'): string {
  return `t_${label}_${randomBytes(5).toString('hex')}`;
}

/** What one subscriber's handlers saw, in the order they ran. */
export interface Received {
  events: Event<{ seq: number }>[];
  /** aggregate id -> seqs in handler order */
  byAggregate(): Map<string, number[]>;
}

/**
 * A pool, buses and outboxes per test file, each test under its own Redis prefix and table. A passing
 * test's keys and tables are deleted; a failing test's are kept and named.
 */
export function useOutbox() {
  const pool: Pool = createPool({ uri: mysqlUrl(), connectionLimit: 10 });
  const redis = newClient();
  let tables: string[] = [];
  let prefixes: string[] = [];
  let closers: (() => Promise<unknown>)[] = [];

  afterEach(async (context) => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    closers = [];
    if (context.task.result?.state === 'fail') {
      console.error(
        `keeping tables ${tables.join(', ')} and prefixes ${prefixes.join(', ')} of failed test "${context.task.name}"`,
      );
    } else {
      for (const table of tables) await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
      for (const prefix of prefixes) await deletePrefix(redis, prefix);
    }
    tables = [];
    prefixes = [];
  });
  afterAll(async () => {
    await pool.end();
    redis.disconnect();
  });

  return {
    pool,
    redis,
    /** runs `close` after the test, before its tables and keys are deleted */
    onCleanup(close: () => Promise<unknown>): void {
      closers.push(close);
    },
    table(label?: string): string {
      const table = uniqueTable(label);
      tables.push(table);
      return table;
    },
    prefix(): string {
      const prefix = uniquePrefix('ob');
      prefixes.push(prefix);
      return prefix;
    },
    bus(prefix: string, options: Partial<EventBusOptions> = {}): EventBus {
      const bus = new EventBus('bus', { connection: ON_CLUSTER ? redis : redisUrl(), prefix, ...options });
      closers.push(() => bus.close());
      return bus;
    },
    outbox(bus: EventBus, table: string, options: Partial<OutboxOptions> = {}): Outbox {
      const outbox = new Outbox({ mysql: pool, bus, table, ...options });
      outbox.on('error', () => undefined);
      closers.push(() => outbox.close());
      return outbox;
    },
    /** Subscribes and consumes with `concurrency` handlers, recording every event handled. */
    async receive(
      bus: EventBus,
      subscriberId: string,
      patterns: string | string[],
      concurrency = 4,
    ): Promise<Received> {
      await bus.subscribe(subscriberId, patterns);
      const events: Event<{ seq: number }>[] = [];
      const consumer = bus.consume<{ seq: number }>(
        subscriberId,
        (event) => {
          events.push(event);
        },
        { concurrency },
      );
      closers.push(() => consumer.close());
      await consumer.ready;
      return {
        events,
        byAggregate() {
          const map = new Map<string, number[]>();
          for (const event of events) {
            const aggregate = String(event.metadata.aggregateId);
            map.set(aggregate, [...(map.get(aggregate) ?? []), event.data.seq]);
          }
          return map;
        },
      };
    },
    async statuses(table: string): Promise<Record<string, number>> {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT status, COUNT(*) AS n FROM \`${table}\` GROUP BY status`,
      );
      return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    },
  };
}

/** seqs 0..count-1 */
export const range = (count: number, step = 1, from = 0): number[] =>
  Array.from({ length: count }, (_, n) => from + n * step);
