// What an open dashboard costs a busy queue: `sluice dashboard` runs as its own process (as an operator runs it)
// over QUEUES queues, and a consumer drains DRAIN messages from one more queue, with no dashboard open, with the
// overview open (the page's schedule: /api/overview every 2 s) and with the overview requested back to back
// (far more than any page). Trials alternate, TRIALS of each; medians are reported. Also: the Redis commands of
// one overview refresh (INFO commandstats on a private redis-server) and its HTTP time.
//   npm run bench:dashboard        (QUEUES=100 DRAIN=300000 TRIALS=3)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from '../src/index.js';
import {
  commandCalls,
  commandDelta,
  freePort,
  median,
  percentile,
  preciseNow,
  scriptTime,
  startPrivateRedis,
} from './measure.js';

const QUEUES = Number(process.env.QUEUES ?? '100');
const DRAIN = Number(process.env.DRAIN ?? '300000');
const TRIALS = Number(process.env.TRIALS ?? '3');
const prefix = 'bench-dashboard';

const { redis, stop } = await startPrivateRedis();
const redisUrl = `redis://127.0.0.1:${(redis.options.port as number) ?? 6379}`;
const others: Queue[] = [];
for (let n = 0; n < QUEUES; n++) {
  const queue = new Queue(`q${n}`, { connection: redis, prefix });
  await queue.sendMany(Array.from({ length: 100 }, (_, k) => ({ payload: { k } })));
  others.push(queue);
}
const drained = new Queue<{ n: number }>('drain', { connection: redis, prefix });
await drained.getStats(); // registered, so the dashboard's overview covers it too

const port = await freePort();
const child = spawn(
  process.execPath,
  ['dist/src/cli/main.js', 'dashboard', '--url', redisUrl, '--prefix', prefix, '--port', String(port), '--json'],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await once(child.stdout, 'data');
const base = `http://127.0.0.1:${port}/`;

async function overview(): Promise<number> {
  const at = preciseNow();
  const response = await fetch(`${base}api/overview`);
  if (!response.ok) throw new Error(`overview: HTTP ${response.status}`);
  await response.arrayBuffer();
  return preciseNow() - at;
}

// One refresh, measured alone: Redis commands and time.
await overview();
const before = await commandCalls(redis);
const scriptsBefore = await scriptTime(redis);
const alone: number[] = [];
for (let n = 0; n < 20; n++) alone.push(await overview());
const scriptsAfter = await scriptTime(redis);
const scriptUsecPerRefresh = (scriptsAfter.usec - scriptsBefore.usec) / 20;
const perRefresh = Object.fromEntries(
  Object.entries(commandDelta(before, await commandCalls(redis)))
    .filter(([name]) => name !== 'info')
    .map(([name, calls]) => [name, calls / 20]),
);
alone.sort((a, b) => a - b);

type Mode = 'closed' | 'overview every 2 s' | 'overview back to back';

async function drain(mode: Mode): Promise<{ perSecond: number; refreshes: number[] }> {
  for (let n = 0; n < DRAIN; n += 1000) {
    await drained.sendMany(Array.from({ length: 1000 }, (_, k) => ({ payload: { n: n + k } })));
  }
  let handled = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const refreshes: number[] = [];
  let draining = true;
  const poller = (async () => {
    while (mode !== 'closed' && draining) {
      refreshes.push(await overview());
      if (mode === 'overview every 2 s') await sleep(2000);
    }
  })();
  const started = preciseNow();
  const consumer = drained.consume(
    () => {
      if (++handled === DRAIN) finish();
    },
    { concurrency: 16 },
  );
  await done;
  const seconds = (preciseNow() - started) / 1000;
  draining = false;
  await poller;
  await consumer.close();
  return { perSecond: Math.round(DRAIN / seconds), refreshes };
}

const modes: Mode[] = ['closed', 'overview every 2 s', 'overview back to back'];
await drain('closed'); // warm-up
const results = new Map<Mode, { rates: number[]; refreshes: number[] }>(
  modes.map((m) => [m, { rates: [], refreshes: [] }]),
);
for (let trial = 0; trial < TRIALS; trial++) {
  for (const mode of trial % 2 === 0 ? modes : [...modes].reverse()) {
    const result = await drain(mode);
    results.get(mode)!.rates.push(result.perSecond);
    results.get(mode)!.refreshes.push(...result.refreshes);
  }
}

const fmt = (ms: number) => ms.toFixed(1);
console.log(
  `dashboard cost: ${QUEUES + 1} queues, drain of ${DRAIN} messages (consumer concurrency 16), ${TRIALS} alternated trials; ` +
    `${os.cpus().length}× ${os.cpus()[0]?.model}, Redis ${(/redis_version:(\S+)/.exec(await redis.info('server')) ?? [])[1]} (private)`,
);
console.log(
  `  one overview refresh alone: p50 ${fmt(percentile(alone, 50))} ms, max ${fmt(alone[alone.length - 1]!)} ms; ` +
    `Redis commands per refresh: ${JSON.stringify(perRefresh)}; script time in Redis per refresh ${Math.round(scriptUsecPerRefresh)} µs ` +
    `(${((scriptUsecPerRefresh / 2_000_000) * 100).toFixed(3)}% of Redis's time at one refresh every 2 s)`,
);
const closed = median(results.get('closed')!.rates);
for (const mode of modes) {
  const { rates, refreshes } = results.get(mode)!;
  const sorted = refreshes.sort((a, b) => a - b);
  console.log(
    `  ${mode}: ${median(rates)} messages/s (median of ${rates.join(', ')}; ${((median(rates) / closed) * 100).toFixed(1)}% of closed)` +
      (sorted.length
        ? `; ${sorted.length} refreshes, p50 ${fmt(percentile(sorted, 50))} ms, p99 ${fmt(percentile(sorted, 99))} ms`
        : ''),
  );
}

child.kill('SIGTERM');
await once(child, 'exit');
await Promise.all([drained.close(), ...others.map((queue) => queue.close())]);
stop();
