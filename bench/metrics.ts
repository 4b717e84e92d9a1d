// Cost of a sluice/metrics scrape: `register.metrics()` over QUEUES queues (one stats script call each).
//   npm run bench:metrics        (REDIS_URL; QUEUES=100 SCRAPES=50 DRAIN=20000 SHARED=0)
// 1. scrape time with QUEUES queues of 100 ready messages each, nothing else running;
// 2. a consumer (concurrency 16) drains DRAIN messages from one more queue (scraped too), once with no scrape and once
//    with a scrape every second, and with scrapes back to back (far more often than any Prometheus interval):
//    the drain rates show what scraping costs a busy queue, and the scrape times during the drain are given.
// An unscored drain runs first, to warm the JIT. Keys are deleted afterwards.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Queue } from '../src/index.js';
import { SluiceMetrics } from '../src/telemetry/metrics.js';
import { deleteMatching, percentile, preciseNow } from './measure.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const QUEUES = Number(process.env.QUEUES ?? '100');
const SCRAPES = Number(process.env.SCRAPES ?? '50');
const DRAIN = Number(process.env.DRAIN ?? '20000');

const prefix = `bench-${randomBytes(4).toString('hex')}`;
const redis = new Redis(url);
const names = Array.from({ length: QUEUES }, (_, n) => `q${n}`);
for (const name of names) {
  const queue = new Queue(name, { connection: redis, prefix });
  await queue.sendMany(Array.from({ length: 100 }, (_, n) => ({ payload: { n } })));
}
const register = new Registry();
const watched = [...names];
// The collector on a connection of its own, as README advises: its scrape's script calls then do not queue
// ahead of the consumer's commands on one socket. SHARED=1 puts it on the consumer's connection instead.
const collectorConnection = process.env.SHARED === '1' ? redis : redis.duplicate();
new SluiceMetrics({ register, connection: collectorConnection, prefix, queues: () => watched });

async function scrapeTimes(count: number): Promise<number[]> {
  const times: number[] = [];
  for (let n = 0; n < count; n++) {
    const at = preciseNow();
    await register.metrics();
    times.push(preciseNow() - at);
  }
  return times.sort((a, b) => a - b);
}

const fmt = (ms: number) => ms.toFixed(2);
const describe = (sorted: number[]) =>
  `p50 ${fmt(percentile(sorted, 50))} ms, p99 ${fmt(percentile(sorted, 99))} ms, max ${fmt(sorted[sorted.length - 1]!)} ms`;

const text = await register.metrics();
const series = text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length;
console.log(
  `sluice/metrics scrape (${process.env.SHARED === '1' ? 'shared' : 'own'} connection): ${QUEUES} queues, ${series} series, ${Math.round(text.length / 1024)} KiB of text; ` +
    `${os.cpus().length} cores, Redis ${(/redis_version:(\S+)/.exec(await redis.info('server')) ?? [])[1]}`,
);
await scrapeTimes(5);
console.log(`  idle: ${SCRAPES} scrapes, ${describe(await scrapeTimes(SCRAPES))}`);

async function drain(scraping: boolean, intervalMs = 0): Promise<{ perSecond: number; scrapes: number[] }> {
  const drained = new Queue<{ n: number }>(
    `drain-${scraping ? `scraped-${intervalMs}` : 'plain'}-${randomBytes(2).toString('hex')}`,
    {
      connection: redis,
      prefix,
    },
  );
  if (scraping) watched.push(drained.name); // the draining queue is scraped too
  for (let n = 0; n < DRAIN; n += 1000) {
    await drained.sendMany(Array.from({ length: 1000 }, (_, k) => ({ payload: { n: n + k } })));
  }
  let handled = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const started = preciseNow();
  const consumer = drained.consume(
    () => {
      if (++handled === DRAIN) finish();
    },
    { concurrency: 16 },
  );
  const scrapes: number[] = [];
  let draining = true;
  const scraper = (async () => {
    while (scraping && draining) {
      const at = preciseNow();
      await register.metrics();
      scrapes.push(preciseNow() - at);
      if (intervalMs > 0) await sleep(intervalMs);
    }
  })();
  await done;
  const seconds = (preciseNow() - started) / 1000;
  draining = false;
  await scraper;
  await consumer.close();
  return { perSecond: Math.round(DRAIN / seconds), scrapes: scrapes.sort((a, b) => a - b) };
}

await drain(false); // warm-up: the first drain of a process runs before the JIT has compiled the consumer
const plain = await drain(false);
console.log(`  drain of ${DRAIN} messages, consumer concurrency 16: ${plain.perSecond} messages/s without scraping`);
for (const intervalMs of [1000, 0]) {
  const scraped = await drain(true, intervalMs);
  console.log(
    `  same drain, a scrape ${intervalMs > 0 ? `every ${intervalMs} ms` : 'back to back'}: ${scraped.perSecond} messages/s ` +
      `(${((scraped.perSecond / plain.perSecond) * 100).toFixed(0)}%); ${scraped.scrapes.length} scrapes, ${describe(scraped.scrapes)}`,
  );
}

await deleteMatching(redis, `{${prefix}:*`);
if (collectorConnection !== redis) await collectorConnection.quit();
await redis.quit();
