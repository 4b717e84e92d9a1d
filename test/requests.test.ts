import { describe, expect, it } from 'vitest';
import { Locks, RateLimiter } from '../src/index.js';
import { limiterKey, lockKeys, queueKey, REQUEST_KEY_SUFFIX, REQUEST_TTL_MS } from '../src/keys.js';
import { REPLY } from '../src/replies.js';
import { CONFIRM_BATCH, newRequestId, runScript, SCRIPTS } from '../src/scripts.js';
import { sendArguments, sendCall } from '../src/queue/validate.js';
import { snapshot } from './inspect.js';
import { useRedis, waitFor } from './helpers.js';

/**
 * The request protocol of lua/includes/request.lua, driven directly: the same request run twice (what a
 * re-send after a lost reply or a retry with the same request id does) has the effect of one run and
 * gets the first run's reply. The lost-reply tests (test/faults.*.test.ts) inject the fault itself.
 */
const t = useRedis();

async function requestKeys(base: string): Promise<string[]> {
  return (await t.redis.keys(`${base.replace(/[{}[\]*?]/g, (c) => `\\${c}`)}${REQUEST_KEY_SUFFIX}*`)).sort();
}

describe('request ids: a repeated request has the effect of one', () => {
  it('every state-changing script takes a request id, and every script says how a repeat is recognised', () => {
    const readOnly = new Set([
      'queue/stats',
      'queue/inspect',
      'queue/deadLetterList',
      'queue/peek',
      'queue/search',
      'queue/consumers',
      'bus/stats',
    ]);
    const natural = new Set([
      'queue/wake',
      'queue/presence',
      'registry/register',
      'scheduler/register',
      'scheduler/forget',
      'lock/acquire',
      'lock/extend',
      'lock/release',
    ]);
    for (const script of SCRIPTS.values()) {
      expect(script.lua, script.name).toMatch(/\n {2}Repeat: /);
      expect(script.takesRequestId, script.name).toBe(!readOnly.has(script.name) && !natural.has(script.name));
    }
  });

  it('send twice under one request id writes one message and answers the same ids', async () => {
    const queue = t.queue('rq');
    const limits = { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 };
    // One plain message (one argument) and one delayed (eight): both layouts.
    const args = sendCall(
      [
        sendArguments({ payload: { n: 1 } }, limits, Date.now()),
        sendArguments({ payload: { n: 2 }, delayMs: 60_000 }, limits, Date.now()),
      ],
      null,
    );
    const id = newRequestId();
    const first = await runScript(t.redis, 'queue/send', [queue.baseKey], args, id);
    const before = await snapshot(t.redis, queue.baseKey);
    const again = await runScript(t.redis, 'queue/send', [queue.baseKey], args, id);
    expect(first).toBe(2);
    expect(again).toEqual(first);
    expect(await snapshot(t.redis, queue.baseKey)).toEqual(before);
    const stats = await queue.getStats();
    expect(stats.ready.normal + stats.delayed).toBe(2);
  });

  it('one plain message (the fast path of send.lua) sent twice under one request id is written once', async () => {
    const queue = t.queue('rq-fast');
    const limits = { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 };
    const args = sendCall([sendArguments({ payload: 'only' }, limits, Date.now())], null);
    const id = newRequestId();
    expect(await runScript(t.redis, 'queue/send', [queue.baseKey], args, id)).toBe(1);
    const before = await snapshot(t.redis, queue.baseKey);
    expect(await runScript(t.redis, 'queue/send', [queue.baseKey], args, id)).toBe(1);
    expect(await snapshot(t.redis, queue.baseKey)).toEqual(before);
    expect((await queue.getStats()).ready.normal).toBe(1);
    expect((await queue.getStats()).counters.sent).toBe(1);
    expect(await t.redis.llen(queueKey(queue.baseKey, 'wake'))).toBe(1);
  });

  it('the fast paths of send.lua and ack.lua leave Redis exactly as their general paths do', async () => {
    // The same call twice, on two queues: once with nothing to confirm (the fast path), once carrying a
    // confirmation (which forces the general path; the confirmed id has no memory, so deleting it changes nothing).
    const limits = { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 };
    const message = sendArguments({ payload: { n: 1 } }, limits, Date.now());
    const state = async (base: string) => {
      const out: Record<string, unknown> = {};
      for (const key of (await t.redis.keys(`${base.replace(/[{}[\]*?]/g, (c) => `\\${c}`)}*`)).sort()) {
        const name = key.slice(base.length);
        const type = await t.redis.type(key);
        out[name] =
          type === 'list'
            ? await t.redis.lrange(key, 0, -1)
            : type === 'hash'
              ? await t.redis.hgetall(key)
              : type === 'zset'
                ? await t.redis.zrange(key, 0, -1)
                : await t.redis.get(key);
      }
      return out;
    };
    const [fast, general] = [t.queue('fast'), t.queue('general')];
    for (const [queue, confirmed] of [
      [fast, ''],
      [general, 'never-remembered'],
    ] as const) {
      const args = ['the-send', confirmed, ...sendCall([message], null)];
      expect(await t.redis.eval(SCRIPTS.get('queue/send')!.lua, 1, queue.baseKey, ...args)).toBe(1);
      const [delivery] = await queue.dequeue();
      const ack = ['the-ack', confirmed, delivery!.id, delivery!.receipt];
      expect(await t.redis.eval(SCRIPTS.get('queue/ack')!.lua, 1, queue.baseKey, ...ack)).toEqual([REPLY.OK]);
    }
    const [fastState, generalState] = [await state(fast.baseKey), await state(general.baseKey)];
    // The dequeue's own request memory has an id of its own in each queue: compare everything else.
    const withoutDequeueMemory = (snapshot: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(snapshot).filter(([name]) => !name.includes('|rq|') || /the-(send|ack)$/.test(name)),
      );
    expect(withoutDequeueMemory(fastState)).toEqual(withoutDequeueMemory(generalState));
    expect(Object.keys(withoutDequeueMemory(fastState))).toEqual(
      expect.arrayContaining(['|rq|the-send', '|rq|the-ack', ':stats']),
    );
  });

  it('a retry policy argument that does not parse fails the dequeue before it writes anything', async () => {
    const queue = t.queue('policy');
    await queue.send('a');
    // In flight with a deadline already passed: the next dequeue would reclaim it (the write that comes first).
    await queue.dequeue({ visibilityMs: 1 });
    await waitFor(async () => {
      const [seconds, micros] = await t.redis.time();
      const [, deadline] = await t.redis.zrange(queueKey(queue.baseKey, 'inflight'), 0, 0, 'WITHSCORES');
      return Number(seconds) * 1000 + Number(micros) / 1000 > Number(deadline);
    }, 'the delivery to expire on the Redis clock');
    const before = await queue.getStats();
    expect(before.inflight).toBe(1);
    const error = await runScript(t.redis, 'queue/dequeue', [queue.baseKey], [1, 30_000, '{"baseMs":1}', 1]).catch(
      (e: unknown) => e,
    );
    expect(String(error)).toMatch(/retry policy must be/);
    const after = await queue.getStats();
    expect(after.inflight).toBe(1);
    expect(after.counters.reclaimed).toBe(before.counters.reclaimed);
  });

  it('dequeue twice under one request id hands back the same deliveries and takes nothing more', async () => {
    const queue = t.queue('rq');
    await queue.sendMany([{ payload: 'a' }, { payload: 'b' }, { payload: 'c' }]);
    const id = newRequestId();
    const args = [2, 30_000, `${queue.retry.baseMs} ${queue.retry.capMs} ${queue.retry.jitter}`, 1];
    const first = await runScript(t.redis, 'queue/dequeue', [queue.baseKey], args, id);
    const again = await runScript(t.redis, 'queue/dequeue', [queue.baseKey], args, id);
    expect(again).toEqual(first);
    const stats = await queue.getStats();
    expect(stats.inflight).toBe(2);
    expect(stats.ready.normal).toBe(1);
  });

  it('ack twice under one request id answers acked both times', async () => {
    const queue = t.queue('rq');
    await queue.send('x');
    const [delivery] = await queue.dequeue();
    const id = newRequestId();
    const first = await runScript(t.redis, 'queue/ack', [queue.baseKey], [delivery!.id, delivery!.receipt], id);
    const again = await runScript(t.redis, 'queue/ack', [queue.baseKey], [delivery!.id, delivery!.receipt], id);
    expect(first).toEqual([1]);
    expect(again).toEqual([1]);
    // A new request with the same receipt is a different call: that one is stale.
    expect(await queue.ackMany([delivery!])).toEqual([false]);
  });

  it('locks recognise a repeat by the token: the same lock and fence while it holds, never a lock it lost', async () => {
    const prefix = t.prefix();
    const keys = lockKeys(prefix, 'l');
    const acquire = (token: string, ttlMs: number) =>
      runScript(t.redis, 'lock/acquire', [keys.holder, keys.fence], [token, ttlMs]);
    const release = (token: string) => runScript(t.redis, 'lock/release', [keys.holder, keys.fence], [token]);
    expect(await acquire('mine', 10_000)).toEqual([REPLY.ACQUIRED, 1]);
    expect(await acquire('mine', 10_000)).toEqual([REPLY.ACQUIRED, 1]);
    expect(await t.redis.hget(keys.fence, 'n')).toBe('1');
    // A release repeated after its first run freed the lock answers OK again and changes nothing.
    expect(await release('mine')).toBe(REPLY.OK);
    expect(await release('mine')).toBe(REPLY.OK);
    // A repeat that arrives after the lease ended and another holder took the lock is told HELD.
    expect(await acquire('short', 50)).toEqual([REPLY.ACQUIRED, 2]);
    await waitFor(async () => (await t.redis.exists(keys.holder)) === 0, 'the short lease to expire');
    expect(await acquire('other', 10_000)).toEqual([REPLY.ACQUIRED, 3]);
    expect((await acquire('short', 50))[0]).toBe(REPLY.HELD);
    expect(await runScript(t.redis, 'lock/extend', [keys.holder], ['short', 10_000])).toBe(REPLY.STALE);
    expect(await release('short')).toBe(REPLY.STALE);
    expect(await t.redis.get(keys.holder)).toBe('other');
  });

  it('a reply is remembered for the window, and forgotten once its reply was read and a batch of confirmations went', async () => {
    const queue = t.queue('rq');
    await queue.send('one');
    await new Promise((resolve) => setImmediate(resolve));
    const [remembered] = await requestKeys(queue.baseKey);
    expect(remembered).toBeDefined();
    const ttl = await t.redis.pttl(remembered!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(REQUEST_TTL_MS);
    // Confirmations on a queue's key gather until CONFIRM_BATCH, then the next call deletes them all.
    for (let n = 1; n < CONFIRM_BATCH; n++) await queue.send(n);
    expect(await requestKeys(queue.baseKey)).toHaveLength(CONFIRM_BATCH);
    await queue.send('batch');
    const left = await requestKeys(queue.baseKey);
    expect(left).toHaveLength(1);
    expect(left).not.toContain(remembered);
    // Many calls leave at most CONFIRM_BATCH remembered replies, not one each.
    for (let n = 0; n < 200; n++) await queue.send(n);
    expect((await requestKeys(queue.baseKey)).length).toBeLessThanOrEqual(CONFIRM_BATCH);
  });

  it('a rate limiter key (one per user) confirms at the next call: one remembered reply per key', async () => {
    const limiter = new RateLimiter({
      connection: t.redis,
      prefix: t.prefix(),
      name: 'rq',
      limit: 100,
      windowMs: 60_000,
    });
    for (let n = 0; n < 20; n++) await limiter.take('u');
    const key = limiterKey(limiter.prefix, 'rq', 'u');
    expect(await t.redis.keys(`${key.replace(/[{}[\]*?]/g, (c) => `\\${c}`)}${REQUEST_KEY_SUFFIX}*`)).toHaveLength(1);
  });

  it('Locks keep working across the request protocol: acquire, extend, release', async () => {
    const locks = new Locks({ connection: t.redis, prefix: t.prefix() });
    const lock = await locks.acquire('job', { ttlMs: 5_000 });
    expect(lock?.fence).toBe(1);
    await locks.extend(lock!, { ttlMs: 5_000 });
    await locks.release(lock!);
    expect(await locks.acquire('job')).toMatchObject({ fence: 2 });
  });
});
