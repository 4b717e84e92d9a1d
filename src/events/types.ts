import type { Consumer, ConsumerOptions } from '../queue/consumer.js';
import type { Delivery, RetryPolicy } from '../queue/types.js';
import type { Connection } from '../connection.js';
import type { Instrumentation } from '../queue/instrumentation.js';
import type { DurabilityOptions } from '../durability.js';

/** An event as subscribers receive it (the seed's Event, with camelCase names). */
export interface Event<T = unknown> {
  /** uuid v4 unless given; letters, digits and `_ - . :`, at most 100 characters */
  id: string;
  /** dot-separated words of letters, digits, `_` or `-`: `account.created`, `market.data.updated` */
  type: string;
  /** who published it (the bus's `source` option unless given) */
  source: string;
  data: T;
  /** ISO 8601, by the publisher's clock */
  timestamp: string;
  correlationId: string | null;
  version: string;
  metadata: Record<string, unknown>;
  /** the headers it was published with (a trace context, say); absent when it has none */
  headers?: Record<string, string>;
}

export interface PublishOptions {
  /** an id the caller chose (an outbox row id, say): publishing it again within the window delivers nothing */
  id?: string;
  source?: string;
  correlationId?: string;
  metadata?: Record<string, unknown>;
  /** the event's time (default now) */
  timestamp?: Date | number | string;
  /**
   * Events with the same key reach each subscriber one at a time, in publish order, even with many
   * workers (the engine's partitions, as SQS FIFO message groups).
   */
  partitionKey?: string;
  /**
   * string names to string values carried in the event to every subscriber, through its retries, dead-letter
   * queue, replay and history (at most 64, 8 KiB as JSON); tracing puts its trace context here
   */
  headers?: Record<string, string>;
}

export interface PublishItem<T = unknown> extends PublishOptions {
  type: string;
  data: T;
}

export interface PublishResult {
  id: string;
  /** how many subscribers received the event (0 for a duplicate) */
  delivered: number;
  /** true when the id had been published within the deduplication window: nothing was written */
  duplicate: boolean;
}

/** A filter value: a JSON scalar. */
export type FilterValue = string | number | boolean | null;

/**
 * A condition on one event field: a scalar (equality), `{ eq }`, `{ in: [...] }` (membership) or
 * `{ exists: true | false }` (present and not null, or not).
 */
export type FilterCondition = FilterValue | { eq: FilterValue } | { in: readonly FilterValue[] } | { exists: boolean };

/**
 * Conditions on event fields, all of which must hold. Keys are field paths starting with an event field:
 * `data.symbol`, `metadata.tenant`, `source`, `data.items.0.sku` (a number indexes an array from 0).
 */
export type EventFilter = Record<string, FilterCondition>;

export interface SubscribeOptions {
  filter?: EventFilter;
  /** retries of each delivery after its first failed attempt before it is dead-lettered (default 3) */
  maxRetries?: number;
}

export interface Subscription {
  subscriberId: string;
  patterns: string[];
  filter: EventFilter | null;
  maxRetries: number;
  active: boolean;
}

export interface HistoryEntry<T = unknown> {
  /** the stream position `<ms>-<n>` (server time of the publish); use it as `from`/`to` of a range */
  position: string;
  event: Event<T>;
}

/**
 * A range of history positions, both ends included. A bound is a position (`1700000000000-0`), a time
 * (Date or ms since the epoch: server time of the publish) or omitted (oldest / newest).
 */
export interface HistoryRange {
  from?: string | number | Date;
  to?: string | number | Date;
  /** at most this many entries (default 100, at most 1000) */
  limit?: number;
}

/** What bus.getStats() returns. `toSeedEventStats(stats)` gives the seed system's get_event_stats shape. */
export interface EventStats {
  /** subscriptions registered, paused ones included */
  subscriptions: number;
  /** subscriptions not paused */
  activeSubscriptions: number;
  events: {
    /** events accepted (duplicates not counted) */
    published: number;
    /** copies placed into subscriber queues */
    delivered: number;
    /** deliveries that ended in a subscriber's dead-letter queue */
    failed: number;
    /** deliveries retried after a failed attempt */
    retried: number;
    /** publishes refused as duplicates of an id within the window */
    duplicates: number;
    /** events copied from history by replay */
    replayed: number;
  };
  /** per pattern, the number of active subscriptions that name it */
  subscriptionsByPattern: Record<string, number>;
}

export interface EventBusOptions {
  /** an ioredis client (the bus uses it, the caller closes it) or a redis:// URL (the bus owns it) */
  connection: Connection;
  /** with a URL: how long a command waits for the connection before failing with a ConnectionError (default 5000) */
  connectTimeoutMs?: number;
  /** key prefix (default `sluice`) */
  prefix?: string;
  /** events kept per type in history (default 1,000; 0 keeps none) */
  historyLimit?: number;
  /** how long a published event id is remembered, so that publishing it again delivers nothing (default 24 h; 0 off) */
  dedupWindowMs?: number;
  /** `source` of events published without one (default `''`) */
  source?: string;
  /** largest event accepted, as JSON bytes (default 1 MiB) */
  maxEventBytes?: number;
  /** backoff of failed deliveries in subscriber queues */
  retry?: Partial<RetryPolicy>;
  /** visibility timeout of deliveries (default 30 s) */
  visibilityMs?: number;
  /** false: leave this bus out of the discovery registry (see discover), for an operator's tool. Default true. */
  register?: boolean;
  /**
   * Hooks called on every publish and subscriber handler run (and outbox write into this bus): `tracing()`
   * from `sluice/telemetry` traces them with OpenTelemetry. Absent (the default), nothing is called.
   */
  instrumentation?: Instrumentation;
  /**
   * Durable publishes: publish and publishMany resolve only once the write reached `replicas` replicas (Redis
   * WAIT on the master that owns the bus), within `timeoutMs` (default 1000); else they reject with
   * DurabilityError. An outbox relay publishing into such a bus marks its rows only after that. Absent (the
   * default), a publish resolves when the master has it, and no command is added.
   */
  durability?: DurabilityOptions;
}

export interface EventContext<T = unknown> {
  /** the queue delivery carrying the event: attempts so far, receipt */
  readonly delivery: Delivery<Event<T>>;
  /** fires when the handler timed out, the delivery was lost or the consumer closed */
  readonly signal: AbortSignal;
}

/**
 * Handles one event. Resolving (to anything but `false`) acks it; returning `false` or throwing nacks it,
 * and it is retried after the backoff or dead-lettered (the seed's boolean callback style works).
 */
export type EventHandler<T = unknown> = (event: Event<T>, context: EventContext<T>) => unknown;

export type { ConsumerOptions };

/**
 * The consumer `bus.consume` returns. `ready` resolves once the bus has confirmed that the subscriber is
 * subscribed, and rejects with UnknownSubscriberError when it is not: the consumer then emits that error
 * ('error' event), closes itself and handles nothing more.
 */
export interface EventConsumer<T = unknown> extends Consumer<Event<T>> {
  readonly ready: Promise<void>;
}
