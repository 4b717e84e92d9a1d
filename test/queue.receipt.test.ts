import { describe, expect, it } from 'vitest';
import { StaleReceiptError } from '../src/index.js';
import { snapshot } from './inspect.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('receipts', () => {
  it('after a reclaim, the old receipt is refused for ack, nack and extend, and the new holder is unaffected', async () => {
    const prefix = env.prefix();
    const options = { prefix, retry: { baseMs: 0, capMs: 0 } };
    const first = env.queue<string>('jobs', { ...options, connection: env.connection() });
    const second = env.queue<string>('jobs', { ...options, connection: env.connection() });
    const id = await first.send('work');
    const [old] = await first.dequeue({ visibilityMs: 100 });
    expect(old!.id).toBe(id);

    // The first holder stalls past its deadline; the next dequeue reclaims the message and hands it on.
    const [fresh] = await waitFor(async () => {
      const batch = await second.dequeue({ visibilityMs: 60_000 });
      return batch.length > 0 ? batch : null;
    }, 'the reclaimed message');
    expect(fresh!.id).toBe(id);
    expect(fresh!.receipt).not.toBe(old!.receipt);
    expect(fresh!.attempts).toBe(1);
    expect((await first.getMessage(id))!.lastError).toMatch(/visibility timeout expired/);

    const before = await snapshot(env.redis, first.baseKey);
    await expect(first.ack(old!)).rejects.toBeInstanceOf(StaleReceiptError);
    await expect(first.nack(old!, { error: 'late' })).rejects.toMatchObject({ code: 'STALE_RECEIPT', messageId: id });
    await expect(first.extend(old!, { visibilityMs: 60_000 })).rejects.toThrow(/not in flight under receipt/);
    expect(await first.ackMany([old!])).toEqual([false]);
    expect(await snapshot(env.redis, first.baseKey)).toEqual(before);

    await second.extend(fresh!, { visibilityMs: 120_000 });
    await second.ack(fresh!);
    expect(await second.getMessage(id)).toBeNull();
    const stats = await second.getStats();
    expect(stats.counters).toMatchObject({ acked: 1, reclaimed: 1, retried: 1, delivered: 2 });
  });

  it('extend keeps a delivery from being reclaimed', async () => {
    const queue = env.queue<string>('extend', { retry: { baseMs: 0, capMs: 0 } });
    await queue.send('long job');
    const [held] = await queue.dequeue({ visibilityMs: 150 });
    for (let n = 0; n < 4; n++) {
      await queue.extend(held!, { visibilityMs: 150 });
      await new Promise((resolve) => setTimeout(resolve, 75)); // simulated work between extensions
      expect(await queue.dequeue()).toEqual([]);
    }
    await queue.ack(held!);
    expect((await queue.getStats()).counters.reclaimed).toBe(0);
  });

  it('each receipt is acked at most once', async () => {
    const queue = env.queue<string>('twice');
    await queue.send('x');
    const [d] = await queue.dequeue();
    expect(await queue.ackMany([d!, d!])).toEqual([true, false]);
  });
});
