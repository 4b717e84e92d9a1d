import { describe, expect, it } from 'vitest';
import type { Delivery, PriorityValue } from '../src/index.js';
import { misplaced, snapshot } from './inspect.js';
import { prng, useRedis, waitFor } from './helpers.js';
import { outstanding } from './stats.js';

const env = useRedis();

describe('one place', () => {
  it('after every step of 400 random operations each live message is in exactly one state structure', async () => {
    const random = prng(2026);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const queue = env.queue<number>('chaos', { retry: { baseMs: 5, capMs: 20, jitter: 0.5 } });
    const live = new Set<string>();
    const acked = new Set<string>();
    let held: Delivery<number>[] = [];
    let n = 0;

    const operations: Record<string, () => Promise<void>> = {
      send: async () => {
        const items = Array.from({ length: 1 + Math.floor(random() * 5) }, () => ({
          payload: n++,
          priority: (1 + Math.floor(random() * 4)) as PriorityValue,
          partitionKey: pick([undefined, undefined, 'a', 'b']),
          delayMs: pick([0, 0, 0, 5, 30]),
          maxRetries: pick([0, 1, 2]),
        }));
        for (const id of await queue.sendMany(items)) live.add(id);
      },
      dequeue: async () => {
        held.push(
          ...(await queue.dequeue({ count: 1 + Math.floor(random() * 5), visibilityMs: pick([10, 50, 2_000]) })),
        );
      },
      ack: async () => {
        const chosen = held.filter(() => random() < 0.5);
        const results = await queue.ackMany(chosen);
        chosen.forEach((d, i) => {
          if (results[i]) {
            live.delete(d.id);
            acked.add(d.id);
          }
        });
      },
      nack: async () => {
        const chosen = held.filter(() => random() < 0.5);
        await queue.nackMany(chosen.map((ref) => ({ ref, retry: random() < 0.8, error: 'random failure' })));
      },
      extend: async () => {
        await queue.extendMany(
          held.filter(() => random() < 0.5),
          { visibilityMs: 2_000 },
        );
      },
      release: async () => {
        await queue.releaseMany(held.filter(() => random() < 0.3));
      },
      replay: async () => {
        await queue.replayDeadLetters({ limit: 1 + Math.floor(random() * 3) });
      },
      purge: async () => {
        const [letter] = await queue.deadLetters({ limit: 1 });
        if (letter && (await queue.purgeDeadLetters({ ids: [letter.id] })) === 1) live.delete(letter.id);
      },
      reclaim: async () => {
        await queue.reclaim();
        await queue.promote();
      },
    };
    const names = [
      'send',
      'send',
      'send',
      'dequeue',
      'dequeue',
      'ack',
      'nack',
      'extend',
      'release',
      'replay',
      'purge',
      'reclaim',
    ];

    for (let step = 0; step < 400; step++) {
      const name = pick(names);
      await operations[name]!();
      // Old deliveries stay in `held` on purpose: their receipts go stale and must be refused harmlessly.
      if (held.length > 40) held = held.slice(-20);
      const snap = await snapshot(env.redis, queue.baseKey);
      const problems = misplaced(snap, live);
      for (const id of acked)
        if (snap.places.has(id)) problems.push(`${id} acked but still in ${snap.places.get(id)!.join(', ')}`);
      for (const [id, receipts] of snap.inflightReceipts)
        if (receipts.length > 1) problems.push(`${id} in flight twice`);
      expect(problems, `after step ${step} (${name})`).toEqual([]);
      expect(snap.places.size, `after step ${step} (${name})`).toBe(live.size);
    }

    // Nothing lost: drain the rest; every message sent ends acked or in the DLQ.
    await waitFor(async () => {
      const batch = await queue.dequeue({ count: 100, visibilityMs: 5_000 });
      for (const [i, ok] of (await queue.ackMany(batch)).entries()) if (ok) live.delete(batch[i]!.id);
      const stats = await queue.getStats();
      return outstanding(stats) === 0;
    }, 'the queue to drain');
    const dead = new Set((await queue.deadLetters({ limit: 1000 })).map((l) => l.id));
    expect([...live].filter((id) => !dead.has(id))).toEqual([]);
    expect(dead.size).toBe(live.size);
  });
});
