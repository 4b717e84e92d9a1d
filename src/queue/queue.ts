import { closeOwned, resolveConnection, type Connection } from '../connection.js';
import { durabilityOption, waitForReplicas, type Durability, type DurabilityOptions } from '../durability.js';
import { ClosedError, CorruptRecordError, StaleReceiptError, ValidationError } from '../errors.js';
import { queueBaseKey, queueKey, requireTaggedKey, validateName, validatePrefix } from '../keys.js';
import { REPLY, type ScriptReplies } from '../replies.js';
import { announce } from '../registry.js';
import { runScript, type RedisClient, type ScriptName } from '../scripts.js';
import { mergeHeaders } from '../headers.js';
import {
  instrumentationOption,
  type Instrumentation,
  type ProcessOperation,
  type ProduceScope,
} from './instrumentation.js';
import { SendLimit, type BackpressureOptions } from './backpressure.js';
import { Consumer, type ConsumerOptions, type Handler } from './consumer.js';
import { decodeRecord, recordId } from './record.js';
import { Requester, type RequestOptions } from './requester.js';
import { decodeConsumers, MAX_CONSUMERS_LISTED } from './presence.js';
import type {
  ConsumerInfo,
  DeadLetter,
  Delivery,
  DeliveryRef,
  Message,
  MessageInfo,
  NackItem,
  NackOptions,
  NackOutcome,
  PeekedMessage,
  PeekState,
  PromoteOptions,
  QueueStats,
  RetryPolicy,
  SearchFilter,
  SearchOptions,
  SearchResult,
  SendItem,
  SendOptions,
} from './types.js';
import {
  requireRef,
  checkNackOptions,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_RETRIES,
  MAX_BATCH,
  MAX_RETRIES_LIMIT,
  nackArguments,
  requireIdList,
  requirePeekState,
  requireVisibility,
  retryPolicy,
  searchArguments,
  SEND_ITEM_OPTIONS,
  SEND_OPTIONS,
  sendArguments,
  sendCall,
  sentIds,
  type SendMessage,
  serialisePayload,
} from './validate.js';
import {
  atIndex,
  CLOSE_OPTIONS,
  checkOptions,
  optionalBoolean,
  MAX_GRACE_MS,
  optionNames,
  requireDuration,
  requireInteger,
  requireItem,
  requireList,
} from '../validate.js';

export interface QueueOptions extends BackpressureOptions {
  /** an ioredis client (the queue uses it, the caller closes it) or a redis:// URL (the queue owns it) */
  connection: Connection;
  /**
   * With a URL: how long a command waits for the connection (being made, or lost and being remade) before it
   * fails with a ConnectionError naming the address and the cause (default 5000). A client you pass keeps its own settings.
   */
  connectTimeoutMs?: number;
  /** key prefix, so that applications can share a Redis (default `sluice`) */
  prefix?: string;
  /** backoff of retried messages; give every process of one queue the same policy */
  retry?: Partial<RetryPolicy>;
  /** maxRetries of messages sent without one (default 3) */
  defaultMaxRetries?: number;
  /** largest payload accepted, as JSON bytes (default 1 MiB) */
  maxPayloadBytes?: number;
  /** visibility timeout of `dequeue` when none is given (default 30 s) */
  visibilityMs?: number;
  /**
   * Advanced: address the queue by this base key instead of `{prefix:name}`. It must contain a hash tag;
   * the event bus uses it to put subscriber queues under the bus's tag (see keys.ts).
   */
  baseKey?: string;
  /**
   * false: leave this queue out of the discovery registry (see discover); for an operator's tool that
   * reads a queue it did not create, so that a mistyped name is not listed. Default true.
   */
  register?: boolean;
  /**
   * Hooks called on every send and handler run: `tracing()` from `sluice/telemetry` traces them with
   * OpenTelemetry. Absent (the default), nothing is called and no headers are added.
   */
  instrumentation?: Instrumentation;
  /**
   * Durable sends: send and sendMany resolve only once the write reached `replicas` replicas (Redis WAIT on
   * the master that owns the queue), within `timeoutMs` (default 1000); else they reject with DurabilityError.
   * Absent (the default), a send resolves when the master has it, and no command is added.
   */
  durability?: DurabilityOptions;
}

const QUEUE_OPTIONS = optionNames<QueueOptions>({
  connection: true,
  connectTimeoutMs: true,
  prefix: true,
  retry: true,
  defaultMaxRetries: true,
  maxPayloadBytes: true,
  visibilityMs: true,
  baseKey: true,
  register: true,
  maxLength: true,
  whenFull: true,
  fullWaitMs: true,
  instrumentation: true,
  durability: true,
});
const DEQUEUE_OPTIONS = optionNames<{ count?: number; visibilityMs?: number }>({ count: true, visibilityMs: true });
const EXTEND_OPTIONS = optionNames<{ visibilityMs?: number }>({ visibilityMs: true });
const LIMIT_OPTIONS = optionNames<{ limit?: number }>({ limit: true });
const PAGE_OPTIONS = optionNames<{ offset?: number; limit?: number }>({ offset: true, limit: true });
const SELECTION_OPTIONS = optionNames<{ ids?: readonly string[]; limit?: number }>({ ids: true, limit: true });
const PROMOTE_OPTIONS = optionNames<PromoteOptions>({ ids: true, limit: true });
const RATE_LIMIT_OPTIONS = optionNames<{ max: number; windowMs: number }>({ max: true, windowMs: true });

const DEFAULT_VISIBILITY_MS = 30_000;
const NACK_OUTCOME: Record<number, NackOutcome> = {
  [REPLY.RETRIED]: 'retried',
  [REPLY.DEAD_LETTERED]: 'dead-lettered',
};

interface SendBatch {
  messages: SendMessage[];
  waiters: { resolve(id: string): void; reject(error: unknown): void }[];
  /** the maxLength of the Queue object that made these sends (a batch never mixes two) */
  limit: SendLimit | null;
  /** the durability option of that Queue object (a batch never mixes two), and its name for the error */
  durable: { durability: Durability; target: string } | null;
}

/** The ids a send.lua reply says were written (a count: all of them; else the string entries). */
function writtenIds(sent: number | (string | number)[], messages: readonly SendMessage[]): string[] {
  if (typeof sent === 'number') return messages.map((message) => message.id);
  return sent.filter((id): id is string => typeof id === 'string');
}

/**
 * Sends made in one tick and not yet written, per connection and queue. Every Queue object of one queue on
 * one connection shares them, so Redis sees that queue's calls in the order the program made them.
 */
const pendingSends = new WeakMap<RedisClient, Map<string, SendBatch>>();

/** Writes the pending sends of one queue as one send script call; each sender gets its own id. */
function flushSends(client: RedisClient, baseKey: string): void {
  const perQueue = pendingSends.get(client);
  const batch = perQueue?.get(baseKey);
  if (!batch) return;
  perQueue!.delete(baseKey);
  const { limit, messages, waiters, durable } = batch;
  let reply: Promise<number | (string | number)[]>;
  try {
    reply = runScript(
      client,
      'queue/send',
      [baseKey],
      limit ? limit.withLimit(messages, 'each') : sendCall(messages, null),
    );
  } catch (error) {
    reply = Promise.reject(error);
  }
  /** Answers each sender; `notDurable`: the DurabilityError of the batch's WAIT, for the messages it wrote. */
  const settle = (sent: number | (string | number)[], notDurable: unknown) => {
    // A count: every message was written under its own id.
    if (typeof sent === 'number') {
      for (let n = 0; n < waiters.length; n++) {
        if (notDurable === null) waiters[n]!.resolve(messages[n]!.id);
        else waiters[n]!.reject(notDurable);
      }
      return;
    }
    for (let n = 0; n < waiters.length; n++) {
      const id = sent[n]!;
      const waiter = waiters[n]!;
      if (typeof id === 'string') {
        if (notDurable === null) waiter.resolve(id);
        else waiter.reject(notDurable);
      } else
        limit!.refused(
          [messages[n]!],
          'each',
          ([own]) => waiter.resolve(own!),
          (error) => waiter.reject(error),
        );
    }
  };
  const failed = (error: unknown) => {
    for (const waiter of waiters) waiter.reject(error);
  };
  if (durable === null) {
    reply.then((sent) => settle(sent, null), failed);
    return;
  }
  // Durable: one WAIT for the whole batch, once the script answered.
  reply.then(
    (sent) =>
      waitForReplicas(client, baseKey, durable.durability, durable.target, writtenIds(sent, messages)).then(
        () => settle(sent, null),
        (error: unknown) => settle(sent, error),
      ),
    failed,
  );
}

/** Tells a produce scope how its call ended; returns the call's promise unchanged. */
function ended<R>(scope: ProduceScope | null, call: Promise<R>, ids: (result: R) => readonly string[]): Promise<R> {
  if (scope !== null) {
    call.then(
      (result) => scope.end({ ids: ids(result) }),
      (error: unknown) => scope.end({ error }),
    );
  }
  return call;
}

/**
 * The result of one dequeue call: deliveries, or how long nothing can become deliverable.
 * @internal
 */
export interface DequeueResult<T> {
  deliveries: Delivery<T>[];
  /**
   * ms until something may become deliverable (a delayed message due, a deadline passing), -1 when unknown.
   * With deliveries: 0 when the batch was full (more may be ready), else the same as without.
   */
  waitMs: number;
}

/**
 * A message queue. Every method that changes state is one Lua script call; this class validates,
 * encodes and decodes.
 */
export class Queue<T = unknown> {
  readonly name: string;
  readonly prefix: string;
  /** the hash-tagged base key every key of this queue derives from */
  readonly baseKey: string;
  readonly client: RedisClient;
  readonly retry: RetryPolicy;
  readonly visibilityMs: number;
  /** the instrumentation option; null without one */
  readonly instrumentation: Instrumentation | null;
  private readonly ownsClient: boolean;
  /** set while an instrumented send calls the plain one (send and sendMany run synchronously up to their first write) */
  private produced = false;
  /** the retry policy as the scripts take it: `<baseMs> <capMs> <jitter>` (lua/includes/failure.lua) */
  private readonly retryArg: string;
  private readonly limits: { defaultMaxRetries: number; maxPayloadBytes: number };
  private readonly runtimes = new Set<Consumer<T>>();
  /** the maxLength, when the queue has one */
  private readonly sendLimit: SendLimit | null;
  /** the durability option, null without one */
  readonly durability: Durability | null;
  /** what a SendBatch of this queue carries for durability */
  private readonly durable: SendBatch['durable'];
  /** the requester side of request(), made on first use */
  private requester: Requester | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(name: string, options: QueueOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new Queue(name, options) needs options with a connection (an ioredis client or a redis:// URL)',
      );
    }
    checkOptions(options, QUEUE_OPTIONS, 'new Queue(name, options)');
    this.name = validateName('queue name', name);
    this.prefix = validatePrefix(options.prefix ?? 'sluice');
    this.baseKey =
      options.baseKey === undefined ? queueBaseKey(this.prefix, this.name) : requireTaggedKey(options.baseKey);
    this.retry = retryPolicy(options.retry, 'new Queue(name, options)');
    this.retryArg = `${this.retry.baseMs} ${this.retry.capMs} ${this.retry.jitter}`;
    this.visibilityMs = requireVisibility('visibilityMs', options.visibilityMs ?? DEFAULT_VISIBILITY_MS);
    this.limits = {
      defaultMaxRetries: requireInteger(
        'defaultMaxRetries',
        options.defaultMaxRetries ?? DEFAULT_MAX_RETRIES,
        0,
        MAX_RETRIES_LIMIT,
      ),
      maxPayloadBytes: requireInteger(
        'maxPayloadBytes',
        options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
        1,
        512 * 1024 * 1024,
      ),
    };
    this.durability = durabilityOption(options.durability, 'new Queue(name, options)');
    this.durable = this.durability && { durability: this.durability, target: `queue ${this.name}` };
    this.sendLimit = SendLimit.from(this.name, options, (args, messages) => this.sendScript(args, messages));
    this.instrumentation = instrumentationOption(options.instrumentation);
    ({ client: this.client, owned: this.ownsClient } = resolveConnection(options.connection, {
      connectTimeoutMs: options.connectTimeoutMs,
    }));
    // A queue under a base key of its own (a bus's subscriber queue) is listed by its owner, not the registry.
    if (options.baseKey === undefined && optionalBoolean('register', options.register, true))
      announce(this.client, this.prefix, 'queues', this.name, this.baseKey);
  }

  private run<N extends ScriptName>(
    script: N,
    args: (string | number)[],
    requestId?: string,
  ): Promise<ScriptReplies[N]> {
    if (this.closed) return Promise.reject(new ClosedError(`queue ${this.name}`));
    // Sends waiting to be coalesced go first, so that Redis sees this queue's calls in the order they were made.
    flushSends(this.client, this.baseKey);
    return runScript(this.client, script, [this.baseKey], args, requestId);
  }

  /** One send.lua call; with durability, resolved once the messages it wrote reached the replicas. */
  private async sendScript(
    args: (string | number)[],
    messages: readonly SendMessage[],
  ): Promise<number | (string | number)[]> {
    const sent = await this.run('queue/send', args);
    if (this.durable !== null)
      await waitForReplicas(
        this.client,
        this.baseKey,
        this.durable.durability,
        this.durable.target,
        writtenIds(sent, messages),
      );
    return sent;
  }

  /**
   * Runs one of this queue's scripts (KEYS[1] its base key): for the consumer's idempotency guard.
   * @internal
   */
  runScript<N extends ScriptName>(script: N, args: (string | number)[], requestId?: string): Promise<ScriptReplies[N]> {
    return this.run(script, args, requestId);
  }

  /**
   * Sends one message; returns its id (for a duplicate dedup key, the first message's id).
   *
   * Sends made in the same tick of the event loop (a producer with many sends in flight) are coalesced
   * into one send script call, in the order they were made: one round trip and one script run for all of
   * them instead of one each. Each is validated on its own, before anything is written.
   *
   * With a maxLength, each coalesced send gets its own answer: those that fit are written, the others
   * rejected with QueueFullError (or, with whenFull 'wait', tried again until they fit or fullWaitMs passes).
   */
  send(payload: T, options: SendOptions = {}): Promise<string> {
    if (this.closed) return Promise.reject(new ClosedError(`queue ${this.name}`));
    if (this.instrumentation !== null && !this.produced)
      return this.sendInstrumented(this.instrumentation, payload, options);
    let message: SendMessage;
    try {
      // A sendMany item passed as options (send(item.payload, item)) is fine; another payload is not.
      const carriesPayload = options !== null && typeof options === 'object' && 'payload' in options;
      checkOptions(options, carriesPayload ? SEND_ITEM_OPTIONS : SEND_OPTIONS, 'send(payload, options)');
      if ('payload' in options && (options as SendItem).payload !== payload) {
        throw new ValidationError(
          'payload',
          'send(payload, options): the payload is the first argument; options may not carry another one',
        );
      }
      message = sendArguments({ ...options, payload }, this.limits, Date.now(), false);
    } catch (error) {
      return Promise.reject(error);
    }
    const limit = this.sendLimit;
    // Sends waiting for room in a full queue go first: a later send lines up behind them.
    if (limit?.hasWaiting)
      return new Promise((resolve, reject) => limit.line([message], 'each', ([id]) => resolve(id!), reject));
    let perQueue = pendingSends.get(this.client);
    if (!perQueue) pendingSends.set(this.client, (perQueue = new Map<string, SendBatch>()));
    let batch = perQueue.get(this.baseKey);
    if (batch && (batch.limit !== limit || batch.durable !== this.durable)) {
      flushSends(this.client, this.baseKey);
      batch = undefined;
    }
    if (!batch) {
      const created: SendBatch = { messages: [], waiters: [], limit, durable: this.durable };
      perQueue.set(this.baseKey, (batch = created));
      const { client, baseKey } = this;
      process.nextTick(() => {
        if (pendingSends.get(client)?.get(baseKey) === created) flushSends(client, baseKey);
      });
    }
    batch.messages.push(message);
    const waiters = batch.waiters;
    const id = new Promise<string>((resolve, reject) => waiters.push({ resolve, reject }));
    if (waiters.length >= MAX_BATCH) flushSends(this.client, this.baseKey);
    return id;
  }

  /**
   * Sends messages in one script call, in order; all are validated before anything is written. Each item
   * is `{ payload, ...send options }`; a refused item is named by its index (`items[3]: ...`).
   * With a maxLength the batch is all or nothing: if its new messages do not all fit, none is written and
   * it fails with QueueFullError (or waits, with whenFull 'wait').
   */
  async sendMany(items: readonly SendItem<T>[]): Promise<string[]> {
    if (this.instrumentation !== null && !this.produced) return this.sendManyInstrumented(this.instrumentation, items);
    requireList('items', items, 'messages { payload, ...send options }');
    if (items.length === 0) return [];
    const now = Date.now();
    const messages: SendMessage[] = [];
    items.forEach((item, n) => {
      try {
        requireItem('items', n, item, 'a message { payload, ...send options }');
        messages.push(sendArguments(item, this.limits, now));
      } catch (error) {
        throw atIndex(error, 'items', n);
      }
    });
    if (this.sendLimit) return await this.sendLimit.sendMany(messages);
    const args = sendCall(messages, null);
    const sent = this.durable === null ? await this.run('queue/send', args) : await this.sendScript(args, messages);
    return sentIds(sent, messages) as string[];
  }

  /** send() with the instrumentation's produce hook around it: its headers added to the message's own. */
  private sendInstrumented(hooks: Instrumentation, payload: T, options: SendOptions): Promise<string> {
    const isObject = options !== null && typeof options === 'object';
    const own = isObject ? options.headers : undefined;
    const scope = hooks.produce({ operation: 'send', destination: this.name, batch: false, messages: [own] });
    const given =
      scope === null || !isObject
        ? options
        : { ...options, headers: mergeHeaders(own, scope.headers) as SendOptions['headers'] };
    this.produced = true;
    let sent: Promise<string>;
    try {
      sent = this.send(payload, given);
    } finally {
      this.produced = false;
    }
    return ended(scope, sent, (id) => [id]);
  }

  /** sendMany() with the instrumentation's produce hook around it. */
  private sendManyInstrumented(hooks: Instrumentation, items: readonly SendItem<T>[]): Promise<string[]> {
    if (!Array.isArray(items)) return this.sendManyUninstrumented(items);
    const owns = items.map((item: unknown) =>
      item !== null && typeof item === 'object' ? (item as SendItem).headers : undefined,
    );
    const scope = hooks.produce({ operation: 'send', destination: this.name, batch: true, messages: owns });
    const given =
      scope === null
        ? items
        : items.map((item: unknown, n) =>
            item !== null && typeof item === 'object'
              ? ({ ...item, headers: mergeHeaders(owns[n], scope.headers) } as SendItem<T>)
              : (item as SendItem<T>),
          );
    return ended(scope, this.sendManyUninstrumented(given), (ids) => ids);
  }

  private sendManyUninstrumented(items: readonly SendItem<T>[]): Promise<string[]> {
    this.produced = true;
    try {
      return this.sendMany(items);
    } finally {
      this.produced = false;
    }
  }

  /**
   * What a consumer's instrumentation is told about a delivery it is about to handle.
   * @internal
   */
  processOperation(delivery: Delivery<T>): ProcessOperation {
    return {
      destination: this.name,
      subscription: null,
      messageId: delivery.id,
      headers: delivery.headers,
      deliveryAttempt: delivery.attempts + 1,
      correlationId: null,
      delivery,
    };
  }

  /**
   * Sends `payload` as a request and resolves with the reply: the value the handler of the consumer that
   * processed it returned (as JSON; undefined is null), matched to this call by the message's id. The
   * reply travels through Redis, so the consumer may run in any process. Rejects with RequestTimeoutError
   * when no reply came within `timeoutMs` (default 30 s; the request is withdrawn and a later reply dropped),
   * RequestFailedError when the message was dead-lettered (the handler failed maxRetries + 1 times),
   * QueueFullError at maxLength (a request never waits for room), and ClosedError when the queue closes first.
   */
  request<R = unknown>(payload: T, options: RequestOptions = {}): Promise<R> {
    if (this.closed || this.closing) return Promise.reject(new ClosedError(`queue ${this.name}`));
    this.requester ??= new Requester({
      name: this.name,
      baseKey: this.baseKey,
      client: this.client,
      limits: this.limits,
      maxLength: this.sendLimit?.maxLength ?? null,
      run: (script, args) => this.run(script, args),
    });
    return this.requester.request<R>(payload, options);
  }

  /**
   * The reply of a handler to a request, as JSON (undefined is null); throws ValidationError when it is not
   * JSON-serialisable or larger than maxPayloadBytes.
   * @internal
   */
  serialiseReply(value: unknown): string {
    return serialisePayload(value === undefined ? null : value, this.limits.maxPayloadBytes);
  }

  /**
   * Acks request deliveries and answers each with its reply JSON, in one script call per 1,000; per delivery
   * whether it was acked (false: stale, and not answered).
   * @internal
   */
  async replyMany(items: readonly { ref: DeliveryRef; replyJson: string }[]): Promise<boolean[]> {
    return this.inBatches(
      items,
      async (batch) => {
        const args: string[] = [];
        for (const { ref, replyJson } of batch) args.push(ref.id, ref.receipt, replyJson);
        const results = await this.run('queue/reply', args);
        return results.map((r) => r !== REPLY.STALE);
      },
      false,
    );
  }

  /**
   * Takes up to `count` ready messages, highest priority first, into flight for `visibilityMs`.
   * A message whose stored record cannot be decoded is dead-lettered with the reason instead.
   */
  async dequeue(options: { count?: number; visibilityMs?: number } = {}): Promise<Delivery<T>[]> {
    checkOptions(options, DEQUEUE_OPTIONS, 'dequeue(options)');
    return (await this.dequeueWithWait(options.count ?? 1, options.visibilityMs ?? this.visibilityMs)).deliveries;
  }

  /**
   * dequeue, also saying how long nothing can become deliverable: the consumer runtime's fetch.
   * @internal
   */
  async dequeueWithWait(count: number, visibilityMs: number, requestId?: string): Promise<DequeueResult<T>> {
    requireInteger('count', count, 1, MAX_BATCH);
    requireVisibility('visibilityMs', visibilityMs);
    const seed = Math.floor(Math.random() * 2 ** 31);
    const reply = await this.run('queue/dequeue', [count, Math.ceil(visibilityMs), this.retryArg, seed], requestId);
    const waitMs = Number(reply[0]);
    if (reply.length <= 2) return { deliveries: [], waitMs };
    const first = Number(reply[1]);
    const deliveries: Delivery<T>[] = [];
    let corrupt: { ref: DeliveryRef; reason: string }[] | undefined;
    for (let n = 2; n < reply.length; n++) {
      const rec = String(reply[n]);
      // A repeated request answers '' for a delivery that left flight before the repeat arrived.
      if (rec === '') continue;
      const receipt = String(first + n - 2);
      try {
        const delivery = decodeRecord<T>(this.name, rec) as Delivery<T>;
        delivery.receipt = receipt;
        deliveries.push(delivery);
      } catch (error) {
        if (!(error instanceof CorruptRecordError)) throw error;
        (corrupt ??= []).push({ ref: { id: recordId(rec), receipt }, reason: error.message });
      }
    }
    if (corrupt) {
      await this.nackMany(corrupt.map(({ ref, reason }) => ({ ref, error: reason, retry: false })));
    }
    return { deliveries, waitMs };
  }

  /** Completes a delivery. Throws StaleReceiptError when it is no longer in flight under this receipt. */
  async ack(ref: DeliveryRef): Promise<void> {
    requireRef(ref);
    const [acked] = await this.ackMany([ref]);
    if (!acked) throw new StaleReceiptError(ref.id, ref.receipt);
  }

  /** Completes deliveries in one script call; returns, per delivery, whether it was acked (false: stale). */
  async ackMany(refs: readonly DeliveryRef[]): Promise<boolean[]> {
    return this.inBatches(refs, async (batch) => {
      const args: string[] = [];
      for (const ref of batch) args.push(ref.id, ref.receipt);
      const results = await this.run('queue/ack', args);
      return results.map((r) => r !== REPLY.STALE);
    });
  }

  /** Validates every ref, then runs `call` on chunks of at most MAX_BATCH (one script call each). */
  private async inBatches<I, R>(
    items: readonly I[],
    call: (batch: readonly I[]) => Promise<R[]>,
    validate = true,
  ): Promise<R[]> {
    if (validate) {
      requireList('deliveries', items, 'deliveries (objects with string id and receipt, as dequeue returns)');
      items.forEach((item, n) => {
        try {
          requireRef(item);
        } catch (error) {
          throw atIndex(error, 'deliveries', n);
        }
      });
    }
    const results: R[] = [];
    for (let from = 0; from < items.length; from += MAX_BATCH) {
      results.push(...(await call(items.slice(from, from + MAX_BATCH))));
    }
    return results;
  }

  /**
   * Fails a delivery: retried after the backoff while it has retries left (or `retry: false` sends it
   * to the dead-letter queue). Throws StaleReceiptError when it is no longer in flight under this receipt.
   */
  async nack(ref: DeliveryRef, options: NackOptions = {}): Promise<NackOutcome> {
    checkNackOptions(options);
    const [outcome] = await this.nackItems([nackArguments({ ...options, ref })]);
    if (!outcome) throw new StaleReceiptError(ref.id, ref.receipt);
    return outcome;
  }

  /**
   * Fails deliveries in one script call per 1,000; per item the outcome, or null when stale. Each item is
   * `{ ref, error?, retry?, delayMs? }`: `ref` the delivery (anything with the `id` and `receipt` dequeue
   * returned) and the options of `nack`. Every item is checked before anything is written; a refused one
   * is named by its index (`items[2]: delayMs must be ...`).
   */
  async nackMany(items: readonly NackItem[]): Promise<(NackOutcome | null)[]> {
    requireList('items', items, 'objects { ref, error?, retry?, delayMs? }');
    return this.nackItems(items.map((item, n) => nackArguments(item, n)));
  }

  private async nackItems(items: readonly (string | number)[][]): Promise<(NackOutcome | null)[]> {
    return this.inBatches(
      items,
      async (batch) => {
        const args: (string | number)[] = [this.retryArg, Math.floor(Math.random() * 2 ** 31)];
        for (const item of batch) args.push(...item);
        const results = await this.run('queue/nack', args);
        return results.map((r) => NACK_OUTCOME[r] ?? null);
      },
      false,
    );
  }

  /**
   * Hands a delivery back untouched, to the front of its ready list with its attempts unchanged (a consumer
   * that cannot start it now). Throws StaleReceiptError when it is no longer in flight under this receipt.
   */
  async release(ref: DeliveryRef): Promise<void> {
    requireRef(ref);
    const [released] = await this.releaseMany([ref]);
    if (!released) throw new StaleReceiptError(ref.id, ref.receipt);
  }

  /**
   * Hands deliveries back untouched, in one script call per 1,000: to the front of their ready lists, in
   * order, attempts unchanged. Returns, per delivery, whether it was released (false: stale).
   */
  async releaseMany(refs: readonly DeliveryRef[]): Promise<boolean[]> {
    return this.inBatches(refs, async (batch) => {
      const args: (string | number)[] = [this.retryArg, 0];
      for (const ref of batch) args.push(ref.id, ref.receipt, 'release', -1, '');
      const results = await this.run('queue/nack', args);
      return results.map((r) => r !== REPLY.STALE);
    });
  }

  /**
   * Pushes a delivery's visibility deadline to now + `visibilityMs` (default: the queue's). Throws
   * StaleReceiptError when it is no longer in flight under this receipt.
   */
  async extend(ref: DeliveryRef, options: { visibilityMs?: number } = {}): Promise<void> {
    requireRef(ref);
    const [extended] = await this.extendDeliveries([ref], options, 'extend(delivery, options)');
    if (!extended) throw new StaleReceiptError(ref.id, ref.receipt);
  }

  /**
   * Pushes the visibility deadlines of deliveries to now + `visibilityMs` (default: the queue's), in one
   * script call per 1,000. Returns, per delivery, whether it was extended (false: stale).
   */
  async extendMany(refs: readonly DeliveryRef[], options: { visibilityMs?: number } = {}): Promise<boolean[]> {
    return this.extendDeliveries(refs, options, 'extendMany(deliveries, options)');
  }

  private async extendDeliveries(
    refs: readonly DeliveryRef[],
    options: { visibilityMs?: number },
    where: string,
  ): Promise<boolean[]> {
    checkOptions(options, EXTEND_OPTIONS, where);
    const ms = Math.ceil(requireVisibility('visibilityMs', options.visibilityMs ?? this.visibilityMs));
    return this.inBatches(refs, async (batch) => {
      const args: (string | number)[] = [ms];
      for (const ref of batch) args.push(ref.id, ref.receipt);
      const results = await this.run('queue/extend', args);
      return results.map((r) => r !== REPLY.STALE);
    });
  }

  /**
   * Fails up to `limit` (default 1000) in-flight messages whose deadline passed, as a nack would: retried
   * or dead-lettered. dequeue does this too; queueMaintenanceJobs runs it for queues nobody consumes.
   * Returns how many.
   */
  async reclaim(options: { limit?: number } = {}): Promise<number> {
    checkOptions(options, LIMIT_OPTIONS, 'reclaim(options)');
    const limit = requireInteger('limit', options.limit ?? MAX_BATCH, 1, MAX_BATCH);
    return await this.run('queue/reclaim', [limit, this.retryArg, Math.floor(Math.random() * 2 ** 31)]);
  }

  /**
   * Moves up to `limit` (default 1000) due delayed messages to their ready lists. dequeue does this too;
   * queueMaintenanceJobs runs it for queues nobody consumes. Returns how many.
   *
   * With `ids` (at most 1000; not with `limit`): those delayed or retry-waiting messages instead, now,
   * whatever their due time: each goes to the back of its priority's ready list as it would when due (a
   * retried one keeps its attempts and last error; a partition's head stays its head) and an idle consumer
   * is woken. Ids not in the delayed set (ready, in flight, dead, unknown, or waiting behind their
   * partition's head) are skipped, so promoting the same ids again promotes nothing. An empty list
   * promotes nothing without a call to Redis.
   */
  async promote(options: PromoteOptions = {}): Promise<number> {
    checkOptions(options, PROMOTE_OPTIONS, 'promote(options)');
    if (options.ids !== undefined) {
      if (options.limit !== undefined) {
        throw new ValidationError(
          'limit',
          'promote(options): give ids (promote those messages) or limit (promote that many due ones), not both',
        );
      }
      const ids = requireIdList(options.ids);
      if (ids.length === 0) return 0;
      return await this.run('queue/promote', ['ids', ids.length, ...ids]);
    }
    const limit = requireInteger('limit', options.limit ?? MAX_BATCH, 1, MAX_BATCH);
    return await this.run('queue/promote', ['due', limit]);
  }

  /** A page of the dead-letter queue, oldest failure first. */
  async deadLetters(options: { offset?: number; limit?: number } = {}): Promise<DeadLetter<T>[]> {
    checkOptions(options, PAGE_OPTIONS, 'deadLetters(options)');
    const offset = requireInteger('offset', options.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = requireInteger('limit', options.limit ?? 100, 1, MAX_BATCH);
    const reply = await this.run('queue/deadLetterList', [offset, limit]);
    const entries: DeadLetter<T>[] = [];
    for (let n = 0; n < reply.length; n += 4) {
      const raw = reply[n + 2] ?? null;
      let message: Message<T> | null = null;
      try {
        if (raw !== null) message = decodeRecord<T>(this.name, raw);
      } catch {
        message = null;
      }
      entries.push({ id: reply[n]!, failedAt: Number(reply[n + 1]), reason: reply[n + 3] ?? null, message, raw });
    }
    return entries;
  }

  /**
   * A page of the messages in one state, read-only and bounded (at most `limit`, default 20, entries read):
   * ready ones highest priority first and FIFO within a priority (the order dequeue takes them), delayed
   * ones by due time, in-flight ones by visibility deadline, dead letters oldest failure first. Messages
   * waiting behind their partition's head are in no page. For a diagnostic, such as the CLI's `peek`.
   */
  async peek(state: PeekState, options: { offset?: number; limit?: number } = {}): Promise<PeekedMessage<T>[]> {
    requirePeekState(state, 'peek(state, options)');
    checkOptions(options, PAGE_OPTIONS, 'peek(state, options)');
    const offset = requireInteger('offset', options.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = requireInteger('limit', options.limit ?? 20, 1, MAX_BATCH);
    if (state === 'dead') {
      return (await this.deadLetters({ offset, limit })).map((dead) => ({
        id: dead.id,
        state,
        message: dead.message,
        raw: dead.raw,
        lastError: dead.reason,
        at: dead.failedAt,
      }));
    }
    return this.peekedEntries(state, await this.run('queue/peek', [state, offset, limit]), 0);
  }

  /**
   * The messages of one state that match `filter`, read-only and bounded: one script call examines at most
   * `scanLimit` entries (default 1000, at most 10,000) from `cursor` in the order peek() lists the state and
   * returns up to `limit` matches (default 50, at most 1000). Go on from the returned `cursor` until it is null
   * (the state read to its end); each call costs Redis at most `scanLimit` entries, so a dashboard's search box
   * can page through a state of any size without blocking Redis. For a diagnostic, not a hot path.
   *
   * The cursor is a position, as peek's offset: when the state changes between calls, a message may be
   * seen twice or passed over. Messages waiting behind their partition's head (`partitionBacklog` in
   * getStats) are in none of these states and are never found; a record that does not decode matches nothing.
   * To find a message by id, use getMessage(id).
   */
  async search(filter: SearchFilter, options: SearchOptions = {}): Promise<SearchResult<T>> {
    const args = searchArguments(filter, options);
    const reply = await this.run('queue/search', args);
    const cursor = Number(reply[0]);
    return {
      matches: this.peekedEntries(args[0] as PeekState, reply, 2),
      cursor: cursor < 0 ? null : cursor,
      scanned: Number(reply[1]),
    };
  }

  /** Entries of a peek.lua or search.lua reply, 4 each from `from`: id, record, last error, time. */
  private peekedEntries(
    state: PeekState,
    reply: readonly (string | number | null)[],
    from: number,
  ): PeekedMessage<T>[] {
    const entries: PeekedMessage<T>[] = [];
    for (let n = from; n < reply.length; n += 4) {
      const raw = (reply[n + 1] as string | null) ?? null;
      let message: Message<T> | null = null;
      try {
        if (raw !== null) message = decodeRecord<T>(this.name, raw);
      } catch {
        message = null;
      }
      const at = reply[n + 3];
      entries.push({
        id: String(reply[n]),
        state,
        message,
        raw,
        lastError: (reply[n + 2] as string | null) ?? null,
        at: at === null || at === undefined ? null : Number(at),
      });
    }
    return entries;
  }

  /**
   * Moves dead letters back to PENDING with attempts reset: the given `ids` (an empty list replays
   * nothing), or else the oldest `limit` (default 1000). Returns the ids replayed.
   */
  async replayDeadLetters(options: { ids?: readonly string[]; limit?: number } = {}): Promise<string[]> {
    const selection = this.selection(options, MAX_BATCH);
    return selection ? await this.run('queue/replay', selection) : [];
  }

  /**
   * Deletes dead letters for good: the given `ids` (an empty list deletes nothing), or the oldest `limit`,
   * which must then be given. Returns how many were deleted.
   */
  async purgeDeadLetters(options: { ids: readonly string[] } | { limit: number }): Promise<number> {
    const selection = this.selection(options, undefined);
    return selection ? await this.run('queue/purge', selection) : 0;
  }

  /** purge.lua / replay.lua arguments, or null when an explicit id list is empty. */
  private selection(
    options: { ids?: readonly string[]; limit?: number },
    defaultLimit: number | undefined,
  ): (string | number)[] | null {
    checkOptions(
      options,
      SELECTION_OPTIONS,
      defaultLimit === undefined ? 'purgeDeadLetters(options)' : 'replayDeadLetters(options)',
    );
    if (options?.ids !== undefined) {
      const ids = requireIdList(options.ids);
      return ids.length === 0 ? null : ['ids', ids.length, ...ids];
    }
    if (options?.limit === undefined && defaultLimit === undefined) {
      throw new ValidationError('limit', 'give the ids to purge, or a limit to purge the oldest dead letters');
    }
    return ['oldest', requireInteger('limit', options?.limit ?? defaultLimit, 1, MAX_BATCH)];
  }

  /** Stops deliveries for every process until resume(); sends and acks go on. */
  async pause(): Promise<void> {
    await this.run('queue/pause', ['1']);
  }

  async resume(): Promise<void> {
    await this.run('queue/pause', ['0']);
  }

  /** At most `max` messages dequeued per `windowMs` across all consumers; null removes the limit. */
  async setRateLimit(limit: { max: number; windowMs: number } | null): Promise<void> {
    if (limit === null) {
      await this.run('queue/rateLimit', [0, 0]);
      return;
    }
    checkOptions(limit, RATE_LIMIT_OPTIONS, 'setRateLimit(limit)', 'rateLimit');
    requireInteger('rateLimit.max', limit.max, 1, Number.MAX_SAFE_INTEGER);
    requireInteger('rateLimit.windowMs', limit.windowMs, 1, Number.MAX_SAFE_INTEGER);
    await this.run('queue/rateLimit', [limit.max, limit.windowMs]);
  }

  /**
   * How many messages are in each state, whether deliveries are paused, and the queue's counters since it
   * was created. `toSeedQueueStats(stats)` gives the seed system's get_queue_stats shape.
   */
  async getStats(): Promise<QueueStats> {
    const reply = await this.run('queue/stats', []);
    const counters: Record<string, number> = {};
    for (let n = 13; n < reply.length; n += 2) counters[String(reply[n])] = Number(reply[n + 1]);
    const oldestReadyAgeMs = Number(reply[9]);
    return {
      name: this.name,
      ready: { critical: Number(reply[3]), high: Number(reply[2]), normal: Number(reply[1]), low: Number(reply[0]) },
      inflight: Number(reply[4]),
      delayed: Number(reply[5]),
      deadLetters: Number(reply[6]),
      partitionBacklog: Number(reply[7]),
      paused: Number(reply[8]) === 1,
      oldestReadyAgeMs: oldestReadyAgeMs < 0 ? null : oldestReadyAgeMs,
      rateLimit: reply[10] === '' ? null : { max: Number(reply[10]), windowMs: Number(reply[11]) },
      consumers: Number(reply[12]),
      counters: {
        sent: counters.sent ?? 0,
        delivered: counters.delivered ?? 0,
        acked: counters.acked ?? 0,
        retried: counters.retried ?? 0,
        deadLettered: counters.deadLettered ?? 0,
        reclaimed: counters.reclaimed ?? 0,
        replayed: counters.replayed ?? 0,
      },
    };
  }

  /**
   * The consumers running on this queue in any process (those stats count), soonest to drop out first:
   * read-only, at most 1000. A consumer announces itself when it starts and every heartbeatMs, and leaves
   * on close(); one whose process died drops out after 3 × heartbeatMs.
   */
  async consumers(): Promise<ConsumerInfo[]> {
    return decodeConsumers(await this.run('queue/consumers', [MAX_CONSUMERS_LISTED]));
  }

  /**
   * Finds a message and its status; null when it is in no state (completed, purged or never sent).
   * Pending messages are searched for in their lists: O(pending), a diagnostic.
   */
  async getMessage(id: string): Promise<MessageInfo<T> | null> {
    const reply = await this.run('queue/inspect', [id]);
    if (reply.length === 0) return null;
    const [state, rec, lastError, at] = reply;
    const message = decodeRecord<T>(this.name, rec!);
    const status =
      state === 'inflight'
        ? 'PROCESSING'
        : state === 'dead'
          ? 'FAILED'
          : state === 'delayed'
            ? message.attempts > 0
              ? 'RETRY'
              : 'DELAYED'
            : 'PENDING';
    return { ...message, status, lastError: lastError ?? null, at: at ? Number(at) : null };
  }

  /**
   * Leaves a wake-up token for idle consumers (at most one waits at a time).
   * @internal
   */
  async wake(): Promise<void> {
    await this.run('queue/wake', []);
  }

  /** Starts a consumer runtime on this queue (see Consumer). */
  consume(handler: Handler<T>, options: ConsumerOptions<T> = {}): Consumer<T> {
    if (this.closed) throw new ClosedError(`queue ${this.name}`);
    if (typeof handler !== 'function') {
      throw new ValidationError('handler', `consume(handler) needs a function, got ${typeof handler}`);
    }
    const consumer = new Consumer<T>(this, handler, options);
    this.runtimes.add(consumer);
    consumer.once('closed', () => this.runtimes.delete(consumer));
    return consumer;
  }

  /**
   * The key idle consumers block on; sending to it wakes one of them.
   * @internal
   */
  get wakeKey(): string {
    return queueKey(this.baseKey, 'wake');
  }

  /**
   * Closes this queue's consumers (each with its own grace period, or `graceMs` for all) and, if the queue
   * opened it, its connection. Sends made before close() are written first; see closeOwned for how long a
   * connection still being made is waited for.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (!this.closing) {
      let graceMs: number | undefined;
      try {
        checkOptions(options, CLOSE_OPTIONS, 'close(options)');
        graceMs =
          options.graceMs === undefined ? undefined : requireDuration('graceMs', options.graceMs, 0, MAX_GRACE_MS);
      } catch (error) {
        return Promise.reject(error);
      }
      this.closing = this.shutdown(graceMs);
    }
    return this.closing;
  }

  private async shutdown(graceMs: number | undefined): Promise<void> {
    // Sends of this tick are handed to the client now: ahead of the consumers' last acks, before QUIT.
    flushSends(this.client, this.baseKey);
    this.sendLimit?.close();
    await Promise.all([
      this.requester?.close(),
      ...[...this.runtimes].map((c) => c.close(graceMs === undefined ? {} : { graceMs })),
    ]);
    flushSends(this.client, this.baseKey);
    this.closed = true;
    if (this.ownsClient) await closeOwned(this.client, `queue ${this.name}`);
  }
}
