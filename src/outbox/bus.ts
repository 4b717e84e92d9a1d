import type { EventBus, PublishItem, PublishResult } from '../index.js';

/**
 * Every call the outbox makes on the event bus, in one place: the relay's publish, the validation that the
 * bus applies to what it publishes (run by the writer before anything is stored, and by the relay before
 * each row goes out), and the wake-up channel on the bus's Redis.
 */

/** Validates one event exactly as `bus.publish` would, with that bus's `source` and `maxEventBytes`; throws ValidationError. */
export function validateForBus(bus: EventBus, item: PublishItem) {
  return bus.checkEvent(item);
}

/** Publishes rows in one script call, in order; an id the bus saw within its dedup window is not delivered again. */
export function publishToBus(bus: EventBus, items: readonly PublishItem[]): Promise<PublishResult[]> {
  return bus.publishMany(items);
}

/** The bus's deduplication window, which must outlast the relay's retry horizon. */
export function dedupWindowOf(bus: EventBus): number {
  return bus.dedupWindowMs;
}

/** The Redis pub/sub channel that wakes the relays of one outbox table (a channel, not a key). */
export function wakeChannel(bus: EventBus, table: string): string {
  return `${bus.baseKey}:outbox-wake:${table}`;
}

/** Tells relays in every process that rows were committed; best effort (the relays poll anyway). */
export function sendWake(bus: EventBus, channel: string): void {
  bus.client.publish(channel, '1').catch(() => undefined);
}

/**
 * Listens for wake-ups on a connection of its own (a subscribed connection can do nothing else). Nothing
 * waits for the subscription: with Redis unreachable the relay must still start, poll and close. ioredis
 * sends the SUBSCRIBE once connected and subscribes again after a reconnect; a subscription that fails is
 * reported and retried on the connection's next `ready`. Missed wake-ups are covered by polling.
 */
export function listenForWakes(
  bus: EventBus,
  channel: string,
  onWake: () => void,
  onError: (error: unknown) => void,
): { subscribed: Promise<void>; close(): void } {
  const subscriber = bus.client.duplicate();
  let closed = false;
  let markSubscribed!: () => void;
  const subscribed = new Promise<void>((resolve) => (markSubscribed = resolve));
  const subscribe = () => {
    if (!closed) {
      subscriber.subscribe(channel).then(
        () => markSubscribed(),
        (error: unknown) => !closed && onError(error),
      );
    }
  };
  subscriber.on('error', () => undefined);
  subscriber.on('message', (received: string) => {
    if (received === channel) onWake();
  });
  subscriber.on('ready', subscribe);
  subscribe();
  return {
    subscribed,
    close() {
      closed = true;
      subscriber.disconnect();
    },
  };
}
