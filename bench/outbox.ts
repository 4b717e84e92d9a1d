// The outbox relay: rows relayed per second from a backlog, and commit -> subscriber-handler latency at a
// steady rate of single-event commits.
//   npm run bench:outbox        (REDIS_URL, MYSQL_URL; ROWS=20000 RELAYS=1,3 RATE=500 SECONDS=10)
// Throughput: ROWS rows on 100 aggregates are committed first (nobody relaying), then RELAYS relays in
// this process (each its own loop and connection) publish them; the figure is rows / time until none is
// pending. A subscriber matches every event and nobody consumes during this case.
// Latency: RATE commits per second, open loop (a commit starts when due, whether or not the previous
// ones finished), each one event through publishInTransaction; one relay, woken by the commits (its poll
// is 1 s); a subscriber with 16 handlers. Latency is from the moment the business function ran (just
// before the outbox INSERT and the COMMIT) to the handler, on one clock. Warm-up (first second) excluded.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Redis } from 'ioredis';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { EventBus } from '../src/index.js';
import { Outbox } from '../src/outbox/index.js';
import { deleteMatching, percentile } from './measure.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const mysqlUrl = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const ROWS = Number(process.env.ROWS ?? '20000');
const RELAYS = (process.env.RELAYS ?? '1,3').split(',').map(Number);
const RATE = Number(process.env.RATE ?? '500');
const SECONDS = Number(process.env.SECONDS ?? '10');
const AGGREGATES = 100;

const redis = new Redis(redisUrl);
const pool = createPool({ uri: mysqlUrl, connectionLimit: 30 });

async function cleanUp(prefix: string, table: string): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
  await deleteMatching(redis, `{${prefix}:*`);
}

async function setUp(label: string) {
  const prefix = `bench-${label}-${randomBytes(4).toString('hex')}`;
  const table = `bench_${label}_${randomBytes(4).toString('hex')}`;
  const bus = new EventBus('bench', { connection: redisUrl, prefix });
  const outbox = new Outbox({ mysql: pool, bus, table });
  outbox.on('error', (error) => console.error('relay error:', error));
  await outbox.migrate();
  await bus.subscribe('all', 'order.#');
  return { prefix, table, bus, outbox };
}

const order = (n: number) => ({
  aggregateType: 'order',
  aggregateId: `o${n % AGGREGATES}`,
  type: 'order.updated',
  data: { n, sku: 'ABC-123', qty: 2 },
});

async function throughput(relays: number): Promise<number> {
  const { prefix, table, bus, outbox } = await setUp(`tp${relays}`);
  for (let at = 0; at < ROWS; at += 500) {
    await outbox.publishInTransaction(
      () => undefined,
      Array.from({ length: Math.min(500, ROWS - at) }, (_, k) => order(at + k)),
    );
  }
  const started = performance.now();
  const running = await Promise.all(Array.from({ length: relays }, () => outbox.startRelay({ batchSize: 100 })));
  for (;;) {
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${table}\` WHERE status = 'PENDING'`);
    if (Number(rows[0]!.n) === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(running.map((relay) => relay.stop()));
  await outbox.close();
  await bus.close();
  await cleanUp(prefix, table);
  return ROWS / seconds;
}

async function latency(): Promise<{ p50: number; p99: number; max: number; count: number; achievedRate: number }> {
  const { prefix, table, bus, outbox } = await setUp('lat');
  const startedAt = new Map<string, number>();
  const handledAt = new Map<string, number>();
  const consumer = bus.consume(
    'all',
    (event) => {
      handledAt.set(event.id, performance.now());
    },
    { concurrency: 16 },
  );
  await consumer.ready;
  const relay = await outbox.startRelay();
  const total = RATE * SECONDS;
  const begin = performance.now();
  const commits: Promise<unknown>[] = [];
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - begin) / 1000) * RATE) + 1);
    for (; sent < due; sent++) {
      const id = `e-${sent}`;
      const event = { ...order(sent), id };
      commits.push(outbox.publishInTransaction(() => void startedAt.set(id, performance.now()), event));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(commits);
  const achievedRate = total / ((performance.now() - begin) / 1000);
  while (handledAt.size < total) await new Promise((resolve) => setTimeout(resolve, 20));
  const warmup = RATE; // the first second
  const samples = [...startedAt.entries()]
    .filter(([id]) => Number(id.slice(2)) >= warmup)
    .map(([id, at]) => handledAt.get(id)! - at)
    .sort((a, b) => a - b);
  await consumer.close();
  await relay.stop();
  await outbox.close();
  await bus.close();
  await cleanUp(prefix, table);
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples[samples.length - 1]!,
    count: samples.length,
    achievedRate,
  };
}

const [version] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v');
const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))![1];
console.log(
  `outbox bench ${new Date().toISOString()} on ${os.cpus().length} × ${os.cpus()[0]?.model}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}; ` + `${version[0]!.v}, Redis ${redisVersion}, Node ${process.version}`,
);
for (const relays of RELAYS) {
  const rate = await throughput(relays);
  console.log(
    `relay throughput, ${relays} relay(s), ${ROWS} rows on ${AGGREGATES} aggregates, batches of 100: ${Math.round(rate).toLocaleString('en-US')} rows/s`,
  );
}
const lat = await latency();
console.log(
  `commit -> handler latency at ${RATE} commits/s for ${SECONDS} s (achieved ${Math.round(lat.achievedRate)}/s), ${lat.count} samples: ` +
    `p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`,
);
await pool.end();
redis.disconnect();
