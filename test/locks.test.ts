import { describe, expect, it } from 'vitest';
import {
  LockLostError,
  LockNotHeldError,
  LockUnavailableError,
  Locks,
  ValidationError,
  type LockHandle,
} from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import { freePort, startRedis } from './servers.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

function locks(prefix: string, connection = env.redis): Locks {
  return new Locks({ connection, prefix });
}

describe('locks', () => {
  it('mutual exclusion: 10 contenders on their own connections, 1,000 acquisitions, no overlap, fences strictly increasing', async () => {
    const prefix = env.prefix();
    const total = 1000;
    let taken = 0;
    let holder: number | null = null;
    let overlaps = 0;
    const fences: number[] = [];

    const contender = async (id: number): Promise<void> => {
      const mine = locks(prefix, env.connection());
      for (;;) {
        // A long TTL: the test is about exclusion between live holders, not about expiry under load.
        const lock = await mine.acquire('resource', { ttlMs: 30_000, waitMs: 60_000, retryDelayMs: 3 });
        expect(lock).not.toBeNull();
        if (holder !== null) overlaps++;
        holder = id;
        const done = taken >= total;
        if (!done) {
          taken++;
          fences.push(lock!.fence);
        }
        // Give the others a chance to (wrongly) get in while this one holds the lock.
        await mine.client.ping();
        holder = null;
        await mine.release(lock!);
        if (done) return;
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, id) => contender(id)));

    expect(overlaps).toBe(0);
    expect(fences).toHaveLength(total);
    for (let n = 1; n < fences.length; n++) expect(fences[n]).toBeGreaterThan(fences[n - 1]!);
  });

  it('returns null after waitMs while another holder keeps the lock, and hands out the lock with a higher fence once freed', async () => {
    const l = locks(env.prefix());
    const first = await l.acquire('job', { ttlMs: 30_000 });
    expect(first).toMatchObject({ name: 'job', fence: 1 });
    expect(await l.acquire('job', { ttlMs: 30_000 })).toBeNull();
    expect(await l.acquire('job', { ttlMs: 30_000, waitMs: 100, retryDelayMs: 10 })).toBeNull();
    await l.release(first!);
    const second = await l.acquire('job', { ttlMs: 30_000 });
    expect(second!.fence).toBe(2);
    expect(second!.token).not.toBe(first!.token);
  });

  it('expiry frees the lock: a waiter gets it once the holder’s TTL runs out, with a higher fence', async () => {
    const l = locks(env.prefix());
    const first = await l.acquire('job', { ttlMs: 200 });
    const second = await l.acquire('job', { ttlMs: 30_000, waitMs: 30_000, retryDelayMs: 20 });
    expect(second).not.toBeNull();
    expect(second!.fence).toBeGreaterThan(first!.fence);
  });

  it('a stale token can neither release nor extend, and nothing changes', async () => {
    const prefix = env.prefix();
    const l = locks(prefix);
    const stale = await l.acquire('job', { ttlMs: 50 });
    const current: LockHandle | null = await l.acquire('job', { ttlMs: 30_000, waitMs: 30_000, retryDelayMs: 10 });
    expect(current).not.toBeNull();

    await expect(l.release(stale!)).rejects.toBeInstanceOf(LockNotHeldError);
    await expect(l.extend(stale!, { ttlMs: 60_000 })).rejects.toMatchObject({ code: 'LOCK_NOT_HELD', lockName: 'job' });
    const holderKey = lockKeys(prefix, 'job').holder;
    expect(await env.redis.get(holderKey)).toBe(current!.token);
    const ttl = await env.redis.pttl(holderKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);

    // The current holder still can; after its release its token is stale too.
    await l.extend(current!, { ttlMs: 45_000 });
    expect(await env.redis.pttl(holderKey)).toBeGreaterThan(30_000);
    await l.release(current!);
    // Releasing again is a repeat of the same release (a retry, or a re-send after a lost reply): it answers
    // as the first did and changes nothing. Once another holder has taken and released the lock, it is refused.
    await l.release(current!);
    expect(await env.redis.exists(holderKey)).toBe(0);
    const next = await l.acquire('job');
    await expect(l.release(current!)).rejects.toBeInstanceOf(LockNotHeldError);
    await l.release(next!);
    await expect(l.release(current!)).rejects.toBeInstanceOf(LockNotHeldError);
  });

  it('withLock returns what fn returns, passes the fence, and releases afterwards, also when fn throws', async () => {
    const l = locks(env.prefix());
    const result = await l.withLock('job', (signal, lock) => {
      expect(signal.aborted).toBe(false);
      return `fence ${lock.fence}`;
    });
    expect(result).toBe('fence 1');
    await expect(l.withLock('job', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    // Released both times: a third acquisition succeeds at once.
    expect((await l.acquire('job', { ttlMs: 1000 }))!.fence).toBe(3);
  });

  it('withLock extends the lock while fn runs for several TTLs', async () => {
    const prefix = env.prefix();
    const l = locks(prefix);
    const other = locks(prefix, env.connection());
    const ttlMs = 1500; // renewed every 500 ms: a busy machine may stall this process for a while
    await l.withLock(
      'job',
      async (signal, lock) => {
        const startedAt = Date.now();
        await waitFor(() => Date.now() - startedAt > 3 * ttlMs, 'three TTLs to pass');
        expect(await other.acquire('job', { ttlMs: 1000 })).toBeNull();
        expect(await env.redis.get(lockKeys(prefix, 'job').holder)).toBe(lock.token);
        expect(signal.aborted).toBe(false);
      },
      { ttlMs },
    );
    expect(await other.acquire('job', { ttlMs: 1000 })).not.toBeNull();
  });

  it('withLock aborts fn’s signal with LockLostError when the lock key is deleted under it', async () => {
    const prefix = env.prefix();
    const l = locks(prefix);
    let reason: unknown;
    const outcome = await l.withLock(
      'job',
      async (signal) => {
        await env.redis.del(lockKeys(prefix, 'job').holder);
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        reason = signal.reason;
        return 'stopped';
      },
      { ttlMs: 600 },
    );
    expect(outcome).toBe('stopped');
    expect(reason).toBeInstanceOf(LockLostError);
    expect(reason).toMatchObject({ code: 'LOCK_LOST', lockName: 'job' });
  });

  it('withLock aborts with LockLostError once Redis has been unreachable for a whole TTL', async () => {
    const prefix = env.prefix();
    const connection = env.connection();
    const l = locks(prefix, connection);
    let reason: unknown;
    await l.withLock(
      'job',
      async (signal) => {
        connection.disconnect(); // extensions now fail; the lock is ours only until its TTL runs out
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        reason = signal.reason;
      },
      { ttlMs: 600 },
    );
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as LockLostError).cause).toBeInstanceOf(Error);
  });

  it('withLock reports the loss when the TTL runs out while the Redis server is down, not when the client gives up', async () => {
    const port = await freePort();
    const server = await startRedis(port);
    const l = new Locks({ connection: `redis://127.0.0.1:${port}`, prefix: env.prefix() });
    try {
      let abortedAfter = -1;
      await l.withLock(
        'job',
        async (signal) => {
          const started = Date.now();
          server.kill('SIGKILL'); // renewals now wait in the client's offline queue while it reconnects
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          abortedAfter = Date.now() - started;
          expect(signal.reason).toBeInstanceOf(LockLostError);
        },
        { ttlMs: 1_000 },
      );
      // The lease ran out after at most 1 s; before the fix the abort came when ioredis gave up (about 10 s).
      expect(abortedAfter).toBeGreaterThanOrEqual(0);
      expect(abortedAfter).toBeLessThan(4_000);
    } finally {
      server.kill('SIGKILL');
      await l.close().catch(() => undefined);
    }
  });

  it('withLock throws LockUnavailableError when the lock stays held for waitMs', async () => {
    const l = locks(env.prefix());
    await l.acquire('job', { ttlMs: 30_000 });
    let ran = false;
    await expect(
      l.withLock(
        'job',
        () => {
          ran = true;
        },
        { waitMs: 50, retryDelayMs: 10 },
      ),
    ).rejects.toBeInstanceOf(LockUnavailableError);
    expect(ran).toBe(false);
  });

  it('refuses bad names and TTLs before touching Redis', async () => {
    const prefix = env.prefix();
    const l = locks(prefix);
    await expect(l.acquire('bad name', { ttlMs: 1000 })).rejects.toBeInstanceOf(ValidationError);
    await expect(l.acquire('{x}', { ttlMs: 1000 })).rejects.toThrow(/lock name may contain only/);
    await expect(l.acquire('job', { ttlMs: -1 })).rejects.toThrow(/ttlMs must be a number of ms from 1 to \d+, got -1/);
    await expect(l.acquire('job', { ttlMs: 0 })).rejects.toThrow(/ttlMs must be a number of ms from 1 to \d+, got 0/);
    await expect(l.acquire('job', { ttlMs: Number.NaN })).rejects.toBeInstanceOf(ValidationError);
    await expect(l.release({ name: 'job', token: undefined as unknown as string })).rejects.toThrow(
      /lock must be the \{ name, token \}/,
    );
    await expect(l.extend({ name: 'bad name', token: 't' })).rejects.toThrow(/lock name may contain only/);
    expect(() => new Locks({ connection: env.redis, prefix: 'a:b' })).toThrow(/prefix may not contain ':'/);
    expect(await env.redis.keys(`{${prefix}:*`)).toEqual([]);
  });
});
