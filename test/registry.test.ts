import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { discover, EventBus, Locks, Queue, Scheduler } from '../src/index.js';
import { registryKey } from '../src/keys.js';
import { singleNodeOnly, useRedis, waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

const env = useRedis();
/** Gives sluice a redis:// URL, which opens a single-node client: not on the cluster topology. */
const itWithUrl = it.skipIf(singleNodeOnly('gives sluice a redis:// URL, which opens a single-node client'));
const servers: ChildProcess[] = [];

afterAll(async () => {
  for (const server of servers) {
    server.kill('SIGKILL');
    if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  }
});

describe('discover: the registry', () => {
  it('lists the queues, buses, lock names and jobs that were used, without a scan', async () => {
    const prefix = env.prefix();
    const orders = env.queue('orders', { prefix });
    const mail = env.queue('mail.out:eu', { prefix });
    await orders.send({ n: 1 }); // a send-only producer registers too
    await mail.getStats();
    env.queue('never-used', { prefix }); // nothing was sent through it, so nothing registered it
    await env.queue('looked-at', { prefix, register: false }).getStats(); // an operator's read (the CLI)
    const bus = new EventBus('domain', { connection: env.redis, prefix });
    await bus.subscribe('billing', 'order.*'); // its subscriber queue is the bus's, not a queue of the prefix
    await bus.publish('order.created', { id: 1 });
    const locks = new Locks({ connection: env.redis, prefix });
    const lock = await locks.acquire('nightly-report', { ttlMs: 10_000 });
    await locks.release(lock!);
    const scheduler = new Scheduler({ connection: env.redis, prefix, pollMs: 50 });
    scheduler.addJob({ name: 'cleanup', every: 60_000, handler: () => undefined }).start();
    await waitFor(async () => (await scheduler.getJobStatus('cleanup')) !== null, 'the job to be registered');
    await scheduler.close();
    // Registrations ride along with the first command and are not awaited: wait for them to land.
    await waitFor(async () => (await env.redis.zcard(registryKey(prefix, 'locks'))) === 1, 'the lock registration');

    const found = await discover(env.redis, { prefix, scanLimit: 0 });
    expect(found).toEqual({
      queues: ['mail.out:eu', 'orders'],
      buses: ['domain'],
      locks: ['nightly-report'],
      jobs: ['cleanup'],
      complete: false,
    });
    // With the fallback scan on, nothing more is found, and the scan says it covered everything (the
    // shared test Redis is small enough for the default limit, or says so).
    const scanned = await discover(env.redis, { prefix, scanLimit: 1_000_000 });
    expect(scanned).toEqual({ ...found, complete: true });
  });

  it('registers once per object and connection, not on every call', async () => {
    const prefix = env.prefix();
    const queue = env.queue('orders', { prefix });
    for (let n = 0; n < 5; n++) await queue.send({ n });
    const first = await waitFor(() => env.redis.zscore(registryKey(prefix, 'queues'), 'orders'), 'the registration');
    // A second Queue object of the same queue on the same connection adds nothing either.
    const again = env.queue('orders', { prefix });
    await again.send({ n: 6 });
    await queue.getStats();
    expect(await env.redis.zscore(registryKey(prefix, 'queues'), 'orders')).toBe(first);
    // A new connection registers again, which only moves the last-seen time.
    const other = env.connection();
    const fromOther = new Queue('orders', { connection: other, prefix });
    await fromOther.getStats();
    await waitFor(
      async () => Number(await env.redis.zscore(registryKey(prefix, 'queues'), 'orders')) >= Number(first),
      'the second registration',
    );
    expect(await env.redis.zrange(registryKey(prefix, 'queues'), 0, -1)).toEqual(['orders']);
  });

  itWithUrl('a URL connection is opened and closed by discover, and bad options are refused', async () => {
    const prefix = env.prefix();
    await env.queue('q', { prefix }).send('x');
    await waitFor(() => env.redis.zscore(registryKey(prefix, 'queues'), 'q'), 'the registration');
    const found = await discover(`redis://${env.redis.options.host}:${env.redis.options.port}`, {
      prefix,
      scanLimit: 0,
    });
    expect(found.queues).toEqual(['q']);
    await expect(discover(env.redis, { prefix: 'a:b' })).rejects.toThrow(/prefix may not contain ':'/);
    await expect(discover(env.redis, { prefix, scanLimit: -1 })).rejects.toThrow(/scanLimit must be an integer/);
    await expect(discover(env.redis, { prefix, scanlimit: 5 } as never)).rejects.toThrow(/did you mean "scanLimit"/);
  });
});

describe('discover: the SCAN fallback for data written before the registry', () => {
  async function privateRedis(): Promise<Redis> {
    const port = await freePort();
    servers.push(await startRedis(port));
    const admin = new Redis(port, '127.0.0.1');
    return admin;
  }

  /** The old layout, written with raw commands: no registry key at all. */
  async function writeOldLayout(redis: Redis, prefix: string): Promise<void> {
    await redis.rpush(`{${prefix}:orders}:r2`, 'm1|2|0|3|1|||0|{}');
    await redis.hset(`{${prefix}:orders}:stats`, 'sent', '1');
    await redis.zadd(`{${prefix}:billing:eu}:x`, 1000, 'm9');
    await redis.hset(`{${prefix}:bus/domain}:subs`, 'audit', '{"patterns":["#"],"maxRetries":3}');
    await redis.hset(`{${prefix}:bus/domain}:s:audit:stats`, 'sent', '1');
    await redis.set(`{${prefix}:lock/report}`, 'token', 'PX', 60_000);
    await redis.hset(`{${prefix}:lock/report}:fence`, 'n', '3');
    await redis.hset(`{${prefix}:scheduler/}:job:nightly`, 'nextRunAt', '1');
    await redis.zadd(`{${prefix}:limit/api:user-1}`, 1, 'a');
    // Another prefix's keys are not this prefix's.
    await redis.rpush(`{${prefix}x:other}:r2`, 'm2|2|0|3|1|||0|{}');
    await redis.rpush(`{other:orders}:r2`, 'm3|2|0|3|1|||0|{}');
  }

  it('finds queues, buses, locks and jobs from their keys', async () => {
    const redis = await privateRedis();
    try {
      await writeOldLayout(redis, 'old');
      expect(await discover(redis, { prefix: 'old' })).toEqual({
        queues: ['billing:eu', 'orders'],
        buses: ['domain'],
        locks: ['report'],
        jobs: ['nightly'],
        complete: true,
      });
      // The registry alone knows nothing of them.
      expect(await discover(redis, { prefix: 'old', scanLimit: 0 })).toMatchObject({ queues: [], complete: false });
    } finally {
      await redis.quit();
    }
  });

  it('stops at scanLimit and says the result is incomplete', async () => {
    const redis = await privateRedis();
    try {
      await writeOldLayout(redis, 'old');
      // Enough other keys that a scan of 10 cannot have seen them all.
      const pipeline = redis.pipeline();
      for (let n = 0; n < 5000; n++) pipeline.set(`filler:${n}`, '1');
      await pipeline.exec();
      const partial = await discover(redis, { prefix: 'old', scanLimit: 10 });
      expect(partial.complete).toBe(false);
      const seen = partial.queues.length + partial.buses.length + partial.locks.length + partial.jobs.length;
      expect(seen).toBeLessThan(5);
      expect(await discover(redis, { prefix: 'old', scanLimit: 100_000 })).toMatchObject({
        queues: ['billing:eu', 'orders'],
        complete: true,
      });
    } finally {
      await redis.quit();
    }
  });
});
