import { describe, expect, it } from 'vitest';
import { Queue, ValidationError } from '../src/index.js';
import { misplaced, snapshot } from './inspect.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('edges found in review', () => {
  it('an empty id list purges and replays nothing; purging by age needs an explicit limit', async () => {
    const queue = env.queue<number>('empty-ids');
    await queue.sendMany([1, 2].map((n) => ({ payload: n, maxRetries: 0 })));
    for (const d of await queue.dequeue({ count: 2 })) await queue.nack(d);
    expect(await queue.purgeDeadLetters({ ids: [] })).toBe(0);
    expect(await queue.replayDeadLetters({ ids: [] })).toEqual([]);
    expect((await queue.getStats()).deadLetters).toBe(2);
    await expect(queue.purgeDeadLetters({} as never)).rejects.toThrow(/give the ids to purge, or a limit/);
    expect(await queue.purgeDeadLetters({ limit: 1 })).toBe(1);
    expect((await queue.getStats()).deadLetters).toBe(1);
  });

  it('a sender-chosen id that is still live is not sent twice; once acked it may be used again', async () => {
    const queue = env.queue<string>('chosen-ids');
    expect(await queue.send('first', { id: 'order-1', delayMs: 60_000 })).toBe('order-1');
    expect(await queue.send('second', { id: 'order-1' })).toBe('order-1');
    expect(
      await queue.sendMany([
        { payload: 'third', id: 'order-2' },
        { payload: 'fourth', id: 'order-2' },
      ]),
    ).toEqual(['order-2', 'order-2']);
    const stats = await queue.getStats();
    expect(stats.counters.sent).toBe(2);
    expect(stats.delayed + stats.ready.normal).toBe(2);
    const [d] = await queue.dequeue();
    expect(d!.payload).toBe('third');
    await queue.ack(d!);
    await queue.send('fifth', { id: 'order-2' });
    expect((await queue.dequeue()).map((m) => m.payload)).toEqual(['fifth']);
    expect(misplaced(await snapshot(env.redis, queue.baseKey), ['order-1', 'order-2'])).toEqual([]);
  });

  it('a fractional runAt is rounded up, not stored as a corrupt record; out-of-range times are refused', async () => {
    const queue = env.queue<string>('run-at-edges');
    const id = await queue.send('soon', { runAt: Date.now() + 100.5 });
    const past = await queue.send('past', { runAt: Date.now() - 1_000.25 });
    const delivered: string[] = [];
    await waitFor(async () => {
      delivered.push(...(await queue.dequeue({ count: 10 })).map((d) => d.id));
      return delivered.length === 2;
    }, 'both messages');
    expect(delivered.sort()).toEqual([id, past].sort());
    expect((await queue.getStats()).deadLetters).toBe(0);
    await expect(queue.send('x', { runAt: -5 })).rejects.toBeInstanceOf(ValidationError);
    await expect(queue.send('x', { delayMs: 1e300 })).rejects.toThrow(/at most .* \(10 years\)/);
    await expect(queue.send('x', { runAt: Date.now() + 20 * 365 * 24 * 3600 * 1000 })).rejects.toThrow(/ten years/);
  });

  it('released deliveries go back to the front of their queue in their original order', async () => {
    const queue = env.queue<string>('release-order');
    await queue.sendMany(['a', 'b', 'c', 'd'].map((payload) => ({ payload })));
    const taken = await queue.dequeue({ count: 3 });
    expect(await queue.releaseMany(taken)).toEqual([true, true, true]);
    expect((await queue.dequeue({ count: 10 })).map((d) => `${d.payload}:${d.attempts}`)).toEqual([
      'a:0',
      'b:0',
      'c:0',
      'd:0',
    ]);
  });

  it('a malformed in-flight entry does not make reclaim lose the messages expiring with it', async () => {
    const queue = env.queue<string>('bad-member', { retry: { baseMs: 0, capMs: 0 } });
    const ids = await queue.sendMany([{ payload: 'x' }, { payload: 'y' }]);
    await queue.dequeue({ count: 2, visibilityMs: 1 });
    await env.redis.zadd(`${queue.baseKey}:i`, 0, 'no-receipt-here');
    const redelivered = await waitFor(async () => {
      const batch = await queue.dequeue({ count: 10 });
      return batch.length === 2 ? batch : null;
    }, 'both messages redelivered');
    expect(redelivered.map((d) => d.id).sort()).toEqual([...ids].sort());
    expect(redelivered.every((d) => d.attempts === 1)).toBe(true);
  });

  it('corrupt records each get their own dead-letter id', async () => {
    const queue = env.queue<string>('corrupt-ids');
    await queue.sendMany([{ payload: 'a' }, { payload: 'b' }]);
    await env.redis.lset(`${queue.baseKey}:r2`, 0, 'same garbage');
    await env.redis.lset(`${queue.baseKey}:r2`, 1, 'same garbage');
    expect(await queue.dequeue({ count: 10 })).toEqual([]);
    const letters = await queue.deadLetters();
    expect(letters).toHaveLength(2);
    expect(new Set(letters.map((l) => l.id)).size).toBe(2);
  });

  it('batch calls larger than one script call are split, not refused by Lua', async () => {
    const queue = env.queue<number>('big-batches');
    const count = 2_500;
    for (let from = 0; from < count; from += 1_000) {
      await queue.sendMany(Array.from({ length: Math.min(1_000, count - from) }, (_, n) => ({ payload: from + n })));
    }
    const all = [];
    while (all.length < count) all.push(...(await queue.dequeue({ count: 1_000 })));
    expect((await queue.extendMany(all, { visibilityMs: 60_000 })).every(Boolean)).toBe(true);
    expect((await queue.ackMany(all)).every(Boolean)).toBe(true);
    expect((await queue.getStats()).counters.acked).toBe(count);
  });

  it('refuses malformed options, handlers and delivery refs with ValidationError', async () => {
    expect(() => new Queue('x', undefined as never)).toThrow(ValidationError);
    expect(() => env.queue('x', { prefix: 'a:b' })).toThrow(/prefix may not contain ':'/);
    const queue = env.queue('refs');
    expect(() => queue.consume('not a function' as never)).toThrow(/needs a function/);
    expect(() => queue.consume(() => undefined, { blockMs: 0 })).toThrow(ValidationError);
    expect(() => queue.consume(() => undefined, { visibilityMs: 0 })).toThrow(
      /visibilityMs must be a finite number of ms >= 1/,
    );
    await expect(queue.ack(undefined as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'delivery' });
    await expect(queue.ack({ id: 'x' } as never)).rejects.toThrow(/string id and receipt/);
    await expect(queue.dequeue({ visibilityMs: 0 })).rejects.toBeInstanceOf(ValidationError);
  });
});
