import { Cluster as Cluster6, Redis as Redis6, type RedisOptions as RedisOptions6 } from 'ioredis6';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EventBus, Locks, Queue, Scheduler, ValidationError, type QueueOptions } from '../src/index.js';
import { consumerIsBlocked, deletePrefix, redisUrl, uniquePrefix, waitFor } from './helpers.js';
import { startCluster } from './servers.js';

/**
 * A client made by another copy of ioredis than sluice's own: ioredis 6 (installed here as the alias `ioredis6`),
 * as a project that ran `npm install ioredis` has it. Every component must take it and run on it, including the
 * consumer's blocking connection, which is a `duplicate()` of the caller's client. ioredis 6 speaks RESP3 by
 * default; both of its reply mappings are tried.
 */

// Another copy's class is a different type to TypeScript (private members): a user with two copies casts once.
type Connection = QueueOptions['connection'];
const asConnection = (client: unknown): Connection => client as Connection;

const clients: { quit(): Promise<unknown> }[] = [];
let prefixes: string[] = [];
let closers: (() => Promise<unknown>)[] = [];
const admin = new Redis6(redisUrl());
clients.push(admin);

function client6(options: RedisOptions6 = {}): Redis6 {
  const client = new Redis6(redisUrl(), options);
  clients.push(client);
  return client;
}

function prefix(): string {
  const p = uniquePrefix('io6');
  prefixes.push(p);
  return p;
}

afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
  // deletePrefix only needs scan and del, which every ioredis copy has.
  for (const p of prefixes) await deletePrefix(admin as unknown as Parameters<typeof deletePrefix>[0], p);
  prefixes = [];
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

describe.each([
  ['default options (RESP3, legacy reply mapping)', {}],
  ["replyMapping: 'resp3'", { replyMapping: 'resp3' as const }],
  ['protocol: 2', { protocol: 2 as const }],
])('an ioredis 6 client, %s', (_label, options) => {
  it('is taken by Queue, EventBus, Locks and Scheduler, and each of them works on it', async () => {
    const connection = asConnection(client6(options));
    const p = prefix();

    // Queue: send, then a consumer (blocking on a duplicate of this client) handles it.
    const queue = new Queue<{ n: number }>('orders', { connection, prefix: p });
    closers.push(() => queue.close());
    const seen: number[] = [];
    const consumer = queue.consume((message) => void seen.push(message.payload.n), { blockMs: 1_000 });
    closers.unshift(() => consumer.close());
    // The first send may land before the consumer blocks; the second wakes the consumer blocked on its
    // duplicate of the caller's client (named after the queue, so duplicate() took our options).
    await queue.send({ n: 1 });
    await waitFor(() => seen.length === 1, 'the first message handled');
    await waitFor(
      () => consumerIsBlocked(admin as unknown as Parameters<typeof consumerIsBlocked>[0], queue.baseKey),
      'the consumer to block',
    );
    await queue.send({ n: 2 }, { priority: 'HIGH' });
    await waitFor(() => seen.length === 2, 'the second message handled');
    expect(seen).toEqual([1, 2]);
    expect((await queue.getStats()).counters.acked).toBe(2);

    // Event bus: subscribe, publish, consume.
    const bus = new EventBus('bus', { connection, prefix: p });
    closers.push(() => bus.close());
    await bus.subscribe('mailer', 'account.*');
    const events: unknown[] = [];
    const busConsumer = bus.consume<{ id: number }>('mailer', (event) => void events.push(event.data));
    closers.unshift(() => busConsumer.close());
    const published = await bus.publish('account.created', { id: 7 });
    expect(published).toMatchObject({ delivered: 1 });
    await waitFor(() => events.length === 1, 'the event handled');
    expect(events).toEqual([{ id: 7 }]);
    expect(await bus.history('account.created')).toHaveLength(1);

    // Locks: acquire, a second acquire is refused, release, the fence grows.
    const locks = new Locks({ connection, prefix: p });
    closers.push(() => locks.close());
    const lock = await locks.acquire('invoice', { ttlMs: 10_000 });
    expect(lock).not.toBeNull();
    expect(await locks.acquire('invoice', { ttlMs: 10_000 })).toBeNull();
    await locks.release(lock!);
    const again = await locks.acquire('invoice', { ttlMs: 10_000 });
    expect(again!.fence).toBeGreaterThan(lock!.fence);
    await locks.release(again!);

    // Scheduler: an interval job runs, and its status (HGETALL, a map in RESP3) reads back.
    const scheduler = new Scheduler({ connection, prefix: p, pollMs: 100 });
    closers.push(() => scheduler.close());
    let runs = 0;
    scheduler.addJob({ name: 'tick', every: 100, handler: () => void runs++ }).start();
    const status = await waitFor(async () => {
      const s = await scheduler.getJobStatus('tick');
      return s && s.state === 'succeeded' && s.runCount >= 1 ? s : null;
    }, 'the job to run once');
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(status).toMatchObject({ name: 'tick', schedule: 'every 100 ms', oncePerTick: true, paused: false });
    expect((await scheduler.getAllJobsStatus()).map((s) => s.name)).toEqual(['tick']);
  });
});

describe('connection check', () => {
  it('refuses what is not an ioredis client, naming what it got', () => {
    for (const bad of [null, 42, {}, { nodes: () => [] }, new Map()]) {
      expect(() => new Queue('q', { connection: bad as unknown as Connection })).toThrow(ValidationError);
    }
    expect(() => new Queue('q', { connection: new Map() as unknown as Connection })).toThrow(
      /ioredis client .* or a redis:\/\/ URL, got an object of class Map/,
    );
  });
});

describe('an ioredis 6 Cluster', () => {
  let servers: Awaited<ReturnType<typeof startCluster>> | undefined;

  afterAll(async () => {
    await servers?.stop();
  });

  it('runs a consumer (blocking on a duplicate of the Cluster) and a lock', async () => {
    servers = await startCluster();
    const cluster = new Cluster6(servers.ports.map((port) => ({ host: '127.0.0.1', port })));
    clients.push(cluster);
    await cluster.ping();
    const connection = asConnection(cluster);
    const queues = ['a', 'b', 'c'].map((name) => new Queue<{ n: number }>(name, { connection, prefix: 'c6' }));
    const seen: string[] = [];
    const consumers = queues.map((queue) => queue.consume((m) => void seen.push(`${queue.name}:${m.payload.n}`)));
    for (const queue of queues) await queue.sendMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    await waitFor(() => seen.length === 6, 'six messages handled');
    await Promise.all(consumers.map((c) => c.close()));
    await Promise.all(queues.map((q) => q.close()));
    expect(seen.sort()).toEqual(['a:1', 'a:2', 'b:1', 'b:2', 'c:1', 'c:2']);

    const locks = new Locks({ connection, prefix: 'c6' });
    const lock = await locks.acquire('x', { ttlMs: 5_000 });
    expect(lock?.fence).toBe(1);
    await locks.release(lock!);
    await locks.close();
  });
});
