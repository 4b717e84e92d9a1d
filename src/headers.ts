import { ValidationError } from './errors.js';
import { describe } from './keys.js';

/**
 * Message headers: a small map of string to string carried inside a message (queue records) or an event
 * (its JSON), for what travels with a message without being its payload: above all a trace context
 * (`traceparent`, `tracestate`, `baggage`), which survives retries, delays, the dead-letter queue, replay
 * and the outbox because it is stored with the message.
 */
export type Headers = Record<string, string>;

export const MAX_HEADERS = 64;
/** The headers of one message, as JSON, at most this many bytes. */
export const MAX_HEADERS_BYTES = 8 * 1024;
/** A header name: 1..128 printable ASCII characters, no space (HTTP-like names: `traceparent`, `x-tenant`). */
const HEADER_NAME = /^[\x21-\x7e]{1,128}$/;

/**
 * Checks a `headers` option and returns it as JSON, or '' when it is absent or empty (nothing is stored).
 * `field` names the option in errors.
 */
export function headersJson(value: unknown, field = 'headers'): string {
  if (value === undefined) return '';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(
      field,
      `${field} must be an object of string names to string values, got ${describe(value)}`,
    );
  }
  const names = Object.keys(value);
  if (names.length === 0) return '';
  if (names.length > MAX_HEADERS) {
    throw new ValidationError(field, `${field} may have at most ${MAX_HEADERS} entries, got ${names.length}`);
  }
  for (const name of names) {
    const entry = (value as Record<string, unknown>)[name];
    if (!HEADER_NAME.test(name)) {
      throw new ValidationError(
        field,
        `${field}: a header name must be 1..128 printable ASCII characters without spaces, got ${JSON.stringify(name)}`,
      );
    }
    if (typeof entry !== 'string') {
      throw new ValidationError(field, `${field}.${name} must be a string, got ${describe(entry)}`);
    }
  }
  const json = JSON.stringify(value);
  if (json.length > MAX_HEADERS_BYTES || Buffer.byteLength(json) > MAX_HEADERS_BYTES) {
    throw new ValidationError(
      field,
      `${field} are ${Buffer.byteLength(json)} bytes as JSON; the limit is ${MAX_HEADERS_BYTES}`,
    );
  }
  return json;
}

/**
 * `own` with `added` under it: a name the caller gave keeps the caller's value (a message forwarded with
 * the trace context it was created in keeps that context). Returns `own` itself when nothing is added.
 */
export function mergeHeaders(own: unknown, added: Readonly<Headers> | null): unknown {
  if (added === null) return own;
  if (own === undefined) return { ...added };
  if (own === null || typeof own !== 'object' || Array.isArray(own)) return own; // refused by headersJson
  return { ...added, ...own };
}
