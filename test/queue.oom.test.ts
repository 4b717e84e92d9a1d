import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { Queue, QueueFullError, RedisCommandError } from '../src/index.js';
import { queueKey } from '../src/keys.js';
import { newRequestId, runScript } from '../src/scripts.js';
import { sendArguments, sendCall } from '../src/queue/validate.js';
import { freePort, startRedis } from './servers.js';

// send.lua claims its request memory with a write (SET NX GET). Over maxmemory Redis refuses that write even
// when the key exists: these check that a repeat is still answered, a refusal at maxLength is still a
// QueueFullError, and a new send is refused with nothing written — as they were before the claim.
const servers: ChildProcess[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of servers.splice(0)) {
    server.kill('SIGKILL');
    if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  }
});

async function privateRedis(): Promise<Redis> {
  const port = await freePort();
  servers.push(await startRedis(port, ['--maxmemory-policy', 'noeviction']));
  const redis = new Redis(port, '127.0.0.1');
  clients.push(redis);
  return redis;
}

const limits = { defaultMaxRetries: 3, maxPayloadBytes: 1 << 20 };

describe('send over maxmemory', () => {
  it('a repeat of a send that was written is answered, one message (fast path) or several', async () => {
    const redis = await privateRedis();
    const base = '{oom:q}';
    const one = sendCall([sendArguments({ payload: 'a' }, limits, Date.now())], null);
    const two = sendCall(
      [sendArguments({ payload: 'b' }, limits, Date.now()), sendArguments({ payload: 'c' }, limits, Date.now())],
      null,
    );
    const [idOne, idTwo] = [newRequestId(), newRequestId()];
    expect(await runScript(redis, 'queue/send', [base], one, idOne)).toBe(1);
    expect(await runScript(redis, 'queue/send', [base], two, idTwo)).toBe(2);
    await redis.config('SET', 'maxmemory', '1');
    expect(await runScript(redis, 'queue/send', [base], one, idOne)).toBe(1);
    expect(await runScript(redis, 'queue/send', [base], two, idTwo)).toBe(2);
    // A new one is refused, having written nothing.
    const refused = await runScript(redis, 'queue/send', [base], one, newRequestId()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RedisCommandError);
    expect((refused as RedisCommandError).code).toBe('OOM');
    await redis.config('SET', 'maxmemory', '0');
    expect(await redis.llen(queueKey(base, 'ready2'))).toBe(3);
    expect(await redis.hget(queueKey(base, 'stats'), 'sent')).toBe('3');
  });

  it('a send refused at maxLength is still a QueueFullError, writing nothing', async () => {
    const redis = await privateRedis();
    const queue = new Queue<string>('q', { connection: redis, prefix: 'oom', maxLength: 1 });
    await queue.send('fills it');
    const keysBefore = (await redis.keys('*')).sort();
    await redis.config('SET', 'maxmemory', '1');
    await expect(queue.send('over')).rejects.toBeInstanceOf(QueueFullError);
    await expect(queue.sendMany([{ payload: 'x' }, { payload: 'y' }])).rejects.toBeInstanceOf(QueueFullError);
    await redis.config('SET', 'maxmemory', '0');
    // Only the request memory of the first send, and the queue's own keys.
    expect((await redis.keys('*')).sort()).toEqual(keysBefore);
    await queue.close();
  });
});
