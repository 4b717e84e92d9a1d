import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, Queue } from '../src/index.js';
import { waitFor } from './helpers.js';
import { startCluster } from './servers.js';

/**
 * Spread (issue 15): 30 queues and 5 event buses on a real three-master Redis Cluster land on all three
 * masters, each object's keys live only on the master that owns its hash tag's slot, and every message
 * sent is delivered once.
 *
 * The cluster is this file's own, so the prefix and names are fixed and the placement is deterministic:
 * `redis-cli --cluster create` gives three masters the ranges 0-5460, 5461-10922 and 10923-16383, and the
 * slots of these names fall in all three: the queues 9 / 13 / 8, the buses 2 / 1 / 2 (five names chosen at
 * random would all land on one master 1% of the time; these were checked when chosen). Only which port
 * holds which range varies from run to run.
 */

const PREFIX = 'spread';
const QUEUES = 30;
const BUSES = 5;
const MESSAGES = 10;
const EVENTS = 4;
const DRAINED = { ready: { critical: 0, high: 0, normal: 0, low: 0 }, inflight: 0, delayed: 0, deadLetters: 0 };

let servers: Awaited<ReturnType<typeof startCluster>> | undefined;
let cluster: Cluster;
/** One plain connection per master, to read what that node holds. */
let nodes: { port: number; redis: Redis }[] = [];

beforeAll(async () => {
  servers = await startCluster();
  cluster = new Cluster(servers.ports.map((port) => ({ host: '127.0.0.1', port })));
  await cluster.ping();
  nodes = servers.ports.map((port) => ({ port, redis: new Redis(port, '127.0.0.1') }));
});

afterAll(async () => {
  for (const { redis } of nodes) redis.disconnect();
  await cluster?.quit().catch(() => undefined);
  await servers?.stop();
});

/** Slot → port of the master serving it, from a node's CLUSTER SLOTS. */
async function slotOwners(redis: Redis): Promise<number[]> {
  const owners = new Array<number>(16384);
  for (const [first, last, master] of await redis.cluster('SLOTS')) owners.fill(master![1], first, last + 1);
  return owners;
}

/** Every key on one node (SCAN: a node holds only its own slots' keys). */
async function keysOn(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** The hash tag of a key, braces included: what places it (`{spread:q-3}:r2` → `{spread:q-3}`). */
function hashTag(key: string): string {
  return key.slice(0, key.indexOf('}') + 1);
}

describe('Redis Cluster: spread', () => {
  it('30 queues and 5 buses land on all three masters, each on its slot owner only, and deliver every message once', async () => {
    const queues = Array.from(
      { length: QUEUES },
      (_, n) => new Queue<{ queue: number; n: number }>(`q-${n}`, { connection: cluster, prefix: PREFIX }),
    );
    const buses = Array.from(
      { length: BUSES },
      (_, n) => new EventBus(`bus-${n}`, { connection: cluster, prefix: PREFIX }),
    );
    for (const [q, queue] of queues.entries()) {
      await queue.sendMany(Array.from({ length: MESSAGES }, (_, n) => ({ payload: { queue: q, n } })));
    }
    for (const [b, bus] of buses.entries()) {
      await bus.subscribe('audit', 'order.#');
      for (let n = 0; n < EVENTS; n++) await bus.publish('order.placed', { bus: b, n }, { id: `e-${b}-${n}` });
    }

    // Where each object should be: the master serving the slot of its base key. Every node agrees on the map.
    const owners = await slotOwners(nodes[0]!.redis);
    for (const { redis } of nodes.slice(1)) expect(await slotOwners(redis)).toEqual(owners);
    const expected = new Map<string, number>();
    for (const object of [...queues, ...buses]) {
      expected.set(object.baseKey, owners[Number(await nodes[0]!.redis.cluster('KEYSLOT', object.baseKey))]!);
    }

    // Where each object is: the node whose keyspace holds its keys, read node by node.
    const found = new Map<string, Set<number>>();
    for (const { port, redis } of nodes) {
      const keys = await keysOn(redis);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        // Each node's keys belong only to slots that node owns.
        expect(owners[Number(await redis.cluster('KEYSLOT', key))], key).toBe(port);
        const tag = hashTag(key);
        if (!found.has(tag)) found.set(tag, new Set());
        found.get(tag)!.add(port);
      }
    }
    for (const [baseKey, port] of expected) expect([...(found.get(baseKey) ?? [])], baseKey).toEqual([port]);
    // The registry of names (one slot of its own) is the only other hash tag.
    expect([...found.keys()].filter((tag) => !expected.has(tag))).toEqual([`{${PREFIX}:registry/}`]);
    // Each bus's subscriber queue lives under the bus's tag, so on the bus's node.
    for (const bus of buses) {
      const subscriberKeys = await nodes
        .find(({ port }) => port === expected.get(bus.baseKey))!
        .redis.keys(`${bus.baseKey.replace(/[{}]/g, '\\$&')}:s:audit*`);
      expect(subscriberKeys.length, bus.baseKey).toBeGreaterThan(0);
    }

    const queueNodes = new Set(queues.map((q) => expected.get(q.baseKey)));
    const busNodes = new Set(buses.map((b) => expected.get(b.baseKey)));
    expect(queueNodes.size).toBe(3);
    expect(busNodes.size).toBe(3); // names chosen to spread (see the top); any 5 random names reach ≥2 in 99%
    for (const { port } of nodes) {
      const here = queues.filter((q) => expected.get(q.baseKey) === port).length;
      expect(here, `queues on ${port}`).toBeGreaterThanOrEqual(3);
    }

    // Every message and every event delivered once.
    const handled = new Map<string, number>();
    const seen = (key: string) => handled.set(key, (handled.get(key) ?? 0) + 1);
    const consumers = [
      ...queues.map((queue) =>
        queue.consume((m) => void seen(`q${m.payload.queue}/${m.payload.n}`), { concurrency: 4 }),
      ),
      ...buses.map((bus) => bus.consume('audit', (event) => void seen(event.id))),
    ];
    const total = QUEUES * MESSAGES + BUSES * EVENTS;
    await waitFor(() => handled.size === total, `${total} messages and events to be handled`, 60_000);
    await Promise.all(consumers.map((consumer) => consumer.close()));
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
    for (const queue of queues) expect(await queue.getStats()).toMatchObject(DRAINED);
    for (const bus of buses) {
      expect(await bus.subscriberQueue('audit').getStats()).toMatchObject(DRAINED);
      await bus.close();
    }
  }, 120_000);
});
