import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurabilityError, EventBus, Queue, ValidationError } from '../src/index.js';
import { Outbox } from '../src/outbox/index.js';
import { range, useOutbox } from './outbox.helpers.js';
import { waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

/**
 * The durability option on one master with one replica (two throwaway redis-servers on 127.0.0.1): sends and
 * publishes resolve once WAIT saw the replica, sends coalesced in one tick share one WAIT, a send without the
 * option sends no WAIT, and with the replica stopped a durable send rejects with DurabilityError.
 * (The same on Redis Cluster, and across a failover: cluster.failover.test.ts.)
 */

let master: ChildProcess | undefined;
let replica: ChildProcess | undefined;
let redis: Redis;
const ctx = useOutbox();

beforeAll(async () => {
  const masterPort = await freePort();
  master = await startRedis(masterPort);
  replica = await startRedis(await freePort(), ['--replicaof', '127.0.0.1', String(masterPort)]);
  redis = new Redis(masterPort, '127.0.0.1');
  await waitFor(async () => /slave0:.*state=online/.test(await redis.info('replication')), 'the replica in sync');
});

afterAll(async () => {
  redis?.disconnect();
  for (const child of [master, replica]) {
    if (!child || child.exitCode !== null || child.signalCode !== null) continue;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
});

/** How many times the master ran a command, from INFO commandstats. */
async function calls(command: string): Promise<number> {
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.info('commandstats'));
  return match ? Number(match[1]) : 0;
}

describe('durability option', () => {
  it('is validated', () => {
    const bad: unknown[] = [null, 1, {}, { replicas: 0 }, { replicas: 1.5 }, { replicas: 1, timeoutMs: 0 }];
    bad.push({ replicas: 1, timeoutMs: 60_001 }, { replicas: 1, wait: 1 });
    for (const durability of bad) {
      expect(() => new Queue('q', { connection: redis, durability } as never)).toThrow(ValidationError);
      expect(() => new EventBus('b', { connection: redis, durability } as never)).toThrow(ValidationError);
    }
    expect(() => new Queue('q', { connection: redis, durability: { replicas: 0 } })).toThrow(
      'durability.replicas must be an integer from 1 to 1000, got 0',
    );
    expect(new Queue('q', { connection: redis, durability: { replicas: 2 } }).durability).toEqual({
      replicas: 2,
      timeoutMs: 1000,
    });
    expect(new Queue('q', { connection: redis }).durability).toBeNull();
  });

  it('sends and publishes resolve once the replica has them; a coalesced batch waits once; without it no WAIT', async () => {
    const durability = { replicas: 1, timeoutMs: 5_000 };
    const queue = new Queue<number>('durable', { connection: redis, prefix: 'd1', durability });
    const plain = new Queue<number>('durable', { connection: redis, prefix: 'd1' });
    const limited = new Queue<number>('limited', { connection: redis, prefix: 'd1', durability, maxLength: 1 });
    const bus = new EventBus('events', { connection: redis, prefix: 'd1', durability });
    await bus.subscribe('all', '#');

    let waits = await calls('wait');
    expect(await Promise.all(Array.from({ length: 50 }, (_, n) => queue.send(n, { id: `m-${n}` })))).toHaveLength(50);
    expect(await calls('wait')).toBe(waits + 1);
    expect(await queue.sendMany([{ payload: 1, id: 'many' }])).toEqual(['many']);
    expect((await bus.publish('a.b', { n: 1 })).delivered).toBe(1);
    expect(
      await bus.publishMany([
        { type: 'a.b', data: 2 },
        { type: 'a.c', data: 3 },
      ]),
    ).toHaveLength(2);
    expect(await limited.send(1, { id: 'fits' })).toBe('fits');
    await expect(limited.send(2)).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect(await calls('wait')).toBe(waits + 5);

    waits = await calls('wait');
    await Promise.all(Array.from({ length: 50 }, (_, n) => plain.send(n)));
    await plain.sendMany([{ payload: 1 }]);
    expect(await calls('wait')).toBe(waits);
    expect((await plain.getStats()).ready.normal).toBe(50 + 1 + 50 + 1);
    await Promise.all([queue.close(), plain.close(), limited.close(), bus.close()]);
  });

  it('with the replica stopped, a durable send is written but rejects with DurabilityError after timeoutMs', async () => {
    const durability = { replicas: 1, timeoutMs: 200 };
    const queue = new Queue<number>('stalled', { connection: redis, prefix: 'd2', durability });
    const bus = new EventBus('events', { connection: redis, prefix: 'd2', durability });
    replica!.kill('SIGSTOP');
    try {
      const startedAt = Date.now();
      const outcomes = await Promise.allSettled([queue.send(1, { id: 'a' }), queue.send(2, { id: 'b' })]);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
      const [a, b] = outcomes.map((outcome) => (outcome as PromiseRejectedResult).reason as DurabilityError);
      expect(a).toBeInstanceOf(DurabilityError);
      expect(a).toBe(b);
      expect(a).toMatchObject({ code: 'NOT_DURABLE', ids: ['a', 'b'], replicas: 1, acknowledged: 0, timeoutMs: 200 });
      expect(a!.message).toBe(
        'queue stalled: the write (2 ids, a, b) reached the master but reached only 0 of 1 replica(s) within 200 ms ' +
          '(option durability); it may be lost if the master fails over now. Sending again with the same ids is ' +
          'safe (a live id is not written twice, an event id is not delivered twice within the dedup window); ' +
          'check that the replicas are up and in sync',
      );
      await expect(queue.sendMany([{ payload: 3, id: 'c' }])).rejects.toMatchObject({ ids: ['c'] });
      await expect(bus.publish('x.y', 1, { id: 'e' })).rejects.toMatchObject({ code: 'NOT_DURABLE', ids: ['e'] });
      // Written on the master all the same: sending again under the same ids writes nothing twice.
      expect((await queue.getStats()).ready.normal).toBe(3);
    } finally {
      replica!.kill('SIGCONT');
    }
    expect(await queue.send(1, { id: 'a' })).toBe('a');
    expect((await queue.getStats()).ready.normal).toBe(3);
    await Promise.all([queue.close(), bus.close()]);
  });
  it('an outbox relay over a durable bus marks its rows only once the replica has them', async () => {
    const bus = new EventBus('events', {
      connection: redis,
      prefix: 'd3',
      durability: { replicas: 1, timeoutMs: 200 },
    });
    ctx.onCleanup(() => bus.close());
    const table = ctx.table('durable');
    const outbox = new Outbox({ mysql: ctx.pool, bus, table });
    outbox.on('error', () => undefined);
    ctx.onCleanup(() => outbox.close());
    await outbox.migrate();
    await bus.subscribe('all', '#');
    await outbox.publishInTransaction(
      () => undefined,
      range(5).map((seq) => ({ aggregateType: 'order', aggregateId: `o${seq}`, type: 'order.placed', data: { seq } })),
    );
    replica!.kill('SIGSTOP');
    try {
      // Published into Redis, not confirmed on the replica: the cycle fails whole, nothing marked, no attempt.
      await expect(outbox.relayOnce()).rejects.toBeInstanceOf(DurabilityError);
      expect(await ctx.statuses(table)).toEqual({ PENDING: 5 });
      const [rows] = await ctx.pool.query(`SELECT MAX(attempts) AS attempts FROM \`${table}\``);
      expect(Number((rows as { attempts: number }[])[0]!.attempts)).toBe(0);
    } finally {
      replica!.kill('SIGCONT');
    }
    // Next cycle: published again under the same event ids (the bus delivers none twice), then marked.
    expect(await outbox.relayOnce()).toEqual({ published: 5, refused: 0 });
    expect(await ctx.statuses(table)).toEqual({ PUBLISHED: 5 });
    expect((await bus.subscriberQueue('all').getStats()).ready.normal).toBe(5);
  });
});
