import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, type EventBusOptions } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';
import { useProxy } from './faults.helpers.js';
import { scriptCall } from './proxy.js';
import type { ScriptName } from '../src/scripts.js';

/**
 * Guarantee 10 for the event bus: the reply of one script call is lost and ioredis re-sends the call after
 * reconnecting. The publisher (or whoever changed a subscription) must see the result of one call, and each
 * subscriber must get each event once. The faulty bus is made on a user's own ioredis client that reaches
 * Redis through the fault proxy; a second bus on a direct connection checks what subscribers received.
 */

const t = useBus();
const faults = useProxy();
const clients: Redis[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

/** The same bus twice: through the proxy (faulty) and direct (to look). */
function buses(options: Partial<EventBusOptions> = {}): { faulty: EventBus; direct: EventBus } {
  const direct = t.bus('bus', options);
  const client = new Redis(faults.proxy.port, '127.0.0.1');
  client.on('error', () => undefined);
  clients.push(client);
  const faulty = new EventBus('bus', { ...options, connection: client, prefix: direct.prefix });
  return { faulty, direct };
}

function loseReplyOf(script: ScriptName) {
  const lost = faults.proxy.loseReply({ command: scriptCall(script) });
  return () => expect(lost.hasFired, `the reply of ${script} was lost and the call re-sent`).toBe(true);
}

describe('event bus: a lost reply re-sent by ioredis has the effect of one call', () => {
  it('publish with deduplication tells the publisher the real delivered count, not "duplicate"', async () => {
    const { faulty, direct } = buses();
    await direct.subscribe('orders', 'order.*');
    await direct.subscribe('audit', '#');
    const fired = loseReplyOf('bus/publish');
    const result = await faulty.publish('order.created', { n: 1 });
    fired();
    expect(result).toEqual({ id: expect.any(String), delivered: 2, duplicate: false });
    for (const subscriber of ['orders', 'audit']) {
      expect(
        (await drain(direct.subscriberQueue(subscriber))).map((e) => e.id),
        subscriber,
      ).toEqual([result.id]);
    }
    expect((await direct.history('order.created')).map((h) => h.event.id)).toEqual([result.id]);
    expect((await direct.getStats()).events).toMatchObject({ published: 1, delivered: 2, duplicates: 0 });
  });

  it('publish without deduplication delivers the event to each subscriber once', async () => {
    const { faulty, direct } = buses({ dedupWindowMs: 0 });
    await direct.subscribe('orders', 'order.*');
    await direct.subscribe('audit', '#');
    const fired = loseReplyOf('bus/publish');
    const result = await faulty.publish('order.created', { n: 1 });
    fired();
    expect(result).toEqual({ id: expect.any(String), delivered: 2, duplicate: false });
    for (const subscriber of ['orders', 'audit']) {
      expect(
        (await drain(direct.subscriberQueue(subscriber))).map((e) => e.id),
        subscriber,
      ).toEqual([result.id]);
    }
    expect((await direct.history('order.created')).map((h) => h.event.id)).toEqual([result.id]);
    expect((await direct.getStats()).events).toMatchObject({ published: 1, delivered: 2 });
  });

  it('subscribe of a new subscriber returns true (new), and registers it once', async () => {
    const { faulty, direct } = buses();
    const fired = loseReplyOf('bus/subscribe');
    expect(await faulty.subscribe('orders', 'order.*')).toBe(true);
    fired();
    expect(await direct.listSubscriptions()).toEqual([
      { subscriberId: 'orders', patterns: ['order.*'], filter: null, maxRetries: 3, active: true },
    ]);
    const { id } = await direct.publish('order.created', 1);
    expect((await drain(direct.subscriberQueue('orders'))).map((e) => e.id)).toEqual([id]);
  });

  it('unsubscribe returns true (removed), and the subscriber gets nothing more', async () => {
    const { faulty, direct } = buses();
    await direct.subscribe('orders', 'order.*');
    await direct.subscribe('audit', '#');
    const fired = loseReplyOf('bus/unsubscribe');
    expect(await faulty.unsubscribe('orders')).toBe(true);
    fired();
    expect((await direct.listSubscriptions()).map((s) => s.subscriberId)).toEqual(['audit']);
    expect(await direct.publish('order.created', 1)).toMatchObject({ delivered: 1 });
    expect(await drain(direct.subscriberQueue('orders'))).toEqual([]);
  });

  it('pause and resume of a subscriber each take effect once', async () => {
    const { faulty, direct } = buses();
    await direct.subscribe('orders', 'order.*');
    let fired = loseReplyOf('bus/subscriptionActive');
    await faulty.pause('orders');
    fired();
    expect((await direct.listSubscriptions())[0]?.active).toBe(false);
    expect(await direct.publish('order.created', 1)).toMatchObject({ delivered: 0 });
    fired = loseReplyOf('bus/subscriptionActive');
    await faulty.resume('orders');
    fired();
    expect((await direct.listSubscriptions())[0]?.active).toBe(true);
    const { id } = await direct.publish('order.created', 2);
    expect((await drain(direct.subscriberQueue('orders'))).map((e) => e.id)).toEqual([id]);
  });

  it('history replay copies the range into the subscriber queue once', async () => {
    const { faulty, direct } = buses();
    const published = await direct.publishMany([1, 2].map((n) => ({ type: 'order.created', data: n })));
    await direct.subscribe('late', 'order.*');
    const fired = loseReplyOf('bus/historyReplay');
    expect(await faulty.replay('late', 'order.created')).toBe(2);
    fired();
    expect((await drain(direct.subscriberQueue('late'))).map((e) => e.id)).toEqual(published.map((p) => p.id));
    expect((await direct.getStats()).events).toMatchObject({ replayed: 2 });
  });
});
