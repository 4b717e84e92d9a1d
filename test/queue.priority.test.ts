import { describe, expect, it } from 'vitest';
import type { PriorityValue } from '../src/index.js';
import { prng, useRedis } from './helpers.js';

const env = useRedis();

describe('priority', () => {
  it('drains a mixed backlog highest priority first, FIFO within each priority, in any batch size', async () => {
    const random = prng(42);
    const sent = Array.from({ length: 400 }, (_, n) => ({
      n,
      priority: (1 + Math.floor(random() * 4)) as PriorityValue,
    }));
    const queue = env.queue<{ n: number }>('mixed');
    await queue.sendMany(sent.slice(0, 200).map((m) => ({ payload: { n: m.n }, priority: m.priority })));
    for (const m of sent.slice(200)) await queue.send({ n: m.n }, { priority: m.priority });

    const expected = [...sent].sort((a, b) => b.priority - a.priority || a.n - b.n).map((m) => m.n);
    const received: number[] = [];
    const sizes = [1, 7, 50, 3, 1000];
    for (let round = 0; received.length < sent.length; round++) {
      const batch = await queue.dequeue({ count: sizes[round % sizes.length]! });
      expect(batch.length).toBeGreaterThan(0);
      received.push(...batch.map((d) => d.payload.n));
    }
    expect(received).toEqual(expected);
  });

  it('never returns a message while a higher-priority one is ready, even one sent during the drain', async () => {
    const queue = env.queue<string>('interleaved');
    await queue.sendMany([
      { payload: 'low-1', priority: 'LOW' },
      { payload: 'normal-1' },
      { payload: 'low-2', priority: 'LOW' },
    ]);
    expect((await queue.dequeue())[0]!.payload).toBe('normal-1');
    await queue.send('critical-1', { priority: 'CRITICAL' });
    await queue.send('high-1', { priority: 'HIGH' });
    const order = (await queue.dequeue({ count: 10 })).map((d) => d.payload);
    expect(order).toEqual(['critical-1', 'high-1', 'low-1', 'low-2']);
  });

  it('a retried message rejoins its own priority behind the messages already waiting there', async () => {
    const queue = env.queue<string>('retry-order', { retry: { baseMs: 0, capMs: 0 } });
    await queue.sendMany([{ payload: 'a' }, { payload: 'b' }, { payload: 'urgent', priority: 'HIGH' }]);
    const [urgent] = await queue.dequeue();
    expect(urgent!.payload).toBe('urgent');
    await queue.nack(urgent!, { error: 'try again' });
    const order = (await queue.dequeue({ count: 10 })).map((d) => `${d.payload}:${d.attempts}`);
    expect(order).toEqual(['urgent:1', 'a:0', 'b:0']);
  });
});
