import { createHash } from 'node:crypto';
import type { Pool, PoolOptions } from 'mysql2/promise';
import {
  EventBus,
  Priority,
  Queue,
  Scheduler,
  ValidationError,
  ClosedError,
  ConnectionError,
  queueMaintenanceJobs,
  schedulerCleanupJobs,
  toSeedEventStats,
  toSeedQueueStats,
  type Consumer,
  type Delivery,
  type Event,
  type EventConsumer,
  type EventFilter,
  type Instrumentation,
  type JobDefinition,
  type JobLogger,
  type PriorityName,
  type PriorityValue,
  type RetryPolicy,
  type SeedEventStats,
  type SeedQueueStats,
} from '../index.js';
import type { Connection } from '../connection.js';
import { AlreadyInitializedError, NotInitializedError, OutboxNotConfiguredError } from '../errors.js';
import { checkOptions, optionNames } from '../validate.js';
import type { Outbox, Transaction } from '../outbox/index.js';

/** The seed's MessagePriority: LOW=1, NORMAL=2, HIGH=3, CRITICAL=4 (sluice's Priority). */
export const MessagePriority = Priority;

/** The seed's EventType enum: its event type strings under its names. Any dotted string works as a type. */
export const EventType = {
  ACCOUNT_CREATED: 'account.created',
  ACCOUNT_UPDATED: 'account.updated',
  ACCOUNT_DELETED: 'account.deleted',
  PORTFOLIO_CREATED: 'portfolio.created',
  PORTFOLIO_UPDATED: 'portfolio.updated',
  TRADE_EXECUTED: 'trade.executed',
  MARKET_DATA_UPDATED: 'market.data.updated',
  PRICE_ALERT: 'price.alert',
  SYSTEM_MAINTENANCE: 'system.maintenance',
  SYSTEM_ERROR: 'system.error',
} as const;

/** What a message handler receives: the seed's QueueMessage, with its snake_case fields. */
export interface QueueMessage<T = Record<string, unknown>> {
  id: string;
  queue_name: string;
  payload: T;
  message_type: string;
  priority: PriorityValue;
  /** always PROCESSING while a handler has it */
  status: 'PROCESSING';
  /** failed attempts so far */
  retry_count: number;
  max_retries: number;
  created_at: Date;
  /** when the sender asked it to run, or null for "now" */
  scheduled_at: Date | null;
  partition_key: string | null;
}

/** What an event callback receives: the seed's Event, with its snake_case fields. */
export interface SeedEvent<T = Record<string, unknown>> {
  id: string;
  event_type: string;
  source: string;
  data: T;
  timestamp: Date;
  correlation_id: string | null;
  version: string;
  metadata: Record<string, unknown>;
}

/**
 * Returns true (acked), false (retried after the backoff, then dead-lettered) or throws (same as false). As
 * the seed's `if success:`, a value that is not truthy is a failure: a handler that returns nothing
 * (`undefined`) has its message retried, and the service logs that once per consumer.
 */
export type MessageHandler<T = Record<string, unknown>> = (message: QueueMessage<T>) => boolean | Promise<boolean>;
/** Returns true (done), false, nothing (`undefined`) or throws (the delivery is retried after the backoff, then dead-lettered). */
export type EventCallback<T = Record<string, unknown>> = (event: SeedEvent<T>) => boolean | Promise<boolean>;

export interface QueueServiceOptions {
  /** an ioredis client (you close it) or a redis:// URL (each part of the service opens and closes its own) */
  redis: Connection;
  /** for publishEventWithTransaction: a mysql2/promise Pool (you end it), or a mysql:// URL or pool options */
  mysql?: Pool | string | PoolOptions | undefined;
  /** key prefix (default `sluice`) */
  prefix?: string | undefined;
  /**
   * the outbox table (default `sluice_outbox` for the default prefix, else `<prefix>_outbox` with every
   * character other than letters, digits and `_` made `_`: see defaultOutboxTable)
   */
  outboxTable?: string | undefined;
  /** how often the outbox relay job, the safety net under the service's relay, runs (default 60,000 ms, the seed's 1 minute) */
  outboxRelayEveryMs?: number | undefined;
  /** backoff of retried messages and event deliveries (default 30 s doubling up to 5 min, as the queue's) */
  retry?: Partial<RetryPolicy> | undefined;
  /** where the jobs and the service report, one line each (default console) */
  logger?: JobLogger | undefined;
  /** hooks around every send, publish and handler run of the service's queues and bus: `tracing()` from sluice/telemetry */
  instrumentation?: Instrumentation | undefined;
}

export interface SendMessageOptions<T = Record<string, unknown>> {
  queueName: string;
  payload: T;
  messageType: string;
  /** default NORMAL */
  priority?: PriorityValue | PriorityName | undefined;
  /** run it then, not before (the seed's delayed message) */
  scheduledAt?: Date | undefined;
  /** messages with the same key are handled one at a time, in order */
  partitionKey?: string | undefined;
  /** retries after the first failed attempt before the message is dead-lettered (default 3) */
  maxRetries?: number | undefined;
}

export interface PublishEventOptions<T = Record<string, unknown>> {
  eventType: string;
  source: string;
  data: T;
  correlationId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface PublishEventWithTransactionOptions<T = Record<string, unknown>, R = unknown> {
  eventType: string;
  aggregateId: string | number;
  aggregateType: string;
  eventData: T;
  /** your writes, on `tx` (a mysql2/promise connection inside the transaction); its result is returned */
  businessOperation: (tx: Transaction) => R | Promise<R>;
  source?: string | undefined;
  correlationId?: string | undefined;
}

/** The seed's get_stats(): what this QueueService instance has done since it was initialized. */
export interface ServiceStats {
  /** messages whose handler returned true */
  messages_processed: number;
  /** events published by publishEvent */
  events_published: number;
  /** outbox rows this service's relay and relay job published (and gracefulShutdown's last relay) */
  outbox_events_processed: number;
  /** handlers and callbacks that returned false or threw, and scheduler errors */
  errors: number;
}

/** The name of the event bus the service publishes on and subscribes to. */
export const SERVICE_BUS_NAME = 'events';

const SERVICE_OPTIONS = optionNames<QueueServiceOptions>({
  redis: true,
  mysql: true,
  prefix: true,
  outboxTable: true,
  outboxRelayEveryMs: true,
  retry: true,
  logger: true,
  instrumentation: true,
});
const USE_GET_INSTANCE = 'call `await QueueService.initialize({ redis })` once at startup';
/** The most gracefulShutdown spends relaying the outbox rows committed before it was called. */
const DRAIN_MS = 10_000;
const DEFAULT_PREFIX = 'sluice';
const OUTBOX_SUFFIX = '_outbox';
const MAX_TABLE = 64;

/**
 * The outbox table a service uses when `outboxTable` is not given: `sluice_outbox` for the default prefix
 * (as before), else the prefix with every character other than letters, digits and `_` made `_`, plus
 * `_outbox` (`_` in front when it would start with a digit; a name over MySQL's 64 characters keeps its
 * first 48 and adds 8 hex digits of the prefix's hash). Services on different prefixes then never share
 * a table, so one's relay never publishes another's rows.
 */
export function defaultOutboxTable(prefix: string | undefined): string {
  if (prefix === undefined || prefix === DEFAULT_PREFIX) return `${DEFAULT_PREFIX}${OUTBOX_SUFFIX}`;
  let name = prefix.replace(/[^A-Za-z0-9_]/g, '_');
  if (/^[0-9]/.test(name)) name = `_${name}`;
  const room = MAX_TABLE - OUTBOX_SUFFIX.length;
  if (name.length > room) {
    name = `${name.slice(0, room - 9)}_${createHash('sha256').update(prefix).digest('hex').slice(0, 8)}`;
  }
  return `${name}${OUTBOX_SUFFIX}`;
}

/**
 * The seed system's QueueService, with its names in TypeScript: messages (priorities, delays, partitions,
 * retries into a dead-letter queue), events (fan-out to subscribers with filters), the transactional outbox,
 * and the seed's scheduler jobs. Built on sluice's Queue, EventBus, Scheduler and Outbox; every state change
 * is still one atomic script.
 *
 * `QueueService.initialize(options)` sets up the process's instance, `QueueService.getInstance()` returns it;
 * `new QueueService()` followed by `initialize(options)` makes an independent one.
 */
export class QueueService {
  private static instance: QueueService | null = null;

  private options: QueueServiceOptions | null = null;
  /** the options of the initialize() call in progress or done */
  private requested: QueueServiceOptions | null = null;
  private initializing: Promise<this> | null = null;
  private logger: JobLogger = console;
  /** the last failure logged per source (a job, the relay), so that a cause repeating is logged once */
  private readonly failures = new Map<string, string>();
  private readonly warnedUndefined = new Set<string>();
  private relay: { stop(): Promise<void> } | null = null;
  private closed = false;
  private bus: EventBus | null = null;
  private scheduler: Scheduler | null = null;
  private outbox: Outbox | null = null;
  private readonly queues = new Map<string, Queue<unknown>>();
  private readonly consumers = new Map<string, Consumer<unknown>>();
  private readonly subscriptions = new Map<string, EventConsumer<unknown>>();
  private readonly stats: ServiceStats = {
    messages_processed: 0,
    events_published: 0,
    outbox_events_processed: 0,
    errors: 0,
  };

  /**
   * Initializes the process's instance and returns it. A later call with the same options returns it too;
   * one with other options throws AlreadyInitializedError (use getInstance(), or `new QueueService()` for
   * a second service).
   */
  static initialize(options: QueueServiceOptions): Promise<QueueService> {
    QueueService.instance ??= new QueueService();
    return QueueService.instance.begin(options, 'QueueService.initialize()');
  }

  /** The process's instance; NotInitializedError before QueueService.initialize(). */
  static getInstance(): QueueService {
    if (!QueueService.instance?.options) throw new NotInitializedError('QueueService.getInstance()', USE_GET_INSTANCE);
    return QueueService.instance;
  }

  /**
   * Connects the service and registers the seed's scheduler jobs (outbox relay every 60 s when `mysql` is
   * given, queue monitoring every 300 s, cleanup every 3,600 s, plus delayed-message promotion every 10 s);
   * each tick of a job runs in one process of those sharing the Redis and prefix; with `mysql`, also a relay
   * that publishes each committed event at once. Redis not answering rejects with a ConnectionError (a wrong
   * port or host at once, as every part's first connection) and leaves nothing open. Calling it again with
   * the same options returns the same service; with other options it throws AlreadyInitializedError.
   */
  initialize(options: QueueServiceOptions): Promise<this> {
    return this.begin(options, 'initialize()');
  }

  private begin(options: QueueServiceOptions, what: string): Promise<this> {
    if (this.closed) return Promise.reject(new ClosedError('QueueService', 'create a new one'));
    if (this.requested && !sameValue(this.requested, options)) {
      return Promise.reject(new AlreadyInitializedError(what, this === QueueService.instance));
    }
    this.requested = options;
    this.initializing ??= this.setUp(options).catch(async (error: unknown) => {
      this.initializing = null;
      this.requested = null;
      await this.tearDown(false).catch(() => undefined);
      throw error;
    });
    return this.initializing;
  }

  private async setUp(options: QueueServiceOptions): Promise<this> {
    if (typeof options !== 'object' || options === null || options.redis === undefined) {
      throw new ValidationError('redis', 'initialize({ redis, mysql?, prefix? }): redis is required');
    }
    checkOptions(options, SERVICE_OPTIONS, 'initialize(options)');
    const { redis, prefix, retry, instrumentation } = options;
    const logger = options.logger ?? console;
    this.logger = logger;
    this.bus = new EventBus(SERVICE_BUS_NAME, {
      connection: redis,
      prefix,
      ...(retry && { retry }),
      ...(instrumentation && { instrumentation }),
    });
    this.scheduler = new Scheduler({ connection: redis, prefix });
    // Fail fast, as every part does on its first command: nothing is started while Redis does not answer.
    await this.bus.getStats();
    this.scheduler.on('error', (error, jobName) => this.failed(`scheduler job ${jobName}`, error));
    this.scheduler.on('failed', ({ name, error }) => this.failed(`scheduler job ${name}`, error));
    this.scheduler.on('completed', ({ name }) => this.recovered(`scheduler job ${name}`));
    // A connection the service opened coming back ends every outage it logged.
    if (typeof redis === 'string') this.scheduler.client.on('ready', () => this.failures.clear());
    const jobs: JobDefinition[] = [...this.queueJobs(logger), ...schedulerCleanupJobs(this.scheduler, { logger })];
    if (options.mysql !== undefined) {
      // Loaded only when asked for: a service without mysql never imports the outbox (nor mysql2).
      const { Outbox, outboxJobs } = await import('../outbox/index.js');
      const table = options.outboxTable ?? defaultOutboxTable(prefix);
      this.outbox = new Outbox({ mysql: options.mysql, bus: this.bus, table });
      this.outbox.on('error', (error) => this.failed('outbox relay', error));
      await this.outbox.migrate();
      const relayEveryMs = options.outboxRelayEveryMs ?? 60_000;
      const [relayJob] = outboxJobs(this.outbox, { relayEveryMs });
      jobs.push(relayJob!);
      this.scheduler.on('completed', ({ name }) => {
        if (name === relayJob!.name) this.recovered('outbox relay');
      });
      // The relay publishes each commit at once (publishInTransaction wakes it); the job is the safety net.
      this.relay = await this.outbox.startRelay();
    }
    for (const job of jobs) this.scheduler.addJob(job);
    this.scheduler.start();
    this.options = options;
    return this;
  }

  /**
   * Logs a failure in one line (its message, not its stack), once per cause: again only when the message
   * changes or after the source recovered. Every failure is counted.
   */
  private failed(source: string, error: unknown): void {
    this.stats.errors++;
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    // An outage is one cause, whatever socket error each attempt met (ECONNRESET, EPIPE ...).
    const cause = error instanceof ConnectionError ? `${error.code} ${error.address} ${error.failure}` : message;
    if (this.failures.get(source) === cause) return;
    this.failures.set(source, cause);
    this.logger.info(`[sluice] QueueService ${source} failed: ${message}`);
  }

  private recovered(source: string): void {
    if (this.failures.delete(source)) this.logger.info(`[sluice] QueueService ${source} recovered`);
  }

  /** queueMaintenanceJobs over the queues this service knows at each run (they are created as they are used). */
  private queueJobs(logger: JobLogger): JobDefinition[] {
    return queueMaintenanceJobs([], { logger }).map((job) => ({
      ...job,
      handler: (context) => {
        const current = queueMaintenanceJobs([...this.queues.values()], { logger });
        return current.find((each) => each.name === job.name)!.handler(context);
      },
    }));
  }

  /** Sends a message; returns its id. Refused arguments throw a ValidationError and nothing is sent. */
  async sendMessage<T = Record<string, unknown>>(options: SendMessageOptions<T>): Promise<string> {
    this.ready('sendMessage');
    const { queueName, payload, messageType, priority, scheduledAt, partitionKey, maxRetries } = options;
    if (scheduledAt !== undefined && !(scheduledAt instanceof Date)) {
      throw new ValidationError('scheduledAt', 'sendMessage: scheduledAt must be a Date');
    }
    return this.queue(queueName).send(payload, {
      type: messageType,
      ...(priority !== undefined && { priority }),
      ...(scheduledAt !== undefined && { runAt: scheduledAt }),
      ...(partitionKey !== undefined && { partitionKey }),
      ...(maxRetries !== undefined && { maxRetries }),
    });
  }

  /**
   * Starts a consumer named `consumerId` on the queue: `handler` gets each message; true acks it, false or a
   * throw retries it after the backoff until its maxRetries, then dead-letters it. Returns true.
   */
  async registerMessageConsumer<T = Record<string, unknown>>(
    queueName: string,
    consumerId: string,
    handler: MessageHandler<T>,
  ): Promise<boolean> {
    this.ready('registerMessageConsumer');
    if (typeof handler !== 'function')
      throw new ValidationError('handler', 'registerMessageConsumer: handler must be a function');
    if (typeof consumerId !== 'string' || consumerId === '') {
      throw new ValidationError('consumerId', 'registerMessageConsumer: consumerId must be a non-empty string');
    }
    const key = `${queueName}\u0000${consumerId}`;
    if (this.consumers.has(key)) {
      throw new ValidationError('consumerId', `registerMessageConsumer: ${consumerId} already consumes ${queueName}`);
    }
    const queue = this.queue(queueName) as Queue<T>;
    const consumer = queue.consume(async (delivery) => {
      const ok = await this.count(() => handler(toQueueMessage(delivery)), `consumer ${consumerId} of ${queueName}`);
      if (ok) this.stats.messages_processed++;
      return ok;
    });
    consumer.on('error', () => undefined);
    this.consumers.set(key, consumer as Consumer<unknown>);
    return true;
  }

  /** Publishes an event to every subscriber whose types and filter match; returns its id. */
  async publishEvent<T = Record<string, unknown>>(options: PublishEventOptions<T>): Promise<string> {
    const bus = this.ready('publishEvent');
    const { eventType, source, data, correlationId, metadata } = options;
    const result = await bus.publish(eventType, data, {
      source,
      ...(correlationId !== undefined && { correlationId }),
      ...(metadata !== undefined && { metadata }),
    });
    if (!result.duplicate) this.stats.events_published++;
    return result.id;
  }

  /**
   * Subscribes `subscriberId` to the event types (`*` matches one word, `#` any) with optional filter
   * conditions (the bus's EventFilter: dotted paths such as `{ 'data.tier': 'vip' }` or `{ source: { in: [...] } }`), and runs `callback` on each matching event published from now on.
   * Returns the subscription id (the subscriber id), for unsubscribeFromEvents.
   */
  async subscribeEvents<T = Record<string, unknown>>(
    subscriberId: string,
    eventTypes: string | readonly string[],
    callback: EventCallback<T>,
    filterConditions?: EventFilter,
  ): Promise<string> {
    const bus = this.ready('subscribeEvents');
    if (typeof callback !== 'function')
      throw new ValidationError('callback', 'subscribeEvents: callback must be a function');
    if (this.subscriptions.has(subscriberId)) {
      throw new ValidationError(
        'subscriberId',
        `subscribeEvents: ${subscriberId} is already subscribed by this service`,
      );
    }
    await bus.subscribe(subscriberId, eventTypes, filterConditions ? { filter: filterConditions } : {});
    const consumer = bus.consume<T>(subscriberId, (event) =>
      this.count(() => callback(toSeedEvent(event)), `subscriber ${subscriberId}`),
    );
    consumer.on('error', () => undefined);
    this.subscriptions.set(subscriberId, consumer as EventConsumer<unknown>);
    await consumer.ready;
    return subscriberId;
  }

  /** Stops the subscription's callback and unsubscribes it; false when there was no such subscription. */
  async unsubscribeFromEvents(subscriptionId: string): Promise<boolean> {
    const bus = this.ready('unsubscribeFromEvents');
    const consumer = this.subscriptions.get(subscriptionId);
    this.subscriptions.delete(subscriptionId);
    await consumer?.close();
    return bus.unsubscribe(subscriptionId);
  }

  /**
   * Runs `businessOperation(tx)` and stores the event in the outbox in one MySQL transaction: both commit or
   * neither does. The relay job publishes the event afterwards (at least once, in order per aggregate).
   * Returns businessOperation's result.
   */
  async publishEventWithTransaction<T = Record<string, unknown>, R = unknown>(
    options: PublishEventWithTransactionOptions<T, R>,
  ): Promise<Awaited<R>> {
    this.ready('publishEventWithTransaction');
    if (!this.outbox) throw new OutboxNotConfiguredError();
    const { eventType, aggregateId, aggregateType, eventData, businessOperation, source, correlationId } = options;
    const { result } = await this.outbox.publishInTransaction(businessOperation, {
      type: eventType,
      aggregateId,
      aggregateType,
      data: eventData,
      ...(source !== undefined && { source }),
      ...(correlationId !== undefined && { correlationId }),
    });
    return result;
  }

  /** The seed's get_queue_stats(queue_name). */
  async getQueueStats(queueName: string): Promise<SeedQueueStats> {
    this.ready('getQueueStats');
    return toSeedQueueStats(await this.queue(queueName).getStats());
  }

  /** The seed's get_event_stats(). */
  async getEventStats(): Promise<SeedEventStats> {
    return toSeedEventStats(await this.ready('getEventStats').getStats());
  }

  /** The seed's get_stats(): counts of this instance since initialize; after gracefulShutdown, the final ones. */
  getStats(): ServiceStats {
    if (!this.closed) this.ready('getStats');
    return { ...this.stats, outbox_events_processed: this.outbox?.relayedCount ?? 0 };
  }

  /**
   * Stops the consumers and subscriptions (handlers running are awaited) and the scheduler, relays the
   * outbox rows committed before the call (for up to 10 s), stops the relay, and closes the connections the
   * service opened. Safe to call twice; getStats() still gives the final counts. The process's instance is
   * forgotten: QueueService.initialize() makes a new one.
   */
  async gracefulShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (QueueService.instance === this) QueueService.instance = null;
    await this.initializing?.catch(() => undefined);
    await this.tearDown(true);
  }

  /** Stops the relay, then (with `drain`) relays what is due until none is left or DRAIN_MS have passed. */
  private async stopRelay(drain: boolean): Promise<void> {
    const deadline = Date.now() + DRAIN_MS;
    const relay = this.relay;
    this.relay = null;
    await relay?.stop();
    if (!drain || !this.outbox || !this.options) return;
    try {
      while (Date.now() < deadline) {
        const { published, refused } = await this.outbox.relayOnce();
        if (published + refused === 0) break;
      }
    } catch (error) {
      this.failed('outbox relay', error);
    }
  }

  private async tearDown(drain: boolean): Promise<void> {
    const errors: unknown[] = [];
    const closeAll = async (items: ({ close(): Promise<unknown> } | null)[]): Promise<void> => {
      const results = await Promise.allSettled(items.map((item) => (item ? item.close() : Promise.resolve())));
      for (const result of results) if (result.status === 'rejected') errors.push(result.reason);
    };
    // Consumers first (their handlers finish), then what publishes, then the connections they used.
    await closeAll([...this.consumers.values(), ...this.subscriptions.values(), this.scheduler]);
    await this.stopRelay(drain);
    await closeAll([this.outbox]);
    await closeAll([...this.queues.values(), this.bus]);
    this.consumers.clear();
    this.subscriptions.clear();
    this.queues.clear();
    if (errors.length > 0) throw errors[0];
  }

  private ready(what: string): EventBus {
    if (this.closed) throw new ClosedError('QueueService', `${what} after gracefulShutdown()`);
    if (!this.options || !this.bus) {
      throw new NotInitializedError(`${what}()`, 'call `await service.initialize({ redis })` first');
    }
    return this.bus;
  }

  private queue(name: string): Queue<unknown> {
    let queue = this.queues.get(name);
    if (!queue) {
      const { redis, prefix, retry, instrumentation } = this.options!;
      queue = new Queue(name, {
        connection: redis,
        prefix,
        ...(retry && { retry }),
        ...(instrumentation && { instrumentation }),
      });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Runs a handler or callback: a truthy result is done, anything else (false, undefined ...) a failure, as
   * the seed's `if success:`; a throw counts as an error and is rethrown. `undefined` is logged once per `who`.
   */
  private async count(run: () => boolean | Promise<boolean>, who: string): Promise<boolean> {
    try {
      const result: unknown = await run();
      const ok = Boolean(result);
      if (!ok) this.stats.errors++;
      if (result === undefined && !this.warnedUndefined.has(who)) {
        this.warnedUndefined.add(who);
        this.logger.info(
          `[sluice] QueueService ${who} returned undefined: counted as a failure (retried, then dead-lettered); return true when handled`,
        );
      }
      return ok;
    } catch (error) {
      this.stats.errors++;
      throw error;
    }
  }
}

function toQueueMessage<T>(delivery: Delivery<T>): QueueMessage<T> {
  return {
    id: delivery.id,
    queue_name: delivery.queue,
    payload: delivery.payload,
    message_type: delivery.type,
    priority: delivery.priority,
    status: 'PROCESSING',
    retry_count: delivery.attempts,
    max_retries: delivery.maxRetries,
    created_at: new Date(delivery.createdAt),
    scheduled_at: delivery.runAt === null ? null : new Date(delivery.runAt),
    partition_key: delivery.partitionKey,
  };
}

function toSeedEvent<T>(event: Event<T>): SeedEvent<T> {
  return {
    id: event.id,
    event_type: event.type,
    source: event.source,
    data: event.data,
    timestamp: new Date(event.timestamp),
    correlation_id: event.correlationId,
    version: event.version,
    metadata: event.metadata,
  };
}

/** Options compared for initialize(): the same values, plain objects and arrays compared by content. */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, n) => sameValue(item, b[n]));
  if (!isPlain(a) || !isPlain(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => sameValue(a[key], b[key]));
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
