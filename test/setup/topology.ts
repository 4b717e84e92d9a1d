/**
 * The Redis topology the suite runs against, chosen by SLUICE_TEST_TOPOLOGY:
 *   - `single` (the default): one Redis node, found by test/setup/services.ts;
 *   - `cluster`: a Redis Cluster of three masters that the global setup starts on 127.0.0.1 itself.
 * The same test files run on both; test/helpers.ts hands them a client of the right kind. Free of vitest,
 * so vitest.config.ts, the global setup and the fixtures' processes can all read it.
 */
export type Topology = 'single' | 'cluster';

function readTopology(): Topology {
  const value = process.env.SLUICE_TEST_TOPOLOGY ?? 'single';
  if (value !== 'single' && value !== 'cluster') {
    throw new Error(`SLUICE_TEST_TOPOLOGY must be "single" or "cluster", got "${value}"`);
  }
  return value;
}

export const TOPOLOGY: Topology = readTopology();
export const ON_CLUSTER = TOPOLOGY === 'cluster';

/**
 * The cluster's nodes as `host:port,host:port,...`, set by the global setup on the cluster topology for
 * the test files and the processes they start (whose REDIS_URL then names one of these masters).
 */
export const CLUSTER_NODES_ENV = 'SLUICE_TEST_CLUSTER_NODES';

/**
 * Test files that do not run on the cluster topology, each with the one reason why. Everything else runs
 * on both. A file that mixes both kinds skips its single-node tests itself, with `singleNodeOnly(reason)`
 * from test/helpers.ts.
 */
export const SINGLE_NODE_ONLY: Record<string, string> = {
  'test/cluster.test.ts': 'starts a 3-master cluster of its own (so it runs on every topology already)',
  'test/cluster.locks.test.ts': 'starts a 3-master cluster of its own (so it runs on every topology already)',
  'test/cluster.registry.test.ts': 'starts a 3-master cluster of its own (so it runs on every topology already)',
  'test/cluster.spread.test.ts': 'starts a 3-master cluster of its own (so it runs on every topology already)',
  'test/cluster.failover.test.ts': 'starts a 3-master, 3-replica cluster of its own and kills its masters',
  'test/durability.test.ts': 'runs on a master and a replica it starts itself (WAIT needs a replica)',
  'test/ioredis6.test.ts':
    "drives ioredis 6's single-node client at one URL; its cluster half starts a cluster of its own",
  'test/chaos.test.ts': 'kills and restarts the redis-server it started itself',
  'test/close.test.ts': 'runs against redis-servers it starts, stops and kills itself',
  'test/consumer.reconnect.test.ts': 'restarts the redis-server it started itself',
  'test/outbox.redis.test.ts': 'restarts the redis-server it started itself',
  'test/queue.oom.test.ts': 'fills a redis-server of its own to maxmemory',
  'test/faults.events.test.ts': 'talks through a TCP proxy in front of one Redis node',
  'test/faults.locks.test.ts': 'talks through a TCP proxy in front of one Redis node',
  'test/faults.proxy.test.ts': 'talks through a TCP proxy in front of one Redis node',
  'test/faults.queue.test.ts': 'talks through a TCP proxy in front of one Redis node',
  'test/faults.scheduler.test.ts': 'talks through a TCP proxy in front of one Redis node',
  'test/package.test.ts': "the packed package's apps are given one redis:// URL",
  'test/example.notifications.test.ts': 'the example takes one redis:// URL (examples/notifications)',
};
