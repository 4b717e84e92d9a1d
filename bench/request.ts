// Round trip of queue.request: from the call to the resolved reply, with the responder (a consumer whose
// handler answers at once) in another process, so the figure is the library and Redis, not the handler.
//   npm run bench:request        (REDIS_URL; REQUESTS=5000 CONCURRENCY=16)
// Two loads, each after 500 warm-up requests: one request at a time (the latency of an idle system), and
// IN_FLIGHT=32 requests kept in flight by this process (closed loop; what a busy caller does), which also
// gives requests per second. Keys are deleted afterwards.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Queue } from '../src/index.js';
import { deleteMatching, percentile, preciseNow } from './measure.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REQUESTS = Number(process.env.REQUESTS ?? '5000');
const CONCURRENCY = Number(process.env.CONCURRENCY ?? '16');
const IN_FLIGHT = 32;
const WARM_UP = 500;

const prefix = `bench-${randomBytes(4).toString('hex')}`;
const redis = new Redis(url);
const responder = fork(fileURLToPath(new URL('./request-responder.js', import.meta.url)), [
  url,
  prefix,
  String(CONCURRENCY),
]);
await once(responder, 'message');
const queue = new Queue<{ n: number }>('rpc', { connection: url, prefix });

async function run(count: number, inFlight: number): Promise<{ sorted: number[]; seconds: number }> {
  const times: number[] = [];
  let next = 0;
  const started = preciseNow();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const n = next++;
        const at = preciseNow();
        const reply = await queue.request<{ n: number }>({ n }, { timeoutMs: 10_000 });
        if (reply.n !== n) throw new Error(`bench: request ${n} got the reply of ${reply.n}`);
        times.push(preciseNow() - at);
      }
    }),
  );
  return { sorted: times.sort((a, b) => a - b), seconds: (preciseNow() - started) / 1000 };
}

const fmt = (ms: number) => ms.toFixed(2);
console.log(
  `queue.request round trip: ${REQUESTS} requests per load, responder in another process with concurrency ` +
    `${CONCURRENCY}; ${os.cpus().length} cores, Redis ${(/redis_version:(\S+)/.exec(await redis.info('server')) ?? [])[1]}`,
);
for (const inFlight of [1, IN_FLIGHT]) {
  await run(WARM_UP, inFlight);
  const { sorted, seconds } = await run(REQUESTS, inFlight);
  console.log(
    `  ${String(inFlight).padStart(2)} in flight: p50 ${fmt(percentile(sorted, 50))} ms, p99 ` +
      `${fmt(percentile(sorted, 99))} ms, max ${fmt(sorted[sorted.length - 1]!)} ms, ` +
      `${Math.round(REQUESTS / seconds)} requests/s`,
  );
}

await queue.close();
responder.send('stop');
await once(responder, 'exit');
await deleteMatching(redis, `{${prefix}:*`);
await redis.quit();
