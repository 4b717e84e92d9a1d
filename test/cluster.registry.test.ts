import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, EventBus, Locks, Queue } from '../src/index.js';
import { queueBaseKey } from '../src/keys.js';
import { startCluster } from './servers.js';

/**
 * Discovery on a real three-master Redis Cluster: the registry is its own slot (registration never
 * raises CROSSSLOT), and the fallback scan walks every master.
 */

let cluster: Cluster;
let stop: () => Promise<void> = async () => undefined;

beforeAll(async () => {
  const started = await startCluster();
  stop = started.stop;
  cluster = new Cluster(started.ports.map((port) => ({ host: '127.0.0.1', port })));
  await cluster.ping();
});

afterAll(async () => {
  await cluster?.quit().catch(() => undefined);
  await stop();
});

describe('Redis Cluster: discover', () => {
  it('lists registered objects and finds old-layout queues on every master', async () => {
    const names = Array.from({ length: 8 }, (_, n) => `q${n}`);
    for (const name of names) await new Queue(name, { connection: cluster, prefix: 'reg' }).send({ name });
    await new EventBus('domain', { connection: cluster, prefix: 'reg' }).publish('a.b', {});
    const locks = new Locks({ connection: cluster, prefix: 'reg' });
    await locks.release((await locks.acquire('report'))!);
    expect(await discover(cluster, { prefix: 'reg', scanLimit: 0 })).toEqual({
      queues: names,
      buses: ['domain'],
      locks: ['report'],
      jobs: [],
      complete: false,
    });

    // Old layout, no registry: queues on more than one node, found by scanning every master.
    const old = Array.from({ length: 8 }, (_, n) => `old${n}`);
    const owners = new Set<string | undefined>();
    for (const name of old) {
      const key = `${queueBaseKey('legacy', name)}:stats`;
      await cluster.hset(key, 'sent', '1');
      owners.add(cluster.slots[Number(await cluster.cluster('KEYSLOT', key))]?.[0]);
    }
    expect(owners.size).toBeGreaterThan(1);
    expect(await discover(cluster, { prefix: 'legacy' })).toMatchObject({ queues: old, complete: true });
  });
});
