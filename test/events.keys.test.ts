import { describe, expect, it } from 'vitest';
import { registryKey } from '../src/keys.js';
import { drain, scanAll, useBus } from './events.helpers.js';

const t = useBus();

describe('keys of an event bus', () => {
  it('all keys of one bus, subscriber queues included, share one hash tag (one cluster slot)', async () => {
    const bus = t.bus('orders');
    await bus.subscribe('billing', ['account.created', 'account.*'], { filter: { 'data.plan': { exists: true } } });
    await bus.subscribe('audit', '#');
    await bus.pause('audit');
    await bus.resume('audit');
    await bus.publishMany([
      { type: 'account.created', data: { plan: 'pro' }, id: 'e1' },
      { type: 'account.deleted', data: { plan: 'pro' }, partitionKey: 'acct-1' },
    ]);
    const queue = bus.subscriberQueue('billing');
    const [delivery] = await queue.dequeue();
    await queue.nack(delivery!, { delayMs: 60_000 });
    await bus.replay('audit', 'account.created');
    // Every key that mentions this test's prefix, wherever it starts.
    // (The prefix's registry, `{prefix:registry/}`, lists the bus for discovery: its own slot, see keys.ts.)
    const keys = (await scanAll(t.redis, `*${bus.prefix}*`)).filter((key) => key !== registryKey(bus.prefix, 'buses'));
    expect(keys.length).toBeGreaterThan(10);
    expect(bus.baseKey).toBe(`{${bus.prefix}:bus/orders}`);
    for (const key of keys) expect(key.startsWith(bus.baseKey)).toBe(true);
    // Redis Cluster hashes only the text between the first { and the next }: here the whole base key.
    expect(bus.baseKey).toMatch(/^\{[^{}]+\}$/);
  });

  it('indexes exact patterns by type and puts only wildcard subscribers in the scanned set', async () => {
    const bus = t.bus();
    await bus.subscribe('exact', ['account.created', 'account.deleted']);
    await bus.subscribe('mixed', ['account.created', 'trade.*']);
    await bus.subscribe('wild', '#');
    const key = (suffix: string) => `${bus.baseKey}${suffix}`;
    expect((await t.redis.smembers(key(':x:account.created'))).sort()).toEqual(['exact', 'mixed']);
    expect(await t.redis.smembers(key(':x:account.deleted'))).toEqual(['exact']);
    expect((await t.redis.smembers(key(':wild'))).sort()).toEqual(['mixed', 'wild']);
    await bus.subscribe('mixed', 'account.updated');
    expect(await t.redis.smembers(key(':x:account.created'))).toEqual(['exact']);
    expect(await t.redis.smembers(key(':wild'))).toEqual(['wild']);
    await bus.unsubscribe('exact');
    expect(await t.redis.exists(key(':x:account.created'), key(':x:account.deleted'))).toBe(0);
    // The index is what publish reads: the outcome stays right after the changes.
    expect((await bus.publish('account.updated', {})).delivered).toBe(2);
    expect(await drain(bus.subscriberQueue('exact'))).toEqual([]);
  });

  it('a bus never shares keys with a queue of the same prefix and name', async () => {
    const prefix = t.prefix();
    const bus = t.bus('jobs', { prefix });
    const queue = t.queue('jobs', { prefix });
    await bus.subscribe('s', '#');
    await bus.publish('e', 1);
    await queue.send({ plain: true });
    expect((await queue.getStats()).ready.normal).toBe(1);
    expect(await drain(bus.subscriberQueue('s'))).toHaveLength(1);
  });
});
