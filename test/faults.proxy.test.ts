import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { useProxy } from './faults.helpers.js';
import { uniquePrefix, useRedis, waitFor } from './helpers.js';

/** The fault proxy itself: the other faults.*.test.ts files rely on it losing exactly the reply chosen. */

const env = useRedis();
const faults = useProxy();
const clients: Redis[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

function client(): Redis {
  const c = new Redis(faults.proxy.port, '127.0.0.1');
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

describe('fault proxy', () => {
  it('loses the reply of the chosen command only: it ran twice, the commands around it once', async () => {
    const c = client();
    const key = (n: number) => `{${uniquePrefix('proxy')}}:${n}`;
    const keys = [key(1), key(2), key(3)];
    const lost = faults.proxy.loseReply({
      command: (args) => args[0]?.toString() === 'incr' && args[1]?.toString() === keys[1],
    });
    // Written in one go: the first is answered, the second's reply is lost, the third is held back and re-sent.
    const replies = await Promise.all(keys.map((k) => c.incr(k)));
    expect(await lost.fired).toBe('incr');
    expect(replies).toEqual([1, 2, 1]);
    expect(faults.proxy.faultCount).toBe(1);
    await env.redis.del(...keys);
  });

  it('drops every connection, refuses new ones until accept, and the client then carries on', async () => {
    const c = client();
    expect(await c.ping()).toBe('PONG');
    faults.proxy.refuse();
    faults.proxy.dropAll();
    expect(faults.proxy.connectionCount).toBe(0);
    const refused = faults.proxy.refusedCount;
    const ping = c.ping();
    await waitFor(() => faults.proxy.refusedCount > refused, 'a reconnection to be refused');
    expect(c.status).not.toBe('ready');
    faults.proxy.accept();
    expect(await ping).toBe('PONG');
    expect(faults.proxy.connectionCount).toBeGreaterThan(0);
  });
});
