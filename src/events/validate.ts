import { v4 as uuidv4 } from 'uuid';
import { ValidationError } from '../errors.js';
import { headersJson } from '../headers.js';
import { describe } from '../keys.js';
import { serialisePayload } from '../queue/validate.js';
import { checkOptions, optionNames } from '../validate.js';
import type { Event, EventFilter, FilterCondition, FilterValue, PublishItem, PublishOptions } from './types.js';

export const EVENT_VERSION = '1.0';
export const MAX_TYPE_LENGTH = 200;
export const MAX_PATTERNS = 100;
const MAX_FILTER_CONDITIONS = 32;
const MAX_PARTITION_KEY_BYTES = 512;

const WORD = /^[A-Za-z0-9_-]+$/;
const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;
const EVENT_FIELDS = new Set(['id', 'type', 'source', 'data', 'timestamp', 'correlationId', 'version', 'metadata']);

function checkWords(field: string, what: string, value: unknown, allowWildcards: boolean): string {
  const example = allowWildcards ? '"account.*" or "market.#"' : '"account.created"';
  const expected =
    `${what} must be dot-separated words of letters, digits, _ or -` +
    (allowWildcards ? ', or * (one word) or # (zero or more words)' : '') +
    `, like ${example}`;
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(field, `${expected}; got ${describe(value)}`);
  }
  if (value.length > MAX_TYPE_LENGTH) {
    throw new ValidationError(field, `${what} must be at most ${MAX_TYPE_LENGTH} characters, got ${value.length}`);
  }
  for (const word of value.split('.')) {
    if (word === '') throw new ValidationError(field, `${expected}; ${JSON.stringify(value)} has an empty word`);
    if (!WORD.test(word) && !(allowWildcards && (word === '*' || word === '#'))) {
      throw new ValidationError(field, `${expected}; ${JSON.stringify(value)} has the word ${JSON.stringify(word)}`);
    }
  }
  return value;
}

/** An event type: dotted words, no wildcards. */
export function validateEventType(value: unknown): string {
  return checkWords('type', 'event type', value, false);
}

/** A topic pattern with RabbitMQ semantics: `*` is exactly one word, `#` zero or more. */
export function validatePattern(value: unknown): string {
  return checkWords('patterns', 'pattern', value, true);
}

export function validatePatterns(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PATTERNS) {
    throw new ValidationError(
      'patterns',
      `patterns must be a pattern or a list of 1..${MAX_PATTERNS} patterns, got ${Array.isArray(list) ? `${list.length} patterns` : describe(value)}`,
    );
  }
  return [...new Set(list.map(validatePattern))];
}

/** A filter condition as publish.lua reads it (includes/bus.lua). */
export interface CompiledCondition {
  field: string;
  path: string[];
  op: 'eq' | 'in' | 'exists';
  value?: FilterValue;
  values?: FilterValue[];
  exists?: boolean;
}

function filterValue(field: string, value: unknown): FilterValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new ValidationError(
    'filter',
    `filter ${field}: values must be strings, finite numbers, booleans or null, got ${describe(value)}`,
  );
}

function compileCondition(field: string, condition: FilterCondition): CompiledCondition {
  const path = field.split('.');
  if (!EVENT_FIELDS.has(path[0]!) || path.some((step) => !WORD.test(step))) {
    throw new ValidationError(
      'filter',
      `filter field ${JSON.stringify(field)} must be a dotted path starting with one of ` +
        `${[...EVENT_FIELDS].join(', ')} (like "data.symbol"), each step letters, digits, _ or -`,
    );
  }
  if (condition === null || typeof condition !== 'object') {
    return { field, path, op: 'eq', value: filterValue(field, condition) };
  }
  const keys = Object.keys(condition);
  if (keys.length === 1 && 'eq' in condition) return { field, path, op: 'eq', value: filterValue(field, condition.eq) };
  if (keys.length === 1 && 'in' in condition) {
    if (!Array.isArray(condition.in) || condition.in.length === 0) {
      throw new ValidationError(
        'filter',
        `filter ${field}: "in" must be a non-empty list, got ${describe(condition.in)}`,
      );
    }
    return { field, path, op: 'in', values: condition.in.map((v) => filterValue(field, v)) };
  }
  if (keys.length === 1 && 'exists' in condition) {
    if (typeof condition.exists !== 'boolean') {
      throw new ValidationError(
        'filter',
        `filter ${field}: "exists" must be true or false, got ${describe(condition.exists)}`,
      );
    }
    return { field, path, op: 'exists', exists: condition.exists };
  }
  throw new ValidationError(
    'filter',
    `filter ${field}: a condition is a value, { eq: value }, { in: [values] } or { exists: boolean }; got keys ${JSON.stringify(keys)}`,
  );
}

/** Turns a filter into data for the publish script; filters are compared in Lua, never run as code. */
export function compileFilter(filter: unknown): CompiledCondition[] | null {
  if (filter === undefined || filter === null) return null;
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new ValidationError('filter', `filter must be an object of field path -> condition, got ${describe(filter)}`);
  }
  const entries = Object.entries(filter as EventFilter);
  if (entries.length > MAX_FILTER_CONDITIONS) {
    throw new ValidationError(
      'filter',
      `filter may have at most ${MAX_FILTER_CONDITIONS} conditions, got ${entries.length}`,
    );
  }
  if (entries.length === 0) return null;
  return entries.map(([field, condition]) => compileCondition(field, condition));
}

/** The filter as the caller wrote it, rebuilt from its compiled form (for listing). */
export function describeFilter(conditions: CompiledCondition[] | undefined): EventFilter | null {
  if (!conditions || conditions.length === 0) return null;
  const filter: EventFilter = {};
  for (const c of conditions) {
    filter[c.field] =
      c.op === 'in'
        ? { in: c.values ?? [] }
        : c.op === 'exists'
          ? { exists: c.exists === true }
          : { eq: c.value ?? null };
  }
  return filter;
}

function timestampOf(value: unknown, now: number): string {
  if (value === undefined) return new Date(now).toISOString();
  const date =
    value instanceof Date ? value : typeof value === 'number' || typeof value === 'string' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) {
    throw new ValidationError(
      'timestamp',
      `timestamp must be a Date, ms since the epoch or an ISO 8601 string, got ${describe(value)}`,
    );
  }
  return date.toISOString();
}

function optionalString(field: string, value: unknown, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > max) {
    throw new ValidationError(field, `${field} must be a string of at most ${max} characters, got ${describe(value)}`);
  }
  return value;
}

export interface EventDefaults {
  source: string;
  maxEventBytes: number;
}

/** The option names of publish; a publishMany item has these and `type` and `data`. */
export const PUBLISH_OPTIONS = optionNames<PublishOptions>({
  id: true,
  source: true,
  correlationId: true,
  metadata: true,
  timestamp: true,
  partitionKey: true,
  headers: true,
});
const PUBLISH_ITEM_OPTIONS = new Set([...PUBLISH_OPTIONS, 'type', 'data']);

/**
 * Validates one event and returns it with its 4 publish.lua arguments (see lua/bus/publish.lua). `checkKeys`
 * false: the caller already checked the item's keys (publish does, on its options).
 */
export function publishArguments<T>(
  item: PublishItem<T>,
  defaults: EventDefaults,
  now: number,
  checkKeys = true,
): { event: Event<T>; args: string[] } {
  if (checkKeys) checkOptions(item, PUBLISH_ITEM_OPTIONS, 'publishMany(items)', 'item');
  if (item.id !== undefined && (typeof item.id !== 'string' || !EVENT_ID_PATTERN.test(item.id))) {
    throw new ValidationError('id', `event id must be 1..100 letters, digits or _ - . :, got ${describe(item.id)}`);
  }
  if (
    item.metadata !== undefined &&
    (item.metadata === null || typeof item.metadata !== 'object' || Array.isArray(item.metadata))
  ) {
    throw new ValidationError('metadata', `metadata must be an object, got ${describe(item.metadata)}`);
  }
  const partitionKey = item.partitionKey ?? '';
  if (
    typeof partitionKey !== 'string' ||
    Buffer.byteLength(partitionKey) > MAX_PARTITION_KEY_BYTES ||
    (item.partitionKey !== undefined && partitionKey === '')
  ) {
    throw new ValidationError(
      'partitionKey',
      `partitionKey must be a non-empty string of at most ${MAX_PARTITION_KEY_BYTES} bytes, got ${describe(item.partitionKey)}`,
    );
  }
  const event: Event<T> = {
    id: item.id ?? uuidv4(),
    type: validateEventType(item.type),
    source: optionalString('source', item.source, 200) ?? defaults.source,
    data: item.data,
    timestamp: timestampOf(item.timestamp, now),
    correlationId: optionalString('correlationId', item.correlationId, 200),
    version: EVENT_VERSION,
    metadata: item.metadata ?? {},
  };
  // Stored only when there are some: an event without headers is the same JSON as before they existed.
  if (item.headers !== undefined && headersJson(item.headers) !== '') event.headers = { ...item.headers };
  let json: string;
  try {
    json = serialisePayload(event, defaults.maxEventBytes);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    // serialisePayload speaks of the payload; here the thing refused is the event's data or metadata.
    throw new ValidationError(
      'data',
      error.message.replace(/^payload/, 'event').replace('maxPayloadBytes', 'maxEventBytes'),
      { cause: error },
    );
  }
  return { event, args: [event.id, event.type, partitionKey, json] };
}
