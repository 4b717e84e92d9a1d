import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Locks, ValidationError } from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

function locks(prefix = env.prefix()): Locks {
  return new Locks({ connection: env.redis, prefix });
}

describe('lock holder', () => {
  it('status shows the holder given while held, and null once released', async () => {
    const service = locks();
    const lock = await service.acquire('report', { holder: 'billing-worker-7', ttlMs: 60_000 });
    expect(await service.status('report')).toMatchObject({ held: true, holder: 'billing-worker-7', fence: 1 });
    // The token's comparison is unchanged: extend and release go by the whole token.
    await service.extend(lock!, { ttlMs: 60_000 });
    await expect(service.extend({ name: 'report', token: 'billing-worker-7' })).rejects.toThrow();
    await service.release(lock!);
    expect(await service.status('report')).toEqual({
      name: 'report',
      held: false,
      holder: null,
      ttlMs: null,
      fence: 1,
    });
  });

  it('the default holder is <hostname>:<pid>, also with withLock', async () => {
    const service = locks();
    const expected = `${hostname()}:${process.pid}`;
    const lock = await service.acquire('nightly');
    expect((await service.status('nightly')).holder).toBe(expected);
    expect(lock!.token.startsWith(`${expected}#`)).toBe(true);
    await service.release(lock!);
    const seen = await service.withLock('nightly', async () => (await service.status('nightly')).holder, {
      holder: 'cron',
    });
    expect(seen).toBe('cron');
    expect((await service.status('nightly')).holder).toBeNull();
  });

  it('the holder is null once the lock expired, and the next holder shows', async () => {
    const service = locks();
    await service.acquire('brief', { holder: 'first', ttlMs: 50 });
    await waitFor(async () => !(await service.status('brief')).held, 'the lock to expire');
    expect((await service.status('brief')).holder).toBeNull();
    await service.acquire('brief', { holder: 'second', ttlMs: 60_000 });
    expect(await service.status('brief')).toMatchObject({ held: true, holder: 'second', fence: 2 });
  });

  it('a lock held by another holder stays theirs: a second acquire gets null', async () => {
    const prefix = env.prefix();
    const [a, b] = [locks(prefix), locks(prefix)];
    expect(await a.acquire('shared', { holder: 'a', ttlMs: 60_000 })).not.toBeNull();
    expect(await b.acquire('shared', { holder: 'b' })).toBeNull();
    expect((await b.status('shared')).holder).toBe('a');
  });

  it('a token without a holder part (taken by an older sluice) shows a null holder', async () => {
    const prefix = env.prefix();
    await env.redis.set(lockKeys(prefix, 'old').holder, 'a1b2c3d4-0000-4000-8000-000000000000', 'PX', 60_000);
    expect(await locks(prefix).status('old')).toMatchObject({ held: true, holder: null });
  });

  it('refuses a bad holder before anything is written', async () => {
    const prefix = env.prefix();
    const service = locks(prefix);
    for (const holder of ['', 'a#b', 'x'.repeat(201), 42]) {
      await expect(service.acquire('checked', { holder: holder as string })).rejects.toBeInstanceOf(ValidationError);
      await expect(service.withLock('checked', () => undefined, { holder: holder as string })).rejects.toBeInstanceOf(
        ValidationError,
      );
    }
    await expect(service.acquire('checked', { holder: 'a#b' })).rejects.toThrow(
      /holder must be a string of 1 to 200 characters without '#'/,
    );
    // Nothing was written: no fence was used up, no token set.
    expect(await env.redis.exists(lockKeys(prefix, 'checked').fence, lockKeys(prefix, 'checked').holder)).toBe(0);
    expect(await service.acquire('checked', { holder: 'x'.repeat(200) })).not.toBeNull();
    expect(await service.status('checked')).toMatchObject({ holder: 'x'.repeat(200), fence: 1 });
  });
});
