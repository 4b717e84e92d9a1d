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
    // Ready since it was sent, though nothing can take it.
    expect((await admin.getStats()).oldestReadyAgeMs).toBeGreaterThanOrEqual(0);
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
    expect((await b.getStats()).rateLimit).toEqual({ max: 5, windowMs: 60_000 });
    await a.setRateLimit(null);
    expect((await b.getStats()).rateLimit).toBeNull();
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
    const stats = await queue.getStats();
    // The oldest ready message was sent in this test, a moment ago by Redis's clock.
    expect(stats.oldestReadyAgeMs).toBeGreaterThanOrEqual(0);
    expect(stats.oldestReadyAgeMs).toBeLessThan(60_000);
    expect(stats).toEqual({
      name: 'user_tasks',
      ready: { critical: 0, high: 1, normal: 0, low: 1 },
      inflight: 1,
      delayed: 1,
      deadLetters: 1,
      partitionBacklog: 0,
      paused: false,
      oldestReadyAgeMs: stats.oldestReadyAgeMs,
      rateLimit: null,
      consumers: 0,
      counters: { sent: 6, delivered: 3, acked: 1, retried: 0, deadLettered: 1, reclaimed: 0, replayed: 0 },
    });
  });
});

describe('oldest ready age', () => {
  it('counts from runAt for a delayed message that came due, and is null with nothing ready', async () => {
    const queue = env.queue<string>('aged');
    expect((await queue.getStats()).oldestReadyAgeMs).toBeNull();
    // A message made 10 minutes ago that was due 5 minutes ago: ready for 5 minutes, not 10.
    const now = Date.now();
    const redis = env.connection();
    const record = `old|2|0|3|${now - 600_000}|${now - 300_000}||0|"x"`;
    await redis.rpush(`${queue.baseKey}:r2`, record);
    const age = (await queue.getStats()).oldestReadyAgeMs!;
    expect(age).toBeGreaterThanOrEqual(299_000);
    expect(age).toBeLessThan(360_000);
    const [delivery] = await queue.dequeue();
    await queue.ack(delivery!);
    expect((await queue.getStats()).oldestReadyAgeMs).toBeNull();
  });
});
