import { describe, expect, it } from 'vitest';
import { startChild } from './children.js';
import { redisUrl, waitFor } from './helpers.js';
import { mysqlUrl, range, useOutbox } from './outbox.helpers.js';

const ctx = useOutbox();
const AGGREGATES = 20;

describe('outbox relay killed and restarted', () => {
  it('a relay SIGKILLed at random points, between publish and mark included, loses nothing and delivers nothing twice', async () => {
    const prefix = ctx.prefix();
    const table = ctx.table('kill');
    const bus = ctx.bus(prefix);
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    const received = await ctx.receive(bus, 'all', 'order.#', 4);
    const seqs = new Map<string, number>();
    const write = async (count: number) => {
      await outbox.publishInTransaction(
        () => undefined,
        range(count).map((n) => {
          const aggregateId = `o${n % AGGREGATES}`;
          const seq = seqs.get(aggregateId) ?? 0;
          seqs.set(aggregateId, seq + 1);
          return { aggregateType: 'order', aggregateId, type: 'order.updated', data: { seq } };
        }),
      );
    };
    await write(400);

    // Each child dies by itself right after a publish with chance 1/4 per batch, or is killed by us after
    // a random 0..300 ms; more rows are written while relays come and go.
    let kills = 0;
    let selfKills = 0;
    for (let life = 0; life < 60; life++) {
      const stats = await ctx.statuses(table);
      if (!stats.PENDING && life >= 12) break;
      const child = startChild('outbox-relay', {
        REDIS_URL: redisUrl(),
        MYSQL_URL: mysqlUrl(),
        PREFIX: prefix,
        TABLE: table,
        BATCH: '20',
        DIE_AFTER_PUBLISH: '0.25',
      });
      await child.message((m): m is 'ready' => m === 'ready', 'ready').catch(() => undefined);
      if (life < 12) await write(40);
      const lifetime = new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
      const how = await Promise.race([child.exited.then(() => 'self'), lifetime.then(() => 'killed')]);
      if (how === 'killed') {
        child.process.kill('SIGKILL');
        kills += 1;
      } else selfKills += 1;
      await child.exited;
    }
    // A last relay that lives, to finish what is left.
    const relay = await outbox.startRelay();
    ctx.onCleanup(() => relay.stop());
    const total = 400 + 12 * 40;
    await waitFor(async () => (await ctx.statuses(table)).PUBLISHED === total, 'every row published');
    await waitFor(() => received.events.length >= total, 'every delivery');

    expect(received.events).toHaveLength(total);
    expect(new Set(received.events.map((e) => e.id)).size).toBe(total);
    for (const [aggregateId, count] of seqs)
      expect(received.byAggregate().get(aggregateId), aggregateId).toEqual(range(count));
    // Relays died after publishing and before marking, and the republished rows were recognised.
    expect(selfKills).toBeGreaterThan(0);
    expect(kills).toBeGreaterThan(0);
    expect((await bus.getStats()).events.duplicates).toBeGreaterThan(0);
  }, 120_000);
});
