import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.js';
import { Outbox, OutboxDatabaseError } from '../src/outbox/index.js';
import { waitFor } from './helpers.js';
import { mysqlUrl, useOutbox } from './outbox.helpers.js';

const ctx = useOutbox();

async function businessTable(label: string): Promise<string> {
  const table = ctx.table(label);
  await ctx.pool.query(`CREATE TABLE \`${table}\` (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))`);
  return table;
}

async function count(table: string): Promise<number> {
  const [rows] = await ctx.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${table}\``);
  return Number(rows[0]!.n);
}

const accountCreated = (aggregateId: number | string, seq = 0) => ({
  aggregateType: 'account',
  aggregateId,
  type: 'account.created',
  data: { seq },
});

describe('outbox write side', () => {
  it('migrate creates the table once, safely from several processes at once', async () => {
    const bus = ctx.bus(ctx.prefix());
    const table = ctx.table();
    // Five outboxes with pools of their own, as five processes would have.
    const outboxes = Array.from({ length: 5 }, () => {
      const outbox = new Outbox({ mysql: mysqlUrl(), bus, table });
      ctx.onCleanup(() => outbox.close());
      return outbox;
    });
    await Promise.all(outboxes.map((outbox) => outbox.migrate()));
    await outboxes[0]!.migrate(); // and again later: nothing to do
    const [columns] = await ctx.pool.query<RowDataPacket[]>(`SHOW COLUMNS FROM \`${table}\``);
    expect(columns.map((c) => c.Field)).toEqual([
      'id',
      'event_id',
      'aggregate_type',
      'aggregate_id',
      'event_type',
      'payload',
      'metadata',
      'headers',
      'status',
      'attempts',
      'next_attempt_at',
      'last_error',
      'created_at',
      'published_at',
    ]);
  });

  it('a rolled-back transaction publishes nothing, ever', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const outbox = ctx.outbox(bus, ctx.table());
    await outbox.migrate();
    const accounts = await businessTable('acct');
    const received = await ctx.receive(bus, 'mailer', 'account.#');

    await expect(
      outbox.publishInTransaction(async (tx) => {
        await tx.query(`INSERT INTO \`${accounts}\` (name) VALUES ('ann')`);
        throw new Error('business rule broken');
      }, accountCreated(1)),
    ).rejects.toThrow('business rule broken');
    // An insert of the outbox row that fails (a duplicate event id) rolls the business write back too.
    await outbox.publishInTransaction(() => undefined, { ...accountCreated(2), id: 'evt-taken' });
    const duplicate = await outbox
      .publishInTransaction(
        async (tx) => {
          await tx.query(`INSERT INTO \`${accounts}\` (name) VALUES ('bob')`);
        },
        { ...accountCreated(3), id: 'evt-taken' },
      )
      .catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(OutboxDatabaseError);
    expect((duplicate as OutboxDatabaseError).sqlCode).toBe('ER_DUP_ENTRY');

    expect(await count(accounts)).toBe(0);
    expect(await ctx.statuses(outbox.table)).toEqual({ PENDING: 1 });
    expect(await outbox.relayOnce()).toEqual({ published: 1, refused: 0 });
    expect(await outbox.relayOnce()).toEqual({ published: 0, refused: 0 });
    await waitFor(() => received.events.length === 1, 'the one committed event');
    expect(received.events.map((e) => e.id)).toEqual(['evt-taken']);
  });

  it('a committed transaction publishes its events exactly once, with the aggregate as metadata', async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix, { source: 'accounts' });
    const outbox = ctx.outbox(bus, ctx.table());
    await outbox.migrate();
    const accounts = await businessTable('acct');
    const received = await ctx.receive(bus, 'mailer', 'account.#');

    // Events may depend on the write: here the generated account id.
    const { result, eventIds } = await outbox.publishInTransaction(
      async (tx) => {
        const [done] = await tx.query(`INSERT INTO \`${accounts}\` (name) VALUES ('ann')`);
        return (done as { insertId: number }).insertId;
      },
      (accountId) => [
        accountCreated(accountId, 0),
        { ...accountCreated(accountId, 1), type: 'account.verified', correlationId: 'req-1' },
      ],
    );
    expect(await count(accounts)).toBe(1);
    expect(eventIds).toHaveLength(2);

    const relay = await outbox.startRelay();
    ctx.onCleanup(() => relay.stop());
    await waitFor(() => received.events.length === 2, 'both events');
    expect(await outbox.relayOnce()).toEqual({ published: 0, refused: 0 });
    expect(received.events.map((e) => [e.id, e.type, e.data.seq, e.source, e.correlationId])).toEqual([
      [eventIds[0], 'account.created', 0, 'accounts', null],
      [eventIds[1], 'account.verified', 1, 'accounts', 'req-1'],
    ]);
    expect(received.events[0]!.metadata).toEqual({ aggregateType: 'account', aggregateId: String(result) });
    expect(await ctx.statuses(outbox.table)).toEqual({ PUBLISHED: 2 });
    const stats = await outbox.stats();
    expect(stats).toMatchObject({ pending: 0, failed: 0, published: 2, oldestPendingAgeMs: 0, relayed: 2 });
  });

  it('refuses an invalid event as bus.publish would, before anything is written', async () => {
    const bus = ctx.bus(ctx.prefix(), { maxEventBytes: 1000 });
    const outbox = ctx.outbox(bus, ctx.table());
    await outbox.migrate();
    let ran = false;
    const write = () => {
      ran = true;
    };
    await expect(
      outbox.publishInTransaction(write, { ...accountCreated(1), type: 'account..created' }),
    ).rejects.toThrow(ValidationError);
    await expect(outbox.publishInTransaction(write, { ...accountCreated(1), data: 'x'.repeat(2000) })).rejects.toThrow(
      /maxEventBytes/,
    );
    await expect(
      outbox.publishInTransaction(write, [accountCreated(1), { ...accountCreated(2), aggregateType: '' }]),
    ).rejects.toThrow(/events\[1\]: aggregateType/);
    await expect(outbox.publishInTransaction(write, { ...accountCreated(1), id: 'has space' })).rejects.toThrow(
      /event id/,
    );
    expect(ran).toBe(false);
    expect(await ctx.statuses(outbox.table)).toEqual({});
  });

  it("add() writes through the caller's own transaction: rolled back nothing, committed once", async () => {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const outbox = ctx.outbox(bus, ctx.table());
    await outbox.migrate();
    const received = await ctx.receive(bus, 'mailer', 'account.#');
    const connection = await ctx.pool.getConnection();
    try {
      await connection.beginTransaction();
      await outbox.add(connection, accountCreated(1, 0));
      await connection.rollback();
      await connection.beginTransaction();
      const [id] = await outbox.add(connection, [accountCreated(1, 1)]);
      await connection.commit();
      outbox.wake();
      expect(await outbox.relayOnce()).toEqual({ published: 1, refused: 0 });
      await waitFor(() => received.events.length === 1, 'the committed event');
      expect(received.events[0]!.id).toBe(id);
      expect(received.events[0]!.data.seq).toBe(1);
    } finally {
      connection.release();
    }
  });

  it('a commit wakes a relay in another process at once, not at its next poll', async () => {
    const prefix = ctx.prefix();
    const table = ctx.table();
    // Two outboxes on two buses (two connections), as a writer process and a relay process would be.
    const relayBus = ctx.bus(prefix);
    const relaySide = ctx.outbox(relayBus, table);
    const writer = ctx.outbox(ctx.bus(prefix), table);
    await writer.migrate();
    const received = await ctx.receive(relayBus, 'mailer', 'account.#');
    // Polling every 10 minutes: only the wake-up can bring the event within the deadline.
    const relay = await relaySide.startRelay({ pollMs: 600_000 });
    ctx.onCleanup(() => relay.stop());
    for (let seq = 0; seq < 3; seq++) {
      await writer.publishInTransaction(() => undefined, accountCreated(1, seq));
      await waitFor(() => received.events.length === seq + 1, `event ${seq} without a poll`, 10_000);
    }
    expect(received.events.map((e) => e.data.seq)).toEqual([0, 1, 2]);
  });

  it('stores a batch of large events that together exceed max_allowed_packet, in one transaction', async () => {
    const bus = ctx.bus(ctx.prefix());
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    const [[packet]] = await ctx.pool.query<RowDataPacket[]>('SELECT @@max_allowed_packet AS bytes');
    const big = 'x'.repeat(600_000); // each event well under the bus's 1 MiB limit
    const count = Math.ceil(Number(packet!.bytes) / big.length) + 2;
    await outbox.publishInTransaction(
      () => undefined,
      Array.from({ length: count }, (_, n) => ({
        aggregateType: 'doc',
        aggregateId: String(n),
        type: 'doc.saved',
        data: { big },
      })),
    );
    const [[stored]] = await ctx.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${table}\``);
    expect(Number(stored!.n)).toBe(count);
  });
});
