import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ClosedError, ConnectionError, RateLimiter, ValidationError, type RateLimiterOptions } from '../src/index.js';
import { limiterKey, REQUEST_KEY_SUFFIX } from '../src/keys.js';
import { newRequestId, runScript } from '../src/scripts.js';
import { useProxy } from './faults.helpers.js';
import { scriptCall } from './proxy.js';
import { redisUrl, singleNodeOnly, useRedis, waitFor } from './helpers.js';
import { freePort } from './ports.js';

/**
 * The per-key rate limiter (lua/lock/rateTake.lua): a sliding window log per key, on the server's clock.
 * Redis runs on this machine, so the local clock brackets the server's: each timing assertion allows for
 * the time the calls took, measured around them, plus 2 ms of rounding.
 */
const env = useRedis();
/** Gives sluice a redis:// URL, which opens a single-node client: not on the cluster topology. */
const itWithUrl = it.skipIf(singleNodeOnly('gives sluice a redis:// URL, which opens a single-node client'));
/** Talks through a TCP proxy in front of one Redis node: not on the cluster topology. */
const itThroughProxy = it.skipIf(singleNodeOnly('talks through a TCP proxy in front of one Redis node'));
const faults = useProxy();
const clients: Redis[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

function limiter(options: Partial<RateLimiterOptions> & { prefix: string }): RateLimiter {
  return new RateLimiter({ connection: env.redis, name: 'notifications', limit: 10, windowMs: 60_000, ...options });
}

async function keysOf(prefix: string): Promise<string[]> {
  return (await env.redis.keys(`{${prefix}:*`)).sort();
}

describe('RateLimiter: the limit holds', () => {
  it('20 concurrent takers on separate connections get exactly `limit` units between them', async () => {
    const prefix = env.prefix();
    const takers = Array.from(
      { length: 20 },
      () => new RateLimiter({ connection: env.connection(), prefix, name: 'n', limit: 7, windowMs: 60_000 }),
    );
    // Each taker takes three times, all at once: 60 takes for 7 units.
    const results = await Promise.all(takers.flatMap((taker) => [1, 2, 3].map(() => taker.take('user-1'))));
    const allowed = results.filter((r) => r.allowed);
    expect(allowed).toHaveLength(7);
    expect(allowed.map((r) => r.remaining).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const refused of results.filter((r) => !r.allowed)) {
      expect(refused.remaining).toBe(0);
      expect(refused.retryAfterMs).toBeGreaterThan(50_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect(await env.redis.zcard(limiterKey(prefix, 'n', 'user-1'))).toBe(7);
  });

  it('costs: a take of several units is allowed only whole, and refused ones take nothing', async () => {
    const prefix = env.prefix();
    const limits = limiter({ prefix, limit: 5 });
    expect(await limits.take('u', { cost: 3 })).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 });
    const refused = await limits.take('u', { cost: 3 });
    expect(refused).toMatchObject({ allowed: false, remaining: 2 });
    expect(await limits.take('u', { cost: 2 })).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    expect(await limits.take('u')).toMatchObject({ allowed: false, remaining: 0 });
    expect(await env.redis.zcard(limiterKey(prefix, 'notifications', 'u'))).toBe(5);
  });

  it('a refused take writes nothing: no unit, no request memory', async () => {
    const prefix = env.prefix();
    const limits = limiter({ prefix, limit: 1 });
    await limits.take('u');
    const key = limiterKey(prefix, 'notifications', 'u');
    const before = { keys: await keysOf(prefix), log: await env.redis.zrange(key, 0, -1, 'WITHSCORES') };
    for (let n = 0; n < 3; n++) expect((await limits.take('u')).allowed).toBe(false);
    // The first take's memory is forgotten by the next call, which confirms it: only the log remains.
    expect(await keysOf(prefix)).toEqual([key]);
    expect(await env.redis.zrange(key, 0, -1, 'WITHSCORES')).toEqual(before.log);
  });
});

describe('RateLimiter: the window slides', () => {
  it('a unit counts for exactly one window after its take; retryAfterMs says when the oldest leaves', async () => {
    const prefix = env.prefix();
    const windowMs = 2_000;
    const limits = limiter({ prefix, limit: 2, windowMs });

    const aStart = Date.now();
    expect(await limits.take('u')).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });
    const aEnd = Date.now();
    await sleep(700);
    const bStart = Date.now();
    expect(await limits.take('u')).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    const bEnd = Date.now();

    // Full: the next take waits for A to leave the window, A's time + window - now.
    const cStart = Date.now();
    const c = await limits.take('u');
    const cEnd = Date.now();
    expect(c).toMatchObject({ allowed: false, remaining: 0 });
    expect(c.retryAfterMs).toBeGreaterThanOrEqual(aStart + windowMs - cEnd - 2);
    expect(c.retryAfterMs).toBeLessThanOrEqual(aEnd + windowMs - cStart + 2);

    // Once A has left, one unit is free, and only one: B still counts (a sliding window, not a reset).
    await sleep(c.retryAfterMs + 5);
    expect(await limits.take('u')).toEqual({ allowed: true, remaining: 0, retryAfterMs: 0 });
    const eStart = Date.now();
    const e = await limits.take('u');
    const eEnd = Date.now();
    expect(e).toMatchObject({ allowed: false, remaining: 0 });
    expect(e.retryAfterMs).toBeGreaterThanOrEqual(bStart + windowMs - eEnd - 2);
    expect(e.retryAfterMs).toBeLessThanOrEqual(bEnd + windowMs - eStart + 2);

    // The log expires a window after its last take: an idle key leaves nothing behind.
    const key = limiterKey(prefix, 'notifications', 'u');
    expect(await env.redis.pttl(key)).toBeLessThanOrEqual(windowMs);
    await waitFor(async () => (await env.redis.exists(key)) === 0, 'the idle key to expire');
    expect(await limits.take('u')).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });
  });

  it('with costs, retryAfterMs waits for as many of the oldest units as the take needs', async () => {
    const prefix = env.prefix();
    const windowMs = 60_000;
    const limits = limiter({ prefix, limit: 5, windowMs });
    const aStart = Date.now();
    await limits.take('u', { cost: 3 });
    const aEnd = Date.now();
    await sleep(300);
    const bStart = Date.now();
    await limits.take('u', { cost: 2 });
    const bEnd = Date.now();

    // 3 units need A's 3 to leave; 4 units need A's 3 and one of B's.
    const start = Date.now();
    const three = await limits.take('u', { cost: 3 });
    const four = await limits.take('u', { cost: 4 });
    const end = Date.now();
    expect(three.retryAfterMs).toBeGreaterThanOrEqual(aStart + windowMs - end - 2);
    expect(three.retryAfterMs).toBeLessThanOrEqual(aEnd + windowMs - start + 2);
    expect(four.retryAfterMs).toBeGreaterThanOrEqual(bStart + windowMs - end - 2);
    expect(four.retryAfterMs).toBeLessThanOrEqual(bEnd + windowMs - start + 2);
    expect(four.retryAfterMs - three.retryAfterMs).toBeGreaterThanOrEqual(250);
  });
});

describe('RateLimiter: keys are independent', () => {
  it('keys, limiter names and prefixes each have their own window', async () => {
    const prefix = env.prefix();
    const other = env.prefix();
    const limits = limiter({ prefix, limit: 2 });
    await limits.take('alice');
    await limits.take('alice');
    expect((await limits.take('alice')).allowed).toBe(false);
    expect(await limits.take('bob')).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });
    expect(await limits.take(42)).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });
    expect(await limiter({ prefix, name: 'emails', limit: 2 }).take('alice')).toMatchObject({
      allowed: true,
      remaining: 1,
    });
    expect(await limiter({ prefix: other, limit: 2 }).take('alice')).toMatchObject({ allowed: true, remaining: 1 });
    expect((await limits.take('alice')).allowed).toBe(false);
  });
});

describe('RateLimiter: from a consumer', () => {
  it('a handler that nacks a limited message with delayMs: retryAfterMs handles it once its window has room', async () => {
    const prefix = env.prefix();
    const queue = env.queue<{ userId: string; n: number }>('notify', { prefix });
    const perUser = limiter({ prefix, limit: 2, windowMs: 800 });
    await queue.sendMany([1, 2, 3].map((n) => ({ payload: { userId: 'u1', n } })));
    const handled: { n: number; at: number }[] = [];
    let limited = 0;
    await waitFor(async () => {
      for (const delivery of await queue.dequeue({ count: 10 })) {
        const { allowed, retryAfterMs } = await perUser.take(delivery.payload.userId);
        if (!allowed) {
          limited++;
          await queue.nack(delivery, { delayMs: retryAfterMs, error: 'rate limited' });
          continue;
        }
        handled.push({ n: delivery.payload.n, at: Date.now() });
        await queue.ack(delivery);
      }
      return handled.length === 3;
    }, 'three notifications handled');
    expect(limited).toBeGreaterThanOrEqual(1);
    const [first, , third] = handled.sort((a, b) => a.at - b.at);
    expect(third!.at - first!.at).toBeGreaterThanOrEqual(800 - 20);
    expect((await queue.getStats()).deadLetters).toBe(0);
  });
});

describe('RateLimiter: a take is safe to run twice', () => {
  itThroughProxy('a take whose reply is lost and re-sent by ioredis counts once and answers allowed', async () => {
    const prefix = env.prefix();
    const client = new Redis(faults.proxy.port, '127.0.0.1');
    client.on('error', () => undefined);
    clients.push(client);
    const mine = new RateLimiter({ connection: client, prefix, name: 'n', limit: 3, windowMs: 60_000 });
    const other = new RateLimiter({ connection: env.redis, prefix, name: 'n', limit: 3, windowMs: 60_000 });

    const lost = faults.proxy.loseReply({ command: scriptCall('lock/rateTake') });
    expect(await mine.take('u')).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 });
    expect(lost.hasFired, 'the reply of lock/rateTake was lost and the call re-sent').toBe(true);
    expect(await env.redis.zcard(limiterKey(prefix, 'n', 'u'))).toBe(1);
    expect(await other.take('u')).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0 });

    // A refused take whose reply is lost runs again and is refused again, having taken nothing.
    await other.take('u');
    const lostRefusal = faults.proxy.loseReply({ command: scriptCall('lock/rateTake') });
    expect(await mine.take('u')).toMatchObject({ allowed: false, remaining: 0 });
    expect(lostRefusal.hasFired).toBe(true);
    expect(await env.redis.zcard(limiterKey(prefix, 'n', 'u'))).toBe(3);
  });

  it('the same request run twice takes once and answers the first reply', async () => {
    const prefix = env.prefix();
    const key = limiterKey(prefix, 'n', 'u');
    const id = newRequestId();
    const first = await runScript(env.redis, 'lock/rateTake', [key], [5, 60_000, 2], id);
    const again = await runScript(env.redis, 'lock/rateTake', [key], [5, 60_000, 2], id);
    expect(first).toEqual([1, 3, 0]);
    expect(again).toEqual(first);
    expect(await env.redis.zcard(key)).toBe(2);
    expect(await env.redis.exists(`${key}${REQUEST_KEY_SUFFIX}${id}`)).toBe(1);
  });
});

describe('RateLimiter: bad inputs are refused with nothing written', () => {
  it('refuses bad options and bad takes, naming the field', async () => {
    const prefix = env.prefix();
    const refuses = (make: () => unknown, field: string) => {
      let caught: unknown;
      try {
        make();
      } catch (error) {
        caught = error;
      }
      expect(caught, field).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).field).toBe(field);
    };
    for (const limit of [0, -1, 1.5, Number.NaN, '10', 10_001])
      refuses(() => limiter({ prefix, limit: limit as number }), 'limit');
    for (const windowMs of [0, -5, 0.5, Infinity, '60s', 24 * 3600 * 1000 + 1])
      refuses(() => limiter({ prefix, windowMs: windowMs as number }), 'windowMs');
    for (const name of ['', 'a:b', 'a b', 'x/y', undefined]) refuses(() => limiter({ prefix, name }), 'limiter name');
    refuses(() => limiter({ prefix: 'a:b' }), 'prefix');
    refuses(
      () =>
        new RateLimiter({
          connection: env.redis,
          prefix,
          name: 'n',
          limit: 3,
          windowMs: 1000,
          limt: 3,
        } as RateLimiterOptions),
      'limt',
    );

    const limits = limiter({ prefix, limit: 3 });
    const takeRefused = async (call: () => Promise<unknown>, field: string) => {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, field).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    };
    for (const key of ['', 'a b', 'a{b}', 'x|y', -1, 1.5, {}, null, 'k'.repeat(101)])
      await takeRefused(() => limits.take(key as string), 'key');
    for (const cost of [0, -1, 1.5, 4, '1', Number.NaN])
      await takeRefused(() => limits.take('u', { cost: cost as number }), 'cost');
    await takeRefused(() => limits.take('u', { costs: 2 } as never), 'costs');
    expect(await keysOf(prefix)).toEqual([]);
  });
});

describe('RateLimiter: close', () => {
  itWithUrl('closes the connection it opened from a URL; a take after close is refused with ClosedError', async () => {
    const prefix = env.prefix();
    const limits = new RateLimiter({ connection: redisUrl(), prefix, name: 'n', limit: 1, windowMs: 1_000 });
    expect((await limits.take('u')).allowed).toBe(true);
    await limits.close();
    await waitFor(() => limits.client.status === 'end', 'the connection to end');
    await expect(limits.take('u')).rejects.toBeInstanceOf(ClosedError);
  });

  it('a URL where nothing listens fails the take with a ConnectionError; connectTimeoutMs is checked', async () => {
    const prefix = env.prefix();
    const port = await freePort();
    const limits = new RateLimiter({
      connection: `redis://127.0.0.1:${port}`,
      connectTimeoutMs: 30_000,
      prefix,
      name: 'n',
      limit: 1,
      windowMs: 1_000,
    });
    const error = await limits.take('u').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ address: `127.0.0.1:${port}`, failure: 'refused' });
    await limits.close();
    expect(
      () => new RateLimiter({ connection: redisUrl(), connectTimeoutMs: 0, prefix, name: 'n', limit: 1, windowMs: 1 }),
    ).toThrow(expect.objectContaining({ field: 'connectTimeoutMs' }));
  });
});
