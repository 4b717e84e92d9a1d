import type { QueueStats } from '../src/index.js';

/** Messages of a queue not yet acked or dead-lettered: ready, in flight, delayed or waiting in a partition. */
export function outstanding(stats: QueueStats): number {
  const { ready } = stats;
  return (
    ready.low + ready.normal + ready.high + ready.critical + stats.inflight + stats.delayed + stats.partitionBacklog
  );
}
