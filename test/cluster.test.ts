import { execFileSync } from 'node:child_process';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, EventBus, Queue } from '../src/index.js';
import { runCli } from './cli.helpers.js';
import { waitFor } from './helpers.js';
import { startCluster } from './servers.js';

/**
 * The same scripts on a real Redis Cluster: three masters started here on 127.0.0.1, queues spread
 * over their slots. Every script touches only the keys of one hash tag, so none may raise CROSSSLOT.
 */

let servers: Awaited<ReturnType<typeof startCluster>> | undefined;
let ports: number[] = [];
let cluster: Cluster;

beforeAll(async () => {
  servers = await startCluster();
  ports = servers.ports;
  cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
  await cluster.ping();
});

afterAll(async () => {
  await cluster?.quit().catch(() => undefined);
  await servers?.stop();
});

describe('Redis Cluster', () => {
  it('queues spread over the nodes, and every transition runs unchanged', async () => {
    const queues = Array.from(
      { length: 6 },
      (_, n) =>
        new Queue<{ n: number }>(`orders-${n}`, {
          connection: cluster,
          prefix: 'cluster',
          retry: { baseMs: 0, capMs: 0 },
        }),
    );
    const owners = new Set(
      queues.map(
        (q) =>
          cluster.slots[
            Number(
              execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'keyslot', q.baseKey], {
                encoding: 'utf8',
              }).trim(),
            )
          ]?.[0],
      ),
    );
    expect(owners.size).toBeGreaterThan(1);

    for (const queue of queues) {
      await queue.sendMany([
        { payload: { n: 1 }, priority: 'LOW' },
        { payload: { n: 2 }, priority: 'CRITICAL', partitionKey: 'p' },
        { payload: { n: 3 }, partitionKey: 'p', dedupKey: 'd' },
        { payload: { n: 4 }, delayMs: 50, maxRetries: 0 },
      ]);
      const first = await queue.dequeue({ count: 10 });
      expect(first.map((d) => d.payload.n)).toEqual([2, 1]);
      await queue.nack(first[1]!, { error: 'retry me' });
      await queue.extend(first[0]!, { visibilityMs: 10_000 });
      await queue.ack(first[0]!);
      const rest: typeof first = [];
      await waitFor(async () => {
        rest.push(...(await queue.dequeue({ count: 10 })));
        return rest.length >= 3;
      }, 'the retried, released and delayed messages');
      expect(rest.map((d) => d.payload.n).sort()).toEqual([1, 3, 4]);
      await queue.nack(
        rest.find((d) => d.payload.n === 4)!,
        { error: 'to the DLQ' },
      );
      expect(await queue.replayDeadLetters()).toHaveLength(1);
      await queue.pause();
      await queue.resume();
      await queue.setRateLimit({ max: 10, windowMs: 1_000 });
      expect(await queue.reclaim()).toBe(0);
      expect(await queue.promote()).toBe(0);
      expect((await queue.getStats()).inflight).toBe(2);
    }
  });

  it('a consumer blocks and wakes on the node that owns its queue', async () => {
    const queue = new Queue<string>('cluster-consumed', { connection: cluster, prefix: 'cluster' });
    const handled: string[] = [];
    const consumer = queue.consume((m) => {
      handled.push(m.payload);
    });
    await queue.send('now');
    await queue.send('later', { delayMs: 100 });
    await waitFor(() => handled.length === 2, 'both messages');
    await consumer.close();
    expect(handled).toEqual(['now', 'later']);
  });

  it("a redis:// URL of one node is refused with failure 'cluster', naming the fix", async () => {
    const slotOwner = (name: string) => {
      const probe = new Queue(name, { connection: cluster, prefix: 'cluster', register: false });
      const slot = Number(
        execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'keyslot', probe.baseKey], {
          encoding: 'utf8',
        }).trim(),
      );
      return cluster.slots[slot]?.[0];
    };
    // A queue whose slot another node serves: the node of the URL answers MOVED.
    const name = Array.from({ length: 50 }, (_, n) => `elsewhere-${n}`).find(
      (candidate) => slotOwner(candidate) !== `127.0.0.1:${ports[0]}`,
    )!;
    const queue = new Queue(name, { connection: `redis://127.0.0.1:${ports[0]}`, prefix: 'cluster', register: false });
    try {
      const error = await queue.send({ n: 1 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).toMatchObject({ code: 'CONNECTION', failure: 'cluster' });
      expect((error as Error).message).toContain('pass an ioredis Cluster as the connection');
    } finally {
      await queue.close();
    }
  });

  it('the CLI given one node of a cluster talks to the whole cluster', async () => {
    const prefix = `cli-${Date.now()}`;
    const names = Array.from({ length: 6 }, (_, n) => `cli-q${n}`);
    for (const name of names) {
      const queue = new Queue(name, { connection: cluster, prefix });
      await queue.send({ name });
      await queue.close();
    }
    const url = `redis://127.0.0.1:${ports[0]}`;
    const status = await runCli(['status', '--prefix', prefix, '--json'], { REDIS_URL: url });
    expect(status.code, status.stderr).toBe(0);
    const queues = status.json().queues as { name: string; ready: { normal: number } }[];
    expect(queues.map((q) => [q.name, q.ready.normal]).sort()).toEqual(names.map((name) => [name, 1]));
    const bench = await runCli(['bench', '--count', '3000', '--json'], { REDIS_URL: url });
    expect(bench.code, bench.stderr).toBe(0);
    expect(bench.json()).toMatchObject({ count: 3000, drained: 3000 });
    // Its temporary keys are gone from every master.
    for (const node of cluster.nodes('master')) expect(await node.keys('{sluice-bench-*')).toEqual([]);
    for (const node of cluster.nodes('master')) {
      const keys = await node.keys(`{${prefix}:*`);
      if (keys.length > 0) for (const key of keys) await node.del(key);
    }
  });

  it('event buses spread over the nodes, and every bus script runs unchanged (one slot per bus)', async () => {
    const buses = Array.from(
      { length: 4 },
      (_, n) => new EventBus(`events-${n}`, { connection: cluster, prefix: 'cluster', retry: { baseMs: 0, capMs: 0 } }),
    );
    const owners = new Set(
      buses.map(
        (b) =>
          cluster.slots[
            Number(
              execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'keyslot', b.baseKey], {
                encoding: 'utf8',
              }).trim(),
            )
          ]?.[0],
      ),
    );
    expect(owners.size).toBeGreaterThan(1);
    for (const bus of buses) {
      await bus.subscribe('exact', 'account.created');
      await bus.subscribe('wild', 'account.#', { filter: { 'data.plan': { in: ['pro'] } } });
      await bus.pause('wild');
      await bus.resume('wild');
      const results = await bus.publishMany([
        { type: 'account.created', data: { plan: 'pro' }, id: 'e1' },
        { type: 'account.created', data: { plan: 'free' }, partitionKey: 'a-1' },
        { type: 'account.created', data: { plan: 'pro' }, id: 'e1' },
      ]);
      expect(results.map((r) => r.delivered)).toEqual([2, 1, 0]);
      const handled: string[] = [];
      const consumer = bus.consume<{ plan: string }>('exact', (event) => void handled.push(event.data.plan));
      await waitFor(() => handled.length === 2, 'the exact subscriber to handle both events');
      await consumer.close();
      expect(await bus.replay('wild', 'account.created', { limit: 1 })).toBe(1);
      expect(await bus.history('account.created')).toHaveLength(2);
      expect((await bus.listSubscriptions()).map((s) => s.subscriberId)).toEqual(['exact', 'wild']);
      expect((await bus.getStats()).events).toMatchObject({ published: 2, delivered: 3, duplicates: 1, replayed: 1 });
      expect(await bus.unsubscribe('wild', { dropQueue: true })).toBe(true);
      await bus.close();
    }
  });
});
