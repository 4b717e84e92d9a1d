import type { Redis } from 'ioredis';
import { parseArgs } from 'node:util';
import { EventBus, Queue, ValidationError } from '../index.js';
import type { Output } from './format.js';

/** Exit codes, usable as health checks (README, CLI). */
export const EXIT = { ok: 0, unhealthy: 1, usage: 2, connect: 3 } as const;

export const OPTIONS = {
  url: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'connect-timeout-ms': { type: 'string' },
  'scan-limit': { type: 'string' },
  'fail-on-dlq': { type: 'boolean' },
  state: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  ids: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  priority: { type: 'string' },
  'delay-ms': { type: 'string' },
  'partition-key': { type: 'string' },
  'dedup-key': { type: 'string' },
  type: { type: 'string' },
  id: { type: 'string' },
  'interval-ms': { type: 'string' },
  'mysql-url': { type: 'string' },
  table: { type: 'string' },
  bus: { type: 'string' },
  count: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'read-only': { type: 'boolean' },
  token: { type: 'string' },
} as const;

export function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

export type Values = ReturnType<typeof parse>['values'];

/** What a command gets: its positional arguments, the options, the connection and the output. */
export interface Context {
  args: string[];
  values: Values;
  prefix: string;
  out: Output;
  redis: Redis;
  mysqlUrl: string | undefined;
}

/** A command returns its exit code (undefined: 0). */
export type Command = (context: Context) => Promise<number | void>;

/** A whole-number option, or its default. */
export function intOption(values: Values, name: keyof Values, fallback: number, min = 0): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
    throw new ValidationError(String(name), `--${String(name)} must be a whole number >= ${min}, got ${String(raw)}`);
  }
  return n;
}

/** The n-th positional argument, or a usage error naming it. */
export function arg(context: Context, n: number, what: string): string {
  const value = context.args[n];
  if (value === undefined || value === '') throw new ValidationError(what, `missing ${what}; see sluice --help`);
  return value;
}

/** A comma-separated list option. */
export function listOption(values: Values, name: 'ids'): string[] | undefined {
  const raw = values[name];
  return raw === undefined
    ? undefined
    : raw
        .split(',')
        .map((id) => id.trim())
        .filter((id) => id !== '');
}

/** A queue the CLI reads or acts on; it is not added to the discovery registry (a typo would be). */
export function openQueue(context: Context, name: string): Queue {
  return new Queue(name, { connection: context.redis, prefix: context.prefix, register: false });
}

export function openBus(context: Context, name: string): EventBus {
  return new EventBus(name, { connection: context.redis, prefix: context.prefix, register: false });
}
