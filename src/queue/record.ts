import { CorruptRecordError } from '../errors.js';
import type { Headers } from '../headers.js';
import type { Message, PriorityValue } from './types.js';

/**
 * The message record: one string that carries a message through every state (see lua/includes/queue.lua):
 *   <id>|<priority>|<attempts>|<maxRetries>|<createdAt>|<runAt>|<type>|<pkLen>|<partitionKey><body>
 * `pkLen` counts UTF-8 bytes, because Lua's string functions do. The body is the payload JSON, or, for a
 * message with headers, `\u0001<headers byte length>:<headers JSON><payload JSON>`. Scripts never read the
 * body, so headers cost no script a change, and a message without headers is stored exactly as before
 * (records written before headers existed decode unchanged). JSON text never starts with \u0001.
 */
export interface RecordFields {
  id: string;
  priority: PriorityValue;
  attempts: number;
  maxRetries: number;
  createdAt: number;
  runAt: number | null;
  type: string;
  partitionKey: string;
  payloadJson: string;
  /** the headers as JSON, '' for none */
  headersJson?: string;
}

const HEADERS_MARK = '\u0001';

export function encodeRecord(r: RecordFields): string {
  return (
    `${r.id}|${r.priority}|${r.attempts}|${r.maxRetries}|${r.createdAt}|${r.runAt ?? ''}|${r.type}|` +
    `${Buffer.byteLength(r.partitionKey)}|${r.partitionKey}` +
    (r.headersJson ? `${HEADERS_MARK}${Buffer.byteLength(r.headersJson)}:${r.headersJson}` : '') +
    r.payloadJson
  );
}

const HEADER_FIELDS = 8;

export function decodeRecord<T>(queue: string, rec: string): Message<T> {
  const bars: number[] = [];
  let at = -1;
  for (let n = 0; n < HEADER_FIELDS; n++) {
    at = rec.indexOf('|', at + 1);
    if (at < 0) throw new CorruptRecordError('header has fewer than 8 fields');
    bars.push(at);
  }
  const field = (n: number) => rec.slice(n === 0 ? 0 : bars[n - 1]! + 1, bars[n]);
  const priority = Number(field(1));
  const pkBytes = Number(field(7));
  if (!(priority >= 1 && priority <= 4) || !Number.isInteger(pkBytes)) {
    throw new CorruptRecordError('header fields are not numbers');
  }
  const rest = rec.slice(bars[7]! + 1);
  let partitionKey = rest.slice(0, pkBytes);
  let payloadText = rest.slice(pkBytes);
  if (Buffer.byteLength(partitionKey) !== pkBytes) {
    // Non-ASCII partition key: cut by bytes, not characters.
    const bytes = Buffer.from(rest);
    partitionKey = bytes.subarray(0, pkBytes).toString();
    payloadText = bytes.subarray(pkBytes).toString();
  }
  let headers: Headers | undefined;
  if (payloadText.startsWith(HEADERS_MARK)) ({ headers, payloadText } = splitHeaders(payloadText));
  let payload: T;
  try {
    payload = JSON.parse(payloadText) as T;
  } catch (error) {
    throw new CorruptRecordError(`payload is not JSON (${(error as Error).message})`);
  }
  const runAt = field(5);
  const message: Message<T> = {
    id: field(0),
    queue,
    type: field(6),
    payload,
    priority: priority as PriorityValue,
    attempts: Number(field(2)),
    maxRetries: Number(field(3)),
    createdAt: Number(field(4)),
    runAt: runAt === '' ? null : Number(runAt),
    partitionKey: pkBytes === 0 ? null : partitionKey,
  };
  if (headers) message.headers = headers;
  return message;
}

/** `\u0001<bytes>:<headers JSON><payload JSON>` into its two parts. */
function splitHeaders(body: string): { headers: Headers; payloadText: string } {
  const colon = body.indexOf(':');
  const bytes = Number(body.slice(1, colon));
  if (colon < 0 || !Number.isInteger(bytes) || bytes < 2)
    throw new CorruptRecordError('headers length is not a number');
  let json = body.slice(colon + 1, colon + 1 + bytes);
  let payloadText = body.slice(colon + 1 + bytes);
  if (Buffer.byteLength(json) !== bytes) {
    // Non-ASCII headers: cut by bytes, not characters.
    const tail = Buffer.from(body.slice(colon + 1));
    json = tail.subarray(0, bytes).toString();
    payloadText = tail.subarray(bytes).toString();
  }
  let headers: unknown;
  try {
    headers = JSON.parse(json);
  } catch (error) {
    throw new CorruptRecordError(`headers are not JSON (${(error as Error).message})`);
  }
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new CorruptRecordError('headers are not an object');
  }
  return { headers: headers as Headers, payloadText };
}

/** The id of a record, without decoding the rest. */
export function recordId(rec: string): string {
  const bar = rec.indexOf('|');
  return bar < 0 ? rec : rec.slice(0, bar);
}
