import { describe, expect, it } from 'vitest';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('pause, rate limit, stats', () => {
  it('pause stops deliveries in every process until resume; sends go on', async () => {
    const prefix = env.prefix();
    const admin = env.queue<string>('q', { prefix });
    const worker = env.queue<string>('q', { prefix, connection: env.connection() });
    const handled: string[] = [];
    const consumer = worker.consume((m) => {
      handled.push(m.payload);
    });
    await admin.pause();
    await admin.send('while paused');
    expect(await worker.dequeue()).toEqual([]);
    expect((await admin.getStats()).paused).toBe(true);
    expect(handled).toEqual([]);
    await admin.resume();
    await waitFor(() => handled.length === 1, 'delivery after resume');
    await consumer.close();
    expect(handled).toEqual(['while paused']);
  });

  it('a rate limit caps deliveries per window across consumers', async () => {
    const prefix = env.prefix();
    const a = env.queue<number>('limited', { prefix });
    const b = env.queue<number>('limited', { prefix, connection: env.connection() });
    await a.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: n })));
    await a.setRateLimit({ max: 5, windowMs: 60_000 });
    expect(await a.dequeue({ count: 3 })).toHaveLength(3);
    expect(await b.dequeue({ count: 10 })).toHaveLength(2);
    expect(await a.dequeue({ count: 10 })).toHaveLength(0);
    await a.setRateLimit(null);
    expect(await b.dequeue({ count: 100 })).toHaveLength(15);
  });

  it('stats show the seed shape: counts per priority, processing, delayed, DLQ, plus counters', async () => {
    const queue = env.queue<string>('user_tasks');
    await queue.sendMany([
      { payload: 'c', priority: 'CRITICAL' },
      { payload: 'h', priority: 'HIGH' },
      { payload: 'h2', priority: 'HIGH' },
      { payload: 'l', priority: 'LOW' },
      { payload: 'later', delayMs: 60_000 },
      { payload: 'doomed', priority: 'CRITICAL', maxRetries: 0 },
    ]);
    const [c, doomed] = await queue.dequeue({ count: 2 });
    await queue.ack(c!);
    await queue.nack(doomed!, { error: 'x' });
    await queue.dequeue();
    expect(await queue.getStats()).toEqual({
      name: 'user_tasks',
      ready: { critical: 0, high: 1, normal: 0, low: 1 },
      inflight: 1,
      delayed: 1,
      deadLetters: 1,
      partitionBacklog: 0,
      paused: false,
      counters: { sent: 6, delivered: 3, acked: 1, retried: 0, deadLettered: 1, reclaimed: 0, replayed: 0 },
    });
  });
});
