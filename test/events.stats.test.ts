import { describe, expect, it } from 'vitest';
import { useBus } from './events.helpers.js';

const t = useBus();

describe('getEventStats', () => {
  it('has the seed get_event_stats shape', async () => {
    const bus = t.bus();
    expect(await bus.getEventStats()).toEqual({
      total_subscriptions: 0,
      active_subscribers: 0,
      event_stats: { published: 0, delivered: 0, failed: 0, retried: 0, duplicates: 0, replayed: 0 },
      subscriptions_by_type: {},
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
    await bus.publishBatch([
      { type: 'account.created', data: {} },
      { type: 'account.updated', data: {} },
      { type: 'portfolio.updated', data: {}, id: 'p1' },
      { type: 'portfolio.updated', data: {}, id: 'p1' },
    ]);
    const queue = bus.subscriberQueue('reporting');
    const [delivery] = await queue.dequeue();
    await queue.nack(delivery!, { retry: false });
    expect(await bus.getEventStats()).toEqual({
      total_subscriptions: 5,
      active_subscribers: 4,
      event_stats: { published: 3, delivered: 5, failed: 1, retried: 0, duplicates: 1, replayed: 0 },
      subscriptions_by_type: {
        'account.created': 2,
        'account.updated': 1,
        'portfolio.updated': 2,
        'portfolio.#': 1,
      },
    });
  });
});
