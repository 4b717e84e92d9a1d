import { describe, expect, it } from 'vitest';
import { startChild, type Child } from './children.js';
import { redisUrl, waitFor } from './helpers.js';
import { mysqlUrl, range, useOutbox } from './outbox.helpers.js';

const ctx = useOutbox();
const AGGREGATES = 50;
const ROUNDS = 100;

describe('outbox relays in several processes', () => {
  it('3 relays (2 in child processes), 5,000 rows on 50 aggregates: each event once to each matching subscriber, in order per aggregate', async () => {
    const prefix = ctx.prefix();
    const table = ctx.table('conc');
    const bus = ctx.bus(prefix);
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    // Several handlers per subscriber: order per aggregate at the handlers rests on the partition key.
    const all = await ctx.receive(bus, 'all', 'order.#', 8);
    const paid = await ctx.receive(bus, 'paid', 'order.paid', 8);

    const children: Child[] = [];
    ctx.onCleanup(() => Promise.all(children.map((child) => child.stop())));
    for (let n = 0; n < 2; n++) {
      children.push(
        startChild('outbox-relay', {
          REDIS_URL: redisUrl(),
          MYSQL_URL: mysqlUrl(),
          PREFIX: prefix,
          TABLE: table,
          BATCH: '50',
        }),
      );
    }
    await Promise.all(children.map((child) => child.message((m): m is 'ready' => m === 'ready', 'ready')));
    const relay = await outbox.startRelay({ batchSize: 50 });
    ctx.onCleanup(() => relay.stop());

    // Round r writes event r of every aggregate, in 5 concurrent transactions of 10 aggregates each.
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        range(5).map((part) =>
          outbox.publishInTransaction(
            () => undefined,
            range(10).map((n) => ({
              aggregateType: 'order',
              aggregateId: `o${part * 10 + n}`,
              type: round % 2 === 1 ? 'order.paid' : 'order.updated',
              data: { seq: round },
            })),
          ),
        ),
      );
    }
    await waitFor(
      () => all.events.length >= AGGREGATES * ROUNDS && paid.events.length >= (AGGREGATES * ROUNDS) / 2,
      'every delivery',
      90_000,
    );
    await waitFor(async () => (await ctx.statuses(table)).PUBLISHED === AGGREGATES * ROUNDS, 'every row marked');

    expect(new Set(all.events.map((e) => e.id)).size).toBe(AGGREGATES * ROUNDS);
    expect(all.events).toHaveLength(AGGREGATES * ROUNDS);
    expect(paid.events).toHaveLength((AGGREGATES * ROUNDS) / 2);
    const allOrder = all.byAggregate();
    const paidOrder = paid.byAggregate();
    for (let n = 0; n < AGGREGATES; n++) {
      expect(allOrder.get(`o${n}`), `all o${n}`).toEqual(range(ROUNDS));
      expect(paidOrder.get(`o${n}`), `paid o${n}`).toEqual(range(ROUNDS / 2, 2, 1));
    }
    expect((await bus.getStats()).events).toMatchObject({
      published: AGGREGATES * ROUNDS,
      delivered: (AGGREGATES * ROUNDS * 3) / 2,
    });
  }, 120_000);
});
