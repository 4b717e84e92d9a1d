import type { EventStats } from './events/types.js';
import type { QueueStats } from './queue/types.js';

/**
 * The seed system's stats shapes, for code written against it (its get_queue_stats and get_event_stats).
 * The core speaks camelCase; these conversions keep every number and flag, only renamed. They move to the
 * seed-named service once that exists.
 */

/** The seed system's get_queue_stats shape, plus the pause flag, consumer count and counters sluice adds. */
export interface SeedQueueStats {
  queue_name: string;
  priority_4_count: number;
  priority_3_count: number;
  priority_2_count: number;
  priority_1_count: number;
  processing_count: number;
  dlq_count: number;
  delayed_count: number;
  /** partitioned messages waiting for the one before them in their partition */
  partition_backlog_count: number;
  paused: boolean;
  oldest_ready_age_ms: number | null;
  rate_limit: { max: number; window_ms: number } | null;
  /** consumers running on the queue (heartbeat within its TTL) */
  consumer_count: number;
  counters: {
    sent: number;
    delivered: number;
    acked: number;
    retried: number;
    dead_lettered: number;
    reclaimed: number;
    replayed: number;
  };
}

/** The seed system's get_event_stats shape, plus the retried, duplicate and replayed counts sluice adds. */
export interface SeedEventStats {
  total_subscriptions: number;
  active_subscribers: number;
  event_stats: {
    published: number;
    delivered: number;
    failed: number;
    retried: number;
    duplicates: number;
    replayed: number;
  };
  subscriptions_by_type: Record<string, number>;
}

/** queue.getStats() in the seed system's get_queue_stats shape (priority 4 is CRITICAL, 1 is LOW). */
export function toSeedQueueStats(stats: QueueStats): SeedQueueStats {
  return {
    queue_name: stats.name,
    priority_4_count: stats.ready.critical,
    priority_3_count: stats.ready.high,
    priority_2_count: stats.ready.normal,
    priority_1_count: stats.ready.low,
    processing_count: stats.inflight,
    dlq_count: stats.deadLetters,
    delayed_count: stats.delayed,
    partition_backlog_count: stats.partitionBacklog,
    paused: stats.paused,
    oldest_ready_age_ms: stats.oldestReadyAgeMs,
    rate_limit: stats.rateLimit && { max: stats.rateLimit.max, window_ms: stats.rateLimit.windowMs },
    consumer_count: stats.consumers,
    counters: {
      sent: stats.counters.sent,
      delivered: stats.counters.delivered,
      acked: stats.counters.acked,
      retried: stats.counters.retried,
      dead_lettered: stats.counters.deadLettered,
      reclaimed: stats.counters.reclaimed,
      replayed: stats.counters.replayed,
    },
  };
}

/** bus.getStats() in the seed system's get_event_stats shape (its "by type" counts are per pattern). */
export function toSeedEventStats(stats: EventStats): SeedEventStats {
  return {
    total_subscriptions: stats.subscriptions,
    active_subscribers: stats.activeSubscriptions,
    event_stats: { ...stats.events },
    subscriptions_by_type: { ...stats.subscriptionsByPattern },
  };
}
