import { IdempotencyKeyError, ValidationError } from '../errors.js';
import { REPLY } from '../replies.js';
import { checkOptions, describeValue, optionNames, requireInteger } from '../validate.js';
import type { Delivery, DeliveryRef } from './types.js';
import { MAX_BATCH } from './validate.js';
import type { Queue } from './queue.js';

/**
 * The consumer option `idempotency`: a guard that remembers which messages' handlers succeeded, so that a
 * redelivery of one (or a second message with the same business key) is acked without running the handler.
 */
export interface IdempotencyOptions<T = unknown> {
  /** how long a processed key is remembered, in ms (required; at most 30 days) */
  retentionMs: number;
  /**
   * the key a message is remembered by (default: its id). A business key (an order id) also skips a second
   * message sent for the same thing; a non-empty string of at most 512 bytes
   */
  key?: (message: Delivery<T>) => string;
}

/** Longest `idempotency.retentionMs`: 30 days (every processed key is one Redis key for that long). */
export const MAX_IDEMPOTENCY_RETENTION_MS = 30 * 24 * 3600 * 1000;
const MAX_KEY_BYTES = 512;

const IDEMPOTENCY_OPTIONS = optionNames<IdempotencyOptions>({ retentionMs: true, key: true });

/** What a skip check says of one delivery. */
export type SkipOutcome = 'skipped' | 'stale' | 'run';

/**
 * The guard of one consumer: validates its options, computes each delivery's key and calls the two scripts.
 * @internal
 */
export class IdempotencyGuard<T> {
  readonly retentionMs: number;
  private readonly key: ((message: Delivery<T>) => string) | undefined;
  /** the key given by `key` of each delivery checked and not yet committed */
  private readonly keys = new WeakMap<DeliveryRef, string>();

  constructor(
    private readonly queue: Queue<T>,
    options: unknown,
  ) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new ValidationError(
        'idempotency',
        `consume(handler, options): idempotency must be an object { retentionMs, key? }, got ${describeValue(options)}`,
      );
    }
    const given = checkOptions<IdempotencyOptions<T>>(
      options,
      IDEMPOTENCY_OPTIONS,
      'consume(handler, options).idempotency',
      'idempotency',
    );
    if (given.retentionMs === undefined) {
      throw new ValidationError(
        'idempotency.retentionMs',
        'idempotency.retentionMs is required: how long, in ms, a processed message is remembered (a redelivery ' +
          'or duplicate arriving later runs the handler again)',
      );
    }
    this.retentionMs = requireInteger('idempotency.retentionMs', given.retentionMs, 1, MAX_IDEMPOTENCY_RETENTION_MS);
    if (given.key !== undefined && typeof given.key !== 'function') {
      throw new ValidationError(
        'idempotency.key',
        `idempotency.key must be a function (message) => string, got ${describeValue(given.key)}`,
      );
    }
    this.key = given.key;
  }

  /** The delivery's key, remembered for its commit; throws IdempotencyKeyError for a bad key function. */
  keyOf(delivery: Delivery<T>): string {
    // The default key, the id, is not stored: triples() falls back to it.
    if (!this.key) return delivery.id;
    let key: unknown;
    try {
      key = this.key(delivery);
    } catch (error) {
      throw new IdempotencyKeyError(delivery.id, 'threw', { cause: error });
    }
    if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw new IdempotencyKeyError(delivery.id, `returned ${describeValue(key)}`);
    }
    this.keys.set(delivery, key);
    return key;
  }

  /**
   * One script call for a batch whose keys were taken (keyOf): acks the deliveries whose key is marked
   * processed. The same `requestId` on a retry, so that a call whose reply was lost is answered as it ran.
   */
  async skip(deliveries: readonly Delivery<T>[], requestId: string): Promise<SkipOutcome[]> {
    const results = await this.queue.runScript('queue/skipProcessed', this.triples(deliveries), requestId);
    return results.map((r) => (r === REPLY.OK ? 'skipped' : r === REPLY.STALE ? 'stale' : 'run'));
  }

  /** Acks deliveries whose handler succeeded and marks their keys, in one script call; per delivery, acked or stale. */
  async commit(deliveries: readonly DeliveryRef[]): Promise<boolean[]> {
    const acked: boolean[] = [];
    for (let from = 0; from < deliveries.length; from += MAX_BATCH) {
      const batch = deliveries.slice(from, from + MAX_BATCH);
      const results = await this.queue.runScript('queue/ackProcessed', [this.retentionMs, ...this.triples(batch)]);
      for (const r of results) acked.push(r !== REPLY.STALE);
    }
    return acked;
  }

  private triples(deliveries: readonly DeliveryRef[]): string[] {
    const args: string[] = [];
    for (const delivery of deliveries) args.push(delivery.id, delivery.receipt, this.keys.get(delivery) ?? delivery.id);
    return args;
  }
}
