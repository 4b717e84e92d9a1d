import { closeOwned, resolveConnection } from '../connection.js';
import { durabilityOption, waitForReplicas, type Durability } from '../durability.js';
import { ClosedError, UnknownSubscriberError, ValidationError } from '../errors.js';
import { busBaseKey, busKey, describe, subscriberQueueBaseKey, validateName, validateSubscriberId } from '../keys.js';
import { REPLY, type ScriptReplies } from '../replies.js';
import { announce, DEFAULT_SCAN_LIMIT, scanKeys } from '../registry.js';
import { runScript, type RedisClient, type ScriptName } from '../scripts.js';
import { mergeHeaders } from '../headers.js';
import { instrumentationOption, type Instrumentation } from '../queue/instrumentation.js';
import type { Consumer, ConsumerOptions } from '../queue/consumer.js';
import { Queue } from '../queue/queue.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_RETRIES,
  MAX_BATCH,
  MAX_RETRIES_LIMIT,
  requireVisibility,
  retryPolicy,
} from '../queue/validate.js';
import {
  atIndex,
  CLOSE_OPTIONS,
  checkOptions,
  optionalBoolean,
  optionNames,
  requireInteger,
  requireItem,
} from '../validate.js';
import type { RetryPolicy } from '../queue/types.js';
import type {
  Event,
  EventBusOptions,
  EventConsumer,
  EventHandler,
  EventStats,
  HistoryEntry,
  HistoryRange,
  PublishItem,
  PublishOptions,
  PublishResult,
  SubscribeOptions,
  Subscription,
} from './types.js';
import {
  compileFilter,
  describeFilter,
  PUBLISH_OPTIONS,
  publishArguments,
  validateEventType,
  validatePatterns,
  type CompiledCondition,
} from './validate.js';

export const DEFAULT_HISTORY_LIMIT = 1000;
export const DEFAULT_DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000;
const BUS_OPTIONS = optionNames<EventBusOptions>({
  connection: true,
  connectTimeoutMs: true,
  prefix: true,
  historyLimit: true,
  dedupWindowMs: true,
  source: true,
  maxEventBytes: true,
  retry: true,
  visibilityMs: true,
  register: true,
  instrumentation: true,
  durability: true,
});
const SUBSCRIBE_OPTIONS = optionNames<SubscribeOptions>({ filter: true, maxRetries: true });
const UNSUBSCRIBE_OPTIONS = optionNames<{ dropQueue?: boolean }>({ dropQueue: true });
const RANGE_OPTIONS = optionNames<HistoryRange>({ from: true, to: true, limit: true });
const HISTORY_OPTIONS = optionNames<HistoryRange & { reverse?: boolean }>({
  from: true,
  to: true,
  limit: true,
  reverse: true,
});
const SCAN_OPTIONS = optionNames<{ scanLimit?: number }>({ scanLimit: true });
const UNKNOWN = -1;

/** A subscription as stored in Redis (includes/bus.lua reads it). */
interface StoredSubscription {
  patterns: string[];
  maxRetries: number;
  filter?: CompiledCondition[];
}

/**
 * An event bus: durable topic fan-out into one engine queue per subscriber. Subscriptions live in Redis,
 * so a process that only publishes reaches subscribers registered anywhere. Every change is one script.
 */
export class EventBus {
  readonly name: string;
  readonly prefix: string;
  /** the hash-tagged base key of every key of this bus (one Redis Cluster slot) */
  readonly baseKey: string;
  readonly client: RedisClient;
  readonly historyLimit: number;
  readonly dedupWindowMs: number;
  readonly source: string;
  readonly maxEventBytes: number;
  readonly retry: RetryPolicy;
  readonly visibilityMs: number | undefined;
  /** the instrumentation option; null without one */
  readonly instrumentation: Instrumentation | null;
  /** the durability option, null without one */
  readonly durability: Durability | null;
  private readonly ownsClient: boolean;
  private readonly publishOptionsJson: string;
  private readonly queues = new Map<string, Queue<Event<unknown>>>();
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(name: string, options: EventBusOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new EventBus(name, options) needs options with a connection (an ioredis client or a redis:// URL)',
      );
    }
    checkOptions(options, BUS_OPTIONS, 'new EventBus(name, options)');
    this.name = validateName('bus name', name);
    this.prefix = validateName('prefix', options.prefix ?? 'sluice');
    this.baseKey = busBaseKey(this.prefix, this.name);
    this.historyLimit = requireInteger('historyLimit', options.historyLimit ?? DEFAULT_HISTORY_LIMIT, 0, 10_000_000);
    this.dedupWindowMs = requireInteger(
      'dedupWindowMs',
      options.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS,
      0,
      365 * 24 * 3600 * 1000,
    );
    if (options.source !== undefined && typeof options.source !== 'string') {
      throw new ValidationError('source', `source must be a string, got ${describe(options.source)}`);
    }
    this.source = options.source ?? '';
    this.maxEventBytes = requireInteger(
      'maxEventBytes',
      options.maxEventBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      1,
      512 * 1024 * 1024,
    );
    this.retry = retryPolicy(options.retry, 'new EventBus(name, options)');
    this.visibilityMs =
      options.visibilityMs === undefined ? undefined : requireVisibility('visibilityMs', options.visibilityMs);
    this.instrumentation = instrumentationOption(options.instrumentation);
    this.durability = durabilityOption(options.durability, 'new EventBus(name, options)');
    this.publishOptionsJson = JSON.stringify({ historyLimit: this.historyLimit, dedupMs: this.dedupWindowMs });
    ({ client: this.client, owned: this.ownsClient } = resolveConnection(options.connection, {
      connectTimeoutMs: options.connectTimeoutMs,
    }));
    if (optionalBoolean('register', options.register, true))
      announce(this.client, this.prefix, 'buses', this.name, this.baseKey);
  }

  private run<N extends ScriptName>(
    script: N,
    args: (string | number)[],
    requestId?: string,
  ): Promise<ScriptReplies[N]> {
    if (this.closed) return Promise.reject(new ClosedError(`event bus ${this.name}`));
    return runScript(this.client, script, [this.baseKey], args, requestId);
  }

  /** Publishes one event; see publishMany. */
  async publish<T>(type: string, data: T, options: PublishOptions = {}): Promise<PublishResult> {
    checkOptions(options, PUBLISH_OPTIONS, 'publish(type, data, options)');
    const [result] = await this.publishEvents([{ ...options, type, data }], false);
    return result!;
  }

  /**
   * Publishes events in one script call, in order: each is appended to its type's history and copied into
   * the queue of every active subscriber whose patterns and filter match. All are validated before
   * anything is written. An id published within the deduplication window is not delivered again.
   */
  async publishMany<T>(items: readonly PublishItem<T>[]): Promise<PublishResult[]> {
    return this.publishEvents(items, true);
  }

  /**
   * Checks an event exactly as publish would (type, size, JSON, options) and returns it as it would be
   * published, with its id, source and timestamp; throws ValidationError. Nothing is written. For layers
   * that store events to publish later (the outbox) and want them refused up front.
   */
  checkEvent<T>(item: PublishItem<T>): Event<T> {
    return publishArguments(item, { source: this.source, maxEventBytes: this.maxEventBytes }, Date.now()).event;
  }

  private async publishEvents<T>(items: readonly PublishItem<T>[], checkKeys: boolean): Promise<PublishResult[]> {
    if (!Array.isArray(items) || items.length > MAX_BATCH) {
      throw new ValidationError(
        'items',
        `publishMany takes a list of at most ${MAX_BATCH} events, got ${Array.isArray(items) ? items.length : describe(items)}`,
      );
    }
    if (items.length === 0) return [];
    const hooks = this.instrumentation;
    if (hooks === null) return this.publishChecked(items, checkKeys);
    const owns = items.map((item: unknown) =>
      item !== null && typeof item === 'object' ? (item as PublishItem).headers : undefined,
    );
    const scope = hooks.produce({ operation: 'publish', destination: this.name, batch: checkKeys, messages: owns });
    if (scope === null) return this.publishChecked(items, checkKeys);
    const given = items.map((item: unknown, n) =>
      item !== null && typeof item === 'object'
        ? ({ ...item, headers: mergeHeaders(owns[n], scope.headers) } as PublishItem<T>)
        : (item as PublishItem<T>),
    );
    try {
      const results = await this.publishChecked(given, checkKeys);
      scope.end({ ids: results.map((r) => r.id) });
      return results;
    } catch (error) {
      scope.end({ error });
      throw error;
    }
  }

  private async publishChecked<T>(items: readonly PublishItem<T>[], checkKeys: boolean): Promise<PublishResult[]> {
    const now = Date.now();
    const ids: string[] = [];
    const args: string[] = [this.publishOptionsJson];
    items.forEach((item: PublishItem<T>, n) => {
      try {
        requireItem('items', n, item, 'an event { type, data, ...publish options }');
        const { event, args: eventArgs } = publishArguments(
          item,
          { source: this.source, maxEventBytes: this.maxEventBytes },
          now,
          checkKeys,
        );
        ids.push(event.id);
        args.push(...eventArgs);
      } catch (error) {
        throw checkKeys ? atIndex(error, 'items', n) : error;
      }
    });
    const counts = await this.run('bus/publish', args);
    if (this.durability !== null) {
      // Duplicates are waited for too: the first copy may not have reached the replicas yet.
      await waitForReplicas(this.client, this.baseKey, this.durability, `event bus ${this.name}`, ids);
    }
    return counts.map((count, n) => ({
      id: ids[n]!,
      delivered: count === REPLY.DUPLICATE ? 0 : count,
      duplicate: count === REPLY.DUPLICATE,
    }));
  }

  /**
   * Registers a subscriber (or replaces its patterns, filter and maxRetries; its queue and paused state are
   * kept). Events published from now on whose type matches one of the patterns (`*` one word, `#` zero or
   * more) and that pass the filter are copied into its queue. Returns true when the subscriber is new.
   */
  async subscribe(
    subscriberId: string,
    patterns: string | readonly string[],
    options: SubscribeOptions = {},
  ): Promise<boolean> {
    validateSubscriberId(subscriberId);
    checkOptions(options, SUBSCRIBE_OPTIONS, 'subscribe(subscriberId, patterns, options)');
    const stored: StoredSubscription = {
      patterns: validatePatterns(patterns),
      maxRetries: requireInteger('maxRetries', options.maxRetries ?? DEFAULT_MAX_RETRIES, 0, MAX_RETRIES_LIMIT),
    };
    const filter = compileFilter(options.filter);
    if (filter) stored.filter = filter;
    return (await this.run('bus/subscribe', [subscriberId, JSON.stringify(stored)])) === REPLY.OK;
  }

  /**
   * Removes a subscriber: no more events reach it. Its queue stays for its consumers to drain unless
   * `dropQueue` is true. Returns false when there was no such subscriber.
   */
  async unsubscribe(subscriberId: string, options: { dropQueue?: boolean } = {}): Promise<boolean> {
    validateSubscriberId(subscriberId);
    checkOptions(options, UNSUBSCRIBE_OPTIONS, 'unsubscribe(subscriberId, options)');
    const dropQueue = optionalBoolean('dropQueue', options.dropQueue, false);
    return (await this.run('bus/unsubscribe', [subscriberId, dropQueue ? '1' : '0'])) === REPLY.OK;
  }

  /**
   * Stops deliveries to a subscriber: events published while it is paused are not copied to it. Its queue
   * and consumers go on with what it already has (to hold those, pause its queue: `subscriberQueue(id).pause()`).
   */
  async pause(subscriberId: string): Promise<void> {
    await this.setActive(subscriberId, false);
  }

  async resume(subscriberId: string): Promise<void> {
    await this.setActive(subscriberId, true);
  }

  private async setActive(subscriberId: string, active: boolean): Promise<void> {
    validateSubscriberId(subscriberId);
    const done = await this.run('bus/subscriptionActive', [subscriberId, active ? '1' : '0']);
    if (done !== REPLY.OK) throw new UnknownSubscriberError(this.name, subscriberId);
  }

  /** Every subscription of the bus, by subscriber id. */
  async listSubscriptions(): Promise<Subscription[]> {
    if (this.closed) throw new ClosedError(`event bus ${this.name}`);
    // One MULTI so the list and the paused set are read at the same moment (both keys share the slot).
    const replies = await this.client
      .multi()
      .hgetall(busKey(this.baseKey, 'subscriptions'))
      .smembers(busKey(this.baseKey, 'paused'))
      .exec();
    const all = (replies?.[0]?.[1] ?? {}) as Record<string, string>;
    const paused = new Set((replies?.[1]?.[1] ?? []) as string[]);
    return Object.keys(all)
      .sort()
      .map((subscriberId) => {
        const stored = parseStored(all[subscriberId]!);
        return {
          subscriberId,
          patterns: stored.patterns,
          filter: describeFilter(stored.filter),
          maxRetries: stored.maxRetries,
          active: !paused.has(subscriberId),
        };
      });
  }

  /**
   * The engine queue holding a subscriber's events, for what the queue offers beyond consume: its stats,
   * dead letters and their replay, pausing deliveries to its consumers.
   */
  subscriberQueue<T = unknown>(subscriberId: string): Queue<Event<T>> {
    if (this.closed) throw new ClosedError(`event bus ${this.name}`);
    let queue = this.queues.get(subscriberId);
    if (!queue) {
      queue = new Queue<Event<unknown>>(subscriberId, {
        connection: this.client,
        prefix: this.prefix,
        baseKey: subscriberQueueBaseKey(this.baseKey, subscriberId),
        retry: this.retry,
        ...(this.visibilityMs === undefined ? {} : { visibilityMs: this.visibilityMs }),
        ...(this.instrumentation === null
          ? {}
          : { instrumentation: subscriberInstrumentation(this.instrumentation, this.name, subscriberId) }),
      });
      this.queues.set(subscriberId, queue);
    }
    return queue as Queue<Event<T>>;
  }

  /**
   * Runs a subscriber's workers: `concurrency` handlers compete for its events (each event goes to one of
   * them). A handler that returns false or throws has its event retried after the backoff, then
   * dead-lettered (see Consumer for timeouts, visibility and shutdown).
   */
  consume<T = unknown>(
    subscriberId: string,
    handler: EventHandler<T>,
    options: ConsumerOptions = {},
  ): EventConsumer<T> {
    validateSubscriberId(subscriberId);
    if (typeof handler !== 'function') throw new ValidationError('handler', 'handler must be a function');
    const consumer = this.subscriberQueue<T>(subscriberId).consume(
      (delivery, context) => handler(delivery.payload, { delivery, signal: context.signal }),
      options,
    ) as Consumer<Event<T>> & { ready: Promise<void> };
    const ready = this.confirmSubscriber(subscriberId, consumer);
    ready.catch(() => undefined); // a caller that never looks at `ready` gets the 'error' event instead
    Object.defineProperty(consumer, 'ready', { value: ready, enumerable: true });
    return consumer;
  }

  /**
   * Checks that a consumed subscriber is subscribed (one HEXISTS, sent after any subscribe call made
   * before consume on this bus's connection). When it is not, the consumer reports UnknownSubscriberError
   * and closes. While Redis is unreachable the check is retried; the consumer reports those errors itself.
   */
  private async confirmSubscriber<T>(subscriberId: string, consumer: Consumer<Event<T>>): Promise<void> {
    let closed = false;
    consumer.once('closed', () => (closed = true));
    for (let attempt = 0; ; attempt++) {
      if (closed) return;
      try {
        if ((await this.client.hexists(busKey(this.baseKey, 'subscriptions'), subscriberId)) === 1) return;
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** attempt)));
      }
    }
    const error = new UnknownSubscriberError(
      this.name,
      subscriberId,
      `its consumer was closed; to drain the queue of a subscriber that was unsubscribed, use bus.subscriberQueue(id).consume()`,
    );
    if (consumer.listenerCount('error') > 0) consumer.emit('error', error);
    else console.error(`[sluice] consumer of subscriber ${subscriberId}:`, error.message);
    await consumer.close({ graceMs: 0 });
    throw error;
  }

  /** A range of one type's history, oldest first (newest first with `reverse`). */
  async history<T = unknown>(
    type: string,
    range: HistoryRange & { reverse?: boolean } = {},
  ): Promise<HistoryEntry<T>[]> {
    if (this.closed) throw new ClosedError(`event bus ${this.name}`);
    const key = busKey(this.baseKey, 'historyPrefix') + validateEventType(type);
    checkOptions(range, HISTORY_OPTIONS, 'history(type, range)', 'range');
    const reverse = optionalBoolean('reverse', range.reverse, false);
    const { from, to, limit } = historyBounds(range);
    const entries = reverse
      ? await this.client.xrevrange(key, to, from, 'COUNT', limit)
      : await this.client.xrange(key, from, to, 'COUNT', limit);
    return entries.map(([position, fields]) => {
      const at = fields.indexOf('event');
      return { position, event: JSON.parse(fields[at + 1]!) as Event<T> };
    });
  }

  /**
   * The event types that have a history on this bus, sorted, found by a SCAN of at most `scanLimit`
   * (default 10,000) keys: `complete` is false when it stopped there. A diagnostic (the CLI's `events
   * tail`), not for a hot path: a SCAN walks the whole database.
   */
  async historyTypes(options: { scanLimit?: number } = {}): Promise<{ types: string[]; complete: boolean }> {
    if (this.closed) throw new ClosedError(`event bus ${this.name}`);
    checkOptions(options, SCAN_OPTIONS, 'historyTypes(options)');
    const scanLimit = requireInteger('scanLimit', options.scanLimit ?? DEFAULT_SCAN_LIMIT, 1, 1_000_000_000);
    const prefix = busKey(this.baseKey, 'historyPrefix');
    const types = new Set<string>();
    const complete = await scanKeys(this.client, `${prefix}*`, scanLimit, (key) => types.add(key.slice(prefix.length)));
    return { types: [...types].sort(), complete };
  }

  /**
   * Copies a range of one type's history into one subscriber's queue as new deliveries, oldest first
   * (patterns, filter and pause state are not consulted). Returns how many events were copied.
   */
  async replay(subscriberId: string, type: string, range: HistoryRange = {}): Promise<number> {
    validateSubscriberId(subscriberId);
    validateEventType(type);
    checkOptions(range, RANGE_OPTIONS, 'replay(subscriberId, type, range)', 'range');
    const { from, to, limit } = historyBounds(range);
    const replayed = await this.run('bus/historyReplay', [subscriberId, type, from, to, limit]);
    if (replayed === UNKNOWN) throw new UnknownSubscriberError(this.name, subscriberId);
    return replayed;
  }

  /**
   * Subscriptions (all, active, per pattern) and event counters since the bus was created.
   * `toSeedEventStats(stats)` gives the seed system's get_event_stats shape.
   */
  async getStats(): Promise<EventStats> {
    const reply = await this.run('bus/stats', []);
    const counters: Record<string, number> = {};
    let n = 0;
    for (; reply[n] !== ''; n += 2) counters[String(reply[n])] = Number(reply[n + 1]);
    const stats: EventStats = {
      subscriptions: 0,
      activeSubscriptions: 0,
      events: {
        published: counters.published ?? 0,
        delivered: counters.delivered ?? 0,
        failed: 0,
        retried: 0,
        duplicates: counters.duplicates ?? 0,
        replayed: counters.replayed ?? 0,
      },
      subscriptionsByPattern: {},
    };
    for (n += 1; n < reply.length; n += 5) {
      const stored = parseStored(String(reply[n + 1]));
      const paused = Number(reply[n + 2]) === 1;
      stats.subscriptions += 1;
      stats.events.failed += Number(reply[n + 3]);
      stats.events.retried += Number(reply[n + 4]);
      if (paused) continue;
      stats.activeSubscriptions += 1;
      for (const pattern of stored.patterns) {
        stats.subscriptionsByPattern[pattern] = (stats.subscriptionsByPattern[pattern] ?? 0) + 1;
      }
    }
    return stats;
  }

  /**
   * Closes the subscriber queues' consumers (each with its own grace period, or `graceMs` for all) and, if
   * the bus opened it, the connection.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    try {
      checkOptions(options, CLOSE_OPTIONS, 'close(options)');
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing ??= (async () => {
      await Promise.all([...this.queues.values()].map((queue) => queue.close(options)));
      this.closed = true;
      if (this.ownsClient) await closeOwned(this.client, `event bus ${this.name}`);
    })();
    return this.closing;
  }
}

/**
 * A subscriber queue's instrumentation: its deliveries are events, so a handler run is described by the
 * event (its id, headers and correlationId) under the bus's name, with the subscriber as the subscription.
 */
function subscriberInstrumentation(hooks: Instrumentation, bus: string, subscriberId: string): Instrumentation {
  return {
    produce: (operation) => hooks.produce(operation),
    process: (operation) => {
      const event = operation.delivery.payload as Partial<Event> | null;
      const isEvent = event !== null && typeof event === 'object';
      return hooks.process({
        ...operation,
        destination: bus,
        subscription: subscriberId,
        messageId: isEvent && typeof event.id === 'string' ? event.id : operation.messageId,
        headers: isEvent ? event.headers : operation.headers,
        correlationId: isEvent && typeof event.correlationId === 'string' ? event.correlationId : null,
      });
    },
  };
}

/** A stored subscription; one edited into nonsense by hand reads as matching nothing (publish skips it too). */
function parseStored(json: string): StoredSubscription {
  try {
    const stored = JSON.parse(json) as StoredSubscription;
    if (Array.isArray(stored.patterns) && typeof stored.maxRetries === 'number') return stored;
  } catch {
    // fall through
  }
  return { patterns: [], maxRetries: 0 };
}

/** Stream bounds for XRANGE: positions as given, times as `<ms>` (XRANGE reads `ms` as `ms-0` .. `ms-max`). */
function historyBounds(range: HistoryRange): { from: string; to: string; limit: number } {
  const bound = (field: string, value: unknown, open: string): string => {
    if (value === undefined) return open;
    if (value instanceof Date) value = value.getTime();
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return String(value);
    if (typeof value === 'string' && /^\d+(-\d+)?$/.test(value)) return value;
    throw new ValidationError(
      field,
      `${field} must be a history position like "1700000000000-0", a Date or ms since the epoch, got ${describe(value)}`,
    );
  };
  return {
    from: bound('from', range.from, '-'),
    to: bound('to', range.to, '+'),
    limit: requireInteger('limit', range.limit ?? 100, 1, MAX_BATCH),
  };
}
