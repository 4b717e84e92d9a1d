import { describe, expect, it } from 'vitest';
import type { Delivery } from '../src/index.js';
import { prng, useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('partition order', () => {
  it('4 concurrent consumers: per key in send order, never two in flight for one key', async () => {
    const prefix = env.prefix();
    const keys = Array.from({ length: 10 }, (_, n) => `customer-${n}`);
    const random = prng(7);
    const total = 600;
    const sends = Array.from({ length: total }, (_, n) => ({ n, key: keys[Math.floor(random() * keys.length)]! }));
    const producer = env.queue<{ n: number; key: string }>('orders', { prefix });
    for (let from = 0; from < total; from += 50) {
      await producer.sendMany(sends.slice(from, from + 50).map((s) => ({ payload: s, partitionKey: s.key })));
    }

    const inFlight = new Map<string, number>();
    const violations: string[] = [];
    const seen = new Map<string, number[]>();
    const consumers = Array.from({ length: 4 }, (_, c) => {
      const queue = env.queue<{ n: number; key: string }>('orders', { prefix, connection: env.connection() });
      return queue.consume(
        async (m) => {
          const key = m.partitionKey!;
          if (inFlight.has(key)) violations.push(`${key}: ${m.payload.n} started while ${inFlight.get(key)} ran`);
          inFlight.set(key, m.payload.n);
          seen.set(key, [...(seen.get(key) ?? []), m.payload.n]);
          // Yield so that other consumers' handlers interleave with this one.
          await new Promise((resolve) => setTimeout(resolve, (m.payload.n + c) % 3));
          inFlight.delete(key);
        },
        { concurrency: 5 },
      );
    });
    await waitFor(async () => (await producer.getStats()).counters.acked === total, 'every message acked', 60_000);
    await Promise.all(consumers.map((c) => c.close()));

    expect(violations).toEqual([]);
    for (const key of keys) {
      const expected = sends.filter((s) => s.key === key).map((s) => s.n);
      expect(seen.get(key), key).toEqual(expected);
    }
    const stats = await producer.getStats();
    expect(stats.partitionBacklog).toBe(0);
    expect(await env.redis.hlen(`${producer.baseKey}:pc`)).toBe(0);
  });

  it('a retried message keeps its partition blocked until it succeeds; other partitions go on', async () => {
    const queue = env.queue<string>('retry-blocks', { retry: { baseMs: 100, capMs: 100 } });
    await queue.sendMany([
      { payload: 'a1', partitionKey: 'a' },
      { payload: 'a2', partitionKey: 'a' },
      { payload: 'b1', partitionKey: 'b' },
      { payload: 'free' },
    ]);
    const first = await queue.dequeue({ count: 10 });
    expect(first.map((d) => d.payload)).toEqual(['a1', 'b1', 'free']);
    const a1 = first[0]!;
    await queue.nack(a1, { error: 'not yet' });
    await queue.ackMany(first.slice(1));
    // a2 must not run while a1 waits for its retry.
    expect(await queue.dequeue({ count: 10 })).toEqual([]);
    const retry = await waitFor(async () => {
      const batch = await queue.dequeue({ count: 10 });
      return batch.length > 0 ? batch : null;
    }, 'the retry of a1');
    expect(retry.map((d) => `${d.payload}:${d.attempts}`)).toEqual(['a1:1']);
    expect(await queue.dequeue({ count: 10 })).toEqual([]);
    await queue.ack(retry[0]!);
    expect((await queue.dequeue({ count: 10 })).map((d) => d.payload)).toEqual(['a2']);
  });

  it('a dead-lettered head releases the next message of its partition', async () => {
    const queue = env.queue<string>('dead-releases');
    await queue.sendMany([
      { payload: 'p1', partitionKey: 'p', maxRetries: 0 },
      { payload: 'p2', partitionKey: 'p' },
      { payload: 'p3', partitionKey: 'p', delayMs: 0 },
    ]);
    const [p1] = await queue.dequeue({ count: 10 });
    expect(await queue.nack(p1!, { error: 'poison' })).toBe('dead-lettered');
    const next: Delivery<string>[] = await queue.dequeue({ count: 10 });
    expect(next.map((d) => d.payload)).toEqual(['p2']);
    await queue.ack(next[0]!);
    expect((await queue.dequeue({ count: 10 })).map((d) => d.payload)).toEqual(['p3']);
  });

  it('a delayed message at the head of a partition holds the ones sent after it', async () => {
    const queue = env.queue<string>('delayed-head');
    await queue.send('first', { partitionKey: 'k', delayMs: 200 });
    await queue.send('second', { partitionKey: 'k' });
    expect(await queue.dequeue()).toEqual([]);
    const [first] = await waitFor(async () => {
      const batch = await queue.dequeue();
      return batch.length > 0 ? batch : null;
    }, 'the delayed head');
    expect(first!.payload).toBe('first');
    await queue.ack(first!);
    expect((await queue.dequeue()).map((d) => d.payload)).toEqual(['second']);
  });
});
