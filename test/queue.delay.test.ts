import { describe, expect, it } from 'vitest';
import { consumerIsBlocked, useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('delays', () => {
  it('a message with a delay is not delivered before it is due, and is by a dequeue after', async () => {
    const queue = env.queue<string>('delayed');
    const sentAt = Date.now();
    const id = await queue.send('later', { delayMs: 300 });
    expect(await queue.dequeue()).toEqual([]);
    expect((await queue.getMessage(id))!.status).toBe('DELAYED');
    const [delivery] = await waitFor(async () => {
      const batch = await queue.dequeue();
      return batch.length > 0 ? batch : null;
    }, 'the delayed message');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(299);
    expect(delivery!.payload).toBe('later');
    expect(delivery!.runAt).toBeGreaterThanOrEqual(sentAt + 300);
  });

  it('messages due in the same millisecond are delivered in the order they were sent', async () => {
    const queue = env.queue<number>('same-ms');
    // One batch: one script call, one clock reading, so all 50 are due in the same millisecond.
    await queue.sendMany(Array.from({ length: 50 }, (_, n) => ({ payload: n, delayMs: 100 })));
    const received: number[] = [];
    await waitFor(async () => {
      received.push(...(await queue.dequeue({ count: 100 })).map((d) => d.payload));
      return received.length === 50;
    }, 'the delayed batch');
    expect(received).toEqual(Array.from({ length: 50 }, (_, n) => n));
  });

  it('runAt in the future is honoured; runAt in the past means now', async () => {
    const queue = env.queue<string>('run-at');
    await queue.send('past', { runAt: new Date(Date.now() - 60_000) });
    await queue.send('future', { runAt: Date.now() + 60_000 });
    expect((await queue.dequeue({ count: 10 })).map((d) => d.payload)).toEqual(['past']);
    expect((await queue.getStats()).delayed).toBe(1);
  });

  it('an idle consumer already waiting gets a delayed message within 50 ms after it is due', async () => {
    const queue = env.queue<string>('wake-on-due');
    const started: { payload: string; at: number }[] = [];
    const consumer = queue.consume((m) => {
      started.push({ payload: m.payload, at: Date.now() });
    });
    // Let the consumer go idle: it handles a first message, then blocks in Redis.
    await queue.send('warm-up');
    await waitFor(() => started.length === 1, 'the warm-up message');
    await waitFor(() => consumerIsBlocked(env.redis, queue.baseKey), 'the consumer to block');

    const lateness: number[] = [];
    for (const delayMs of [150, 250, 400, 200, 300]) {
      const sentAt = Date.now();
      await queue.send(`after-${delayMs}`, { delayMs });
      await waitFor(() => started.some((s) => s.payload === `after-${delayMs}`), 'the delayed message');
      const at = started.find((s) => s.payload === `after-${delayMs}`)!.at;
      lateness.push(at - (sentAt + delayMs));
    }
    await consumer.close();
    // Never early; and late by less than 50 ms (the median of five, so that one scheduling hiccup on a
    // loaded machine does not decide: Redis's own blocking timeouts would be up to 100 ms late).
    expect(Math.min(...lateness), `lateness ${lateness.join(', ')} ms`).toBeGreaterThanOrEqual(-1);
    expect([...lateness].sort((a, b) => a - b)[2], `lateness ${lateness.join(', ')} ms`).toBeLessThan(50);
  });
});

describe('backoff', () => {
  /** Fails the message once more and returns how far in the future its retry was scheduled. */
  async function failAndMeasure(queue: ReturnType<typeof env.queue<string>>, id: string) {
    const [delivery] = await waitFor(async () => {
      await env.redis.zadd(`${queue.baseKey}:d`, 'XX', 0, id); // make the pending retry due now
      const batch = await queue.dequeue();
      return batch.length > 0 ? batch : null;
    }, 'the retry');
    const before = Date.now();
    const outcome = await queue.nack(delivery!, { error: `failure ${delivery!.attempts + 1}` });
    const info = await queue.getMessage(id);
    return { outcome, delay: info!.at! - before, info: info! };
  }

  it('defaults to min(300 s, 30 s * 2^(attempt-1)) and dead-letters after maxRetries', async () => {
    const queue = env.queue<string>('default-backoff');
    const id = await queue.send('flaky', { maxRetries: 5 });
    const expected = [30_000, 60_000, 120_000, 240_000, 300_000];
    for (const [n, delay] of expected.entries()) {
      const { outcome, delay: measured, info } = await failAndMeasure(queue, id);
      expect(outcome).toBe('retried');
      expect(info.status).toBe('RETRY');
      expect(info.attempts).toBe(n + 1);
      expect(info.lastError).toBe(`failure ${n + 1}`);
      expect(measured).toBeGreaterThanOrEqual(delay - 5);
      expect(measured).toBeLessThanOrEqual(delay + 1_000);
    }
    const last = await failAndMeasure(queue, id);
    expect(last.outcome).toBe('dead-lettered');
    expect(last.info.status).toBe('FAILED');
    expect(last.info.attempts).toBe(6);
  });

  it('base, cap and jitter are configurable per queue; maxRetries per message', async () => {
    const queue = env.queue<string>('custom-backoff', { retry: { baseMs: 1_000, capMs: 3_000, jitter: 0.5 } });
    const id = await queue.send('flaky', { maxRetries: 3 });
    for (const full of [1_000, 2_000, 3_000]) {
      const { delay } = await failAndMeasure(queue, id);
      expect(delay).toBeGreaterThanOrEqual(full * 0.5 - 5);
      expect(delay).toBeLessThanOrEqual(full + 500);
    }
    expect((await failAndMeasure(queue, id)).outcome).toBe('dead-lettered');

    const never = await queue.send('no retries', { maxRetries: 0 });
    const [delivery] = await queue.dequeue();
    expect(delivery!.id).toBe(never);
    expect(await queue.nack(delivery!, { error: 'once is enough' })).toBe('dead-lettered');
  });

  it('a nack may ask for its own retry delay', async () => {
    const queue = env.queue<string>('nack-delay');
    const id = await queue.send('x');
    const [delivery] = await queue.dequeue();
    const before = Date.now();
    await queue.nack(delivery!, { delayMs: 5_000 });
    const at = (await queue.getMessage(id))!.at!;
    expect(at - before).toBeGreaterThanOrEqual(4_995);
    expect(at - before).toBeLessThanOrEqual(6_000);
  });
});
