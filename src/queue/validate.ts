import { v4 as uuidv4 } from 'uuid';
import { ValidationError } from '../errors.js';
import { describe } from '../keys.js';
import { encodeRecord } from './record.js';
import { Priority, type DeliveryRef, type PriorityValue, type RetryPolicy, type SendItem } from './types.js';

export const DEFAULT_MAX_RETRIES = 3;
export const MAX_RETRIES_LIMIT = 1000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_DEDUP_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 30_000, capMs: 300_000, jitter: 0 };

const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Longest delay accepted: ten years. Due times stay exact integers in Lua and in scores. */
export const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;
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

export function requireInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `${field} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

export function requireDuration(field: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ValidationError(field, `${field} must be a finite number of ms >= ${min}, got ${describe(value)}`);
  }
  return value;
}

function optionalKey(field: string, value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_KEY_BYTES) {
    throw new ValidationError(field, `${field} must be a non-empty string of at most ${MAX_KEY_BYTES} bytes, got ${describe(value)}`);
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

/** Validates one message and returns its 8 send.lua arguments (see lua/send.lua). */
export function sendArguments(item: SendItem, limits: SendLimits, now: number): (string | number)[] {
  const id = item.id ?? uuidv4();
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
    delayMs = Math.ceil(requireDuration('delayMs', item.delayMs));
    if (delayMs > MAX_DELAY_MS) {
      throw new ValidationError('delayMs', `delayMs must be at most ${MAX_DELAY_MS} (ten years), got ${item.delayMs}`);
    }
    if (delayMs > 0) runAt = now + delayMs;
  } else if (item.runAt !== undefined) {
    const at = item.runAt instanceof Date ? item.runAt.getTime() : item.runAt;
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0 || at > now + MAX_DELAY_MS) {
      throw new ValidationError(
        'runAt',
        `runAt must be a Date or ms since the epoch, at most ten years ahead, got ${describe(item.runAt)}`,
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
  const record = encodeRecord({
    id, priority, attempts: 0, maxRetries, createdAt: now, runAt, type, partitionKey, payloadJson,
  });
  return [id, item.id === undefined ? 0 : 1, priority, partitionKey, delayMs, dedupKey, dedupTtlMs, record];
}

/** What ack, nack and extend need from a delivery: its id and receipt, as strings. */
export function requireRef(value: unknown): DeliveryRef {
  const ref = value as Partial<DeliveryRef> | null | undefined;
  if (typeof ref?.id !== 'string' || typeof ref.receipt !== 'string' || ref.receipt === '') {
    throw new ValidationError(
      'delivery',
      `expected a delivery (an object with string id and receipt, as dequeue returns), got ${describe(value)}`,
    );
  }
  return ref as DeliveryRef;
}

export function retryPolicy(partial: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...partial };
  requireDuration('retry.baseMs', policy.baseMs);
  requireDuration('retry.capMs', policy.capMs);
  if (typeof policy.jitter !== 'number' || !(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new ValidationError('retry.jitter', `retry.jitter must be a number from 0 to 1, got ${describe(policy.jitter)}`);
  }
  return policy;
}
