import { closeOwned, resolveConnection, type Connection } from '../connection.js';
import { ClosedError, ValidationError } from '../errors.js';
import { describe, limiterKey } from '../keys.js';
import { REPLY } from '../replies.js';
import { runScript, type RedisClient } from '../scripts.js';
import { checkOptions, optionNames, requireInteger } from '../validate.js';

export interface RateLimiterOptions {
  /** an ioredis client (the caller closes it) or a redis:// URL (close() closes it) */
  connection: Connection;
  /** with a URL: how long a command waits for the connection before failing with a ConnectionError (default 5000) */
  connectTimeoutMs?: number;
  /** key prefix, so that applications can share a Redis (default `sluice`) */
  prefix?: string;
  /** the limiter's name, so that two limits on the same keys stay apart (`notifications`; no `:`) */
  name: string;
  /** units allowed per key in any window of `windowMs` (1 to 10,000) */
  limit: number;
  /** the window's length in ms (1 ms to 24 hours) */
  windowMs: number;
}

export interface TakeOptions {
  /** units this take uses (default 1, at most the limit) */
  cost?: number;
}

export interface TakeResult {
  /** whether the units were taken; a refused take takes nothing */
  allowed: boolean;
  /** units left in the window now (when refused: fewer than the cost asked for) */
  remaining: number;
  /** 0 when allowed; else the ms after which this take would be allowed, if nobody takes meanwhile */
  retryAfterMs: number;
}

const LIMITER_OPTIONS = optionNames<RateLimiterOptions>({
  connection: true,
  connectTimeoutMs: true,
  prefix: true,
  name: true,
  limit: true,
  windowMs: true,
});
const TAKE_OPTIONS = optionNames<TakeOptions>({ cost: true });

/** Largest `limit`: the window's log holds one entry per unit taken, so a key's memory grows with it. */
export const MAX_RATE_LIMIT = 10_000;
/** Longest `windowMs`: 24 hours. */
export const MAX_RATE_WINDOW_MS = 24 * 3600 * 1000;

/**
 * A per-key rate limit, shared by every process: at most `limit` units per key in any window of `windowMs`
 * (a sliding window log, lua/lock/rateTake.lua, timed by the Redis server's clock). Each take is one
 * script call, safe to re-send: a take whose reply was lost counts once.
 */
export class RateLimiter {
  readonly prefix: string;
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private closed = false;

  constructor(options: RateLimiterOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new RateLimiter(options) needs options with a connection, a name, a limit and a windowMs',
      );
    }
    checkOptions(options, LIMITER_OPTIONS, 'new RateLimiter(options)');
    this.prefix = options.prefix ?? 'sluice';
    this.name = options.name;
    limiterKey(this.prefix, this.name, 'k'); // checks the prefix and the name
    this.limit = requireInteger('limit', options.limit, 1, MAX_RATE_LIMIT);
    this.windowMs = requireInteger('windowMs', options.windowMs, 1, MAX_RATE_WINDOW_MS);
    ({ client: this.client, owned: this.ownsClient } = resolveConnection(options.connection, {
      connectTimeoutMs: options.connectTimeoutMs,
    }));
  }

  /**
   * Takes `cost` units (default 1) of `key`'s limit if the last `windowMs` leave room for them. `key` is a
   * name (letters, digits and `_ - . :`) or a non-negative integer, such as a user id.
   */
  async take(key: string | number, options: TakeOptions = {}): Promise<TakeResult> {
    this.assertOpen();
    checkOptions(options, TAKE_OPTIONS, 'take(key, options)');
    const redisKey = limiterKey(this.prefix, this.name, keyText(key));
    const cost = requireInteger('cost', options.cost ?? 1, 1, this.limit);
    const [outcome, remaining, retryAfterMs] = await runScript(
      this.client,
      'lock/rateTake',
      [redisKey],
      [this.limit, this.windowMs, cost],
    );
    return { allowed: outcome === REPLY.ALLOWED, remaining, retryAfterMs };
  }

  /** Closes the connection if this object opened it (within about a second, whatever Redis is doing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await closeOwned(this.client, 'rate limiter');
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('rate limiter');
  }
}

function keyText(key: unknown): string {
  if (typeof key === 'number' && Number.isSafeInteger(key) && key >= 0) return String(key);
  if (typeof key === 'string') return key;
  throw new ValidationError('key', `key must be a name or a non-negative integer, got ${describe(key)}`);
}
