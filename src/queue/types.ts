/** Priorities as the seed system names them; higher runs first. */
export const Priority = { LOW: 1, NORMAL: 2, HIGH: 3, CRITICAL: 4 } as const;
export type PriorityName = keyof typeof Priority;
export type PriorityValue = (typeof Priority)[PriorityName];

/** Where a message is. COMPLETED messages are removed, so `getMessage` reports them as not found. */
export type MessageStatus = 'PENDING' | 'DELAYED' | 'PROCESSING' | 'RETRY' | 'FAILED';

export interface Message<T = unknown> {
  id: string;
  queue: string;
  type: string;
  payload: T;
  priority: PriorityValue;
  /** failed attempts so far (the seed's retry_count) */
  attempts: number;
  maxRetries: number;
  /** ms since the epoch, by the sender's clock */
  createdAt: number;
  /** when the sender asked it to run (ms since the epoch), or null for "now" */
  runAt: number | null;
  partitionKey: string | null;
  /** the headers it was sent with (a trace context, say); absent when it has none */
  headers?: Record<string, string>;
}

/** What ack, nack and extend need: the message id and the receipt of this delivery. */
export interface DeliveryRef {
  id: string;
  receipt: string;
}

/** A message handed to one consumer; `receipt` identifies this delivery and no other. */
export interface Delivery<T = unknown> extends Message<T>, DeliveryRef {}

export interface SendOptions {
  /** uuid v4 when omitted; letters, digits and `_ - . :`, at most 128 characters, unique in the queue */
  id?: string;
  type?: string;
  /** LOW, NORMAL (default), HIGH, CRITICAL or 1..4 */
  priority?: PriorityName | PriorityValue | Lowercase<PriorityName>;
  /** run no earlier than this many ms from now */
  delayMs?: number;
  /** run no earlier than this time (converted to a delay with this process's clock) */
  runAt?: Date | number;
  /** retries after the first failed attempt before the message is dead-lettered (default 3) */
  maxRetries?: number;
  /** messages with the same key are delivered one at a time, in send order */
  partitionKey?: string;
  /** a second send with this key while it is held returns the first message's id and writes nothing */
  dedupKey?: string;
  /** how long the dedup key is held (default 1 hour) */
  dedupTtlMs?: number;
  /**
   * string names to string values stored with the message and delivered with it through retries, delays,
   * the dead-letter queue and replay (at most 64, 8 KiB as JSON); tracing puts its trace context here
   */
  headers?: Record<string, string>;
}

export interface SendItem<T = unknown> extends SendOptions {
  payload: T;
}

export interface NackOptions {
  /** recorded as the message's last error (and as the dead-letter reason) */
  error?: string | Error;
  /** false sends the message straight to the dead-letter queue (default true) */
  retry?: boolean;
  /** retry after this many ms instead of the queue's backoff (0 to ten years) */
  delayMs?: number;
}

/**
 * One item of `nackMany`: the delivery (`ref`, an object with the `id` and `receipt` that dequeue returned,
 * such as the delivery itself) and the options of `nack`.
 */
export interface NackItem extends NackOptions {
  ref: DeliveryRef;
}

export type NackOutcome = 'retried' | 'dead-lettered';

export interface DeadLetter<T = unknown> {
  id: string;
  failedAt: number;
  reason: string | null;
  /** null when the stored record could not be decoded (the raw text is in `raw`) */
  message: Message<T> | null;
  raw: string | null;
}

export interface MessageInfo<T = unknown> extends Message<T> {
  status: MessageStatus;
  lastError: string | null;
  /** due time (DELAYED/RETRY), visibility deadline (PROCESSING) or failure time (FAILED), ms */
  at: number | null;
}

/** The states queue.peek() lists. */
export type PeekState = 'ready' | 'delayed' | 'inflight' | 'dead';

/** One message as queue.peek() lists it. */
export interface PeekedMessage<T = unknown> {
  id: string;
  state: PeekState;
  /** null when the stored record is missing or could not be decoded (the raw text, if any, is in `raw`) */
  message: Message<T> | null;
  raw: string | null;
  /** the last error recorded for it (for a dead letter, the reason it failed) */
  lastError: string | null;
  /** due time (delayed), visibility deadline (inflight) or failure time (dead), ms; null for ready */
  at: number | null;
}

/**
 * What queue.search() looks for; at least one field. Every field given must match: `type` and `partitionKey`
 * exactly (`type: ''` finds messages sent without one), `text` as a plain substring (no pattern) of the payload
 * as stored JSON text, at most 256 bytes: `'"status":"late"'` or `'bob@example.com'`.
 */
export interface SearchFilter {
  /** the message's id, exactly (a bounded walk like the other filters, unlike getMessage) */
  id?: string;
  type?: string;
  partitionKey?: string;
  text?: string;
}

export interface SearchOptions {
  /** the state to search (default 'ready') */
  state?: PeekState;
  /** where to go on: the `cursor` of the previous result (default 0, the start) */
  cursor?: number;
  /** entries examined by this call, matching or not (default 1000, at most 10,000) */
  scanLimit?: number;
  /** matches returned; the call stops early once it has this many (default 50, at most 1000) */
  limit?: number;
}

/** One call of queue.search(). */
export interface SearchResult<T = unknown> {
  /** matching messages in the order peek() lists the state, as peek() returns them */
  matches: PeekedMessage<T>[];
  /** pass to the next call to go on; null when the state has been read to its end */
  cursor: number | null;
  /** entries examined by this call */
  scanned: number;
}

/** What queue.promote() moves: the due messages (up to `limit`), or the delayed messages named by `ids`. */
export interface PromoteOptions {
  /** at most this many due messages (default 1000); not with `ids` */
  limit?: number;
  /**
   * these delayed or retry-waiting messages, whatever their due time (at most 1000; an empty list promotes
   * nothing); ids not in the delayed set are skipped
   */
  ids?: readonly string[];
}

/** What queue.getStats() returns: messages per state, the pause flag and counters since the queue was created. */
export interface QueueStats {
  /** the queue's name */
  name: string;
  /** messages ready for delivery, per priority */
  ready: { critical: number; high: number; normal: number; low: number };
  /** messages delivered and not yet acked, nacked or reclaimed */
  inflight: number;
  /** messages waiting for their delay or their retry's backoff */
  delayed: number;
  /** messages in the dead-letter queue */
  deadLetters: number;
  /** partitioned messages waiting for the one before them in their partition */
  partitionBacklog: number;
  /** whether deliveries are paused (queue.pause()) */
  paused: boolean;
  /**
   * how long the messages at the heads of the ready lists have waited, the oldest of the four: ms since it was
   * sent, or since it was due for one sent with a delay (the sender's clock against Redis's). A retried or
   * reclaimed message keeps its send time, so this says how stale the backlog's front is, not exactly how long
   * one message has been ready. null when nothing is ready.
   */
  oldestReadyAgeMs: number | null;
  /** the rate limit set with setRateLimit, null when none */
  rateLimit: { max: number; windowMs: number } | null;
  /**
   * consumers running on this queue, in any process: those whose last heartbeat is within their TTL (3 ×
   * ConsumerOptions.heartbeatMs); one that closed is gone at once, one whose process died after the TTL
   */
  consumers: number;
  counters: {
    sent: number;
    delivered: number;
    acked: number;
    retried: number;
    deadLettered: number;
    reclaimed: number;
    replayed: number;
  };
}

/** A running consumer, as queue.consumers() lists it. */
export interface ConsumerInfo {
  /** `<host>:<pid>:<random>`, also `consumer.id` */
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  /** when the consumer started, ms since the epoch by its own process's clock */
  startedAt: number;
  /** its last heartbeat, ms since the epoch by Redis's clock */
  lastSeenAt: number;
}

export interface RetryPolicy {
  /** delay of the first retry (default 30,000 ms); each later one doubles */
  baseMs: number;
  /** longest delay (default 300,000 ms) */
  capMs: number;
  /** 0..1: each delay is shortened by up to this fraction of itself at random (default 0) */
  jitter: number;
}
