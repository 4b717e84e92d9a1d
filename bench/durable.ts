// The cost of durable sends (the durability option: WAIT for a replica before a send resolves), on a Redis
// Cluster of three masters and three replicas that this script starts on 127.0.0.1 and removes afterwards.
//   npm run bench:durable        (SENDS=3000 TRIALS=3)
// Two loads, each with and without { durability: { replicas: 1 } }, alternated trial by trial so that drift
// of the machine hits both alike: sends one at a time (each waits for its reply: a send's latency), and
// IN_FLIGHT=100 sends kept in flight (closed loop; sends made in one tick are coalesced into one script call,
// and a durable batch shares one WAIT). Prints sends per second, p50 and p99 latency, and the ratios.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { Queue } from '../src/index.js';
import { freePort, median, percentile, preciseNow, waitUntil } from './measure.js';

const SENDS = Number(process.env.SENDS ?? '3000');
const TRIALS = Number(process.env.TRIALS ?? '3');
const IN_FLIGHT = 100;

const dir = mkdtempSync(join(os.tmpdir(), 'sluice-bench-cluster-'));
const ports: number[] = [];
for (let n = 0; n < 6; n++) ports.push(await freePort());
const nodes: ChildProcess[] = ports.map((port) =>
  spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
    ],
    { stdio: 'ignore', cwd: dir },
  ),
);
const cli = (port: number, ...args: string[]) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const answers = (port: number) => {
  try {
    return cli(port, 'ping').trim() === 'PONG';
  } catch {
    return false;
  }
};
let cluster: Cluster | undefined;
try {
  await waitUntil(async () => ports.every(answers), 'the nodes to start');
  execFileSync(
    'redis-cli',
    ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
    { stdio: 'ignore' },
  );
  await waitUntil(
    async () =>
      ports.every((port) => {
        const info = cli(port, 'info', 'replication');
        return cli(port, 'cluster', 'info').includes('cluster_state:ok') && info.includes('role:master')
          ? /slave0:.*state=online/.test(info)
          : info.includes('master_link_status:up');
      }),
    'the cluster to form with its replicas in sync',
  );
  cluster = new Cluster([{ host: '127.0.0.1', port: ports[0]! }]);
  const probe = new Redis(ports[0]!, '127.0.0.1');
  const version = (/redis_version:(\S+)/.exec(await probe.info('server')) ?? [])[1];
  probe.disconnect();
  const plain = new Queue<{ n: number }>('bench', { connection: cluster, prefix: 'durable-bench' });
  const durable = new Queue<{ n: number }>('bench', {
    connection: cluster,
    prefix: 'durable-bench',
    durability: { replicas: 1 },
  });

  /** SENDS sends through `queue` with `inFlight` kept in flight; per-send latencies and sends per second. */
  const run = async (queue: Queue<{ n: number }>, inFlight: number) => {
    const times: number[] = [];
    let next = 0;
    const started = preciseNow();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < SENDS) {
          const n = next++;
          const at = preciseNow();
          await queue.send({ n });
          times.push(preciseNow() - at);
        }
      }),
    );
    const seconds = (preciseNow() - started) / 1000;
    // Keep the queue small between trials: its ready list of normal priority holds every message sent.
    await cluster!.del('{durable-bench:bench}:r3');
    return { rate: SENDS / seconds, sorted: times.sort((a, b) => a - b) };
  };

  console.log(
    `durable sends: Redis Cluster ${version}, 3 masters + 3 replicas on 127.0.0.1, ${os.cpus().length} cores ` +
      `(${os.cpus()[0]?.model ?? '?'}), Node ${process.version}; ${SENDS} sends per trial, ${TRIALS} trials ` +
      `alternated, medians shown`,
  );
  for (const inFlight of [1, IN_FLIGHT]) {
    await run(plain, inFlight);
    await run(durable, inFlight);
    type Trial = { rate: number; p50: number; p99: number };
    const results: Record<'plain' | 'durable', Trial[]> = { plain: [], durable: [] };
    for (let trial = 0; trial < TRIALS; trial++) {
      for (const [label, queue] of trial % 2 === 0
        ? ([
            ['plain', plain],
            ['durable', durable],
          ] as const)
        : ([
            ['durable', durable],
            ['plain', plain],
          ] as const)) {
        const { rate, sorted } = await run(queue, inFlight);
        results[label].push({ rate, p50: percentile(sorted, 50), p99: percentile(sorted, 99) });
      }
    }
    const summary = (label: 'plain' | 'durable') => ({
      rate: median(results[label].map((r) => r.rate)),
      p50: median(results[label].map((r) => r.p50)),
      p99: median(results[label].map((r) => r.p99)),
    });
    const a = summary('plain');
    const b = summary('durable');
    const line = (label: string, r: typeof a) =>
      `    ${label.padEnd(8)} ${r.rate.toFixed(0).padStart(6)} sends/s, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`;
    console.log(`  ${inFlight} in flight:`);
    console.log(line('plain', a));
    console.log(line('durable', b));
    console.log(
      `    durable / plain: throughput ${(b.rate / a.rate).toFixed(2)}x, p50 ${(b.p50 / a.p50).toFixed(2)}x, ` +
        `p99 ${(b.p99 / a.p99).toFixed(2)}x`,
    );
  }
  await Promise.all([plain.close(), durable.close()]);
} finally {
  cluster?.disconnect();
  const running = nodes.filter((node) => node.exitCode === null && node.signalCode === null);
  for (const node of running) node.kill('SIGKILL');
  await Promise.all(running.map((node) => once(node, 'exit')));
  rmSync(dir, { recursive: true, force: true });
}
