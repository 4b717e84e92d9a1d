import { describe, expect, it } from 'vitest';
import { useRedis } from './helpers.js';

// ack.lua reads records back only when a partition may be waiting and clears errors only when there are
// some: these check that both paths still do what a user sees.
describe('ack', () => {
  const redis = useRedis();

  it('releases the next message of a partition while unpartitioned messages are in flight too', async () => {
    const queue = redis.queue<string>();
    await queue.sendMany([
      { payload: 'p1', partitionKey: 'a' },
      { payload: 'free' },
      { payload: 'p2', partitionKey: 'a' },
    ]);
    const first = await queue.dequeue({ count: 10 });
    expect(first.map((d) => d.payload)).toEqual(['p1', 'free']);
    await queue.ackMany(first);
    const second = await queue.dequeue({ count: 10 });
    expect(second.map((d) => d.payload)).toEqual(['p2']);
    await queue.ackMany(second);
    const stats = await queue.getStats();
    expect(stats.partitionBacklog).toBe(0);
    expect(stats.counters.acked).toBe(3);
  });

  it('one ack of one partitioned delivery (not the one-delivery fast path) releases the next of its partition', async () => {
    const queue = redis.queue<string>();
    await queue.send('p1', { partitionKey: 'a' });
    await queue.send('p2', { partitionKey: 'a' });
    const [first] = await queue.dequeue({ count: 10 });
    expect(first?.payload).toBe('p1');
    expect(await queue.dequeue({ count: 10 })).toEqual([]);
    await queue.ack(first!);
    const [second] = await queue.dequeue({ count: 10 });
    expect(second?.payload).toBe('p2');
    await queue.ack(second!);
    expect((await queue.getStats()).counters.acked).toBe(2);
    expect(await redis.redis.exists(`${queue.baseKey}:pc`)).toBe(0);
  });

  it('forgets the last error of a message that succeeded on a retry', async () => {
    const queue = redis.queue<string>();
    const id = await queue.send('m');
    const [delivery] = await queue.dequeue();
    await queue.nack(delivery!, { error: 'boom', delayMs: 0 });
    const [retry] = await queue.dequeue();
    expect(retry?.attempts).toBe(1);
    expect((await queue.getMessage(id))?.lastError).toBe('boom');
    await queue.ack(retry!);
    expect(await queue.getMessage(id)).toBeNull();
    expect(await redis.redis.exists(`${queue.baseKey}:e`)).toBe(0);
  });

  it('refuses a stale receipt and changes nothing', async () => {
    const queue = redis.queue<string>();
    await queue.send('m');
    const [delivery] = await queue.dequeue();
    expect(await queue.ackMany([{ id: delivery!.id, receipt: '999' }])).toEqual([false]);
    expect((await queue.getStats()).inflight).toBe(1);
    expect(await queue.ackMany([delivery!])).toEqual([true]);
    expect(await queue.ackMany([delivery!])).toEqual([false]);
  });
});
