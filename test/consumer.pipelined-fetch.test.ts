import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { useRedis, waitFor } from './helpers.js';

// The consumer keeps up to two dequeue calls in flight (src/queue/consumer.ts, fetchLoop): these check
// what a user sees: every message handled once, concurrency respected, nothing lost on close.
describe('consumer with two fetches in flight', () => {
  const redis = useRedis();

  it('handles every message exactly once without exceeding its concurrency', async () => {
    const queue = redis.queue<number>();
    const count = 2_000;
    await queue.sendMany(Array.from({ length: count }, (_, n) => ({ payload: n })));
    const seen = new Map<number, number>();
    let running = 0;
    let most = 0;
    const consumer = queue.consume(
      async (message) => {
        running++;
        most = Math.max(most, running);
        seen.set(message.payload, (seen.get(message.payload) ?? 0) + 1);
        if (message.payload % 7 === 0) await sleep(1);
        running--;
      },
      { concurrency: 20 },
    );
    await waitFor(async () => (await queue.getStats()).counters.acked === count, 'all acked');
    await consumer.close();
    expect(seen.size).toBe(count);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(most).toBeLessThanOrEqual(20);
    const stats = await queue.getStats();
    expect(stats.inflight).toBe(0);
    expect(stats.ready.normal).toBe(0);
  });

  it('hands back what it fetched but did not finish when closed mid-stream', async () => {
    const queue = redis.queue<number>();
    const count = 500;
    await queue.sendMany(Array.from({ length: count }, (_, n) => ({ payload: n })));
    let handled = 0;
    const consumer = queue.consume(
      async () => {
        await sleep(2);
        handled++;
      },
      { concurrency: 10, graceMs: 0 },
    );
    await waitFor(() => handled >= 50, 'some handled');
    await consumer.close();
    const stats = await queue.getStats();
    expect(stats.inflight).toBe(0);
    expect(stats.counters.acked + stats.ready.normal).toBe(count);
  });
});

describe('consumer close with fetches in flight', () => {
  const env2 = useRedis();

  it('hands undelivered messages of every in-flight fetch back in their original order', async () => {
    const queue = env2.queue<number>('close-order');
    await queue.sendMany(Array.from({ length: 10 }, (_, n) => ({ payload: n })));
    // Slow dequeue replies, so that two fetches are in flight when close() is called.
    const original = queue.dequeueWithWait.bind(queue);
    vi.spyOn(queue, 'dequeueWithWait').mockImplementation(async (count, visibilityMs) => {
      const result = await original(count, visibilityMs);
      await new Promise((resolve) => setTimeout(resolve, 30));
      return result;
    });
    const started: number[] = [];
    const consumer = queue.consume(
      async (m) => {
        started.push(m.payload);
      },
      { concurrency: 6, batchSize: 2 },
    );
    await waitFor(() => started.length >= 2, 'the first batch to start');
    await consumer.close();
    vi.restoreAllMocks();
    const rest = (await queue.dequeue({ count: 100 })).map((d) => d.payload);
    expect([...started, ...rest].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(rest).toEqual([...rest].sort((a, b) => a - b));
  });

  it('a listener that throws does not stop the consumer', async () => {
    const queue = env2.queue<number>('throwing-listener');
    const errors: unknown[] = [];
    const consumer = queue.consume(() => undefined, { concurrency: 2 });
    consumer.on('completed', () => {
      throw new Error('listener bug');
    });
    consumer.on('error', (error) => errors.push(error));
    await queue.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: n })));
    await waitFor(async () => (await queue.getStats()).counters.acked === 20, 'all 20 acked');
    await consumer.close();
    expect(errors.length).toBe(20);
    expect((errors[0] as Error).message).toBe('listener bug');
  });
});
