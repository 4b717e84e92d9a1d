// Publish throughput of the event bus with 1, 10 and 50 matching subscribers, in one run.
//   npx tsc -p bench/tsconfig.json && REDIS_URL=redis://127.0.0.1:6379 node dist/bench/events-publish.js
// Three ways to publish: one awaited call at a time (latency-bound), 32 single publishes in flight
// (ioredis pipelines them; what a busy service does), and publishMany of 100 events per call.
// Half the subscribers name the type exactly (indexed lookup), half match it with a wildcard (scanned);
// none consumes, so the figure is the publish script alone. Keys are deleted after each case.
// Also printed: script time per event inside Redis (INFO commandstats, all clients), which is steadier
// than wall-clock figures on a shared machine; point REDIS_URL at a Redis of its own for a clean figure.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { EventBus } from '../src/index.js';
import { deleteMatching, scriptTime } from './measure.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SUBSCRIBER_COUNTS = [1, 10, 50];
const EVENTS = Number(process.env.EVENTS ?? '3000');
const IN_FLIGHT = 32;
const BATCH = 100;

const redis = new Redis(url);

function deletePrefix(prefix: string): Promise<void> {
  return deleteMatching(redis, `{${prefix}:*`);
}

const data = (n: number) => ({
  n,
  symbol: 'AAPL',
  price: 189.25 + (n % 100) / 100,
  qty: n % 500,
  venue: 'XNAS',
  side: n % 2 ? 'buy' : 'sell',
});

type Mode = 'sequential' | 'in-flight' | 'batch';

async function measure(subscribers: number, mode: Mode): Promise<{ rate: number; serverUsPerEvent: number }> {
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const bus = new EventBus('bench', { connection: redis, prefix, historyLimit: 1000, source: 'bench' });
  try {
    for (let s = 0; s < subscribers; s++) await bus.subscribe(`sub${s}`, s % 2 === 0 ? 'market.trade' : 'market.*');
    await bus.publish('market.trade', data(-1)); // loads the script
    const before = await scriptTime(redis);
    const started = process.hrtime.bigint();
    if (mode === 'sequential') {
      for (let n = 0; n < EVENTS; n++) await bus.publish('market.trade', data(n));
    } else if (mode === 'in-flight') {
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < EVENTS) await bus.publish('market.trade', data(next++));
        }),
      );
    } else {
      for (let n = 0; n < EVENTS; n += BATCH) {
        await bus.publishMany(
          Array.from({ length: Math.min(BATCH, EVENTS - n) }, (_, i) => ({ type: 'market.trade', data: data(n + i) })),
        );
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = await scriptTime(redis);
    const stats = await bus.getStats();
    if (stats.events.delivered !== (EVENTS + 1) * subscribers)
      throw new Error(`expected ${(EVENTS + 1) * subscribers} deliveries, got ${stats.events.delivered}`);
    return { rate: EVENTS / seconds, serverUsPerEvent: (after.usec - before.usec) / EVENTS };
  } finally {
    await bus.close();
    await deletePrefix(prefix);
  }
}

const rows: string[] = [];
for (const subscribers of SUBSCRIBER_COUNTS) {
  const figures: string[] = [];
  for (const mode of ['sequential', 'in-flight', 'batch'] as Mode[]) {
    const { rate, serverUsPerEvent } = await measure(subscribers, mode);
    figures.push(
      `${mode} ${Math.round(rate).toLocaleString('en-US')} events/s (${serverUsPerEvent.toFixed(1)} µs/event, ` +
        `${(serverUsPerEvent / subscribers).toFixed(2)} µs/subscriber in Redis)`,
    );
  }
  rows.push(`${String(subscribers).padStart(2)} matching subscribers: ${figures.join(' | ')}`);
  console.log(rows[rows.length - 1]);
}
await redis.quit();
