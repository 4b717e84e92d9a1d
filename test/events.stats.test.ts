import { describe, expect, it } from 'vitest';
import { useBus } from './events.helpers.js';

const t = useBus();

describe('bus.getStats', () => {
  it('starts at zero', async () => {
    const bus = t.bus();
    expect(await bus.getStats()).toEqual({
      subscriptions: 0,
      activeSubscriptions: 0,
      events: { published: 0, delivered: 0, failed: 0, retried: 0, duplicates: 0, replayed: 0 },
      subscriptionsByPattern: {},
    });
  });

  it('counts subscriptions, active subscribers, published and delivered events, and active subscriptions per pattern', async () => {
    const bus = t.bus();
    await bus.subscribe('user_service', ['account.created', 'account.updated']);
    await bus.subscribe('notification_service', ['account.created']);
    await bus.subscribe('portfolio_service', ['portfolio.updated', 'portfolio.#']);
    await bus.subscribe('reporting', ['portfolio.updated']);
    await bus.subscribe('archive', ['#']);
    await bus.pause('archive');
    await bus.publishMany([
      { type: 'account.created', data: {} },
      { type: 'account.updated', data: {} },
      { type: 'portfolio.updated', data: {}, id: 'p1' },
      { type: 'portfolio.updated', data: {}, id: 'p1' },
    ]);
    const queue = bus.subscriberQueue('reporting');
    const [delivery] = await queue.dequeue();
    await queue.nack(delivery!, { retry: false });
    expect(await bus.getStats()).toEqual({
      subscriptions: 5,
      activeSubscriptions: 4,
      events: { published: 3, delivered: 5, failed: 1, retried: 0, duplicates: 1, replayed: 0 },
      subscriptionsByPattern: {
        'account.created': 2,
        'account.updated': 1,
        'portfolio.updated': 2,
        'portfolio.#': 1,
      },
    });
  });
});
