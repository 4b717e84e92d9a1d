import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import os from 'node:os';
import { Redis } from 'ioredis';
import {
  commandsCase,
  drainCase,
  latencyCase,
  memoryCase,
  sendCase,
  type LatencyTrial,
  type Settings,
  type SystemName,
  type TrialResult,
} from './cases.js';
import { measureLimits, type Limits } from './limits.js';
import { median } from './measure.js';

/**
 * npm run bench [-- --quick] [-- --only=send,drain,latency,memory,commands,bus,outbox,limits]
 * Runs every case for sluice, Bee-Queue and BullMQ against REDIS_URL (default redis://127.0.0.1:6379), the
 * three interleaved within each trial (the order rotates from trial to trial), prints a markdown table
 * (median of the trials, min–max, sluice's advantage over each peer, the target) and saves the raw results
 * as JSON in bench/results/.
 */

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const settings: Settings = quick
  ? {
      url,
      trials: 3,
      sendCount: 2_000,
      bulkChunk: 1_000,
      inFlight: 100,
      drainCount: 3_000,
      drainConcurrency: [1, 10, 100],
      latencyRate: 1_000,
      latencySeconds: 1.5,
      latencyWarmupSeconds: 0.25,
      latencyConcurrency: 10,
      memoryCount: 10_000,
      commandsCount: 2_000,
      commandsConcurrency: 100,
    }
  : {
      url,
      trials: 3,
      sendCount: 50_000,
      bulkChunk: 1_000,
      inFlight: 100,
      drainCount: 50_000,
      drainConcurrency: [1, 10, 100],
      latencyRate: 1_000,
      latencySeconds: 10,
      latencyWarmupSeconds: 1,
      latencyConcurrency: 10,
      memoryCount: 100_000,
      commandsCount: 20_000,
      commandsConcurrency: 100,
    };

type Stat = { median: number; min: number; max: number; values: number[]; details?: unknown[] };

interface Target {
  /** sluice at least this many times better than Bee-Queue */
  beeAtLeast?: number;
  /** an absolute bound on sluice's median (lower is better) */
  atMost?: number;
}

interface Row {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** every row also asks sluice to be ahead of both peers */
  target?: Target;
  sluice?: Stat;
  bee?: Stat;
  bullmq?: Stat;
}

const rows: Row[] = [];
const SYSTEMS: readonly SystemName[] = ['sluice', 'bee', 'bullmq'];
/** the latency of a bare Redis list under the same load (see RawSystem), and the machine's limits */
let floor: LatencyTrial[] | undefined;
let limits: Limits | undefined;
/** what bench/events-publish.ts and bench/outbox.ts printed (no peer has an event bus or an outbox) */
const extra: { title: string; lines: string[] }[] = [];

/** Runs one of the stand-alone benches (a compiled file next to this one) and keeps what it printed. */
async function standalone(title: string, file: string, env: Record<string, string>): Promise<void> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [path], {
      env: { ...process.env, ...env },
      maxBuffer: 1 << 24,
    });
    extra.push({ title, lines: stdout.trim().split('\n') });
  } catch (error) {
    extra.push({ title, lines: [`failed: ${(error as Error).message.split('\n')[0]}`] });
  }
  for (const line of extra[extra.length - 1]!.lines) console.error(`  ${title}: ${line}`);
}

/** Trial t runs the systems starting from the t-th, so that none always goes first. */
function orderOf<T>(list: readonly T[], trial: number): T[] {
  return list.map((_, n) => list[(n + trial) % list.length]!);
}

function stat(values: number[], details: unknown[]): Stat {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values, details };
}

async function measure(row: Omit<Row, SystemName>, trial: (order: SystemName[]) => Promise<TrialResult>) {
  const values: Record<SystemName, number[]> = { sluice: [], bee: [], bullmq: [] };
  const details: Record<SystemName, unknown[]> = { sluice: [], bee: [], bullmq: [] };
  for (let t = 0; t < settings.trials; t++) {
    const result = await trial(orderOf(SYSTEMS, t));
    for (const name of SYSTEMS) {
      values[name].push(result[name]!.value);
      details[name].push(result[name]!.details);
    }
  }
  record(row, values, details);
}

function record(
  row: Omit<Row, SystemName>,
  values: Record<SystemName, number[]>,
  details?: Record<SystemName, unknown[]>,
) {
  const done: Row = { ...row };
  for (const name of SYSTEMS) done[name] = stat(values[name], details?.[name] ?? []);
  console.error(
    `  ${row.label}: ` +
      SYSTEMS.map((name) => `${name} ${format(done[name]!.median)} (${values[name].map(format).join(', ')})`).join(
        '; ',
      ) +
      ` ${row.unit}`,
  );
  rows.push(done);
}

const wanted = (group: string) => !only || only.includes(group);

function format(n: number): string {
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** How many times better sluice is than a peer (above 1: sluice is ahead), whichever way the unit goes. */
function advantage(row: Row, peer: SystemName): number {
  const s = row.sluice!.median;
  const p = row[peer]!.median;
  return row.better === 'higher' ? s / p : p / s;
}

function verdict(row: Row): string {
  const wants: string[] = ['ahead of both'];
  let met = advantage(row, 'bee') >= 1 && advantage(row, 'bullmq') >= 1;
  if (row.target?.beeAtLeast !== undefined) {
    wants.push(`≥ ${row.target.beeAtLeast}× Bee`);
    met &&= advantage(row, 'bee') >= row.target.beeAtLeast;
  }
  if (row.target?.atMost !== undefined) {
    wants.push(`≤ ${row.target.atMost} ${row.unit}`);
    met &&= row.sluice!.median <= row.target.atMost;
  }
  return `${met ? 'MET' : 'MISSED'} (${wants.join(', ')})`;
}

function table(): string {
  const lines =
    rows.length === 0
      ? []
      : [
          '| case | unit | sluice | Bee-Queue | BullMQ | sluice vs Bee | sluice vs BullMQ | target |',
          '|---|---|---|---|---|---|---|---|',
        ];
  for (const row of rows) {
    const cell = (r: Stat | undefined) => `${format(r!.median)} (${format(r!.min)}–${format(r!.max)})`;
    lines.push(
      `| ${row.label} | ${row.unit}${row.better === 'lower' ? ' (lower is better)' : ''} | ${cell(row.sluice)} | ${cell(row.bee)} | ${cell(row.bullmq)} | ` +
        `${advantage(row, 'bee').toFixed(2)}× | ${advantage(row, 'bullmq').toFixed(2)}× | ${verdict(row)} |`,
    );
  }
  if (rows.length > 0)
    lines.push(
      '',
      'Each cell: median of the trials (min–max). "sluice vs X" is how many times better sluice is than X ' +
        '(above 1: sluice is ahead), for rates and for times alike.',
    );
  if (floor) {
    const at = (s: 'p50' | 'p99' | 'max') => format(median(floor!.map((t) => t[s])));
    lines.push(
      '',
      `Latency floor in the same run (a bare Redis list: RPUSH, then BLPOP in the consumer process and the handler ` +
        `at once, no claim, no ack, no library): p50 ${at('p50')} ms, p99 ${at('p99')} ms, max ${at('max')} ms.`,
    );
  }
  if (limits) {
    lines.push('', 'Limits of this machine in the same run (redis-benchmark, 100,000 requests each):', '');
    if (limits.benchmark) {
      for (const l of limits.benchmark) lines.push(`- ${l.label}: ${format(l.rps)} requests/s, p50 ${l.p50} ms`);
    } else {
      lines.push('- redis-benchmark not installed (Debian package redis-tools)');
    }
    lines.push(
      `- an empty script (EVALSHA of \`return 0\`) costs ${limits.emptyScriptUs.toFixed(2)} µs of Redis CPU per call`,
    );
  }
  for (const { title, lines: printed } of extra) lines.push('', `${title}:`, '', ...printed.map((l) => `- ${l}`));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const redis = new Redis(url);
  const server = /redis_version:(\S+)/.exec(await redis.info('server'))![1];
  const started = new Date();
  const load = os.loadavg();
  console.error(
    `sluice bench${quick ? ' (quick)' : ''} against ${url}, Redis ${server}, load ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );

  if (wanted('send')) {
    await measure(
      {
        id: 'send-sequential',
        label: `(a) send ${settings.sendCount.toLocaleString('en-US')} one at a time`,
        unit: 'msg/s',
        better: 'higher',
        target: { beeAtLeast: 1.15 },
      },
      (order) => sendCase(order, 'sequential', settings),
    );
    await measure(
      {
        id: 'send-in-flight',
        label: `(b) send, ${settings.inFlight} in flight`,
        unit: 'msg/s',
        better: 'higher',
        target: { beeAtLeast: 2 },
      },
      (order) => sendCase(order, 'inFlight', settings),
    );
    await measure(
      {
        id: 'send-bulk',
        label: `(c) bulk send, chunks of ${settings.bulkChunk.toLocaleString('en-US')}`,
        unit: 'msg/s',
        better: 'higher',
        target: { beeAtLeast: 2 },
      },
      (order) => sendCase(order, 'bulk', settings),
    );
  }
  if (wanted('drain')) {
    for (const concurrency of settings.drainConcurrency) {
      await measure(
        {
          id: `drain-c${concurrency}`,
          label: `(d) drain ${settings.drainCount.toLocaleString('en-US')}, concurrency ${concurrency}`,
          unit: 'msg/s',
          better: 'higher',
          ...(concurrency === 100 ? { target: { beeAtLeast: 4 } } : {}),
        },
        (order) => drainCase(order, concurrency, settings),
      );
    }
  }
  if (wanted('latency')) {
    const trials: Partial<Record<SystemName | 'raw', LatencyTrial>>[] = [];
    for (let t = 0; t < settings.trials; t++) trials.push(await latencyCase(orderOf([...SYSTEMS, 'raw'], t), settings));
    floor = trials.map((trial) => trial.raw!);
    console.error(
      `  (e) floor (RPUSH, BLPOP): p50 ${format(median(floor.map((t) => t.p50)))} ms, p99 ${format(median(floor.map((t) => t.p99)))} ms`,
    );
    for (const stat of ['p50', 'p99', 'max'] as const) {
      const values = { sluice: [], bee: [], bullmq: [] } as Record<SystemName, number[]>;
      const details = { sluice: [], bee: [], bullmq: [] } as Record<SystemName, unknown[]>;
      for (const trial of trials) {
        for (const name of SYSTEMS) {
          values[name].push(trial[name]![stat]);
          details[name].push(trial[name]);
        }
      }
      record(
        {
          id: `latency-${stat}`,
          label: `(e) send→handler ${stat}, ${settings.latencyRate}/s`,
          unit: 'ms',
          better: 'lower',
        },
        values,
        details,
      );
    }
  }
  if (wanted('memory')) {
    await measure(
      {
        id: 'memory',
        label: `(f) Redis memory per pending message, N=${settings.memoryCount.toLocaleString('en-US')}`,
        unit: 'bytes',
        better: 'lower',
        target: { atMost: 100 },
      },
      (order) => memoryCase(order, settings, redis),
    );
  }
  if (wanted('commands')) {
    await measure(
      {
        id: 'commands',
        label: `(g) Redis commands per message, end to end`,
        unit: 'commands',
        better: 'lower',
        target: { atMost: 4 },
      },
      (order) => commandsCase(order, settings, redis),
    );
  }

  if (wanted('bus')) {
    await standalone(
      'Event bus publish, 1/10/50 matching subscribers (bench/events-publish.ts)',
      './events-publish.js',
      {
        REDIS_URL: url,
        EVENTS: quick ? '1000' : '5000',
      },
    );
  }
  if (wanted('outbox')) {
    await standalone('Outbox relay, MariaDB to the bus (bench/outbox.ts)', './outbox.js', {
      REDIS_URL: url,
      ROWS: quick ? '2000' : '20000',
      SECONDS: quick ? '3' : '10',
    });
  }
  if (wanted('limits')) limits = await measureLimits(url, redis);

  const finished = new Date();
  const markdown = table();
  console.log(markdown);
  const pkg = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { version: string };
  const result = {
    started,
    finished,
    quick,
    settings: { ...settings, url: undefined },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      node: process.version,
      redis: server,
      loadAtStart: load,
      loadAtEnd: os.loadavg(),
    },
    versions: {
      sluice: pkg('../../package.json').version,
      bullmq: pkg('../../node_modules/bullmq/package.json').version,
      beeQueue: pkg('../../node_modules/bee-queue/package.json').version,
    },
    rows,
    latencyFloor: floor,
    limits,
    markdown,
  };
  const dir = new URL('../../bench/results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${started.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`, dir);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.error(`raw results: ${file.pathname}`);
  redis.disconnect();
}

await main();
