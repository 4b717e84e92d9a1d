import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Queue } from '../src/index.js';
import { misplaced, snapshot } from './inspect.js';
import { FaultProxy } from './proxy.js';
import { redisUrl, waitFor } from './helpers.js';
import { outstanding } from './stats.js';

/**
 * A fault proxy in front of the test Redis for one test file. After each test it is disarmed and
 * accepts connections again, so a failing test does not leave the next one with a fault.
 */
export function useProxy(): { readonly proxy: FaultProxy } {
  let proxy: FaultProxy | undefined;
  beforeAll(async () => {
    proxy = await FaultProxy.start(redisUrl());
  });
  afterEach(() => {
    proxy?.disarm();
    proxy?.accept();
  });
  afterAll(async () => {
    await proxy?.close();
  });
  return {
    get proxy() {
      if (!proxy) throw new Error('the fault proxy starts in beforeAll');
      return proxy;
    },
  };
}

/**
 * Guarantees 1 and 2 of a queue, read straight from Redis: every id of `live` is in exactly one state
 * structure (and no other id is anywhere), and no message is in flight under more than one receipt.
 */
export async function expectOnePlaceEach(redis: Redis, queue: Queue<any>, live: Iterable<string>): Promise<void> {
  const ids = [...live];
  const snap = await snapshot(redis, queue.baseKey);
  const problems = misplaced(snap, ids);
  for (const id of snap.places.keys())
    if (!ids.includes(id)) problems.push(`${id} in ${snap.places.get(id)!.join(', ')} but not expected`);
  for (const [id, receipts] of snap.inflightReceipts) {
    if (receipts.length > 1)
      problems.push(`${id} in flight under ${receipts.length} receipts (${receipts.join(', ')})`);
  }
  expect(problems, 'guarantees 1 and 2: each id in exactly one place, at most one receipt').toEqual([]);
}

/**
 * Guarantee 3: drains the queue (ack everything deliverable, waiting for delayed retries) and returns how
 * many times each id was delivered, plus the dead letters. `visibilityMs` bounds what is in flight now.
 */
export async function drain(queue: Queue<any>): Promise<{ delivered: Map<string, number>; dead: string[] }> {
  const delivered = new Map<string, number>();
  await waitFor(async () => {
    const batch = await queue.dequeue({ count: 100, visibilityMs: 30_000 });
    for (const d of batch) delivered.set(d.id, (delivered.get(d.id) ?? 0) + 1);
    await queue.ackMany(batch);
    const stats = await queue.getStats();
    return outstanding(stats) === 0;
  }, `queue ${queue.name} to drain`);
  const dead = (await queue.deadLetters({ limit: 1000 })).map((letter) => letter.id);
  return { delivered, dead };
}
