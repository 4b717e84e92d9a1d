import { describe, expect, it } from 'vitest';
import { Locks } from '../src/index.js';
import { lockKeys, REQUEST_KEY_SUFFIX, REQUEST_TTL_MS } from '../src/keys.js';
import { newRequestId, runScript, SCRIPTS } from '../src/scripts.js';
import { sendArguments } from '../src/queue/validate.js';
import { snapshot } from './inspect.js';
import { useRedis } from './helpers.js';

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
    const readOnly = new Set(['queue/stats', 'queue/inspect', 'queue/deadLetterList', 'bus/stats']);
    const natural = new Set(['queue/wake', 'scheduler/register', 'scheduler/forget']);
    for (const script of SCRIPTS.values()) {
      expect(script.lua, script.name).toMatch(/\n {2}Repeat: /);
      expect(script.takesRequestId, script.name).toBe(!readOnly.has(script.name) && !natural.has(script.name));
    }
  });

  it('send twice under one request id writes one message and answers the same ids', async () => {
    const queue = t.queue('rq');
    const args = [
      ...sendArguments({ payload: { n: 1 } }, { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 }, Date.now()),
      ...sendArguments({ payload: { n: 2 }, delayMs: 60_000 }, { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 }, Date.now()),
    ];
    const id = newRequestId();
    const first = await runScript(t.redis, 'queue/send', [queue.baseKey], args, id);
    const before = await snapshot(t.redis, queue.baseKey);
    const again = await runScript(t.redis, 'queue/send', [queue.baseKey], args, id);
    expect(again).toEqual(first);
    expect(await snapshot(t.redis, queue.baseKey)).toEqual(before);
    const stats = await queue.getStats();
    expect(stats.ready.normal + stats.delayed).toBe(2);
  });

  it('dequeue twice under one request id hands back the same deliveries and takes nothing more', async () => {
    const queue = t.queue('rq');
    await queue.sendMany([{ payload: 'a' }, { payload: 'b' }, { payload: 'c' }]);
    const id = newRequestId();
    const args = [2, 30_000, JSON.stringify(queue.retry), 1];
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

  it('lock acquire twice under one request id returns the lock it took, with one fence', async () => {
    const prefix = t.prefix();
    const keys = lockKeys(prefix, 'l');
    const id = newRequestId();
    const first = await runScript(t.redis, 'lock/acquire', [keys.holder, keys.fence], ['token-1', 10_000], id);
    const again = await runScript(t.redis, 'lock/acquire', [keys.holder, keys.fence], ['token-1', 10_000], id);
    expect(first).toEqual([1, 1]);
    expect(again).toEqual([1, 1]);
    expect(await t.redis.get(keys.fence)).toBe('1');
  });

  it('a reply is remembered for the window, and forgotten at the next call once its reply was read', async () => {
    const queue = t.queue('rq');
    await queue.send('one');
    await new Promise((resolve) => setImmediate(resolve));
    const [remembered] = await requestKeys(queue.baseKey);
    expect(remembered).toBeDefined();
    const ttl = await t.redis.pttl(remembered!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(REQUEST_TTL_MS);
    // The next call confirms it: only the newest request's reply is left.
    await queue.send('two');
    const left = await requestKeys(queue.baseKey);
    expect(left).toHaveLength(1);
    expect(left[0]).not.toBe(remembered);
    // Many calls leave one remembered reply, not one each.
    for (let n = 0; n < 50; n++) await queue.send(n);
    expect(await requestKeys(queue.baseKey)).toHaveLength(1);
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
