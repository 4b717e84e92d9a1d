import { describe, expect, it } from 'vitest';
import { Locks } from '../src/index.js';
import { useRedis } from './helpers.js';

const env = useRedis();

describe('queue.peek: read-only pages of a state', () => {
  it('lists ready messages in dequeue order, delayed by due time, in flight by deadline, dead by failure', async () => {
    const queue = env.queue<{ n: number }>('orders', { retry: { baseMs: 60_000 } });
    await queue.send({ n: 1 }, { id: 'low', priority: 'LOW' });
    await queue.send({ n: 2 }, { id: 'normal-1' });
    await queue.send({ n: 3 }, { id: 'normal-2' });
    await queue.send({ n: 4 }, { id: 'critical', priority: 'CRITICAL' });
    await queue.send({ n: 5 }, { id: 'later', delayMs: 60_000 });
    await queue.send({ n: 6 }, { id: 'soon', delayMs: 30_000 });

    const ready = await queue.peek('ready');
    expect(ready.map((m) => m.id)).toEqual(['critical', 'normal-1', 'normal-2', 'low']);
    expect(ready[0]).toMatchObject({ state: 'ready', at: null, lastError: null, message: { payload: { n: 4 } } });
    // Pages across the priority lists.
    expect((await queue.peek('ready', { offset: 1, limit: 2 })).map((m) => m.id)).toEqual(['normal-1', 'normal-2']);
    expect((await queue.peek('ready', { offset: 3, limit: 5 })).map((m) => m.id)).toEqual(['low']);
    expect(await queue.peek('ready', { offset: 4 })).toEqual([]);

    const delayed = await queue.peek('delayed');
    expect(delayed.map((m) => m.id)).toEqual(['soon', 'later']);
    expect(delayed[0]!.at).toBeGreaterThan(Date.now() + 20_000);

    const deliveries = await queue.dequeue({ count: 2, visibilityMs: 60_000 });
    expect(deliveries.map((d) => d.id)).toEqual(['critical', 'normal-1']);
    await queue.nack(deliveries[1]!, { retry: false, error: 'bad payload' });
    const inflight = await queue.peek('inflight');
    expect(inflight).toMatchObject([{ id: 'critical', state: 'inflight', message: { payload: { n: 4 } } }]);
    expect(inflight[0]!.at).toBeGreaterThan(Date.now() + 30_000);
    expect(await queue.peek('dead')).toMatchObject([{ id: 'normal-1', state: 'dead', lastError: 'bad payload' }]);

    // Nothing moved.
    const stats = await queue.getStats();
    expect(stats).toMatchObject({ inflight: 1, delayed: 2, deadLetters: 1, ready: { normal: 1, low: 1 } });
  });

  it('refuses an unknown state or a bad page', async () => {
    const queue = env.queue('orders');
    await expect(queue.peek('pending' as never)).rejects.toThrow(/state must be one of ready, delayed, inflight, dead/);
    await expect(queue.peek('ready', { limit: 0 })).rejects.toThrow(/limit must be an integer from 1 to 1000/);
  });
});

describe('locks.status', () => {
  it('says whether a lock is held, its TTL and its fence', async () => {
    const prefix = env.prefix();
    const locks = new Locks({ connection: env.redis, prefix });
    expect(await locks.status('report')).toEqual({ name: 'report', held: false, holder: null, ttlMs: null, fence: 0 });
    const lock = await locks.acquire('report', { ttlMs: 60_000 });
    const held = await locks.status('report');
    expect(held).toMatchObject({ name: 'report', held: true, fence: lock!.fence });
    expect(held.ttlMs).toBeGreaterThan(30_000);
    await locks.release(lock!);
    expect(await locks.status('report')).toEqual({
      name: 'report',
      held: false,
      holder: null,
      ttlMs: null,
      fence: lock!.fence,
    });
  });
});
