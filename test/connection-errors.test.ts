import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnectionError,
  EventBus,
  Locks,
  Queue,
  RedisCommandError,
  Scheduler,
  ValidationError,
} from '../src/index.js';
import { queueKey } from '../src/keys.js';
import { singleNodeOnly, uniquePrefix, useRedis } from './helpers.js';
import { freePort, startRedis } from './servers.js';

const env = useRedis();
// On the cluster topology only the tests on the suite's own Redis run (WRONGTYPE, the URL checks at construction).
const describeOneNode = describe.skipIf(
  singleNodeOnly('gives sluice clients and redis:// URLs of dead ports, of servers it starts or fakes itself'),
);
const itOwnServer = it.skipIf(singleNodeOnly('fills a redis-server of its own to maxmemory, by its redis:// URL'));
const servers: ChildProcess[] = [];
const queues: Queue<any>[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  for (const server of servers.splice(0)) {
    server.kill('SIGKILL');
    if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  }
});

function queueAt(url: string, options: { connectTimeoutMs?: number } = {}): Queue<string> {
  const queue = new Queue<string>('q', { connection: url, prefix: uniquePrefix('conn'), ...options });
  queues.push(queue);
  return queue;
}

async function failure(call: Promise<unknown>): Promise<ConnectionError> {
  const error = await call.then(
    () => new Error('the call succeeded'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectionError);
  expect((error as ConnectionError).code).toBe('CONNECTION');
  return error as ConnectionError;
}

describeOneNode('connection errors name the address and the cause', () => {
  it('a wrong port: refused, without waiting for the connect timeout', async () => {
    const port = await freePort();
    const error = await failure(queueAt(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 60_000 }).send('x'));
    expect(error.failure).toBe('refused');
    expect(error.address).toBe(`127.0.0.1:${port}`);
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('a host that does not resolve: dns', async () => {
    const error = await failure(queueAt('redis://no-such-host.invalid:6379', { connectTimeoutMs: 60_000 }).send('x'));
    expect(error.failure).toBe('dns');
    expect(error.address).toBe('no-such-host.invalid:6379');
  });

  it('a server that wants a password, given none or a wrong one: auth', async () => {
    const port = await freePort();
    servers.push(await startRedis(port));
    // startRedis's probe needs no password: the password is set once the server answers.
    const admin = new Redis(port, '127.0.0.1');
    await admin.config('SET', 'requirepass', 'sekrit');
    admin.disconnect();
    for (const url of [`redis://127.0.0.1:${port}`, `redis://:wrong@127.0.0.1:${port}`]) {
      const error = await failure(queueAt(url, { connectTimeoutMs: 60_000 }).send('x'));
      expect(error.failure).toBe('auth');
      expect(error.message).not.toContain('wrong'); // the password is not repeated
    }
    // and with the right one it works
    expect(typeof (await queueAt(`redis://:sekrit@127.0.0.1:${port}`).send('x'))).toBe('string');
  });

  it('a server that accepts and never answers: timeout after connectTimeoutMs, for every component', async () => {
    const sockets = new Set<Socket>();
    const blackhole: Server = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1');
    await once(blackhole, 'listening');
    const url = `redis://127.0.0.1:${(blackhole.address() as { port: number }).port}`;
    try {
      const bus = new EventBus('b', { connection: url, connectTimeoutMs: 300 });
      const locks = new Locks({ connection: url, connectTimeoutMs: 300 });
      const scheduler = new Scheduler({ connection: url, connectTimeoutMs: 300 });
      const errors = await Promise.all([
        failure(queueAt(url, { connectTimeoutMs: 300 }).send('x')),
        failure(bus.publish('a.b', {})),
        failure(locks.acquire('l')),
        failure(scheduler.pauseJob('j')),
      ]);
      for (const error of errors) expect(error.failure).toBe('timeout');
      await Promise.all([bus.close(), locks.close(), scheduler.close()]);
    } finally {
      for (const socket of sockets) socket.destroy();
      blackhole.close();
    }
  });

  it('a server that answers in another protocol (HTTP, MySQL): failure protocol, naming the port', async () => {
    const sockets = new Set<Socket>();
    const http: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', () => socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    }).listen(0, '127.0.0.1');
    await once(http, 'listening');
    const url = `redis://127.0.0.1:${(http.address() as { port: number }).port}`;
    try {
      const error = await failure(queueAt(url, { connectTimeoutMs: 1_000 }).send('x'));
      expect(error.failure).toBe('protocol');
      expect(error.message).toMatch(/something other than Redis answered/);
    } finally {
      for (const socket of sockets) socket.destroy();
      http.close();
    }
  });

  it('a client passed in keeps its own settings; its give-up error becomes a ConnectionError', async () => {
    const port = await freePort();
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 10 });
    client.on('error', () => undefined);
    try {
      const queue = new Queue<string>('q', { connection: client, prefix: uniquePrefix('conn') });
      const error = await failure(queue.send('x'));
      expect(error.address).toBe(`127.0.0.1:${port}`);
    } finally {
      client.disconnect();
    }
  });
});

describe('script replies a user can act on', () => {
  itOwnServer('OOM names the key and the operation, and nothing was written', async () => {
    const port = await freePort();
    servers.push(await startRedis(port, ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']));
    const queue = queueAt(`redis://127.0.0.1:${port}`);
    const big = 'x'.repeat(100_000);
    let error: unknown;
    for (let n = 0; n < 200 && error === undefined; n++) await queue.send(big).catch((e: unknown) => (error = e));
    expect(error).toBeInstanceOf(RedisCommandError);
    expect((error as RedisCommandError).code).toBe('OOM');
    expect((error as RedisCommandError).key).toBe(queue.baseKey);
    expect((error as RedisCommandError).operation).toBe('queue/send');
    expect((error as Error).message).toContain(queue.baseKey);
  });

  it('WRONGTYPE names the key and the operation', async () => {
    const queue = env.queue<string>();
    await env.redis.set(queueKey(queue.baseKey, 'ready2'), 'not a list');
    const error = await queue.send('x').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RedisCommandError);
    expect((error as RedisCommandError).code).toBe('WRONGTYPE');
    expect((error as RedisCommandError).key).toBe(queue.baseKey);
    expect((error as Error).message).toContain('send on');
  });
});

describe('connection URLs', () => {
  it.each(['http://127.0.0.1:6379', 'localhost:6379', 'redis:/nohost', 'valkey://127.0.0.1', ''])(
    'refuses %j at construction',
    (url) => {
      for (const make of [
        () => new Queue('q', { connection: url }),
        () => new EventBus('b', { connection: url }),
        () => new Locks({ connection: url }),
        () => new Scheduler({ connection: url }),
      ]) {
        expect(make).toThrow(ValidationError);
      }
    },
  );

  it('never repeats a password in the refusal', () => {
    expect(() => new Queue('q', { connection: 'http://user:sekrit@127.0.0.1' })).toThrow(/user:\*\*\*@/);
  });
});
