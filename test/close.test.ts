import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, Queue, type ConsumerCloseReport } from '../src/index.js';
import { startChild } from './children.js';
import { consumerIsBlocked, uniquePrefix, waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

/**
 * Bounded close (guarantee 11): close() returns within its grace period plus about a second whatever
 * Redis does. A close that hangs is caught by a generous deadline (20 s, far above the bound, far below the
 * minutes the old code hung for), not by timing the close.
 */
const DEADLINE_MS = 20_000;

function settlesWithin<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not return within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const servers: ChildProcess[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of servers.splice(0)) {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await once(server, 'exit');
    }
  }
});

async function ownRedis(): Promise<{
  port: number;
  url: string;
  server: ChildProcess;
  admin: Redis;
  kill(): Promise<void>;
}> {
  const port = await freePort();
  const server = await startRedis(port);
  servers.push(server);
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => undefined);
  clients.push(admin);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    server,
    admin,
    async kill() {
      server.kill('SIGKILL');
      await once(server, 'exit');
    },
  };
}

describe('close() is bounded whatever Redis does', () => {
  it('a consumer blocked while idle closes after Redis is killed (its own client and a client passed in)', async () => {
    const redis = await ownRedis();
    const passed = new Redis(redis.url); // default ioredis options: retries forever, re-sends the BLPOP
    passed.on('error', () => undefined);
    clients.push(passed);
    const prefix = uniquePrefix('close');
    const fromUrl = new Queue<string>('idle', { connection: redis.url, prefix });
    const fromClient = new Queue<string>('idle2', { connection: passed, prefix });
    const consumers = [fromUrl, fromClient].map((q) => {
      const consumer = q.consume(() => undefined, { blockMs: 60_000 });
      consumer.on('error', () => undefined);
      return consumer;
    });
    await waitFor(
      async () =>
        (await consumerIsBlocked(redis.admin, fromUrl.baseKey)) && consumerIsBlocked(redis.admin, fromClient.baseKey),
      'both consumers to block',
    );
    await redis.kill();

    const reports = await settlesWithin(
      Promise.all(consumers.map((c) => c.close({ graceMs: 1_000 }))),
      'consumer.close',
    );
    expect(reports).toEqual([
      { handedBack: [], notHandedBack: [], notSettled: [] },
      { handedBack: [], notHandedBack: [], notSettled: [] },
    ]);
    await settlesWithin(Promise.all([fromUrl.close(), fromClient.close()]), 'queue.close');
  });

  it('a consumer with a handler running when Redis is killed says what it could not hand back or ack', async () => {
    const redis = await ownRedis();
    const queue = new Queue<string>('busy', { connection: redis.url, prefix: uniquePrefix('close') });
    let finishFirst!: () => void;
    const firstMayFinish = new Promise<void>((resolve) => (finishFirst = resolve));
    const started = new Map<string, string>();
    const consumer = queue.consume(
      async (message, { signal }) => {
        started.set(message.payload, message.id);
        if (message.payload === 'finishes') await firstMayFinish;
        else await new Promise((resolve) => signal.addEventListener('abort', resolve)); // runs till close gives up
      },
      { concurrency: 2, batchSize: 2 },
    );
    consumer.on('error', () => undefined);
    await queue.sendMany([{ payload: 'finishes' }, { payload: 'hangs' }]);
    await waitFor(() => started.size === 2, 'both handlers to start');
    await redis.kill();

    finishFirst(); // its ack cannot be written now
    const closed = new Promise<ConsumerCloseReport>((resolve) => consumer.once('closed', resolve));
    const report = await settlesWithin(consumer.close({ graceMs: 500 }), 'consumer.close');
    expect(report).toEqual({
      handedBack: [],
      notHandedBack: [started.get('hangs')],
      notSettled: [started.get('finishes')],
    });
    expect(await closed).toEqual(report);
    await settlesWithin(queue.close(), 'queue.close');
  });

  it('a consumer and its queue close when Redis was never reachable', async () => {
    const port = await freePort();
    const queue = new Queue<string>('nowhere', {
      connection: `redis://127.0.0.1:${port}`,
      prefix: uniquePrefix('close'),
    });
    const consumer = queue.consume(() => undefined);
    const errors: unknown[] = [];
    consumer.on('error', (error) => errors.push(error));
    await waitFor(() => errors.length > 0, 'the consumer to report the connection error');
    expect(errors[0]).toBeInstanceOf(ConnectionError);
    expect((errors[0] as ConnectionError).failure).toBe('refused');
    await settlesWithin(consumer.close({ graceMs: 1_000 }), 'consumer.close');
    await settlesWithin(queue.close(), 'queue.close');
  });

  it('a pending blocking read is abandoned: close returns long before blockMs and leaves no blocked connection', async () => {
    const redis = await ownRedis();
    const queue = new Queue<string>('blocked', { connection: redis.url, prefix: uniquePrefix('close') });
    const consumer = queue.consume(() => undefined, { blockMs: 120_000 });
    await waitFor(() => consumerIsBlocked(redis.admin, queue.baseKey), 'the consumer to block');
    await settlesWithin(consumer.close(), 'consumer.close');
    await waitFor(async () => !(await consumerIsBlocked(redis.admin, queue.baseKey)), 'the blocking connection to go');
    await settlesWithin(queue.close(), 'queue.close');
  });

  it('sends made in the same tick as close() on a queue still connecting are written', async () => {
    const redis = await ownRedis();
    const queue = new Queue<number>('connecting', { connection: redis.url, prefix: uniquePrefix('close') });
    const sends = Array.from({ length: 100 }, (_, n) => queue.send(n));
    await settlesWithin(queue.close(), 'queue.close');
    const ids = await Promise.all(sends);
    expect(new Set(ids).size).toBe(100);
    const reader = new Queue<number>('connecting', { connection: redis.admin, prefix: queue.prefix });
    expect((await reader.getStats()).ready.normal).toBe(100);
  });

  it('sends made in the same tick as close() fail with a ConnectionError when the connection never comes', async () => {
    const port = await freePort();
    const queue = new Queue<number>('never', {
      connection: `redis://127.0.0.1:${port}`,
      prefix: uniquePrefix('close'),
    });
    const sends = Array.from({ length: 10 }, (_, n) =>
      queue.send(n).then(
        () => 'written',
        (error: unknown) => error,
      ),
    );
    await settlesWithin(queue.close(), 'queue.close');
    for (const outcome of await Promise.all(sends)) {
      expect(outcome).toBeInstanceOf(ConnectionError);
      expect((outcome as ConnectionError).address).toBe(`127.0.0.1:${port}`);
    }
  });

  it.each([
    ['with Redis up', false],
    ['with Redis killed first', true],
  ])(
    'a process that opened a queue, a bus, locks and a scheduler exits on its own after closing them (%s)',
    async (_label, killFirst) => {
      const redis = await ownRedis();
      const child = startChild('close-all', { REDIS_URL: redis.url, PREFIX: uniquePrefix('close') });
      try {
        const ready = await child.message(
          (m): m is { ready: true; held: boolean } => (m as { ready?: boolean }).ready === true,
          'ready',
        );
        expect(ready.held).toBe(true);
        if (killFirst) await redis.kill();
        child.process.send('stop');
        await child.message(
          (m): m is { closed: number } => typeof (m as { closed?: number }).closed === 'number',
          'closed',
        );
        const code = await settlesWithin(child.exited, 'the child process to exit on its own');
        expect(code).toBe(0);
      } finally {
        child.process.kill('SIGKILL');
      }
    },
  );
});
