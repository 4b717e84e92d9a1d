import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.js';
import { useRedis } from './helpers.js';

// send() coalesces the sends of one tick into one script call (src/queue/queue.ts); what a user sees must
// not change: each send gets its own id or its own error, and order is the order of the calls.
describe('sends made in the same tick', () => {
  const redis = useRedis();

  it('are delivered in call order, each with its own id', async () => {
    const queue = redis.queue<{ n: number }>();
    const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => queue.send({ n })));
    expect(new Set(ids).size).toBe(50);
    const deliveries = await queue.dequeue({ count: 100 });
    expect(deliveries.map((d) => d.payload.n)).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(deliveries.map((d) => d.id)).toEqual(ids);
  });

  it('refuse an invalid one alone and write nothing for it', async () => {
    const queue = redis.queue<unknown>();
    const results = await Promise.allSettled([
      queue.send(1),
      queue.send(10n),
      queue.send(3, { priority: 9 } as never),
      queue.send(4),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    const deliveries = await queue.dequeue({ count: 10 });
    expect(deliveries.map((d) => d.payload)).toEqual([1, 4]);
  });

  it('keep FIFO with a sendMany made after them', async () => {
    const queue = redis.queue<string>();
    const sends = [
      queue.send('a'),
      queue.send('b'),
      queue.sendMany([{ payload: 'c' }, { payload: 'd' }]),
      queue.send('e'),
    ];
    await Promise.all(sends);
    const deliveries = await queue.dequeue({ count: 10 });
    expect(deliveries.map((d) => d.payload)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('honour a dedup key sent twice in the tick', async () => {
    const queue = redis.queue<string>();
    const [first, second] = await Promise.all([queue.send('x', { dedupKey: 'k' }), queue.send('y', { dedupKey: 'k' })]);
    expect(second).toBe(first);
    const deliveries = await queue.dequeue({ count: 10 });
    expect(deliveries.map((d) => d.payload)).toEqual(['x']);
  });

  it('are written before a later call of the same queue', async () => {
    const queue = redis.queue<string>();
    const sent = queue.send('a');
    const stats = await queue.getStats();
    expect(stats.ready.normal).toBe(1);
    await sent;
  });

  it('are written by close()', async () => {
    const queue = redis.queue<string>();
    const sent = queue.send('a');
    await queue.close();
    await expect(sent).resolves.toEqual(expect.any(String));
  });
});

describe('coalesced sends across Queue objects', () => {
  const env2 = useRedis();

  it('two Queue objects of one queue on one connection keep program order', async () => {
    const prefix = env2.prefix();
    const a = env2.queue<string>('shared', { prefix });
    const b = env2.queue<string>('shared', { prefix });
    const sends = [
      a.send('first'),
      b.send('second'),
      a.send('third', { partitionKey: 'k' }),
      b.send('fourth', { partitionKey: 'k' }),
    ];
    await Promise.all(sends);
    const order: string[] = [];
    for (;;) {
      const [d] = await a.dequeue();
      if (!d) break;
      order.push(d.payload);
      await a.ack(d);
    }
    expect(order).toEqual(['first', 'second', 'third', 'fourth']);
  });
});
