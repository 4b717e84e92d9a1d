import { ValidationError } from './errors.js';
import { describe } from './keys.js';

/**
 * Checks shared by every part of sluice: option objects (no unknown keys), booleans, and the text recorded
 * for an error that is not an Error.
 */

/**
 * The option names of an options interface, as a list. Written as a record of every key so that TypeScript
 * refuses a list that misses an option of the interface or names one it does not have:
 * `optionNames<QueueOptions>({ connection: true, prefix: true, ... })`.
 */
export function optionNames<T>(names: { [K in keyof Required<T>]: true }): ReadonlySet<string> {
  return new Set(Object.keys(names));
}

/** Levenshtein distance, for "did you mean". Names are short, so the quadratic table is fine. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, n) => n);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `name`, when it is close enough to be a likely misspelling. */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of known) {
    const other = candidate.toLowerCase();
    let shared = 0;
    while (shared < lower.length && lower[shared] === other[shared]) shared++;
    // Likely the same word: equal but for case, a few edits apart, or a shared stem (retries/retry, drop/dropQueue).
    const d = lower === other ? 0 : distance(lower, other);
    const likely = d <= Math.max(2, Math.floor(Math.max(lower.length, other.length) / 3)) || shared >= 4;
    const score = likely ? Math.min(d, 100 - shared) : Infinity;
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/**
 * An options argument: undefined (no options) or a plain object whose every key is a known option.
 * `where` names the call in messages (`send(payload, options)`), and for an object nested in an options
 * argument the option too (`consume(handler, options).idempotency`), so that an unknown key is named where it
 * is; `field` is the ValidationError's field for a value that is not an object, and the prefix of the field
 * of an unknown key (`retry` -> `retry.baze`). Returns the object, or `{}` for undefined.
 */
export function checkOptions<T extends object>(
  value: unknown,
  known: ReadonlySet<string>,
  where: string,
  field = 'options',
): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    // A nested option's `where` already ends with its name.
    const subject = where.endsWith(`.${field}`) ? where : `${where}: ${field}`;
    throw new ValidationError(
      field,
      `${subject} must be an object with some of ${[...known].join(', ')}; got ${describeValue(value)}`,
    );
  }
  for (const key in value) {
    if (!known.has(key)) unknownOption(key, known, where, field);
  }
  return value;
}

function unknownOption(key: string, known: ReadonlySet<string>, where: string, field: string): never {
  const close = closestName(key, known);
  const name = field === 'options' ? key : `${field}.${key}`;
  throw new ValidationError(
    name,
    `${where}: unknown option ${JSON.stringify(key)}` +
      (close ? `; did you mean ${JSON.stringify(close)}?` : ';') +
      ` Known options: ${[...known].join(', ')}`,
  );
}

/** A value for messages: describe() from keys.ts, with arrays and short objects shown as what they are. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  return describe(value);
}

/** An optional boolean option: undefined gives the default; anything but true or false is refused. */
export function optionalBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new ValidationError(field, `${field} must be true or false, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Re-raises a ValidationError about one element of a list with the element's index in its message
 * (`items[3]: priority must be ...`); the field stays the option's name. Other errors pass unchanged.
 */
export function atIndex(error: unknown, list: string, index: number): unknown {
  if (!(error instanceof ValidationError) || error.field.startsWith(`${list}[`)) return error;
  return new ValidationError(error.field, `${list}[${index}]: ${error.message}`, { cause: error });
}

/** An element of a list that must be an object (a batch item): refused naming its index. */
export function requireItem(list: string, index: number, value: unknown, what: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(`${list}[${index}]`, `${list}[${index}] must be ${what}, got ${describeValue(value)}`);
  }
}

/** A list argument (a batch): refused unless it is an array. */
export function requireList(field: string, value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) {
    throw new ValidationError(field, `${field} must be an array of ${what}, got ${describeValue(value)}`);
  }
  return value;
}

/** A whole number from `min` to `max`. */
export function requireInteger(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `${field} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/** A number of ms from `min` to `max` (fractions allowed; callers round as their script needs). */
export function requireDuration(field: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ValidationError(field, `${field} must be a finite number of ms >= ${min}, got ${describe(value)}`);
  }
  if (value > max) {
    throw new ValidationError(field, `${field} must be at most ${max} ms (${humanMs(max)}), got ${value}`);
  }
  return value;
}

function humanMs(ms: number): string {
  const units: [number, string][] = [
    [365 * 24 * 3600 * 1000, 'years'],
    [3600 * 1000, 'hours'],
    [60 * 1000, 'minutes'],
    [1000, 's'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${n === 1 ? name.replace(/s$/, '') : name}`;
    }
  }
  return `${ms} ms`;
}

const MAX_REASON_CHARS = 1000;

/**
 * The text recorded for a failure (a nack reason, a job's last error): an Error's message; a string as is;
 * an object's `message` field when it is a string, else its JSON; at most 1,000 characters. Never
 * "[object Object]".
 */
export function reasonOf(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = error.message;
  else if (typeof error === 'string') text = error;
  else if (error !== null && typeof error === 'object') {
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') text = message;
    else {
      try {
        // JSON.stringify gives undefined only when toJSON() does: the object's own toString is what is left.
        // eslint-disable-next-line @typescript-eslint/no-base-to-string
        text = JSON.stringify(error) ?? String(error);
      } catch {
        text = Object.prototype.toString.call(error);
      }
    }
  } else text = String(error);
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}...` : text;
}

/** Longest `graceMs` of every close() (and of the consumer option): 24 hours. */
export const MAX_GRACE_MS = 24 * 3600 * 1000;

/** The options of every close(): the grace period for running handlers or jobs. */
export const CLOSE_OPTIONS = optionNames<{ graceMs?: number }>({ graceMs: true });
