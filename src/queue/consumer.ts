import { EventEmitter, once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../client-shape.js';
import { commandError, dropConnection } from '../connection.js';
import { newRequestId } from '../scripts.js';
import { ClosedError, HandlerTimeoutError, StaleReceiptError } from '../errors.js';
import {
  CLOSE_OPTIONS,
  checkOptions,
  MAX_GRACE_MS,
  optionNames,
  reasonOf,
  requireDuration,
  requireInteger,
} from '../validate.js';
import { MAX_BATCH, MAX_BLOCK_MS, MAX_HANDLER_TIMEOUT_MS, requireVisibility } from './validate.js';
import { IdempotencyGuard, type IdempotencyOptions } from './idempotency.js';
import type { Delivery, DeliveryRef, NackOptions } from './types.js';
import type { DequeueResult, Queue } from './queue.js';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitEvent, type CircuitState } from './breaker.js';
import { isRequestId } from './requester.js';
import type { Instrumentation, ProcessScope } from './instrumentation.js';
import { ConsumerPresence, DEFAULT_HEARTBEAT_MS, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS } from './presence.js';

/** dequeue calls one consumer keeps in flight at most (see fetchLoop) */
const MAX_FETCHES_IN_FLIGHT = 2;
/**
 * After the grace period, how long close() tries to write the last acks and nacks and hand the unfinished
 * deliveries back before giving up on them (they are redelivered after their visibility timeout).
 */
const HAND_BACK_MS = 1_000;

export interface HandlerContext {
  /** fires when the handler timed out, the delivery was lost (extension refused) or the consumer closed */
  readonly signal: AbortSignal;
}

/**
 * Processes one message. Resolving (to anything but `false`) acks it; returning `false` or throwing nacks
 * it with the reason recorded, and it is retried after the queue's backoff or dead-lettered. For a message
 * sent with queue.request, the value resolved is the reply (as JSON; undefined is null).
 */
export type Handler<T> = (message: Delivery<T>, context: HandlerContext) => unknown;

export interface ConsumerOptions<T = unknown> {
  /** handlers running at once (default 1) */
  concurrency?: number;
  /**
   * most messages taken per dequeue call (default: half the concurrency rounded up, at most 1000, so that
   * two calls can be in flight while handlers run; see fetchLoop)
   */
  batchSize?: number;
  /** visibility timeout of each delivery; extended automatically while the handler runs (default: the queue's) */
  visibilityMs?: number;
  /** a handler running longer is aborted and its message nacked (default 30 s) */
  handlerTimeoutMs?: number;
  /** an idle consumer blocks in Redis at most this long before it looks again (default 5 s) */
  blockMs?: number;
  /** close() waits this long for running handlers before handing their messages back (default 30 s) */
  graceMs?: number;
  /** stop fetching while handlers fail too often (off unless given; `{}` turns it on with the defaults) */
  circuitBreaker?: CircuitBreakerOptions;
  /**
   * Skip messages already processed: the ack of a handler that succeeded also marks the message's key (its
   * id, or `key(message)`) for `retentionMs`, in the same script; a delivery whose key is marked is acked
   * without running the handler (the `skipped` event). Off by default.
   */
  idempotency?: IdempotencyOptions<T>;
  /**
   * how often the consumer tells its queue it is running (default 5 s, from 10 ms to 10 min), for
   * `stats.consumers` and `queue.consumers()`; a consumer that misses 3 heartbeats in a row (its process died)
   * no longer counts
   */
  heartbeatMs?: number;
}

const CONSUMER_OPTIONS = optionNames<ConsumerOptions>({
  concurrency: true,
  batchSize: true,
  visibilityMs: true,
  handlerTimeoutMs: true,
  blockMs: true,
  graceMs: true,
  circuitBreaker: true,
  idempotency: true,
  heartbeatMs: true,
});
/**
 * What close() did with the deliveries it held (the `closed` event's argument, and what close() resolves to).
 * Ids listed under `notHandedBack` or `notSettled` could not be written to Redis before close() returned
 * (Redis down, say): those messages are redelivered once their visibility timeout passes. A message whose
 * write did reach Redis but whose reply was lost is listed too.
 */
export interface ConsumerCloseReport {
  /** messages handed back to the queue untouched: handlers unfinished after graceMs, or fetched and not started */
  handedBack: string[];
  /** messages that could not be handed back */
  notHandedBack: string[];
  /** messages whose handler finished but whose ack or nack could not be written */
  notSettled: string[];
}

class Job<T> implements HandlerContext {
  /** the delivery was acked, nacked or handed back: the handler's outcome no longer matters */
  done = false;
  /** the circuit breaker's epoch when the handler started: its outcome counts only in that one */
  circuitEpoch = 0;
  /** the instrumentation's scope of this handler run, told its outcome; null without instrumentation */
  scope: ProcessScope | null = null;
  readonly startedAt: number;
  /** performance.now() when the handler was called, for the duration the events carry */
  readonly startedPrecise = performance.now();
  extendedAt: number;
  #controller: AbortController | undefined;
  #abortReason: Error | undefined;

  constructor(
    readonly delivery: Delivery<T>,
    now: number,
  ) {
    this.startedAt = now;
    this.extendedAt = now;
  }

  // Created on first use: most handlers never look at the signal, and an AbortController per message costs.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }
}

/**
 * The consumer runtime: fetches batches, runs up to `concurrency` handlers, acks and nacks in batches,
 * extends visibility while handlers run, and blocks in Redis (BLPOP on the queue's wake list) when idle.
 *
 * Events: 'error' (operational problems: Redis unreachable, a stale receipt), 'failed' (message, error, run),
 * 'completed' (message, run: how long the handler ran), 'skipped' (message; with `idempotency`), 'closed', and with a circuit breaker
 * 'circuitOpen', 'circuitHalfOpen', 'circuitClosed'. Without an 'error' listener errors are written to the console.
 */
/** How long a handler ran, passed with the 'completed' and 'failed' events (for metrics). */
export interface HandlerRun {
  /** ms from the handler's call to its outcome (for a timed-out handler, until the timeout) */
  durationMs: number;
}

export interface ConsumerEvents<T> {
  completed: [message: Delivery<T>, run: HandlerRun];
  /** with `idempotency`: the message's key was marked processed, so it was acked and its handler not run */
  skipped: [message: Delivery<T>];
  /** `run` is absent when no handler ran (the idempotency key function threw) */
  failed: [message: Delivery<T>, error: unknown, run?: HandlerRun];
  error: [error: unknown];
  closed: [report: ConsumerCloseReport];
  circuitOpen: [event: CircuitEvent];
  circuitHalfOpen: [event: CircuitEvent];
  circuitClosed: [event: CircuitEvent];
}

export interface Consumer<T = unknown> {
  on<E extends keyof ConsumerEvents<T>>(event: E, listener: (...args: ConsumerEvents<T>[E]) => void): this;
  once<E extends keyof ConsumerEvents<T>>(event: E, listener: (...args: ConsumerEvents<T>[E]) => void): this;
  off<E extends keyof ConsumerEvents<T>>(event: E, listener: (...args: ConsumerEvents<T>[E]) => void): this;
}

export class Consumer<T = unknown> extends EventEmitter {
  readonly concurrency: number;
  readonly batchSize: number;
  readonly visibilityMs: number;
  readonly handlerTimeoutMs: number;
  readonly blockMs: number;
  readonly graceMs: number;
  readonly heartbeatMs: number;

  /** null without the circuitBreaker option: the hot path then checks only that */
  private readonly breaker: CircuitBreaker | null;
  /** the idempotency guard, when the consumer has one */
  private readonly guard: IdempotencyGuard<T> | null;
  /** the queue's instrumentation; null without one: the hot path then checks only that */
  private readonly instrumentation: Instrumentation | null;
  private readonly running = new Map<string, Job<T>>();
  /** handlers that timed out (their message was nacked) but have not returned: they still hold a slot */
  private readonly abandoned = new Set<Job<T>>();
  private fetching = true;
  private blocker: Redis | Cluster | null = null;
  /** the blocker's BLPOP while it is outstanding (close() may abandon it: see shutdown) */
  private pendingRead: Promise<unknown> | null = null;
  private slotFreed: (() => void) | null = null;
  private drained: (() => void) | null = null;
  private stopSleeping: AbortController = new AbortController();
  /** resolves when close() begins: a pending blocking read is abandoned then */
  private readonly stopped: Promise<void>;
  private stop!: () => void;
  /** aborted when close() gives up writing acks, nacks and hand-backs */
  private readonly givingUp = new AbortController();
  /** ack and nack batches not yet written (for the close report) */
  private readonly unsettled = new Set<readonly DeliveryRef[]>();
  /** deliveries fetched but not started, being handed back by fetchLoop, and those it handed back */
  private readonly unstartedBack = { pending: [] as DeliveryRef[], done: [] as DeliveryRef[] };
  private isClosed = false;
  private acks: DeliveryRef[] = [];
  private replies: { ref: DeliveryRef; replyJson: string }[] = [];
  private nacks: (NackOptions & { ref: DeliveryRef })[] = [];
  private flushScheduled = false;
  private readonly flushes = new Set<Promise<void>>();
  private readonly watchdog: NodeJS.Timeout;
  /** the consumer's entry in its queue's consumers set (stats.consumers, queue.consumers()) */
  private readonly presence: ConsumerPresence;
  private readonly loopDone: Promise<void>;
  private closing: Promise<ConsumerCloseReport> | null = null;

  constructor(
    readonly queue: Queue<T>,
    private readonly handler: Handler<T>,
    options: ConsumerOptions<T> = {},
  ) {
    super();
    checkOptions(options, CONSUMER_OPTIONS, 'consume(handler, options)');
    this.concurrency = requireInteger('concurrency', options.concurrency ?? 1, 1, 10_000);
    this.batchSize = requireInteger(
      'batchSize',
      options.batchSize ?? Math.min(Math.ceil(this.concurrency / 2), MAX_BATCH),
      1,
      MAX_BATCH,
    );
    this.visibilityMs = requireVisibility('visibilityMs', options.visibilityMs ?? queue.visibilityMs);
    this.handlerTimeoutMs = requireDuration(
      'handlerTimeoutMs',
      options.handlerTimeoutMs ?? 30_000,
      1,
      MAX_HANDLER_TIMEOUT_MS,
    );
    this.blockMs = requireDuration('blockMs', options.blockMs ?? 5_000, 1, MAX_BLOCK_MS);
    this.graceMs = requireDuration('graceMs', options.graceMs ?? 30_000, 0, MAX_GRACE_MS);
    this.heartbeatMs = requireInteger(
      'heartbeatMs',
      options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      MIN_HEARTBEAT_MS,
      MAX_HEARTBEAT_MS,
    );
    this.breaker = CircuitBreaker.from(options.circuitBreaker, (event) => this.circuitChanged(event));
    this.guard = options.idempotency === undefined ? null : new IdempotencyGuard(queue, options.idempotency);
    this.instrumentation = queue.instrumentation;
    const tick = Math.max(5, Math.min(1000, Math.min(this.handlerTimeoutMs, this.visibilityMs) / 4));
    this.watchdog = setInterval(() => this.inspectRunning(), tick);
    this.watchdog.unref();
    this.presence = new ConsumerPresence(queue, this.concurrency, this.heartbeatMs);
    this.stopped = new Promise<void>((resolve) => (this.stop = resolve));
    // Awaited only by close(): until then a rejection would be unhandled and end the process. The loop
    // catches what Redis throws; a bug that escapes it is reported rather than left unhandled.
    this.loopDone = this.fetchLoop().catch((error: unknown) => this.reportError(error));
  }

  /** This consumer's id in its queue's listing (queue.consumers()): `<host>:<pid>:<random>`. */
  get id(): string {
    return this.presence.id;
  }

  /** Handlers running now, including timed-out ones that have not returned yet. */
  get activeCount(): number {
    return this.running.size + this.abandoned.size;
  }

  /** The circuit breaker's state; always 'closed' without the circuitBreaker option. */
  get circuitState(): CircuitState {
    return this.breaker?.state ?? 'closed';
  }

  /**
   * Fetches while slots are free. When a batch came back full (more is likely ready) and slots are still
   * free, a second dequeue call is sent before the first returns, so that Redis prepares the next batch
   * while this process runs the last one. Slots asked for by calls in flight are reserved: this consumer
   * never holds more than `concurrency` deliveries.
   */
  private async fetchLoop(): Promise<void> {
    let errorDelay = 0;
    let lastWasFull = false;
    let reserved = 0;
    const inFlight: { want: number; requestId: string; result: Promise<DequeueResult<T> | { error: unknown }> }[] = [];
    const unstarted: Delivery<T>[] = [];
    // A dequeue whose call failed may have run and taken messages (its reply lost, not re-sent in time):
    // the next fetch repeats it under the same request id, which hands those messages over instead of
    // leaving them in flight for a whole visibility timeout (lua/queue/dequeue.lua).
    let unanswered: { want: number; requestId: string } | null = null;
    while (this.fetching) {
      while (inFlight.length < MAX_FETCHES_IN_FLIGHT && (inFlight.length === 0 || lastWasFull)) {
        let free = this.concurrency - this.activeCount - reserved;
        if (this.breaker !== null) free = Math.min(free, this.breaker.fetchable - reserved);
        if (free <= 0) break;
        const repeat = unanswered !== null && unanswered.want <= free ? unanswered : null;
        unanswered = null;
        const want = repeat?.want ?? Math.min(free, this.batchSize);
        const requestId = repeat?.requestId ?? newRequestId();
        reserved += want;
        const result = this.queue
          .dequeueWithWait(want, this.visibilityMs, requestId)
          .catch((error: unknown) => ({ error }));
        inFlight.push({ want, requestId, result });
      }
      const next = inFlight.shift();
      if (!next) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        // Let other handlers finishing in the same turn free their slots, so the next fetch is a batch.
        await nextTurn();
        continue;
      }
      const outcome = await next.result;
      reserved -= next.want;
      if ('error' in outcome) {
        unanswered = { want: next.want, requestId: next.requestId };
        lastWasFull = false;
        if (!this.fetching) break;
        this.reportError(outcome.error);
        errorDelay = Math.min(2_000, errorDelay * 2 || 50);
        await sleep(errorDelay, undefined, { signal: this.stopSleeping.signal }).catch(() => undefined);
        continue;
      }
      errorDelay = 0;
      const { waitMs } = outcome;
      lastWasFull = outcome.deliveries.length === next.want;
      const deliveries =
        this.guard && outcome.deliveries.length > 0 && this.fetching
          ? await this.withoutProcessed(this.guard, outcome.deliveries)
          : outcome.deliveries;
      if (!this.fetching) {
        unstarted.push(...deliveries);
        break;
      }
      if (this.breaker !== null && this.breaker.state !== 'closed' && deliveries.length > 0) {
        // The circuit opened (or is probing) while this call was in flight: what it may not start goes
        // back to the queue untouched, attempts unchanged.
        const admitted = this.breaker.admit(deliveries.length);
        const epoch = this.breaker.epoch;
        const now = Date.now();
        for (let n = 0; n < admitted; n++) this.start(deliveries[n]!, now, epoch);
        lastWasFull = false;
        if (admitted < deliveries.length) {
          await this.queue.releaseMany(deliveries.slice(admitted)).catch((error: unknown) => this.reportError(error));
        }
        continue;
      }
      if (deliveries.length > 0) {
        const now = Date.now();
        const epoch = this.breaker?.epoch ?? 0;
        for (const delivery of deliveries) this.start(delivery, now, epoch);
        await nextTurn();
      }
      // Nothing came, or the ready lists ran dry before the batch was full (waitMs is then not 0): block
      // until a send wakes us or something becomes due, rather than ask again for nothing.
      // A consumer that may not fetch (circuit open, probes used up) waits for the breaker instead, taking no
      // wake-up token meant for the others.
      if (
        (deliveries.length === 0 || waitMs !== 0) &&
        inFlight.length === 0 &&
        (this.breaker === null || this.breaker.fetchable > 0)
      ) {
        try {
          await this.waitForWork(waitMs);
        } catch (error) {
          if (!this.fetching) break;
          this.reportError(error);
          errorDelay = Math.min(2_000, errorDelay * 2 || 50);
          await sleep(errorDelay, undefined, { signal: this.stopSleeping.signal }).catch(() => undefined);
        }
      }
    }
    // Deliveries of calls still in flight when fetching stopped go back to the queue untouched, in one
    // releaseMany in the order they were dequeued (released messages go to the front of their lists).
    for (const { result } of inFlight) {
      const outcome = await result;
      if (!('error' in outcome)) unstarted.push(...outcome.deliveries);
    }
    if (unstarted.length > 0) {
      this.unstartedBack.pending = unstarted;
      await this.queue.releaseMany(unstarted).then(
        () => {
          this.unstartedBack.done = unstarted;
          this.unstartedBack.pending = [];
        },
        (error: unknown) => this.reportError(error),
      );
    }
  }

  /**
   * The deliveries of a batch whose handler is to run. Those whose key is marked processed are acked, in one
   * script call for the batch, and emitted as `skipped`; those whose key function failed are nacked with the
   * error. While Redis is unreachable the call is retried under the same request id; when close() begins
   * meanwhile, the whole batch is returned, to be handed back (a delivery the call did ack is then stale).
   */
  private async withoutProcessed(guard: IdempotencyGuard<T>, deliveries: Delivery<T>[]): Promise<Delivery<T>[]> {
    // A request is always handled: its caller waits for the reply, and its ack (reply.lua) marks nothing.
    const requests: Delivery<T>[] = [];
    const checked: Delivery<T>[] = [];
    for (const delivery of deliveries) {
      if (isRequestId(delivery.id)) {
        requests.push(delivery);
        continue;
      }
      try {
        guard.keyOf(delivery);
        checked.push(delivery);
      } catch (error) {
        this.nacks.push({ ref: delivery, error: reasonOf(error), retry: true });
        this.scheduleFlush();
        if (this.listenerCount('failed') > 0) this.notify('failed', delivery, error);
      }
    }
    if (checked.length === 0) return requests;
    const requestId = newRequestId();
    let errorDelay = 0;
    for (;;) {
      try {
        const outcomes = await guard.skip(checked, requestId);
        const toRun: Delivery<T>[] = requests;
        outcomes.forEach((outcome, n) => {
          const delivery = checked[n]!;
          if (outcome === 'run') toRun.push(delivery);
          else if (outcome === 'stale') this.reportError(new StaleReceiptError(delivery.id, delivery.receipt));
          else if (this.listenerCount('skipped') > 0) this.notify('skipped', delivery);
        });
        return toRun;
      } catch (error) {
        if (!this.fetching) return [...requests, ...checked];
        this.reportError(error);
        errorDelay = Math.min(2_000, errorDelay * 2 || 50);
        await sleep(errorDelay, undefined, { signal: this.stopSleeping.signal }).catch(() => undefined);
        if (!this.fetching) return [...requests, ...checked];
      }
    }
  }

  /** Blocks on the wake list until a send wakes us, `waitMs` passes (something becomes due) or blockMs. */
  private async waitForWork(waitMs: number): Promise<void> {
    this.blocker ??= this.createBlocker();
    // Redis checks blocking timeouts only every 100 ms (hz 10): a timer of ours wakes us on time instead.
    const timer =
      waitMs >= 0 && waitMs < this.blockMs
        ? setTimeout(() => {
            this.queue.wake().catch((error: unknown) => this.reportError(error));
          }, waitMs)
        : undefined;
    try {
      // close() abandons the read rather than wait for it: a BLPOP caught by a dropped connection waits in
      // ioredis for a reconnect that may never come.
      // The read's own failures (a dropped connection, a Cluster failing over) become ConnectionErrors, as
      // every script call's do.
      const read = this.blocker.blpop(this.queue.wakeKey, this.blockMs / 1000).catch((error: unknown) => {
        throw commandError(this.queue.client, `consumer of ${this.queue.name}`, this.queue.wakeKey, error);
      });
      this.pendingRead = read;
      void read.then(
        () => this.pendingRead === read && (this.pendingRead = null),
        () => this.pendingRead === read && (this.pendingRead = null),
      );
      const token = await Promise.race([read, this.stopped]);
      // The circuit opened (or used up its probes) while this consumer was blocked: it will not fetch, so
      // the wake-up it took goes to the next idle consumer of the queue.
      if (token && this.breaker !== null && this.breaker.fetchable <= 0) {
        this.queue.wake().catch((error: unknown) => this.reportError(error));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes the blocking connection. A BLPOP still outstanding may take the wake-up token a send leaves for
   * idle consumers before Redis notices the connection is gone (the token then goes to a closed socket and
   * another consumer of the queue sleeps for blockMs): once the connection has ended, the token is put back.
   * An extra token costs an idle consumer one empty dequeue.
   */
  private async dropBlocker(blocker: Redis | Cluster): Promise<void> {
    const reading = this.pendingRead !== null;
    // `once` rejects if the connection emits 'error' first: it is being dropped, only its end matters.
    const ended = blocker.status === 'end' ? Promise.resolve() : once(blocker, 'end').catch(() => undefined);
    dropConnection(blocker, `consumer of ${this.queue.name}`);
    if (!reading) return;
    await within(HAND_BACK_MS / 2, ended);
    // Only when a token could be for something (a message ready, delayed or in flight): a consumer closed on
    // an empty queue (a subscriber queue that never existed, say) leaves no key behind.
    const stats = await this.queue.getStats().catch(() => null);
    const { ready } = stats ?? { ready: null };
    if (stats && ready && ready.critical + ready.high + ready.normal + ready.low + stats.delayed + stats.inflight === 0)
      return;
    await this.queue.wake().catch((error: unknown) => this.reportError(error));
  }

  private createBlocker(): Redis | Cluster {
    // Named, so that CLIENT LIST shows which queue a blocked connection serves.
    const connectionName = `sluice:consumer:${this.queue.baseKey}`;
    const client = this.queue.client;
    // A Cluster names the connection of every node it opens through its redisOptions.
    const blocker = isCluster(client)
      ? client.duplicate([], { redisOptions: { ...client.options.redisOptions, connectionName } })
      : client.duplicate({ connectionName });
    // Connection errors surface as failed commands in fetchLoop; the client reconnects by itself.
    blocker.on('error', () => undefined);
    return blocker;
  }

  private start(delivery: Delivery<T>, now: number, circuitEpoch: number): void {
    const job = new Job(delivery, now);
    job.circuitEpoch = circuitEpoch;
    this.running.set(delivery.receipt, job);
    let result: unknown;
    try {
      if (this.instrumentation !== null)
        job.scope = this.instrumentation.process(this.queue.processOperation(delivery));
      result = job.scope === null ? this.handler(delivery, job) : job.scope.run(() => this.handler(delivery, job));
    } catch (error) {
      this.fail(job, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => (value === false ? this.fail(job, new Error('handler returned false')) : this.succeed(job, value)),
        (error: unknown) => this.fail(job, error),
      );
    } else if (result === false) {
      this.fail(job, new Error('handler returned false'));
    } else {
      this.succeed(job, result);
    }
  }

  /** Marks the delivery settled; false when it already was (timed out, handed back). */
  private finish(job: Job<T>): boolean {
    if (job.done) {
      // A timed-out handler has returned at last: its slot is free now.
      if (this.abandoned.delete(job)) this.slotChanged();
      return false;
    }
    job.done = true;
    this.running.delete(job.delivery.receipt);
    this.slotChanged();
    return true;
  }

  private slotChanged(): void {
    this.wakeFetchLoop();
    if (this.activeCount === 0) this.drained?.();
  }

  private wakeFetchLoop(): void {
    if (this.slotFreed) {
      const resolve = this.slotFreed;
      this.slotFreed = null;
      resolve();
    }
  }

  private circuitChanged(event: CircuitEvent): void {
    const name =
      event.state === 'open' ? 'circuitOpen' : event.state === 'half-open' ? 'circuitHalfOpen' : 'circuitClosed';
    this.notify(name, event);
    // Half-open or closed again: the fetch loop, waiting while the circuit was open, may fetch now.
    this.wakeFetchLoop();
  }

  /** Acks the delivery; a request's (queue.request) is acked with `value` as its reply, in one script call. */
  private succeed(job: Job<T>, value: unknown): void {
    if (isRequestId(job.delivery.id)) {
      let replyJson: string;
      try {
        replyJson = this.queue.serialiseReply(value);
      } catch (error) {
        this.fail(job, error);
        return;
      }
      if (!this.finish(job)) return;
      this.replies.push({ ref: job.delivery, replyJson });
    } else {
      if (!this.finish(job)) return;
      this.acks.push(job.delivery);
    }
    job.scope?.end();
    this.scheduleFlush();
    if (this.listenerCount('completed') > 0) {
      this.notify('completed', job.delivery, { durationMs: performance.now() - job.startedPrecise });
    }
    if (this.breaker !== null) this.breaker.record(job.circuitEpoch, false);
  }

  private fail(job: Job<T>, error: unknown): void {
    if (!this.finish(job)) return;
    const reason = reasonOf(error);
    this.nacks.push({ ref: job.delivery, error: reason, retry: true });
    job.scope?.end(error);
    this.scheduleFlush();
    // The outcome's own event first, then the circuit's transition it may cause.
    if (this.listenerCount('failed') > 0) {
      this.notify('failed', job.delivery, error, { durationMs: performance.now() - job.startedPrecise });
    }
    if (this.breaker !== null) this.breaker.record(job.circuitEpoch, true);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // flush() does not reject: settle() catches and reports each failed ack or nack call.
    setImmediate(() => void this.flush());
  }

  /** Sends the acks and nacks collected since the last flush, one script call per batch. */
  private flush(): Promise<void> {
    this.flushScheduled = false;
    const acks = this.acks.splice(0);
    const nacks = this.nacks.splice(0);
    const replies = this.replies.splice(0);
    const work: Promise<void>[] = [];
    if (acks.length > 0) {
      const guard = this.guard;
      const ack = guard ? () => guard.commit(acks) : () => this.queue.ackMany(acks);
      work.push(this.settle(acks, () => ack().then((acked) => this.reportStale(acks, acked))));
    }
    if (replies.length > 0) {
      const refs = replies.map((r) => r.ref);
      work.push(this.settle(refs, () => this.queue.replyMany(replies).then((acked) => this.reportStale(refs, acked))));
    }
    if (nacks.length > 0) {
      const refs = nacks.map((n) => n.ref);
      work.push(
        this.settle(refs, () =>
          this.queue.nackMany(nacks).then((outcomes) => this.reportStale(refs, outcomes.map(Boolean))),
        ),
      );
    }
    const done = Promise.all(work).then(() => undefined);
    this.flushes.add(done);
    void done.finally(() => this.flushes.delete(done));
    return done;
  }

  /**
   * Runs one ack or nack call, retrying it while Redis is unreachable (ioredis reconnects meanwhile).
   * After about a minute the delivery's visibility timeout has long passed and it is redelivered anyway.
   * A retried call that had in fact landed reports its receipts as stale: harmless.
   */
  private async settle(refs: readonly DeliveryRef[], call: () => Promise<void>): Promise<void> {
    this.unsettled.add(refs);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await call();
          this.unsettled.delete(refs);
          return;
        } catch (error) {
          this.reportError(error);
          // close() stops the retries once its hand-back time is up; the visibility timeout takes over.
          if (attempt >= 30 || this.givingUp.signal.aborted) return;
          await sleep(Math.min(2_000, 100 * 2 ** attempt), undefined, { signal: this.givingUp.signal }).catch(
            () => undefined,
          );
        }
      }
    } finally {
      // Given up for good (after about a minute): reported as errors already, nothing to remember.
      if (!this.givingUp.signal.aborted) this.unsettled.delete(refs);
    }
  }

  private reportStale(refs: readonly DeliveryRef[], ok: readonly boolean[]): void {
    ok.forEach((fine, n) => {
      if (!fine) this.reportError(new StaleReceiptError(refs[n]!.id, refs[n]!.receipt));
    });
  }

  /** Times out handlers that ran too long and extends the visibility of the others. */
  private inspectRunning(): void {
    const now = Date.now();
    const extend: Job<T>[] = [];
    for (const job of this.running.values()) {
      if (now - job.startedAt >= this.handlerTimeoutMs) {
        const error = new HandlerTimeoutError(this.handlerTimeoutMs);
        job.abort(error);
        this.fail(job, error);
        // Its message is nacked, but the handler still runs until it returns: it keeps its slot till then.
        this.abandoned.add(job);
      } else if (now - job.extendedAt >= this.visibilityMs / 2) {
        job.extendedAt = now;
        extend.push(job);
      }
    }
    if (extend.length === 0) return;
    this.queue
      .extendMany(
        extend.map((job) => job.delivery),
        { visibilityMs: this.visibilityMs },
      )
      .then(
        (extended) =>
          extended.forEach((fine, n) => {
            if (!fine) extend[n]!.abort(new StaleReceiptError(extend[n]!.delivery.id, extend[n]!.delivery.receipt));
          }),
        (error: unknown) => {
          this.reportError(error);
          // Try again at the next tick rather than half a visibility timeout later.
          for (const job of extend) job.extendedAt = 0;
        },
      );
  }

  /** Emits to the user's listeners; one that throws must not stop the consumer. */
  private notify<E extends Exclude<keyof ConsumerEvents<T>, 'error' | 'closed'>>(
    event: E,
    ...args: ConsumerEvents<T>[E]
  ): void {
    try {
      this.emit(event, ...args);
    } catch (error) {
      this.reportError(error);
    }
  }

  private reportError(error: unknown): void {
    // After close() returned, what failed is in its report: calls abandoned then fail quietly.
    if (this.isClosed) return;
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else console.error(`[sluice] consumer of ${this.queue.name}:`, error instanceof Error ? error.message : error);
  }

  /**
   * Stops fetching, waits up to `graceMs` for running handlers, hands the messages of those still running
   * back to the queue (attempts unchanged), flushes acks and nacks and closes the blocking connection.
   * Returns within graceMs plus about a second whatever Redis is doing: a pending blocking read is
   * abandoned, and what cannot be written by then is given up and listed in the report (those messages
   * are redelivered after their visibility timeout).
   */
  close(options: { graceMs?: number } = {}): Promise<ConsumerCloseReport> {
    let graceMs: number;
    try {
      checkOptions(options, CLOSE_OPTIONS, 'close(options)');
      graceMs = requireDuration('graceMs', options.graceMs ?? this.graceMs, 0, MAX_GRACE_MS);
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<ConsumerCloseReport> {
    this.fetching = false;
    this.breaker?.stop();
    this.stop();
    this.stopSleeping.abort();
    this.slotFreed?.();
    // A closing consumer fetches no more: it stops counting now, not once its handlers finish.
    const leaving = this.presence.leave();
    const passOnWake = this.blocker ? this.dropBlocker(this.blocker) : Promise.resolve();
    if (this.activeCount > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      await within(graceMs, drained);
    }
    const unfinished = [...this.running.values()].map((job) => job.delivery);
    for (const job of this.running.values()) {
      job.done = true;
      const reason = new ClosedError(
        `consumer of queue ${this.queue.name}`,
        'the handler had not finished within graceMs',
      );
      job.abort(reason);
      job.scope?.end(reason);
    }
    this.running.clear();
    this.abandoned.clear();
    let handedBack: boolean[] | null = null;
    const handBack =
      unfinished.length === 0
        ? Promise.resolve()
        : this.queue.releaseMany(unfinished).then(
            (ok) => void (handedBack = ok),
            (error: unknown) => this.reportError(error),
          );
    await within(
      HAND_BACK_MS,
      Promise.all([this.flush(), ...this.flushes, handBack, this.loopDone, passOnWake, leaving]),
    );
    this.givingUp.abort();
    clearInterval(this.watchdog);
    const report: ConsumerCloseReport = { handedBack: [], notHandedBack: [], notSettled: [] };
    unfinished.forEach((delivery, n) => (handedBack?.[n] ? report.handedBack : report.notHandedBack).push(delivery.id));
    for (const ref of this.unstartedBack.done) report.handedBack.push(ref.id);
    for (const ref of this.unstartedBack.pending) report.notHandedBack.push(ref.id);
    for (const refs of this.unsettled) for (const ref of refs) report.notSettled.push(ref.id);
    this.isClosed = true;
    this.emit('closed', report);
    return report;
  }
}

/** Waits for `work` at most `ms`, leaving no timer behind. */
async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(ms, 2 ** 31 - 1))))]);
  clearTimeout(timer);
}
