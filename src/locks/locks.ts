import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeOwned, commandError, resolveConnection, type Connection } from '../connection.js';
import { ClosedError, LockLostError, LockNotHeldError, LockUnavailableError, ValidationError } from '../errors.js';
import { describe, lockKeys, validateName, validatePrefix } from '../keys.js';
import { REPLY } from '../replies.js';
import { announce } from '../registry.js';
import { runScript, type RedisClient } from '../scripts.js';
import { checkOptions, optionNames, requireDuration } from '../validate.js';
import { LeaseKeeper } from '../lease.js';

export interface LocksOptions {
  /** an ioredis client (the caller closes it) or a redis:// URL (close() closes it) */
  connection: Connection;
  /** with a URL: how long a command waits for the connection before failing with a ConnectionError (default 5000) */
  connectTimeoutMs?: number;
  /** key prefix, so that applications can share a Redis (default `sluice`) */
  prefix?: string;
}

export interface AcquireOptions {
  /** how long the lock is held unless extended or released (default 30 s) */
  ttlMs?: number;
  /** how long to wait for a held lock to be freed before giving up (default 0: try once) */
  waitMs?: number;
  /** pause between attempts while waiting, randomised by ±50% so that waiters spread out (default 50 ms) */
  retryDelayMs?: number;
  /**
   * who takes the lock, as locks.status shows it (default `<hostname>:<pid>`): 1 to 200 characters, no `#`.
   * For operators only: extend and release go by the token, never by the holder.
   */
  holder?: string;
}

export type WithLockOptions = AcquireOptions;

export interface ExtendOptions {
  /** the lock's new TTL, counted from now (default 30 s) */
  ttlMs?: number;
}

/** A held lock. `fence` is greater than the fence of every earlier acquisition of the same name. */
export interface LockHandle {
  readonly name: string;
  readonly token: string;
  readonly fence: number;
}

/** What `locks.status(name)` reads: whether the lock is held now, for how long, and its latest fence. */
export interface LockStatus {
  name: string;
  held: boolean;
  /** ms until the current holder's TTL runs out; null when not held */
  ttlMs: number | null;
  /** the current holder (AcquireOptions.holder); null when not held (or taken by a sluice from before holders) */
  holder: string | null;
  /** the fence of the latest acquisition (0: never acquired) */
  fence: number;
}

const LOCKS_OPTIONS = optionNames<LocksOptions>({ connection: true, connectTimeoutMs: true, prefix: true });
const ACQUIRE_OPTIONS = optionNames<AcquireOptions>({ ttlMs: true, waitMs: true, retryDelayMs: true, holder: true });
const EXTEND_OPTIONS = optionNames<ExtendOptions>({ ttlMs: true });
/** Longest `waitMs`: 24 hours. */
export const MAX_WAIT_MS = 24 * 3600 * 1000;
/** Longest `retryDelayMs`: 1 minute. */
export const MAX_RETRY_DELAY_MS = 60 * 1000;

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_RETRY_DELAY_MS = 50;
const MAX_TTL_MS = 2 ** 31 - 1;
export const MAX_HOLDER_LENGTH = 200;
const DEFAULT_HOLDER = `${hostname()}:${process.pid}`;
/** Ends the holder in a lock's token, `<holder>#<random UUID>`: so status reads the holder with no write of its own. */
const HOLDER_END = '#';

/**
 * Distributed locks with fencing tokens. Each acquisition gets a random token, which extend and release
 * must present, and a fence number that grows with every acquisition of that lock name. A holder that
 * paused past its TTL still believes it holds the lock; pass the fence to the resource you protect and
 * have it refuse a fence lower than one it has already seen (Kleppmann's fencing tokens).
 */
export class Locks {
  readonly prefix: string;
  readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private closed = false;

  constructor(options: LocksOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        'options',
        'new Locks(options) needs options with a connection (an ioredis client or a redis:// URL)',
      );
    }
    checkOptions(options, LOCKS_OPTIONS, 'new Locks(options)');
    this.prefix = validatePrefix(options.prefix ?? 'sluice');
    ({ client: this.client, owned: this.ownsClient } = resolveConnection(options.connection, {
      connectTimeoutMs: options.connectTimeoutMs,
    }));
  }

  /**
   * Takes the lock for `ttlMs`, waiting up to `waitMs` for its holder to release it or for its TTL to
   * run out. Returns the held lock, or null when it stayed held by another holder.
   */
  async acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle | null> {
    return (await this.acquireTimed(name, options))?.lock ?? null;
  }

  /** acquire, also returning the local time the successful attempt started: the lease's TTL counts from no earlier. */
  private async acquireTimed(
    name: string,
    options: AcquireOptions,
  ): Promise<{ lock: LockHandle; grantedAt: number } | null> {
    const keys = lockKeys(this.prefix, name);
    checkOptions(options, ACQUIRE_OPTIONS, 'acquire(name, options)');
    const ttlMs = ttlOf(options.ttlMs);
    const waitMs = requireDuration('waitMs', options.waitMs ?? 0, 0, MAX_WAIT_MS);
    const retryDelayMs = requireDuration(
      'retryDelayMs',
      options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      0,
      MAX_RETRY_DELAY_MS,
    );
    const token = `${holderOf(options.holder)}${HOLDER_END}${randomUUID()}`;
    const deadline = Date.now() + waitMs;
    announce(this.client, this.prefix, 'locks', name, keys.holder);
    for (;;) {
      this.assertOpen();
      const attemptAt = Date.now();
      const [acquired, value] = await runScript(this.client, 'lock/acquire', [keys.holder, keys.fence], [token, ttlMs]);
      if (acquired === REPLY.ACQUIRED) return { lock: { name, token, fence: value }, grantedAt: attemptAt };
      const left = deadline - Date.now();
      if (left <= 0) return null;
      // Sleep no longer than the holder's remaining TTL: an expiring lock is free sooner than a retry delay.
      const jittered = retryDelayMs * (0.5 + Math.random());
      await sleep(Math.max(1, Math.min(jittered, left, value > 0 ? value : jittered)));
    }
  }

  /**
   * Gives a held lock a fresh TTL of `ttlMs` (default 30 s) from now. Throws LockNotHeldError (nothing
   * changed) when `lock` no longer holds it.
   */
  async extend(lock: Pick<LockHandle, 'name' | 'token'>, options: ExtendOptions = {}): Promise<void> {
    requireLock(lock);
    checkOptions(options, EXTEND_OPTIONS, 'extend(lock, options)');
    if (!(await this.tryExtend(lock, ttlOf(options.ttlMs)))) throw new LockNotHeldError(lock.name, lock.token);
  }

  /** Frees a held lock. Throws LockNotHeldError (nothing changed) when `lock` no longer holds it. */
  async release(lock: Pick<LockHandle, 'name' | 'token'>): Promise<void> {
    this.assertOpen();
    requireLock(lock);
    const keys = lockKeys(this.prefix, lock.name);
    const released = await runScript(this.client, 'lock/release', [keys.holder, keys.fence], [lock.token]);
    if (released !== REPLY.OK) throw new LockNotHeldError(lock.name, lock.token);
  }

  /**
   * Runs `fn` holding the lock: waits for it as acquire does (throwing LockUnavailableError when it stays
   * held), extends it about every ttl/3 while `fn` runs, and releases it when `fn` settles. If the lock is
   * lost meanwhile (an extension was refused, or Redis stayed unreachable for a whole TTL) the signal
   * passed to `fn` aborts with a LockLostError: `fn` should stop, as another holder may have the lock.
   * Returns what `fn` returns; an error thrown by `fn` propagates.
   */
  async withLock<R>(
    name: string,
    fn: (signal: AbortSignal, lock: LockHandle) => R | Promise<R>,
    options: WithLockOptions = {},
  ): Promise<R> {
    // Everything is checked before the lock is taken: a bad argument must not cost a fence number.
    if (typeof fn !== 'function') {
      throw new ValidationError(
        'fn',
        `withLock(name, fn, options) needs a function fn(signal, lock), got ${describe(fn)}`,
      );
    }
    checkOptions(options, ACQUIRE_OPTIONS, 'withLock(name, fn, options)');
    lockKeys(this.prefix, name);
    holderOf(options.holder);
    const ttlMs = ttlOf(options.ttlMs);
    const acquired = await this.acquireTimed(name, { ...options, ttlMs });
    if (!acquired) throw new LockUnavailableError(name, options.waitMs ?? 0);
    const { lock, grantedAt } = acquired;
    const keeper = new LeaseKeeper(
      () => this.tryExtend(lock, ttlMs),
      ttlMs,
      (cause) => new LockLostError(name, { cause }),
      grantedAt,
    );
    try {
      return await fn(keeper.signal, lock);
    } finally {
      keeper.stop();
      // A lock that was lost, or cannot be released now, frees itself when its TTL runs out; failing
      // here would hide fn's own outcome.
      if (!keeper.isLost) await this.release(lock).catch(() => undefined);
    }
  }

  /**
   * Whether a lock is held now, by whom, its TTL left and its latest fence, read in one MULTI (both keys share
   * the lock's slot). Read-only; of the holder's token only the holder part is shown. For operators (the CLI's `locks`).
   */
  async status(name: string): Promise<LockStatus> {
    this.assertOpen();
    const keys = lockKeys(this.prefix, name);
    // Connection trouble and WRONGTYPE become SluiceErrors naming the address or the key, as for scripts.
    const replies = await this.client
      .multi()
      .pttl(keys.holder)
      .hget(keys.fence, 'n')
      .get(keys.holder)
      .exec()
      .catch((error: unknown) => {
        throw commandError(this.client, 'locks.status', keys.holder, error);
      });
    for (const [error] of replies ?? []) if (error) throw commandError(this.client, 'locks.status', keys.holder, error);
    const pttl = Number(replies?.[0]?.[1] ?? -2);
    const token = pttl === -2 ? null : ((replies?.[2]?.[1] as string | null | undefined) ?? null);
    const holderEnd = token?.lastIndexOf(HOLDER_END) ?? -1;
    return {
      name,
      held: pttl !== -2,
      holder: token !== null && holderEnd > 0 ? token.slice(0, holderEnd) : null,
      ttlMs: pttl >= 0 ? pttl : null,
      fence: Number(replies?.[1]?.[1] ?? 0),
    };
  }

  /**
   * Closes the connection if this object opened it (within about a second, whatever Redis is doing). Locks
   * still held are not released: they free themselves when their TTL runs out.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await closeOwned(this.client, 'locks');
  }

  private async tryExtend(lock: Pick<LockHandle, 'name' | 'token'>, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const holder = lockKeys(this.prefix, lock.name).holder;
    return (await runScript(this.client, 'lock/extend', [holder], [lock.token, ttlMs])) === REPLY.OK;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('locks');
  }
}

function ttlOf(value: number | undefined): number {
  const ttlMs = value ?? DEFAULT_TTL_MS;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1 || Math.ceil(ttlMs) > MAX_TTL_MS) {
    throw new ValidationError('ttlMs', `ttlMs must be a number of ms from 1 to ${MAX_TTL_MS}, got ${describe(ttlMs)}`);
  }
  return Math.ceil(ttlMs);
}

function holderOf(value: unknown): string {
  const holder = value ?? DEFAULT_HOLDER;
  if (
    typeof holder !== 'string' ||
    holder.length === 0 ||
    holder.length > MAX_HOLDER_LENGTH ||
    holder.includes(HOLDER_END)
  ) {
    throw new ValidationError(
      'holder',
      `holder must be a string of 1 to ${MAX_HOLDER_LENGTH} characters without '${HOLDER_END}', got ${describe(holder)}`,
    );
  }
  return holder;
}

/** extend and release take the object acquire returned (or any { name, token }). */
function requireLock<L extends Pick<LockHandle, 'name' | 'token'>>(lock: L): L {
  if (typeof lock !== 'object' || lock === null || typeof lock.token !== 'string' || lock.token === '') {
    throw new ValidationError('lock', `lock must be the { name, token } that acquire returned, got ${describe(lock)}`);
  }
  validateName('lock name', lock.name);
  return lock;
}
