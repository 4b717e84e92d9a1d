import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Locks } from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import type { ScriptName } from '../src/scripts.js';
import { useProxy } from './faults.helpers.js';
import { scriptCall } from './proxy.js';
import { useRedis } from './helpers.js';

/**
 * Guarantee 10 for locks: the reply of one lock script is lost and ioredis re-sends the call after
 * reconnecting. The caller must get the result of its one call: the lock it took (with its fence), or the
 * release it made; and nobody else may hold the lock meanwhile. The caller's Locks uses the caller's own
 * ioredis client, which reaches Redis through the fault proxy; a second Locks on a direct connection
 * plays "somebody else".
 */

const env = useRedis();
const faults = useProxy();
const clients: Redis[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

function setup(): { mine: Locks; other: Locks; holder: (name: string) => Promise<string | null>; prefix: string } {
  const prefix = env.prefix();
  const client = new Redis(faults.proxy.port, '127.0.0.1');
  client.on('error', () => undefined);
  clients.push(client);
  return {
    mine: new Locks({ connection: client, prefix }),
    other: new Locks({ connection: env.redis, prefix }),
    holder: (name) => env.redis.get(lockKeys(prefix, name).holder),
    prefix,
  };
}

function loseReplyOf(script: ScriptName) {
  const lost = faults.proxy.loseReply({ command: scriptCall(script) });
  return () => expect(lost.hasFired, `the reply of ${script} was lost and the call re-sent`).toBe(true);
}

describe('locks: a lost reply re-sent by ioredis has the effect of one call', () => {
  it('acquire returns the lock it took, with its fence, and nobody else holds it', async () => {
    const { mine, other, holder } = setup();
    await other.release((await other.acquire('res'))!); // fence 1 is taken and freed
    const fired = loseReplyOf('lock/acquire');
    const lock = await mine.acquire('res', { ttlMs: 120_000 });
    fired();
    expect(lock).toEqual({ name: 'res', token: expect.any(String), fence: 2 });
    expect(await holder('res')).toBe(lock!.token);
    expect(await other.acquire('res')).toBeNull();
    await mine.release(lock!);
    expect(await other.acquire('res')).toMatchObject({ fence: 3 });
  });

  it('extend keeps the lock held under the same token with the new TTL', async () => {
    const { mine, other, holder, prefix } = setup();
    const lock = (await mine.acquire('res', { ttlMs: 5_000 }))!;
    const fired = loseReplyOf('lock/extend');
    await expect(mine.extend(lock, { ttlMs: 120_000 })).resolves.toBeUndefined();
    fired();
    expect(await holder('res')).toBe(lock.token);
    expect(await env.redis.pttl(lockKeys(prefix, 'res').holder)).toBeGreaterThan(100_000);
    expect(await other.acquire('res')).toBeNull();
    await mine.release(lock);
  });

  it('release tells the caller the lock was released, not LockNotHeldError', async () => {
    const { mine, other, holder } = setup();
    const lock = (await mine.acquire('res', { ttlMs: 120_000 }))!;
    const fired = loseReplyOf('lock/release');
    await expect(mine.release(lock)).resolves.toBeUndefined();
    fired();
    expect(await holder('res')).toBeNull();
    expect(await other.acquire('res')).toMatchObject({ fence: lock.fence + 1 });
  });

  it('withLock runs the function once holding the lock it took, and frees it afterwards', async () => {
    const { mine, other, holder } = setup();
    const fired = loseReplyOf('lock/acquire');
    const seen: { token: string; fence: number; holder: string | null; othersGot: unknown }[] = [];
    const result = await mine.withLock(
      'res',
      async (signal, lock) => {
        seen.push({
          token: lock.token,
          fence: lock.fence,
          holder: await holder('res'),
          othersGot: await other.acquire('res'),
        });
        expect(signal.aborted).toBe(false);
        return 'done';
      },
      { ttlMs: 120_000 },
    );
    fired();
    expect(result).toBe('done');
    expect(seen).toEqual([{ token: expect.any(String), fence: 1, holder: seen[0]!.token, othersGot: null }]);
    expect(await holder('res')).toBeNull();
    expect(await other.acquire('res')).toMatchObject({ fence: 2 });
  });
});
