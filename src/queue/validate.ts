import { v4 as uuidv4 } from 'uuid';
import { ValidationError } from '../errors.js';
import { describe } from '../keys.js';
import { headersJson } from '../headers.js';
import { encodeRecord } from './record.js';
import {
  atIndex,
  checkOptions,
  describeValue,
  optionalBoolean,
  optionNames,
  requireDuration,
  requireInteger,
  requireItem,
} from '../validate.js';
import {
  Priority,
  type DeliveryRef,
  type NackItem,
  type PeekState,
  type PriorityValue,
  type RetryPolicy,
  type SearchFilter,
  type SearchOptions,
  type SendItem,
  type SendOptions,
} from './types.js';

/** Most messages, deliveries or events one call takes: larger lists are refused (or split, where a call says so). */
export const MAX_BATCH = 1000;
export const DEFAULT_MAX_RETRIES = 3;
export const MAX_RETRIES_LIMIT = 1000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_DEDUP_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 30_000, capMs: 300_000, jitter: 0 };

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/**
 * Longest delay accepted (send `delayMs`/`runAt`, nack `delayMs`, retry `baseMs`/`capMs`): ten years. Due
 * times stay exact integers in Lua and in scores.
 */
export const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;
/**
 * Longest visibility timeout (dequeue, extend, queue and consumer `visibilityMs`): 12 hours, as SQS. A
 * consumer extends its deliveries while handlers run, so a long handler needs no long timeout; a longer one
 * would only leave the message of a dead consumer stranded for that long.
 */
export const MAX_VISIBILITY_MS = 12 * 3600 * 1000;
/** Longest consumer `handlerTimeoutMs`: 24 hours. */
export const MAX_HANDLER_TIMEOUT_MS = 24 * 3600 * 1000;
/** Longest consumer `blockMs`: 10 minutes (an idle consumer looks again at least this often). */
export const MAX_BLOCK_MS = 10 * 60 * 1000;
/**
 * Smallest number taken as a time in ms for `runAt`: 1e11 ms is March 1973. A smaller number is almost
 * surely Unix seconds (1e11 s is the year 5138), which would be delivered at once; it is refused.
 */
export const MIN_RUN_AT_MS = 1e11;
const TYPE_PATTERN = /^[A-Za-z0-9_.:/-]{0,200}$/;
const MAX_KEY_BYTES = 512;

export function parsePriority(value: unknown): PriorityValue {
  if (value === undefined) return Priority.NORMAL;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 4) {
    return value as PriorityValue;
  }
  if (typeof value === 'string') {
    const named = (Priority as Record<string, PriorityValue>)[value.toUpperCase()];
    if (named) return named;
  }
  throw new ValidationError(
    'priority',
    `priority must be one of LOW, NORMAL, HIGH, CRITICAL or 1..4, got ${describe(value)}`,
  );
}

/** A visibility timeout: 1 ms to MAX_VISIBILITY_MS. */
export function requireVisibility(field: string, value: unknown): number {
  return requireDuration(field, value, 1, MAX_VISIBILITY_MS);
}

/** The option names of send; a sendMany item has these and `payload`. */
export const SEND_OPTIONS = optionNames<SendOptions>({
  id: true,
  type: true,
  priority: true,
  delayMs: true,
  runAt: true,
  maxRetries: true,
  partitionKey: true,
  dedupKey: true,
  dedupTtlMs: true,
  headers: true,
});
export const SEND_ITEM_OPTIONS = new Set([...SEND_OPTIONS, 'payload']);

function optionalKey(field: string, value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_KEY_BYTES) {
    throw new ValidationError(
      field,
      `${field} must be a non-empty string of at most ${MAX_KEY_BYTES} bytes, got ${describe(value)}`,
    );
  }
  return value;
}

export function serialisePayload(payload: unknown, maxBytes: number): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new ValidationError('payload', `payload must be JSON-serialisable: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (json === undefined) {
    throw new ValidationError('payload', `payload must be JSON-serialisable, got ${describe(payload)}`);
  }
  // A string of n UTF-16 units takes at most 3n UTF-8 bytes: count exactly only when it could matter.
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
    throw new ValidationError(
      'payload',
      `payload is ${Buffer.byteLength(json)} bytes as JSON; the limit is ${maxBytes} (option maxPayloadBytes)`,
    );
  }
  return json;
}

export interface SendLimits {
  defaultMaxRetries: number;
  maxPayloadBytes: number;
}

/**
 * One message as send.lua takes it (see lua/queue/send.lua): a plain message (id generated, no partition
 * key, delay or dedup key) is its layout code, the priority digit, and one argument, its record; any other
 * is code 'f' and 8 arguments. The usual message costs Redis and ioredis one argument instead of eight.
 */
export interface SendMessage {
  id: string;
  /** '1'..'4' (plain, of that priority) or 'f' */
  code: string;
  priority: PriorityValue;
  partitionKey: string;
  /** send.lua's arguments for this message */
  args: (string | number)[];
}

/** The send.lua arguments after the request ids: maxLength, mode, layout, then each message's arguments. */
export function sendCall(
  messages: readonly SendMessage[],
  limit: { maxLength: number; mode: 'each' | 'all' } | null,
): (string | number)[] {
  let layout = '';
  for (const message of messages) layout += message.code;
  const args: (string | number)[] = limit ? [limit.maxLength, limit.mode, layout] : ['', '', layout];
  for (const message of messages) for (const arg of message.args) args.push(arg);
  return args;
}

/** send.lua's reply as one id per message: a number means every message was written under its own id. */
export function sentIds(reply: number | (string | number)[], messages: readonly SendMessage[]): (string | number)[] {
  return typeof reply === 'number' ? messages.map((message) => message.id) : reply;
}

/**
 * Validates one message and returns it as send.lua takes it. `checkKeys` false: the
 * caller already checked that the item is an object with known keys only (send does, on its options).
 * `generatedId`: the id of a message sent without one, in place of a uuid (a request's, src/queue/requester.ts).
 */
export function sendArguments(
  item: SendItem,
  limits: SendLimits,
  now: number,
  checkKeys = true,
  generatedId?: string,
): SendMessage {
  if (checkKeys) checkOptions(item, SEND_ITEM_OPTIONS, 'sendMany(items)', 'item');
  const id = item.id ?? generatedId ?? uuidv4();
  if (item.id !== undefined && (typeof item.id !== 'string' || !ID_PATTERN.test(item.id))) {
    throw new ValidationError('id', `id must be 1..128 letters, digits or _ - . :, got ${describe(item.id)}`);
  }
  const type = item.type ?? '';
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new ValidationError('type', `type must be at most 200 letters, digits or _ - . : /, got ${describe(type)}`);
  }
  const priority = parsePriority(item.priority);
  const maxRetries =
    item.maxRetries === undefined
      ? limits.defaultMaxRetries
      : requireInteger('maxRetries', item.maxRetries, 0, MAX_RETRIES_LIMIT);
  if (item.delayMs !== undefined && item.runAt !== undefined) {
    throw new ValidationError('runAt', 'give delayMs or runAt, not both');
  }
  let delayMs = 0;
  let runAt: number | null = null;
  if (item.delayMs !== undefined) {
    delayMs = Math.ceil(requireDelay('delayMs', item.delayMs));
    if (delayMs > 0) runAt = now + delayMs;
  } else if (item.runAt !== undefined) {
    const at = item.runAt instanceof Date ? item.runAt.getTime() : item.runAt;
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0 || at > now + MAX_DELAY_MS) {
      throw new ValidationError(
        'runAt',
        `runAt must be a Date or ms since the epoch, at most ten years ahead, got ${describe(item.runAt)}`,
      );
    }
    if (at < MIN_RUN_AT_MS) {
      throw new ValidationError(
        'runAt',
        `runAt ${at} is before 1973 as ms since the epoch: it looks like Unix seconds, which would be delivered at ` +
          `once. Pass milliseconds (Date.now() + 60_000, or seconds * 1000) or a Date, or use delayMs`,
      );
    }
    delayMs = Math.max(0, Math.ceil(at - now));
    if (delayMs > 0) runAt = Math.ceil(at);
  }
  const partitionKey = optionalKey('partitionKey', item.partitionKey);
  const dedupKey = optionalKey('dedupKey', item.dedupKey);
  const dedupTtlMs =
    item.dedupTtlMs === undefined
      ? DEFAULT_DEDUP_TTL_MS
      : requireInteger('dedupTtlMs', item.dedupTtlMs, 1, 365 * 24 * 3600 * 1000);
  const payloadJson = serialisePayload(item.payload, limits.maxPayloadBytes);
  const headers = item.headers === undefined ? '' : headersJson(item.headers);
  const record = encodeRecord({
    id,
    priority,
    attempts: 0,
    maxRetries,
    createdAt: now,
    runAt,
    type,
    partitionKey,
    payloadJson,
    headersJson: headers,
  });
  if (item.id === undefined && partitionKey === '' && delayMs === 0 && dedupKey === '') {
    return { id, code: PRIORITY_CODES[priority], priority, partitionKey, args: [record] };
  }
  return {
    id,
    code: 'f',
    priority,
    partitionKey,
    args: [id, item.id === undefined ? 0 : 1, priority, partitionKey, delayMs, dedupKey, dedupTtlMs, record],
  };
}

const PRIORITY_CODES = { 1: '1', 2: '2', 3: '3', 4: '4' } as const;

/** What ack, nack and extend need from a delivery: its id and receipt, as strings. */
export function requireRef(value: unknown, field = 'delivery'): DeliveryRef {
  const ref = value as Partial<DeliveryRef> | null | undefined;
  if (typeof ref?.id !== 'string' || typeof ref.receipt !== 'string' || ref.receipt === '') {
    throw new ValidationError(
      field,
      `expected a delivery (an object with string id and receipt, as dequeue returns), got ${describe(value)}`,
    );
  }
  return ref as DeliveryRef;
}

/** A delay: 0 to MAX_DELAY_MS (ten years). */
export function requireDelay(field: string, value: unknown): number {
  return requireDuration(field, value, 0, MAX_DELAY_MS);
}

const RETRY_OPTIONS = optionNames<RetryPolicy>({ baseMs: true, capMs: true, jitter: true });

/**
 * A retry option: `{ baseMs, capMs, jitter }`, each optional; `capMs >= baseMs`. `where` names the call it is
 * an option of (`new Queue(name, options)`).
 */
export function retryPolicy(partial: unknown, where: string): RetryPolicy {
  const given = checkOptions<RetryPolicy>(partial, RETRY_OPTIONS, `${where}.retry`, 'retry');
  // One of the two given alone moves the other's default out of its way: { baseMs: 600_000 } alone has a
  // cap of 600,000, { capMs: 1_000 } alone a base of 1,000. Both given, capMs < baseMs is refused.
  const givenCap = given.capMs === undefined ? undefined : requireDelay('retry.capMs', given.capMs);
  const baseMs = requireDelay(
    'retry.baseMs',
    given.baseMs ?? Math.min(DEFAULT_RETRY_POLICY.baseMs, givenCap ?? Infinity),
  );
  const capMs = givenCap ?? Math.max(DEFAULT_RETRY_POLICY.capMs, baseMs);
  if (capMs < baseMs) {
    throw new ValidationError(
      'retry.capMs',
      `retry.capMs (${capMs}) must be at least retry.baseMs (${baseMs}): capMs is the longest delay, baseMs the first`,
    );
  }
  const jitter = given.jitter ?? DEFAULT_RETRY_POLICY.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new ValidationError('retry.jitter', `retry.jitter must be a number from 0 to 1, got ${describe(jitter)}`);
  }
  return { baseMs, capMs, jitter };
}

const NACK_OPTIONS = optionNames<Omit<NackItem, 'ref'>>({ error: true, retry: true, delayMs: true });
const NACK_ITEM_OPTIONS = new Set([...NACK_OPTIONS, 'ref']);

/** The options of nack: `{ error, retry, delayMs }`. */
export function checkNackOptions(options: unknown): void {
  checkOptions(options, NACK_OPTIONS, 'nack(delivery, options)');
}

/**
 * The 5 nack.lua arguments of one nackMany item (see lua/queue/nack.lua), after checking its shape; errors name
 * the item's index. Without an index: the delivery and options of one nack call.
 */
export function nackArguments(item: unknown, index?: number): (string | number)[] {
  try {
    if (index !== undefined) {
      requireItem('items', index, item, 'an object { ref, error?, retry?, delayMs? } (ref: a delivery)');
      if (!('ref' in (item as object)) && 'receipt' in (item as object)) {
        throw new ValidationError('ref', 'got a delivery; each item is { ref: delivery, error?, retry?, delayMs? }');
      }
    }
    const { ref, error, retry, delayMs } =
      index === undefined
        ? (item as NackItem)
        : checkOptions<NackItem>(item, NACK_ITEM_OPTIONS, 'nackMany(items)', 'item');
    const { id, receipt } = requireRef(ref, index === undefined ? 'delivery' : 'ref');
    if (error !== undefined && typeof error !== 'string' && !(error instanceof Error)) {
      throw new ValidationError('error', `error must be a string or an Error, got ${describe(error)}`);
    }
    const dead = !optionalBoolean('retry', retry, true);
    const delay = delayMs === undefined ? -1 : Math.ceil(requireDelay('delayMs', delayMs));
    const reason = error instanceof Error ? error.message : (error ?? 'nacked');
    return [id, receipt, dead ? 'dead' : 'retry', delay, reason];
  } catch (error) {
    throw index === undefined ? error : atIndex(error, 'items', index);
  }
}

export const PEEK_STATES: ReadonlySet<string> = new Set<PeekState>(['ready', 'delayed', 'inflight', 'dead']);

/** A state peek() and search() can read; `where` names the call in the message. */
export function requirePeekState(value: unknown, where: string): PeekState {
  if (typeof value !== 'string' || !PEEK_STATES.has(value)) {
    throw new ValidationError(
      'state',
      `${where}: state must be one of ${[...PEEK_STATES].join(', ')}, got ${describeValue(value)}`,
    );
  }
  return value as PeekState;
}

/** An explicit id list (replay, purge, promote): an array of at most MAX_BATCH strings. */
export function requireIdList(value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((id) => typeof id !== 'string')) {
    throw new ValidationError('ids', `ids must be an array of message ids, got ${describeValue(value)}`);
  }
  if (value.length > MAX_BATCH) {
    throw new ValidationError('ids', `at most ${MAX_BATCH} ids per call, got ${value.length}`);
  }
  return value as readonly string[];
}

export const MAX_SEARCH_TEXT_BYTES = 256;
export const MAX_SEARCH_SCAN = 10_000;
const SEARCH_FILTER = optionNames<SearchFilter>({ id: true, type: true, partitionKey: true, text: true });
const SEARCH_OPTIONS = optionNames<SearchOptions>({ state: true, cursor: true, scanLimit: true, limit: true });

/** search.lua's arguments: state, cursor, scan limit, match limit and the filter as JSON (only the fields given). */
export function searchArguments(filter: unknown, options: unknown): (string | number)[] {
  const where = 'search(filter, options)';
  if (filter === undefined || filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new ValidationError(
      'filter',
      `${where}: filter must be an object with some of id, type, partitionKey, text; got ${describeValue(filter)}`,
    );
  }
  const given = checkOptions<SearchFilter>(filter, SEARCH_FILTER, where, 'filter');
  const encoded: SearchFilter = {};
  for (const field of ['id', 'type', 'partitionKey', 'text'] as const) {
    const value: unknown = given[field];
    // Lone surrogates cannot be encoded as the script's JSON argument.
    if (typeof value === 'string' && /\p{Surrogate}/u.test(value)) {
      throw new ValidationError(
        `filter.${field}`,
        `${where}: filter.${field} is not well-formed Unicode (a lone surrogate)`,
      );
    }
  }
  if (given.id !== undefined) {
    if (typeof given.id !== 'string' || given.id.length === 0 || given.id.length > 128 || given.id.includes('|')) {
      throw new ValidationError(
        'filter.id',
        `${where}: filter.id must be a message id (1 to 128 characters), got ${describeValue(given.id)}`,
      );
    }
    encoded.id = given.id;
  }
  if (given.type !== undefined) {
    if (typeof given.type !== 'string' || !TYPE_PATTERN.test(given.type)) {
      throw new ValidationError(
        'filter.type',
        `${where}: filter.type must be a message type (at most 200 letters, digits or _ - . : /; '' for none), ` +
          `got ${describeValue(given.type)}`,
      );
    }
    encoded.type = given.type;
  }
  if (given.partitionKey !== undefined) {
    const key: unknown = given.partitionKey;
    if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw new ValidationError(
        'filter.partitionKey',
        `${where}: filter.partitionKey must be a non-empty string of at most ${MAX_KEY_BYTES} bytes, ` +
          `got ${describeValue(key)}`,
      );
    }
    encoded.partitionKey = key;
  }
  if (given.text !== undefined) {
    const text: unknown = given.text;
    if (typeof text !== 'string' || text.length === 0 || Buffer.byteLength(text) > MAX_SEARCH_TEXT_BYTES) {
      throw new ValidationError(
        'filter.text',
        `${where}: filter.text must be a non-empty string of at most ${MAX_SEARCH_TEXT_BYTES} bytes, got ` +
          (typeof text === 'string' ? `${Buffer.byteLength(text)} bytes` : describeValue(text)) +
          '; search for a shorter, distinctive part of the payload',
      );
    }
    encoded.text = text;
  }
  if (Object.keys(encoded).length === 0) {
    throw new ValidationError(
      'filter',
      `${where}: give at least one of filter.id, filter.type, filter.partitionKey, filter.text` +
        ' (to list a state, use peek(state))',
    );
  }
  const opts = checkOptions<SearchOptions>(options, SEARCH_OPTIONS, where);
  const state = requirePeekState(opts.state ?? 'ready', where);
  const cursor = requireInteger('cursor', opts.cursor ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const scanLimit = requireInteger('scanLimit', opts.scanLimit ?? 1000, 1, MAX_SEARCH_SCAN);
  const limit = requireInteger('limit', opts.limit ?? 50, 1, MAX_BATCH);
  return [state, cursor, scanLimit, limit, JSON.stringify(encoded)];
}
