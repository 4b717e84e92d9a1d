import type { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { EventBus, type Event, type EventBusOptions, type Queue } from '../src/index.js';
import { useRedis } from './helpers.js';

/** useRedis plus event buses under the test's own prefix, closed after each test. */
export function useBus() {
  const redis = useRedis();
  let buses: EventBus[] = [];
  // Registered after useRedis's hook, so it runs before it: buses close before their keys are deleted.
  afterEach(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    buses = [];
  });
  return {
    ...redis,
    bus(name = 'bus', options: Partial<EventBusOptions> = {}): EventBus {
      const bus = new EventBus(name, { connection: redis.redis, ...options, prefix: options.prefix ?? redis.prefix() });
      buses.push(bus);
      return bus;
    },
  };
}

/** Takes every ready event of a subscriber's queue, in queue order, and acks them. */
export async function drain<T = unknown>(queue: Queue<Event<T>>): Promise<Event<T>[]> {
  const events: Event<T>[] = [];
  for (;;) {
    const deliveries = await queue.dequeue({ count: 1000 });
    if (deliveries.length === 0) return events;
    await queue.ackMany(deliveries);
    for (const delivery of deliveries) events.push(delivery.payload);
  }
}

/** Every key matching a pattern (a full SCAN, since other tests' keys share the database). */
export async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
