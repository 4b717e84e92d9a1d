import { createPool, type RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { EventBus, Scheduler, ValidationError } from '../src/index.js';
import {
  checkServerVersion,
  Outbox,
  OUTBOX_JOB_NAMES,
  outboxJobs,
  OutboxUnsupportedServerError,
} from '../src/outbox/index.js';
import { ON_CLUSTER, redisUrl, uniquePrefix, waitFor } from './helpers.js';
import { mysqlUrl, range, useOutbox } from './outbox.helpers.js';

const ctx = useOutbox();
const event = (aggregateId: string, seq: number, type = 'order.updated') => ({
  aggregateType: 'order',
  aggregateId,
  type,
  data: { seq },
});

describe('outbox relay', () => {
  it('a poison event is FAILED after maxAttempts and holds back only its own aggregate', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table, { maxAttempts: 3, retry: { baseMs: 20, maxMs: 50 } });
    await outbox.migrate();
    const received = await ctx.receive(bus, 'billing', 'order.#');
    await outbox.publishInTransaction(() => undefined, [event('a', 0), event('b', 0)]);
    // A row the bus refuses: written by hand with a type no event may have.
    await ctx.pool.query(
      `INSERT INTO \`${table}\` (event_id, aggregate_type, aggregate_id, event_type, payload, metadata, headers)
       VALUES ('poison', 'order', 'a', 'order..bad', '{"seq":1}', '{"aggregateId":"a"}', '{}')`,
    );
    await outbox.publishInTransaction(() => undefined, [event('a', 2), event('b', 1)]);
    const relay = await outbox.startRelay({ pollMs: 10 });
    ctx.onCleanup(() => relay.stop());
    await waitFor(async () => (await outbox.stats()).failed === 1, 'the poison row to fail');
    await outbox.publishInTransaction(() => undefined, [event('b', 2)]);
    await waitFor(() => received.byAggregate().get('b')?.length === 3, 'aggregate b to flow on');
    expect(received.byAggregate()).toEqual(
      new Map([
        ['a', [0]],
        ['b', [0, 1, 2]],
      ]),
    );
    const [failed] = await outbox.listFailed();
    expect(failed).toMatchObject({ eventId: 'poison', aggregateId: 'a', attempts: 3 });
    expect(failed!.lastError).toMatch(/event type/);
    expect(await ctx.statuses(table)).toEqual({ PUBLISHED: 4, FAILED: 1, PENDING: 1 });

    // Retrying fails again (still poison); discarding it releases the aggregate's later event.
    expect(await outbox.retryFailed({ eventIds: ['poison'] })).toBe(1);
    await waitFor(async () => (await outbox.stats()).failed === 1, 'the retried poison row to fail again');
    expect(await outbox.discardFailed(['poison'])).toBe(1);
    await waitFor(() => received.byAggregate().get('a')?.length === 2, 'aggregate a to go on');
    expect(received.byAggregate().get('a')).toEqual([0, 2]);
  });

  it('cleanup deletes only PUBLISHED rows older than the retention, in batches', async () => {
    const bus = ctx.bus(ctx.prefix());
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    await outbox.publishInTransaction(
      () => undefined,
      range(30).map((seq) => event(`o${seq % 3}`, seq)),
    );
    expect(await outbox.relayOnce({ batchSize: 20 })).toEqual({ published: 20, refused: 0 });
    // 20 published: 15 of them 8 days ago; 10 pending, 5 of those failed, all created 8 days ago.
    await ctx.pool.query(`UPDATE \`${table}\` SET created_at = NOW(3) - INTERVAL 8 DAY`);
    await ctx.pool.query(
      `UPDATE \`${table}\` SET published_at = NOW(3) - INTERVAL 8 DAY WHERE status = 'PUBLISHED' ORDER BY id LIMIT 15`,
    );
    await ctx.pool.query(`UPDATE \`${table}\` SET status = 'FAILED' WHERE status = 'PENDING' ORDER BY id LIMIT 5`);
    expect(await outbox.cleanup({ batchSize: 4 })).toBe(15);
    expect(await ctx.statuses(table)).toEqual({ PUBLISHED: 5, PENDING: 5, FAILED: 5 });
    expect(await outbox.cleanup()).toBe(0);
    const stats = await outbox.stats();
    expect(stats).toMatchObject({ pending: 5, failed: 5, published: 5 });
    expect(stats.oldestPendingAgeMs).toBeGreaterThan(7 * 24 * 3600 * 1000);
  });

  it('refuses to relay when the bus would forget published ids within the retry horizon', async () => {
    const bus = ctx.bus(ctx.prefix(), { dedupWindowMs: 60_000 });
    const outbox = ctx.outbox(bus, ctx.table());
    await expect(outbox.startRelay()).rejects.toThrow(ValidationError);
    await expect(outbox.relayOnce()).rejects.toThrow(
      /dedupWindowMs \(60000 ms\) must be at least the outbox's retry horizon/,
    );
    expect(outbox.retryHorizonMs).toBe(1000 + 2000 + 4000 + 8000 + 16000 + 32000 + 64000 + 128000 + 256000);
  });

  it('refuses servers without SKIP LOCKED (version check)', () => {
    expect(checkServerVersion('10.11.19-MariaDB-0+deb12u1')).toEqual({ server: 'MariaDB', version: [10, 11, 19] });
    expect(checkServerVersion('10.6.0-MariaDB')).toMatchObject({ server: 'MariaDB' });
    expect(checkServerVersion('5.5.5-10.6.12-MariaDB-log')).toMatchObject({ server: 'MariaDB', version: [10, 6, 12] });
    expect(checkServerVersion('8.0.36')).toEqual({ server: 'MySQL', version: [8, 0, 36] });
    expect(checkServerVersion('9.1.0-commercial')).toMatchObject({ server: 'MySQL' });
    for (const old of ['10.5.23-MariaDB', '10.3.39-MariaDB-0+deb10u1', '5.7.44-log', '8.0.0-dmr', 'PostgreSQL 16']) {
      const error = (() => {
        try {
          checkServerVersion(old);
        } catch (e) {
          return e;
        }
      })();
      expect(error, old).toBeInstanceOf(OutboxUnsupportedServerError);
      expect((error as OutboxUnsupportedServerError).code).toBe('OUTBOX_UNSUPPORTED_SERVER');
      expect((error as Error).message).toContain('MariaDB ≥ 10.6 or MySQL ≥ 8.0.1');
    }
  });

  it('outboxJobs: the scheduler relays what no relay took, and cleans up', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    const received = await ctx.receive(bus, 'billing', 'order.#');
    await outbox.publishInTransaction(
      () => undefined,
      range(5).map((seq) => event('x', seq)),
    );
    const jobs = outboxJobs(outbox, { relayEveryMs: 100, cleanupEveryMs: 100, retentionMs: 0 });
    expect(jobs.map((job) => [job.name, job.every])).toEqual([
      [`${OUTBOX_JOB_NAMES.relay}:${table}`, 100],
      [`${OUTBOX_JOB_NAMES.cleanup}:${table}`, 100],
    ]);
    expect(outboxJobs(outbox).map((job) => job.every)).toEqual([60_000, 3_600_000]);
    const scheduler = new Scheduler({
      connection: ON_CLUSTER ? ctx.redis : redisUrl(),
      prefix: uniquePrefix('obs'),
      pollMs: 50,
    });
    scheduler.on('error', () => undefined);
    ctx.onCleanup(() => scheduler.close());
    for (const job of jobs) scheduler.addJob(job);
    scheduler.start();
    await waitFor(() => received.events.length === 5, 'the relay job to publish');
    await waitFor(async () => (await outbox.stats()).published === 0, 'the cleanup job to delete the published rows');
    expect(received.byAggregate().get('x')).toEqual([0, 1, 2, 3, 4]);
  });

  it('recovers when its MySQL connection is killed under it (KILL CONNECTION)', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const table = ctx.table();
    // The relay's outbox has a pool of one connection, so the connection it uses is the one we find.
    const relayPool = createPool({ uri: mysqlUrl(), connectionLimit: 1 });
    ctx.onCleanup(() => relayPool.end());
    const relaySide = ctx.outbox(bus, table, { mysql: relayPool });
    const errors: unknown[] = [];
    relaySide.on('error', (error) => errors.push(error));
    const writer = ctx.outbox(bus, table);
    await writer.migrate();
    const received = await ctx.receive(bus, 'billing', 'order.#');
    const relay = await relaySide.startRelay({ pollMs: 20 });
    ctx.onCleanup(() => relay.stop());
    const killed = new Set<number>();
    for (let round = 0; round < 4; round++) {
      await writer.publishInTransaction(
        () => undefined,
        range(10).map((n) => event(`k${n % 2}`, round * 10 + n)),
      );
      const [rows] = await relayPool.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
      const id = Number(rows[0]!.id);
      killed.add(id);
      await ctx.pool.query(`KILL CONNECTION ${id}`);
      await waitFor(() => received.events.length >= (round + 1) * 10, `round ${round} delivered`);
    }
    expect(killed.size).toBe(4); // a new connection every round: each kill was felt and recovered from
    await waitFor(async () => (await ctx.statuses(table)).PUBLISHED === 40, 'all rows marked');
    const seen = received.events.map((e) => e.id);
    expect(new Set(seen).size).toBe(40);
    expect(seen).toHaveLength(40);
    expect(received.byAggregate().get('k0')).toEqual(range(20, 2));
    expect(received.byAggregate().get('k1')).toEqual(range(20, 2, 1));
  });
});

describe('outbox relay with Redis unreachable', () => {
  it('starts, keeps the rows and closes within a bounded time when the bus cannot reach Redis', async () => {
    const { freePort } = await import('./ports.js');
    const port = await freePort(); // nothing listens there
    const bus = new EventBus('app', {
      connection: `redis://127.0.0.1:${port}`,
      prefix: uniquePrefix('ob'),
      connectTimeoutMs: 300,
    });
    const table = ctx.table();
    const outbox = new Outbox({ mysql: ctx.pool, bus, table });
    await outbox.migrate();
    const errors: unknown[] = [];
    outbox.on('error', (error) => errors.push(error));
    await outbox.publishInTransaction(() => undefined, [event('a', 0)]);
    // startRelay must not wait for Redis (it used to wait forever on the wake-up subscription).
    const relay = await outbox.startRelay({ pollMs: 50 });
    await waitFor(() => errors.length > 0, 'the relay to report that Redis is unreachable');
    expect((await outbox.stats()).pending).toBe(1);
    const closing = Promise.all([relay.stop(), outbox.close(), bus.close()]);
    const closedInTime = await Promise.race([
      closing.then(() => true),
      new Promise((resolve) => setTimeout(resolve, 15_000, false)),
    ]);
    expect(closedInTime).toBe(true);
  });
});

describe('outbox options', () => {
  it('refuses a mysql URL that is not mysql:// when it is made, naming the option, with the password masked', () => {
    const bus = new EventBus('app', { connection: ctx.redis, prefix: uniquePrefix('ob') });
    for (const url of ['127.0.0.1:3306', 'postgres://root:secret@127.0.0.1:3306/test']) {
      let refused: unknown;
      try {
        new Outbox({ mysql: url, bus });
      } catch (error) {
        refused = error;
      }
      expect(refused).toBeInstanceOf(ValidationError);
      expect(refused).toMatchObject({
        field: 'mysql',
        message: expect.stringContaining('mysql://user:password@host:port/database'),
      });
      expect((refused as Error).message).not.toContain('secret');
    }
  });
});
