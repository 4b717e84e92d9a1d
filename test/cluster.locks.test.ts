import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Locks, Scheduler } from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import { waitFor } from './helpers.js';
import { startCluster } from './servers.js';

/**
 * Locks and the scheduler on a real three-master Redis Cluster: a lock's keys share its own hash tag
 * (locks spread over the nodes), the scheduler's share `{prefix:scheduler/}`; no script may raise CROSSSLOT.
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

describe('Redis Cluster: locks and scheduler', () => {
  it('every lock transition runs on locks spread over the nodes', async () => {
    const locks = new Locks({ connection: cluster, prefix: 'cluster' });
    const owners = new Set<string | undefined>();
    for (let n = 0; n < 6; n++) {
      const slot = Number(await cluster.cluster('KEYSLOT', lockKeys('cluster', `resource-${n}`).holder));
      owners.add(cluster.slots[slot]?.[0]);
    }
    expect(owners.size).toBeGreaterThan(1);
    for (let n = 0; n < 6; n++) {
      const lock = await locks.acquire(`resource-${n}`, { ttlMs: 10_000 });
      expect(lock!.fence).toBe(1);
      expect(await locks.acquire(`resource-${n}`, { ttlMs: 10_000 })).toBeNull();
      await locks.extend(lock!, { ttlMs: 20_000 });
      await locks.release(lock!);
      expect(await locks.withLock(`resource-${n}`, (_signal, again) => again.fence)).toBe(2);
    }
  });

  it('the scheduler claims, records, pauses, restarts and cleans up', async () => {
    const scheduler = new Scheduler({ connection: cluster, prefix: 'cluster', pollMs: 50 });
    scheduler.on('error', () => undefined);
    scheduler.addJob({ name: 'tick', every: 100, handler: ({ fence }) => fence }).start();
    await waitFor(async () => ((await scheduler.getJobStatus('tick'))?.runCount ?? 0) >= 2, 'two runs');
    await scheduler.pauseJob('tick');
    await scheduler.resumeJob('tick');
    await scheduler.restartJob('tick');
    const statuses = await scheduler.getAllJobsStatus();
    expect(statuses.map((s) => s.name)).toEqual(['tick']);
    expect(await scheduler.forgetAbandonedJobs(3_600_000)).toEqual([]);
    await scheduler.close();
  });
});
