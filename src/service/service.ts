import type { Pool, PoolOptions } from 'mysql2/promise';
import {
  EventBus,
  Priority,
  Queue,
  Scheduler,
  ValidationError,
  ClosedError,
  queueMaintenanceJobs,
  schedulerCleanupJobs,
  toSeedEventStats,
  toSeedQueueStats,
  type Consumer,
  type Delivery,
  type Event,
  type EventConsumer,
  type EventFilter,
  type JobDefinition,
  type JobLogger,
  type PriorityName,
  type PriorityValue,
  type RetryPolicy,
  type SeedEventStats,
  type SeedQueueStats,
} from '../index.js';
import type { Connection } from '../connection.js';
import { NotInitializedError, OutboxNotConfiguredError } from '../errors.js';
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

/** Returns true (acked), false (retried after the backoff, then dead-lettered) or throws (same as false). */
export type MessageHandler<T = Record<string, unknown>> = (message: QueueMessage<T>) => boolean | Promise<boolean>;
/** Returns true (done), false or throws (the delivery is retried after the backoff, then dead-lettered). */
export type EventCallback<T = Record<string, unknown>> = (event: SeedEvent<T>) => boolean | Promise<boolean>;

export interface QueueServiceOptions {
  /** an ioredis client (you close it) or a redis:// URL (each part of the service opens and closes its own) */
  redis: Connection;
  /** for publishEventWithTransaction: a mysql2/promise Pool (you end it), or a mysql:// URL or pool options */
  mysql?: Pool | string | PoolOptions;
  /** key prefix (default `sluice`) */
  prefix?: string;
  /** the outbox table (default `sluice_outbox`) */
  outboxTable?: string;
  /** how often the outbox relay job runs (default 60,000 ms, the seed's 1 minute) */
  outboxRelayEveryMs?: number;
  /** backoff of retried messages and event deliveries (default 30 s doubling up to 5 min, as the queue's) */
  retry?: Partial<RetryPolicy>;
  /** where the monitoring and cleanup jobs report (default console) */
  logger?: JobLogger;
}

export interface SendMessageOptions<T = Record<string, unknown>> {
  queueName: string;
  payload: T;
  messageType: string;
  /** default NORMAL */
  priority?: PriorityValue | PriorityName;
  /** run it then, not before (the seed's delayed message) */
  scheduledAt?: Date;
  /** messages with the same key are handled one at a time, in order */
  partitionKey?: string;
  /** retries after the first failed attempt before the message is dead-lettered (default 3) */
  maxRetries?: number;
}

export interface PublishEventOptions<T = Record<string, unknown>> {
  eventType: string;
  source: string;
  data: T;
  correlationId?: string;
  metadata?: Record<string, unknown>;
}

export interface PublishEventWithTransactionOptions<T = Record<string, unknown>, R = unknown> {
  eventType: string;
  aggregateId: string | number;
  aggregateType: string;
  eventData: T;
  /** your writes, on `tx` (a mysql2/promise connection inside the transaction); its result is returned */
  businessOperation: (tx: Transaction) => R | Promise<R>;
  source?: string;
  correlationId?: string;
}

/** The seed's get_stats(): what this QueueService instance has done since it was initialized. */
export interface ServiceStats {
  /** messages whose handler returned true */
  messages_processed: number;
  /** events published by publishEvent */
  events_published: number;
  /** outbox rows the relay job published from this process */
  outbox_events_processed: number;
  /** handlers and callbacks that returned false or threw, and scheduler errors */
  errors: number;
}

/** The name of the event bus the service publishes on and subscribes to. */
export const SERVICE_BUS_NAME = 'events';

const USE_GET_INSTANCE = 'call `await QueueService.initialize({ redis })` once at startup';

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
  private initializing: Promise<this> | null = null;
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

  /** Initializes the process's instance (once; later calls return it) and returns it. */
  static initialize(options: QueueServiceOptions): Promise<QueueService> {
    QueueService.instance ??= new QueueService();
    return QueueService.instance.initialize(options);
  }

  /** The process's instance; NotInitializedError before QueueService.initialize(). */
  static getInstance(): QueueService {
    if (!QueueService.instance?.options) throw new NotInitializedError('QueueService.getInstance()', USE_GET_INSTANCE);
    return QueueService.instance;
  }

  /**
   * Connects the service and registers the seed's scheduler jobs (outbox relay every 60 s when `mysql` is
   * given, queue monitoring every 300 s, cleanup every 3,600 s, plus delayed-message promotion every 10 s);
   * each tick of a job runs in one process of those sharing the Redis and prefix. Calling it again returns
   * the same service.
   */
  initialize(options: QueueServiceOptions): Promise<this> {
    if (this.closed) return Promise.reject(new ClosedError('QueueService', 'create a new one'));
    this.initializing ??= this.setUp(options).catch(async (error: unknown) => {
      this.initializing = null;
      await this.tearDown().catch(() => undefined);
      throw error;
    });
    return this.initializing;
  }

  private async setUp(options: QueueServiceOptions): Promise<this> {
    if (typeof options !== 'object' || options === null || options.redis === undefined) {
      throw new ValidationError('redis', 'initialize({ redis, mysql?, prefix? }): redis is required');
    }
    const { redis, prefix, retry, logger = console } = options;
    this.bus = new EventBus(SERVICE_BUS_NAME, { connection: redis, prefix, ...(retry && { retry }) });
    this.scheduler = new Scheduler({ connection: redis, prefix });
    this.scheduler.on('error', (error, jobName) => {
      this.stats.errors++;
      logger.info(`[sluice] QueueService scheduler job ${jobName} error`, error);
    });
    const jobs: JobDefinition[] = [...this.queueJobs(logger), ...schedulerCleanupJobs(this.scheduler, { logger })];
    if (options.mysql !== undefined) {
      // Loaded only when asked for: a service without mysql never imports the outbox (nor mysql2).
      const { Outbox, outboxJobs } = await import('../outbox/index.js');
      this.outbox = new Outbox({ mysql: options.mysql, bus: this.bus, table: options.outboxTable });
      this.outbox.on('error', () => undefined);
      await this.outbox.migrate();
      const relayEveryMs = options.outboxRelayEveryMs ?? 60_000;
      const [relay] = outboxJobs(this.outbox, { relayEveryMs });
      jobs.push(relay!);
      this.scheduler.on('completed', ({ name, result }) => {
        if (name === relay!.name) this.stats.outbox_events_processed += (result as { published: number }).published;
      });
    }
    for (const job of jobs) this.scheduler.addJob(job);
    this.scheduler.start();
    this.options = options;
    return this;
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
      const ok = await this.count(() => handler(toQueueMessage(delivery)));
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
    const consumer = bus.consume<T>(subscriberId, (event) => this.count(() => callback(toSeedEvent(event))));
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

  /** The seed's get_stats(): counts of this instance since initialize. */
  getStats(): ServiceStats {
    this.ready('getStats');
    return { ...this.stats };
  }

  /**
   * Stops the consumers and subscriptions (handlers running are awaited), the scheduler and the outbox,
   * and closes the connections the service opened. Safe to call twice. The process's instance is forgotten:
   * QueueService.initialize() makes a new one.
   */
  async gracefulShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (QueueService.instance === this) QueueService.instance = null;
    await this.initializing?.catch(() => undefined);
    await this.tearDown();
  }

  private async tearDown(): Promise<void> {
    const errors: unknown[] = [];
    const closeAll = async (items: ({ close(): Promise<unknown> } | null)[]): Promise<void> => {
      const results = await Promise.allSettled(items.map((item) => (item ? item.close() : Promise.resolve())));
      for (const result of results) if (result.status === 'rejected') errors.push(result.reason);
    };
    // Consumers first (their handlers finish), then what publishes, then the connections they used.
    await closeAll([...this.consumers.values(), ...this.subscriptions.values(), this.scheduler]);
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
      const { redis, prefix, retry } = this.options!;
      queue = new Queue(name, { connection: redis, prefix, ...(retry && { retry }) });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Runs a handler or callback: true or false as it said; a throw counts as an error and is rethrown. */
  private async count(run: () => boolean | Promise<boolean>): Promise<boolean> {
    try {
      const ok = (await run()) !== false;
      if (!ok) this.stats.errors++;
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
