import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { v4 as uuidv4 } from 'uuid';
import { isCluster } from '../client-shape.js';
import { dropConnection } from '../connection.js';
import { ClosedError, CorruptRecordError, QueueFullError, RequestFailedError, RequestTimeoutError } from '../errors.js';
import { queueKey } from '../keys.js';
import { REPLY, type ScriptReplies } from '../replies.js';
import type { RedisClient, ScriptName } from '../scripts.js';
import { checkOptions, optionNames, requireDuration } from '../validate.js';
import type { SendOptions } from './types.js';
import { MAX_BATCH, MAX_HANDLER_TIMEOUT_MS, sendArguments, type SendLimits } from './validate.js';

/** The options of queue.request: how long to wait, and the send options that make sense for a request. */
export interface RequestOptions extends Pick<
  SendOptions,
  'type' | 'priority' | 'partitionKey' | 'maxRetries' | 'headers'
> {
  /** how long to wait for the reply before RequestTimeoutError (default 30 s, at most 24 h) */
  timeoutMs?: number;
}

const REQUEST_OPTIONS = optionNames<RequestOptions>({
  timeoutMs: true,
  type: true,
  priority: true,
  partitionKey: true,
  maxRetries: true,
  headers: true,
});

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** How long a timed-out request waits for its withdrawal to be written before it rejects anyway (Redis down). */
const CANCEL_WAIT_MS = 1_000;
/** The reply listener blocks in Redis at most this long before it looks whether requests are still pending. */
const BLOCK_SECONDS = 2;

/** A request's message id is `<uuid>@<requester id>`; no id a sender may choose contains '@' (lua/includes/respond.lua). */
export function isRequestId(id: string): boolean {
  return id.includes('@');
}

/** What a Requester needs of its Queue. */
export interface RequesterHost {
  readonly name: string;
  readonly baseKey: string;
  readonly client: RedisClient;
  readonly limits: SendLimits;
  readonly maxLength: number | null;
  run<N extends ScriptName>(script: N, args: (string | number)[]): Promise<ScriptReplies[N]>;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
  /** the record as sent: requestCancel finds a waiting message by it */
  record: string;
}

/**
 * The requester side of queue.request: sends each request with lua/queue/request.lua and waits for its
 * answer on this requester's reply list, which one blocking connection (made on first use, held while
 * requests are pending) reads for every request of this Queue object, matching answers by message id.
 */
export class Requester {
  /** names this requester's reply list; part of every request's message id */
  readonly id = uuidv4();
  private readonly replyKey: string;
  private readonly pending = new Map<string, Pending>();
  private blocker: Redis | Cluster | null = null;
  private listening = false;
  private closed = false;
  private stop!: () => void;
  /** resolves when close() begins: a pending blocking read is abandoned then */
  private readonly stopped = new Promise<void>((resolve) => (this.stop = resolve));
  private readonly stopSleeping = new AbortController();
  private readonly withdrawals = new Set<Promise<unknown>>();

  constructor(private readonly host: RequesterHost) {
    this.replyKey = queueKey(host.baseKey, 'replyPrefix') + this.id;
  }

  request<R>(payload: unknown, options: RequestOptions): Promise<R> {
    if (this.closed) return Promise.reject(new ClosedError(`queue ${this.host.name}`));
    const messageId = `${uuidv4()}@${this.id}`;
    let args: (string | number)[];
    let timeoutMs: number;
    try {
      const { timeoutMs: given, ...send } = checkOptions<RequestOptions>(
        options,
        REQUEST_OPTIONS,
        'request(payload, options)',
      );
      timeoutMs = requireDuration('timeoutMs', given ?? DEFAULT_REQUEST_TIMEOUT_MS, 1, MAX_HANDLER_TIMEOUT_MS);
      const message = sendArguments({ ...send, payload }, this.host.limits, Date.now(), false, messageId);
      const record = message.args[message.args.length - 1]!;
      args = [Math.ceil(timeoutMs), messageId, message.priority, message.partitionKey, record];
      if (this.host.maxLength !== null) args.push(this.host.maxLength);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<R>((resolve, reject) => {
      this.pending.set(messageId, {
        resolve,
        reject,
        record: String(args[4]),
        timer: setTimeout(() => this.timedOut(messageId, timeoutMs), timeoutMs),
      });
      this.listen();
      this.host.run('queue/request', args).then(
        (code) => {
          if (code === REPLY.QUEUE_FULL) {
            this.take(messageId)?.reject(
              new QueueFullError(this.host.name, this.host.maxLength!, 'so the request was refused', 'request'),
            );
          }
        },
        (error: unknown) => this.take(messageId)?.reject(error),
      );
    });
  }

  /** Removes a pending request, so that whatever settles it first is the only outcome. */
  private take(messageId: string): Pending | undefined {
    const entry = this.pending.get(messageId);
    if (!entry) return undefined;
    this.pending.delete(messageId);
    clearTimeout(entry.timer);
    return entry;
  }

  private timedOut(messageId: string, timeoutMs: number): void {
    const entry = this.take(messageId);
    if (!entry) return;
    // Rejects once the request is withdrawn (so nothing of it is left when the caller looks), or after
    // CANCEL_WAIT_MS if Redis does not answer; a reply that arrives meanwhile is dropped.
    void within(CANCEL_WAIT_MS, this.withdraw(messageId, entry.record)).then(() =>
      entry.reject(new RequestTimeoutError(this.host.name, messageId, timeoutMs)),
    );
  }

  private withdraw(messageId: string, record: string): Promise<unknown> {
    const done = this.host.run('queue/requestCancel', [messageId, record]).catch(() => undefined);
    this.withdrawals.add(done);
    void done.finally(() => this.withdrawals.delete(done));
    return done;
  }

  private listen(): void {
    if (this.listening || this.closed) return;
    this.listening = true;
    void this.readReplies();
  }

  /** Reads the reply list while requests are pending; ends when none is (the next request starts it again). */
  private async readReplies(): Promise<void> {
    let errorDelay = 0;
    this.blocker ??= this.createBlocker();
    const blocker = this.blocker;
    while (!this.closed && this.pending.size > 0) {
      try {
        // close() abandons the read rather than wait for it (see Consumer.waitForWork).
        const popped = await Promise.race([blocker.blpop(this.replyKey, BLOCK_SECONDS), this.stopped]);
        if (!popped) continue;
        this.dispatch(popped[1]);
        // Answers that arrived together are taken in one call.
        const rest = await Promise.race([blocker.lpop(this.replyKey, MAX_BATCH), this.stopped]);
        if (rest) for (const text of rest) this.dispatch(text);
        errorDelay = 0;
      } catch {
        if (this.closed) break;
        // Connection trouble: the client reconnects by itself; a request that gets no answer times out.
        errorDelay = Math.min(1_000, errorDelay * 2 || 50);
        await sleep(errorDelay, undefined, { signal: this.stopSleeping.signal }).catch(() => undefined);
      }
    }
    this.listening = false;
  }

  /** One answer `<id>|<1 ok, 0 failed>|<reply JSON or error text>`; one for no pending request is dropped. */
  private dispatch(text: string): void {
    const first = text.indexOf('|');
    const second = text.indexOf('|', first + 1);
    if (first < 0 || second < 0) return;
    const messageId = text.slice(0, first);
    const entry = this.take(messageId);
    if (!entry) return;
    const body = text.slice(second + 1);
    if (text.slice(first + 1, second) !== '1') {
      entry.reject(new RequestFailedError(this.host.name, messageId, body));
      return;
    }
    try {
      entry.resolve(JSON.parse(body));
    } catch {
      entry.reject(new CorruptRecordError(`the reply to request ${messageId} is not JSON`));
    }
  }

  private createBlocker(): Redis | Cluster {
    const client = this.host.client;
    const connectionName = `sluice:requester:${this.host.baseKey}`;
    // A Cluster names the connection of every node it opens through its redisOptions.
    const blocker = isCluster(client)
      ? client.duplicate([], { redisOptions: { ...client.options.redisOptions, connectionName } })
      : client.duplicate({ connectionName });
    // Connection errors surface as failed reads in readReplies; the client reconnects by itself.
    blocker.on('error', () => undefined);
    return blocker;
  }

  /**
   * Rejects every pending request with ClosedError, withdraws them (bounded by CANCEL_WAIT_MS, with the
   * withdrawals of requests that timed out just before) and drops the blocking connection.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    this.stopSleeping.abort();
    if (this.blocker) dropConnection(this.blocker, `requester of queue ${this.host.name}`);
    const left = [...this.pending];
    this.pending.clear();
    for (const [messageId, entry] of left) {
      clearTimeout(entry.timer);
      entry.reject(
        new ClosedError(`queue ${this.host.name}`, `request ${messageId} had no reply yet; it was withdrawn`),
      );
    }
    const withdrawn = left.map(([messageId, entry]) => this.withdraw(messageId, entry.record));
    await within(CANCEL_WAIT_MS, Promise.all([...withdrawn, ...this.withdrawals]));
  }
}

/** Waits for `work` at most `ms`, leaving no timer behind. */
async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
