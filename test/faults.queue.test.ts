import { afterEach, describe, expect, it } from 'vitest';
import { Queue, type Delivery, type QueueOptions } from '../src/index.js';
import { drain, expectOnePlaceEach, useProxy } from './faults.helpers.js';
import { scriptCall } from './proxy.js';
import { snapshot } from './inspect.js';
import { useRedis, waitFor } from './helpers.js';

/**
 * Guarantee 10 for the queue: the reply of one script call is lost (the script ran, the connection dropped
 * before its answer was read) and ioredis re-sends the call after reconnecting. The caller must see the
 * result of one call, and guarantees 1 (one place), 2 (one receipt) and 3 (nothing lost) must hold.
 * Each queue reaches Redis through the fault proxy, from a URL, as a user would make it.
 */

const env = useRedis();
const faults = useProxy();
let opened: Queue<any>[] = [];

afterEach(async () => {
  await Promise.all(opened.map((q) => q.close()));
  opened = [];
});

function queue<T = { n: number }>(options: Partial<QueueOptions> = {}): Queue<T> {
  const q = new Queue<T>('q', {
    connection: faults.proxy.url,
    prefix: env.prefix(),
    retry: { baseMs: 10, capMs: 50 },
    ...options,
  });
  opened.push(q);
  return q;
}

/** Arms a lost reply for the next call of `script` and returns a check that it fired. */
function loseReplyOf(script: Parameters<typeof scriptCall>[0]) {
  const lost = faults.proxy.loseReply({ command: scriptCall(script) });
  return () => expect(lost.hasFired, `the reply of ${script} was lost and the call re-sent`).toBe(true);
}

/** Guarantee 3: every id of `ids` is delivered exactly once more by a drain (none acked before). */
async function expectEachDeliveredOnce(q: Queue<any>, ids: string[]): Promise<void> {
  const { delivered, dead } = await drain(q);
  expect(Object.fromEntries(delivered)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  expect(dead).toEqual([]);
}

/** Sends `count` messages, takes them all into flight and dead-letters them; returns the DLQ ids, oldest first. */
async function deadLetters(q: Queue<{ n: number }>, count: number): Promise<string[]> {
  for (let n = 0; n < count; n++) {
    const id = await q.send({ n }, { maxRetries: 0 });
    const [delivery] = await q.dequeue();
    expect(delivery?.id).toBe(id);
    expect(await q.nack(delivery!, { retry: false, error: `letter ${n}` })).toBe('dead-lettered');
  }
  const letters = (await q.deadLetters()).map((letter) => letter.id);
  expect(letters).toHaveLength(count);
  return letters;
}

describe('queue: a lost reply re-sent by ioredis has the effect of one call', () => {
  it('send with a generated id writes one message', async () => {
    const q = queue();
    const fired = loseReplyOf('queue/send');
    const id = await q.send({ n: 1 });
    fired();
    await expectOnePlaceEach(env.redis, q, [id]);
    expect((await q.getStats()).counters.sent).toBe(1);
    await expectEachDeliveredOnce(q, [id]);
  });

  it('sendMany with generated ids writes each message once', async () => {
    const q = queue();
    const fired = loseReplyOf('queue/send');
    const ids = await q.sendMany([
      { payload: { n: 1 } },
      { payload: { n: 2 }, priority: 'HIGH' },
      { payload: { n: 3 }, partitionKey: 'p' },
    ]);
    fired();
    expect(new Set(ids).size).toBe(3);
    await expectOnePlaceEach(env.redis, q, ids);
    expect((await q.getStats()).counters.sent).toBe(3);
    await expectEachDeliveredOnce(q, ids);
  });

  it('dequeue hands the caller what it took: nothing stays in flight that the caller does not hold', async () => {
    const q = queue();
    const ids = await q.sendMany([1, 2, 3].map((n) => ({ payload: { n } })));
    const fired = loseReplyOf('queue/dequeue');
    const deliveries = await q.dequeue({ count: 2, visibilityMs: 60_000 });
    fired();
    await expectOnePlaceEach(env.redis, q, ids);
    const inflight = (await snapshot(env.redis, q.baseKey)).inflightReceipts;
    const held = new Map(deliveries.map((d) => [d.id, [d.receipt]]));
    expect(Object.fromEntries(inflight), 'in flight = what the caller holds, under its receipts').toEqual(
      Object.fromEntries(held),
    );
    // The first call's result: the two oldest messages.
    expect(deliveries.map((d) => d.id)).toEqual(ids.slice(0, 2));
    expect(await q.ackMany(deliveries)).toEqual([true, true]);
    await expectEachDeliveredOnce(q, [ids[2]!]);
  });

  it('ack tells the caller the message was acked, not StaleReceiptError', async () => {
    const q = queue();
    const id = await q.send({ n: 1 });
    const [delivery] = await q.dequeue();
    const fired = loseReplyOf('queue/ack');
    await expect(q.ack(delivery!)).resolves.toBeUndefined();
    fired();
    await expectOnePlaceEach(env.redis, q, []);
    expect(await q.getMessage(id)).toBeNull();
    expect((await q.getStats()).counters.acked).toBe(1);
    await expectEachDeliveredOnce(q, []);
  });

  it('nack with retry reports "retried" and counts the attempt once', async () => {
    const q = queue();
    const id = await q.send({ n: 1 }, { maxRetries: 3 });
    const [delivery] = await q.dequeue();
    const fired = loseReplyOf('queue/nack');
    await expect(q.nack(delivery!, { error: 'boom' })).resolves.toBe('retried');
    fired();
    const info = await q.getMessage(id);
    expect(info).toMatchObject({ attempts: 1, lastError: 'boom' });
    expect(['RETRY', 'PENDING']).toContain(info!.status);
    expect((await q.getStats()).counters.retried).toBe(1);
    await expectOnePlaceEach(env.redis, q, [id]);
    const [again] = await waitForDelivery(q);
    expect(again).toMatchObject({ id, attempts: 1 });
    await q.ack(again!);
    await expectEachDeliveredOnce(q, []);
  });

  it('nack of the last allowed attempt reports "dead-lettered" and counts the attempt once', async () => {
    const q = queue();
    const id = await q.send({ n: 1 }, { maxRetries: 1 });
    const [first] = await q.dequeue();
    expect(await q.nack(first!, { error: 'first' })).toBe('retried');
    const [second] = await waitForDelivery(q);
    const fired = loseReplyOf('queue/nack');
    await expect(q.nack(second!, { error: 'second' })).resolves.toBe('dead-lettered');
    fired();
    expect(await q.getMessage(id)).toMatchObject({ status: 'FAILED', attempts: 2, lastError: 'second' });
    const letters = await q.deadLetters();
    expect(letters.map((l) => [l.id, l.reason])).toEqual([[id, 'second']]);
    expect((await q.getStats()).counters.deadLettered).toBe(1);
    await expectOnePlaceEach(env.redis, q, [id]);
    expect(await drain(q)).toEqual({ delivered: new Map(), dead: [id] });
  });

  it('extend keeps the delivery held and pushes its deadline', async () => {
    const q = queue();
    const id = await q.send({ n: 1 });
    const [delivery] = await q.dequeue({ visibilityMs: 5_000 });
    const before = Date.now();
    const fired = loseReplyOf('queue/extend');
    await expect(q.extend(delivery!, { visibilityMs: 120_000 })).resolves.toBeUndefined();
    fired();
    const info = await q.getMessage(id);
    expect(info?.status).toBe('PROCESSING');
    expect(info!.at).toBeGreaterThanOrEqual(before + 110_000);
    await expectOnePlaceEach(env.redis, q, [id]);
    await q.ack(delivery!);
    await expectEachDeliveredOnce(q, []);
  });

  it('release reports the delivery released and puts it back at the front, once', async () => {
    const q = queue();
    const ids = await q.sendMany([1, 2].map((n) => ({ payload: { n } })));
    const [delivery] = await q.dequeue({ visibilityMs: 60_000 });
    const fired = loseReplyOf('queue/nack');
    expect(await q.releaseMany([delivery!])).toEqual([true]);
    fired();
    await expectOnePlaceEach(env.redis, q, ids);
    expect(await q.getMessage(ids[0]!)).toMatchObject({ status: 'PENDING', attempts: 0 });
    const again = await q.dequeue({ count: 2 });
    expect(again.map((d) => d.id)).toEqual(ids);
    await q.ackMany(again);
    await expectEachDeliveredOnce(q, []);
  });

  it('replayDeadLetters by id reports the id replayed and replays it once', async () => {
    const q = queue();
    const [letter] = await deadLetters(q, 1);
    const fired = loseReplyOf('queue/replay');
    expect(await q.replayDeadLetters({ ids: [letter!] })).toEqual([letter]);
    fired();
    expect(await q.getMessage(letter!)).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect((await q.getStats()).counters.replayed).toBe(1);
    await expectOnePlaceEach(env.redis, q, [letter!]);
    await expectEachDeliveredOnce(q, [letter!]);
  });

  it('replayDeadLetters of the oldest one replays that one only', async () => {
    const q = queue();
    const letters = await deadLetters(q, 3);
    const fired = loseReplyOf('queue/replay');
    expect(await q.replayDeadLetters({ limit: 1 })).toEqual([letters[0]]);
    fired();
    expect((await q.deadLetters()).map((l) => l.id)).toEqual(letters.slice(1));
    expect((await q.getStats()).counters.replayed).toBe(1);
    await expectOnePlaceEach(env.redis, q, letters);
    const { delivered, dead } = await drain(q);
    expect(Object.fromEntries(delivered)).toEqual({ [letters[0]!]: 1 });
    expect(dead).toEqual(letters.slice(1));
  });

  it('purgeDeadLetters by id reports the one it deleted', async () => {
    const q = queue();
    const letters = await deadLetters(q, 2);
    const fired = loseReplyOf('queue/purge');
    expect(await q.purgeDeadLetters({ ids: [letters[0]!] })).toBe(1);
    fired();
    expect((await q.deadLetters()).map((l) => l.id)).toEqual(letters.slice(1));
    await expectOnePlaceEach(env.redis, q, letters.slice(1));
    expect(await drain(q)).toEqual({ delivered: new Map(), dead: letters.slice(1) });
  });

  it('purgeDeadLetters of the oldest one deletes that one only', async () => {
    const q = queue();
    const letters = await deadLetters(q, 3);
    const fired = loseReplyOf('queue/purge');
    expect(await q.purgeDeadLetters({ limit: 1 })).toBe(1);
    fired();
    expect((await q.deadLetters()).map((l) => l.id)).toEqual(letters.slice(1));
    await expectOnePlaceEach(env.redis, q, letters.slice(1));
    expect(await drain(q)).toEqual({ delivered: new Map(), dead: letters.slice(1) });
  });

  it('pause and resume each take effect once', async () => {
    const q = queue();
    const id = await q.send({ n: 1 });
    let fired = loseReplyOf('queue/pause');
    await q.pause();
    fired();
    expect((await q.getStats()).paused).toBe(true);
    expect(await q.dequeue()).toEqual([]);
    fired = loseReplyOf('queue/pause');
    await q.resume();
    fired();
    expect((await q.getStats()).paused).toBe(false);
    await expectOnePlaceEach(env.redis, q, [id]);
    await expectEachDeliveredOnce(q, [id]);
  });

  it('setRateLimit and its removal each take effect once', async () => {
    const q = queue();
    const ids = await q.sendMany([1, 2, 3].map((n) => ({ payload: { n } })));
    let fired = loseReplyOf('queue/rateLimit');
    await q.setRateLimit({ max: 2, windowMs: 120_000 });
    fired();
    const first = await q.dequeue({ count: 3 });
    expect(first.map((d) => d.id)).toEqual(ids.slice(0, 2));
    expect(await q.dequeue()).toEqual([]);
    await q.ackMany(first);
    fired = loseReplyOf('queue/rateLimit');
    await q.setRateLimit(null);
    fired();
    await expectOnePlaceEach(env.redis, q, [ids[2]!]);
    await expectEachDeliveredOnce(q, [ids[2]!]);
  });
});

/** A dequeue that waits for a retried message to become due (the backoff is a few ms). */
async function waitForDelivery<T>(q: Queue<T>): Promise<Delivery<T>[]> {
  return waitFor(async () => {
    const got = await q.dequeue();
    return got.length > 0 ? got : null;
  }, 'the retried message to be delivered');
}
