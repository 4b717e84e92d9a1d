import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Redis } from 'ioredis';
import { commandsCase, drainCase, latencyCase, memoryCase, sendCase, type Settings, type SystemName } from './cases.js';
import { median } from './measure.js';

/**
 * npm run bench [-- --quick] [-- --only=send,drain,latency,memory,commands]
 * Runs every case for sluice and BullMQ against REDIS_URL (default redis://127.0.0.1:6379), prints a
 * markdown table (median of the trials, min–max, sluice/BullMQ ratio) and saves the raw results as JSON
 * in bench/results/.
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

interface Row {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** a ratio target (sluice/BullMQ, higher is better) or an absolute target for sluice (lower is better) */
  target?: { ratioAtLeast?: number; atMost?: number };
  sluice?: { median: number; min: number; max: number; values: number[]; details?: unknown };
  bullmq?: { median: number; min: number; max: number; values: number[]; details?: unknown };
}

const rows: Row[] = [];
/** the latency of a bare Redis list under the same load (see RawSystem), for reading the latency rows */
let floor: { p50: number; p99: number; max: number; count: number }[] | undefined;
const SYSTEMS: SystemName[] = ['sluice', 'bullmq'];

async function measure(
  row: Omit<Row, SystemName>,
  run: (name: SystemName) => Promise<{ values: number[]; details?: unknown }>,
): Promise<void> {
  const done: Row = { ...row };
  for (const name of SYSTEMS) {
    const { values, details } = await run(name);
    done[name] = { median: median(values), min: Math.min(...values), max: Math.max(...values), values, details };
    console.error(
      `  ${row.label} ${name}: median ${format(done[name].median)} ${row.unit} (${values.map(format).join(', ')})`,
    );
  }
  rows.push(done);
}

const wanted = (group: string) => !only || only.includes(group);

function format(n: number): string {
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function verdict(row: Row): string {
  const s = row.sluice!.median;
  const q = row.bullmq!.median;
  if (row.target?.ratioAtLeast !== undefined) {
    return `${s / q >= row.target.ratioAtLeast ? 'met' : 'MISSED'} (≥ ${row.target.ratioAtLeast}×)`;
  }
  if (row.target?.atMost !== undefined)
    return `${s <= row.target.atMost ? 'met' : 'MISSED'} (≤ ${row.target.atMost} ${row.unit})`;
  return '';
}

function table(): string {
  const lines = [
    '| case | unit | sluice median (min–max) | BullMQ median (min–max) | sluice/BullMQ | target |',
    '|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const cell = (r: Row['sluice']) => `${format(r!.median)} (${format(r!.min)}–${format(r!.max)})`;
    const ratio = row.sluice!.median / row.bullmq!.median;
    const better = row.better === 'higher' ? '' : ' (lower is better)';
    lines.push(
      `| ${row.label} | ${row.unit} | ${cell(row.sluice)} | ${cell(row.bullmq)} | ${ratio.toFixed(2)}×${better} | ${verdict(row)} |`,
    );
  }
  if (floor) {
    const at = (stat: 'p50' | 'p99' | 'max') => format(median(floor!.map((t) => t[stat])));
    lines.push(
      '',
      `Latency floor in the same run (a bare Redis list: RPUSH, then BLPOP and one more round trip in the consumer ` +
        `process, no queue library): p50 ${at('p50')} ms, p99 ${at('p99')} ms, max ${at('max')} ms.`,
    );
  }
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
        target: { ratioAtLeast: 1.3 },
      },
      (name) => sendCase(name, 'sequential', settings),
    );
    await measure(
      {
        id: 'send-in-flight',
        label: `(b) send, ${settings.inFlight} in flight`,
        unit: 'msg/s',
        better: 'higher',
        target: { ratioAtLeast: 3 },
      },
      (name) => sendCase(name, 'inFlight', settings),
    );
    await measure(
      {
        id: 'send-bulk',
        label: `(c) bulk send, chunks of ${settings.bulkChunk.toLocaleString('en-US')}`,
        unit: 'msg/s',
        better: 'higher',
        target: { ratioAtLeast: 5 },
      },
      (name) => sendCase(name, 'bulk', settings),
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
          ...(concurrency === 100 ? { target: { ratioAtLeast: 5 } } : {}),
        },
        (name) => drainCase(name, concurrency, settings),
      );
    }
  }
  if (wanted('latency')) {
    const latency: Record<string, Awaited<ReturnType<typeof latencyCase>>> = {};
    for (const name of [...SYSTEMS, 'raw'] as const) latency[name] = await latencyCase(name, settings);
    floor = latency.raw!.trials;
    console.error(
      `  (e) floor (RPUSH, BLPOP, one more round trip): p50 ${format(median(floor.map((t) => t.p50)))} ms, p99 ${format(median(floor.map((t) => t.p99)))} ms, max ${format(median(floor.map((t) => t.max)))} ms`,
    );
    for (const stat of ['p50', 'p99', 'max'] as const) {
      await measure(
        {
          id: `latency-${stat}`,
          label: `(e) send→handler ${stat}, ${settings.latencyRate}/s`,
          unit: 'ms',
          better: 'lower',
          ...(stat === 'p99' ? { target: { atMost: 2 } } : {}),
        },
        async (name) => ({ values: latency[name]!.trials.map((t) => t[stat]), details: latency[name]!.trials }),
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
        target: { atMost: 170 },
      },
      (name) => memoryCase(name, settings, redis),
    );
  }
  if (wanted('commands')) {
    await measure(
      {
        id: 'commands',
        label: `(g) Redis commands per message, end to end`,
        unit: 'commands',
        better: 'lower',
        target: { atMost: 8 },
      },
      (name) => commandsCase(name, settings, redis),
    );
  }

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
    },
    rows,
    latencyFloor: floor,
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
