// Spread (issue 15): draining queues spread over a three-master Redis Cluster against the same work on one node.
//   npm run bench:cluster        (QUEUES=12 PER_QUEUE=20000 CONCURRENCY=16 TRIALS=3)
// Starts its own servers (a 3-master cluster and one plain redis-server, nothing persisted) and stops them at the
// end. Each trial fills QUEUES queues with PER_QUEUE messages, then one consumer per queue (concurrency
// CONCURRENCY, all in this process) drains them all; the rate is all messages over the time from the consumers'
// start to the last handled. Trials alternate one node / cluster, after an unscored warm-up of each; medians.
// During each drain it reads each redis-server's CPU time (INFO cpu, user + sys), this process's, and the
// machine's (/proc/stat): what the rate is limited by.
import os from 'node:os';
import { Cluster, Redis } from 'ioredis';
import { Queue } from '../src/index.js';
import {
  machineCpuTicks,
  median,
  preciseNow,
  redisCpuSeconds,
  startPrivateCluster,
  startPrivateRedis,
} from './measure.js';

const QUEUES = Number(process.env.QUEUES ?? '12');
const PER_QUEUE = Number(process.env.PER_QUEUE ?? '20000');
const CONCURRENCY = Number(process.env.CONCURRENCY ?? '16');
const TRIALS = Number(process.env.TRIALS ?? '3');
const TOTAL = QUEUES * PER_QUEUE;

interface Trial {
  perSecond: number;
  seconds: number;
  /** CPU seconds per second of drain, per redis-server */
  redisCores: number[];
  /** CPU seconds per second of drain of this (the consumers') process */
  nodeCores: number;
  /** the machine's busy share over the drain, 0..1 */
  machineBusy: number;
  /** CPU seconds per second used by everything else on the machine (busy cores less ours) */
  othersCores: number;
  /** which master each queue landed on (cluster only) */
  queuesPerNode: number[];
}

interface Target {
  label: string;
  connection: Redis | Cluster;
  /** plain connections to each redis-server (one, or each master) */
  servers: Redis[];
}

let trialNumber = 0;

/** The master (index into `servers`) serving a key's slot. */
async function masterOf(cluster: Cluster, servers: Redis[], key: string): Promise<number> {
  const slot = Number(await cluster.cluster('KEYSLOT', key));
  const port = Number(cluster.slots[slot]![0]!.split(':')[1]);
  return servers.findIndex((server) => server.options.port === port);
}

/**
 * QUEUES fresh queue names for one trial, spread as evenly as the masters allow (4/4/4 for 12): names hashed
 * at random would give some trials 2/2/8, and then one master does two thirds of the work.
 */
async function spreadNames(cluster: Cluster, servers: Redis[]): Promise<string[]> {
  const n = trialNumber++;
  const room = servers.map((_, i) => Math.floor(QUEUES / servers.length) + (i < QUEUES % servers.length ? 1 : 0));
  const names: string[] = [];
  for (let k = 0; names.length < QUEUES; k++) {
    const name = `drain-${n}-${k}`;
    const master = await masterOf(cluster, servers, `{bench:${name}}`);
    if (room[master]! > 0) {
      room[master]! -= 1;
      names.push(name);
    }
  }
  return names;
}

async function drain(target: Target, names: string[], cluster: Cluster, masters: Redis[]): Promise<Trial> {
  const queues = names.map(
    (name) => new Queue<{ n: number }>(name, { connection: target.connection, prefix: 'bench' }),
  );
  await Promise.all(
    queues.map(async (queue) => {
      for (let sent = 0; sent < PER_QUEUE; sent += 1000) {
        const batch = Math.min(1000, PER_QUEUE - sent);
        await queue.sendMany(Array.from({ length: batch }, (_, k) => ({ payload: { n: sent + k } })));
      }
    }),
  );
  const queuesPerNode = target.servers.map(() => 0);
  if (target.servers.length > 1) {
    for (const queue of queues) queuesPerNode[await masterOf(cluster, masters, queue.baseKey)]! += 1;
  } else {
    queuesPerNode[0] = QUEUES;
  }

  let handled = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const redisBefore = await Promise.all(target.servers.map(redisCpuSeconds));
  const nodeBefore = process.cpuUsage();
  const machineBefore = machineCpuTicks();
  const started = preciseNow();
  const consumers = queues.map((queue) =>
    queue.consume(
      () => {
        if (++handled === TOTAL) finish();
      },
      { concurrency: CONCURRENCY },
    ),
  );
  await done;
  const seconds = (preciseNow() - started) / 1000;
  const machineAfter = machineCpuTicks();
  const nodeUsed = process.cpuUsage(nodeBefore);
  const redisAfter = await Promise.all(target.servers.map(redisCpuSeconds));
  await Promise.all(consumers.map((consumer) => consumer.close()));
  for (const queue of queues) {
    const stats = await queue.getStats();
    if (stats.counters.acked !== PER_QUEUE)
      throw new Error(`bench: ${queue.name} acked ${stats.counters.acked} of ${PER_QUEUE}`);
  }
  for (const server of target.servers) await server.flushall(); // each trial's own keys, on the bench's own servers
  const redisCores = redisAfter.map((after, i) => (after - redisBefore[i]!) / seconds);
  const nodeCores = (nodeUsed.user + nodeUsed.system) / 1e6 / seconds;
  const machineBusy = (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total);
  const ours = redisCores.reduce((a, b) => a + b, 0) + nodeCores;
  return {
    perSecond: TOTAL / seconds,
    seconds,
    redisCores,
    nodeCores,
    machineBusy,
    othersCores: Math.max(0, machineBusy * os.cpus().length - ours),
    queuesPerNode,
  };
}

const single = await startPrivateRedis();
let cluster: Awaited<ReturnType<typeof startPrivateCluster>> | undefined;
let clusterClient: Cluster | undefined;
let singleClient: Redis | undefined;
const stopAll = async () => {
  clusterClient?.disconnect();
  singleClient?.disconnect();
  single.stop();
  await single.exited;
  await cluster?.stop();
};
// Interrupted (Ctrl-C), the servers go too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

try {
  cluster = await startPrivateCluster(3);
  clusterClient = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  await clusterClient.ping();
  singleClient = new Redis(single.port, '127.0.0.1');
  const targets: Target[] = [
    { label: 'one node', connection: singleClient, servers: [single.redis] },
    { label: '3-master cluster', connection: clusterClient, servers: cluster.nodes },
  ];
  const version = (/redis_version:(\S+)/.exec(await single.redis.info('server')) ?? [])[1];
  console.log(
    `bench:cluster: ${QUEUES} queues × ${PER_QUEUE} messages (${TOTAL} per trial), one consumer per queue at ` +
      `concurrency ${CONCURRENCY}, all in one Node process; ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ` +
      `Redis ${version}, Node ${process.version}; ${TRIALS} alternated trials each after a warm-up`,
  );
  const drainBoth = async (target: Target, names: string[]) => drain(target, names, clusterClient!, cluster!.nodes);
  // warm-up: JIT, script loading, connections
  for (const target of targets) await drainBoth(target, await spreadNames(clusterClient, cluster.nodes));
  const results = new Map<string, Trial[]>(targets.map((t) => [t.label, []]));
  for (let t = 0; t < TRIALS; t++) {
    const names = await spreadNames(clusterClient, cluster.nodes); // the same names on both, fresh keys each round
    // Alternate, and swap the order every round, so drift on a shared machine falls on both alike.
    for (const target of t % 2 === 0 ? targets : [...targets].reverse()) {
      const trial = await drainBoth(target, names);
      results.get(target.label)!.push(trial);
      console.log(
        `  ${target.label.padEnd(16)} ${Math.round(trial.perSecond).toLocaleString('en-US').padStart(7)} msg/s  ` +
          `(${trial.seconds.toFixed(2)} s; redis CPU ${trial.redisCores.map((c) => c.toFixed(2)).join(' + ')} cores, ` +
          `node ${trial.nodeCores.toFixed(2)}, other processes ${trial.othersCores.toFixed(2)}, ` +
          `machine ${(trial.machineBusy * 100).toFixed(0)}% busy` +
          `${trial.queuesPerNode.length > 1 ? `; queues per master ${trial.queuesPerNode.join('/')}` : ''})`,
      );
    }
  }

  const summary = targets.map((target) => {
    const trials = results.get(target.label)!;
    const redis = median(trials.map((t) => t.redisCores.reduce((a, b) => a + b, 0)));
    return {
      label: target.label,
      perSecond: median(trials.map((t) => t.perSecond)),
      redisCores: redis,
      busiestRedis: median(trials.map((t) => Math.max(...t.redisCores))),
      nodeCores: median(trials.map((t) => t.nodeCores)),
      machineBusy: median(trials.map((t) => t.machineBusy)),
      othersCores: median(trials.map((t) => t.othersCores)),
    };
  });
  console.log('\nmedians:');
  for (const s of summary) {
    const perMessage = (cores: number) => ((cores / s.perSecond) * 1e6).toFixed(1);
    console.log(
      `  ${s.label.padEnd(16)} ${Math.round(s.perSecond).toLocaleString('en-US').padStart(7)} msg/s; redis ${s.redisCores.toFixed(2)} cores ` +
        `(busiest server ${s.busiestRedis.toFixed(2)}), node ${s.nodeCores.toFixed(2)}, others ${s.othersCores.toFixed(2)}, machine ${(s.machineBusy * 100).toFixed(0)}% busy; ` +
        `CPU per message: redis ${perMessage(s.redisCores)} µs, node ${perMessage(s.nodeCores)} µs`,
    );
  }
  const [one, spread] = summary as [(typeof summary)[0], (typeof summary)[0]];
  console.log(`  cluster / one node: ${(spread.perSecond / one.perSecond).toFixed(2)}×`);

  // What the rate would be with a core per process: each redis-server bounded by one core, the consumers'
  // process by one core (one Node thread), each at the CPU per message measured here.
  const redisUs = (s: typeof one) => (s.redisCores / s.perSecond) * 1e6;
  const nodeUs = (s: typeof one) => (s.nodeCores / s.perSecond) * 1e6;
  const oneNodeBound = 1e6 / redisUs(one);
  const clusterRedisBound = (3 * 1e6) / redisUs(spread);
  const clientBound = 1e6 / nodeUs(spread);
  const cores = os.cpus().length;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(
    `\nwhy: ${cores} cores are shared by this Node process, every redis-server and whatever else runs here ` +
      `(the machine was ${(one.machineBusy * 100).toFixed(0)}% / ${(spread.machineBusy * 100).toFixed(0)}% busy, one node / cluster; ` +
      `other processes took ${one.othersCores.toFixed(2)} / ${spread.othersCores.toFixed(2)} cores). The drain is bounded by ` +
      `the cores, not by any one Redis: the single redis-server used ${one.redisCores.toFixed(2)} of a core, so it had room ` +
      `to spare, and three servers on the same cores only add work: each message cost ${redisUs(spread).toFixed(1)} µs of ` +
      `Redis CPU on the cluster against ${redisUs(one).toFixed(1)} µs on one node (likely fewer commands per event-loop turn on ` +
      `each server), and ${nodeUs(spread).toFixed(1)} against ${nodeUs(one).toFixed(1)} µs in Node (the cluster client routes every ` +
      `command and writes to three sockets, so it batches less).\n` +
      `with a core per redis-server and one for the consumers, at these costs: one node tops out near ${fmt(oneNodeBound)} msg/s ` +
      `(its Redis at 1 core), three masters near ${fmt(clusterRedisBound)} msg/s (3× less the cluster's overhead), and one ` +
      `Node process near ${fmt(clientBound)} msg/s (its thread at 1 core): so ${fmt(Math.min(clusterRedisBound, clientBound))} msg/s, ` +
      `${(Math.min(clusterRedisBound, clientBound) / Math.min(oneNodeBound, 1e6 / nodeUs(one))).toFixed(1)}× one node, and the ` +
      `rest of the 3× takes consumers in ${Math.ceil(clusterRedisBound / clientBound)} or more processes. (Costs measured on busy ` +
      `shared cores run high; the ratios are the point.)`,
  );
} finally {
  await stopAll();
}
