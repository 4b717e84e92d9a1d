import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, inject } from 'vitest';
import { Queue, type QueueOptions } from '../src/index.js';
import { ON_CLUSTER } from './setup/topology.js';
import { waitFor } from './wait.js';

export { waitFor };
export { ON_CLUSTER, TOPOLOGY } from './setup/topology.js';

/**
 * The URL of the Redis the tests use: on the cluster topology, of its first master only (for what takes
 * one node's address; a component given it would see MOVED for keys of the other masters' slots).
 */
export const redisUrl = (): string => inject('redisUrl');

/**
 * A new client of the suite's Redis: a Redis on a single node, an ioredis Cluster on the cluster topology,
 * typed as Redis so that test bodies call the commands the two share unchanged. The caller closes it.
 */
export function newClient(options: RedisOptions = {}): Redis {
  if (!ON_CLUSTER) return new Redis(redisUrl(), options);
  const nodes = inject('redisNodes').map((node) => {
    const [host, port] = node.split(':');
    return { host: host!, port: Number(port) };
  });
  return asOneDatabase(new Cluster(nodes, { redisOptions: options }));
}

/**
 * A Cluster that answers the whole-database commands the tests use as one database would: ioredis sends a
 * command without a key to one node picked at random, so KEYS, SCAN, DBSIZE and CLIENT LIST would see a
 * third of the data, and SCRIPT LOAD would load on one node only. Here they run on every master: KEYS and
 * SCAN return the keys of all of them (SCAN in a single call, cursor '0' back), DBSIZE their sum, CLIENT
 * LIST their lists joined, SCRIPT LOAD loads everywhere. Everything else is the Cluster's own.
 */
function asOneDatabase(cluster: Cluster): Redis {
  type Args = (string | number)[];
  // A fresh Cluster knows no node until its first command: ask once, so a fan-out never runs over none.
  const each = async <R>(run: (node: Redis) => Promise<R>): Promise<R[]> => {
    if (cluster.nodes('master').length === 0) await cluster.ping();
    const masters = cluster.nodes('master');
    if (masters.length === 0) throw new Error('the test cluster client knows no master');
    return await Promise.all(masters.map(run));
  };
  const overrides = {
    async keys(pattern: string): Promise<string[]> {
      return (await each((node) => node.keys(pattern))).flat();
    },
    async scan(cursor: string | number, ...args: Args): Promise<[string, string[]]> {
      if (String(cursor) !== '0') throw new Error('the test cluster client scans everything in its first call');
      const found = await each(async (node) => {
        const keys: string[] = [];
        let next = '0';
        do {
          const [after, batch] = (await node.call('SCAN', next, ...args)) as [string, string[]];
          next = after;
          keys.push(...batch);
        } while (next !== '0');
        return keys;
      });
      return ['0', found.flat()];
    },
    async dbsize(): Promise<number> {
      return (await each((node) => node.dbsize())).reduce((sum, n) => sum + n, 0);
    },
    async client(subcommand: string, ...args: Args): Promise<unknown> {
      if (subcommand.toUpperCase() !== 'LIST') return cluster.call('CLIENT', subcommand, ...args);
      return (await each((node) => node.call('CLIENT', 'LIST', ...args) as Promise<string>)).join('');
    },
    async script(subcommand: string, ...args: Args): Promise<unknown> {
      const replies = await each((node) => node.call('SCRIPT', subcommand, ...args));
      return replies[0];
    },
  };
  return Object.assign(cluster, overrides) as unknown as Redis;
}

/** The nodes to run a whole-database command on: every master of the cluster, or the client itself. */
export function masters(redis: Redis): Redis[] {
  return ON_CLUSTER ? (redis as unknown as Cluster).nodes('master') : [redis];
}

/**
 * For `describe.skipIf` / `it.skipIf`: true on the cluster topology, where a test that needs one Redis node
 * (it restarts it, fakes it with a proxy, hands sluice its URL) does not apply. `reason` says which.
 */
export function singleNodeOnly(reason: string): boolean {
  if (!reason) throw new Error('singleNodeOnly(reason): say why the test needs a single node');
  return ON_CLUSTER;
}

/** A prefix no other test uses, so tests never share keys and never flush the database. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/**
 * Deletes every key of a prefix (keys are `{prefix:...}`), scanning every master on the cluster topology.
 * On a cluster one DEL per key: the keys of one prefix span several slots (one per queue or bus).
 */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (!ON_CLUSTER && keys.length > 0) deleted += await node.del(...keys);
      else for (const key of keys) deleted += await node.del(key);
    } while (cursor !== '0');
  }
  return deleted;
}

/** Whether a consumer of this queue is blocked in Redis waiting for work (its connection is named after the queue). */
export async function consumerIsBlocked(redis: Redis, baseKey: string): Promise<boolean> {
  const lists = await Promise.all(masters(redis).map((node) => node.client('LIST') as Promise<string>));
  return lists
    .join('\n')
    .split('\n')
    .some((line) => line.includes(`name=sluice:consumer:${baseKey} `) && line.includes('cmd=blpop'));
}

/**
 * One Redis connection per test file, plus queues under a per-test prefix. The keys of a passing test
 * are deleted afterwards; a failing test's are kept for inspection (and named in the output).
 */
export function useRedis() {
  const clients: Redis[] = [];
  let prefixes: string[] = [];
  let queues: Queue<any>[] = [];
  const redis = newClient();
  clients.push(redis);

  afterEach(async (context) => {
    await Promise.all(queues.map((q) => q.close()));
    queues = [];
    if (context.task.result?.state === 'fail') {
      console.error(`keeping keys of failed test "${context.task.name}": prefixes ${prefixes.join(', ')}`);
    } else {
      for (const prefix of prefixes) await deletePrefix(redis, prefix);
    }
    prefixes = [];
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });

  return {
    redis,
    /** A fresh connection, closed when the file ends. */
    connection(): Redis {
      const client = newClient();
      clients.push(client);
      return client;
    },
    prefix(): string {
      const prefix = uniquePrefix();
      prefixes.push(prefix);
      return prefix;
    },
    /** A queue under this test's own prefix (pass `prefix` to share one between queues of a test). */
    queue<T = unknown>(name = 'q', options: Partial<QueueOptions> = {}): Queue<T> {
      const prefix = options.prefix ?? this.prefix();
      if (!prefixes.includes(prefix)) prefixes.push(prefix);
      const queue = new Queue<T>(name, { connection: redis, ...options, prefix });
      queues.push(queue);
      return queue;
    },
  };
}

/** A small deterministic generator, so a failing order can be reproduced. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
