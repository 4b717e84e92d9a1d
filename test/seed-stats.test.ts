import { describe, expect, it } from 'vitest';
import { toSeedEventStats, toSeedQueueStats, type EventStats, type QueueStats } from '../src/index.js';
import { useBus } from './events.helpers.js';

const t = useBus();

/** Every leaf of a stats object (numbers, booleans, names), in a stable order: what a conversion must keep. */
function leaves(value: unknown): unknown[] {
  if (value === null || typeof value !== 'object') return [value];
  return Object.values(value).flatMap(leaves);
}

const sorted = (values: unknown[]) => values.map(String).sort();

describe('toSeedQueueStats', () => {
  it('gives the seed get_queue_stats shape and loses nothing', () => {
    // Every field a different number, so a field mapped to the wrong one shows.
    const stats: QueueStats = {
      name: 'user_tasks',
      ready: { critical: 1, high: 2, normal: 3, low: 4 },
      inflight: 5,
      delayed: 6,
      deadLetters: 7,
      partitionBacklog: 8,
      paused: true,
      oldestReadyAgeMs: 16,
      rateLimit: { max: 17, windowMs: 18 },
      consumers: 19,
      counters: { sent: 9, delivered: 10, acked: 11, retried: 12, deadLettered: 13, reclaimed: 14, replayed: 15 },
    };
    const seed = toSeedQueueStats(stats);
    expect(seed).toEqual({
      queue_name: 'user_tasks',
      priority_4_count: 1,
      priority_3_count: 2,
      priority_2_count: 3,
      priority_1_count: 4,
      processing_count: 5,
      delayed_count: 6,
      dlq_count: 7,
      partition_backlog_count: 8,
      paused: true,
      oldest_ready_age_ms: 16,
      rate_limit: { max: 17, window_ms: 18 },
      consumer_count: 19,
      counters: { sent: 9, delivered: 10, acked: 11, retried: 12, dead_lettered: 13, reclaimed: 14, replayed: 15 },
    });
    expect(sorted(leaves(seed))).toEqual(sorted(leaves(stats)));
  });

  it('converts what a real queue reports', async () => {
    const queue = t.queue<string>('seed_view');
    await queue.sendMany([
      { payload: 'c', priority: 'CRITICAL' },
      { payload: 'l', priority: 'LOW' },
      { payload: 'd', delayMs: 60_000 },
    ]);
    await queue.dequeue();
    expect(toSeedQueueStats(await queue.getStats())).toMatchObject({
      queue_name: 'seed_view',
      priority_4_count: 0,
      priority_1_count: 1,
      processing_count: 1,
      delayed_count: 1,
      dlq_count: 0,
      counters: { sent: 3, delivered: 1 },
    });
  });
});

describe('toSeedEventStats', () => {
  it('gives the seed get_event_stats shape and loses nothing', () => {
    const stats: EventStats = {
      subscriptions: 1,
      activeSubscriptions: 2,
      events: { published: 3, delivered: 4, failed: 5, retried: 6, duplicates: 7, replayed: 8 },
      subscriptionsByPattern: { 'account.created': 9, 'portfolio.#': 10 },
    };
    const seed = toSeedEventStats(stats);
    expect(seed).toEqual({
      total_subscriptions: 1,
      active_subscribers: 2,
      event_stats: { published: 3, delivered: 4, failed: 5, retried: 6, duplicates: 7, replayed: 8 },
      subscriptions_by_type: { 'account.created': 9, 'portfolio.#': 10 },
    });
    expect(sorted(leaves(seed))).toEqual(sorted(leaves(stats)));
    // A copy: changing the seed view leaves the stats alone.
    seed.subscriptions_by_type['account.created'] = 0;
    expect(stats.subscriptionsByPattern['account.created']).toBe(9);
  });

  it('converts what a real bus reports', async () => {
    const bus = t.bus();
    await bus.subscribe('audit', ['account.*']);
    await bus.publish('account.created', { id: 1 });
    expect(toSeedEventStats(await bus.getStats())).toEqual({
      total_subscriptions: 1,
      active_subscribers: 1,
      event_stats: { published: 1, delivered: 1, failed: 0, retried: 0, duplicates: 0, replayed: 0 },
      subscriptions_by_type: { 'account.*': 1 },
    });
  });
});
