// Before/after cost of the scripts inside Redis: two builds of sluice (two checkouts, each built with
// `npm run build`) on one private redis-server, interleaved in rounds that alternate which goes first, so
// that a drift of the machine falls on both alike. µs of EVALSHA from INFO commandstats, per script call
// (or per message, for the batch cases).
//   npm run bench:scripts:ab -- <checkout A> <checkout B>        (ROUNDS=12, PER=250)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Queue as QueueClass } from '../src/index.js';
import { scriptTime, startPrivateRedis } from './measure.js';

const dirs = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
if (dirs.length !== 2) {
  console.error('usage: npm run bench:scripts:ab -- <checkout A> <checkout B>   (each built: dist/src/index.js)');
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? '12');
const PER = Number(process.env.PER ?? '250');

type Q = QueueClass<{ n: number }>;
interface Case {
  /** messages per work() call, for the batch cases (cost reported per message) */
  perMessage?: number;
  prepare?: (queue: Q) => Promise<unknown>;
  work: (queue: Q) => Promise<unknown>;
}

/** the delivery each queue's ack case prepared */
const taken = new Map<Q, Awaited<ReturnType<Q['dequeue']>>[number]>();
const batch = Array.from({ length: 100 }, (_, n) => ({ payload: { n } }));
const cases: Record<string, Case> = {
  'send, one message': { work: (q) => q.send({ n: 1 }) },
  'dequeue, empty queue': { work: (q) => q.dequeue() },
  'dequeue, one message': { prepare: (q) => q.send({ n: 1 }), work: (q) => q.dequeue() },
  'ack, one message': {
    prepare: async (q) => {
      await q.send({ n: 1 });
      taken.set(q, (await q.dequeue())[0]!);
    },
    work: (q) => q.ack(taken.get(q)!),
  },
  'sendMany, 100 messages': { perMessage: 100, work: (q) => q.sendMany(batch) },
  'dequeue 100 + ackMany 100': {
    perMessage: 100,
    prepare: (q) => q.sendMany(batch),
    work: async (q) => q.ackMany(await q.dequeue({ count: 100 })),
  },
};

const { redis, stop } = await startPrivateRedis();
try {
  const libs = (await Promise.all(
    dirs.map((dir) => import(pathToFileURL(resolve(dir, 'dist/src/index.js')).href)),
  )) as { Queue: typeof QueueClass }[];
  console.log(
    `A = ${dirs[0]}\nB = ${dirs[1]}\nRedis private server, ${ROUNDS} rounds, ${PER} calls per round and build\n`,
  );
  console.log('| script call | A µs | B µs | B/A |');
  console.log('|---|---:|---:|---:|');
  let caseNumber = 0;
  for (const [label, c] of Object.entries(cases)) {
    caseNumber++;
    const queues = libs.map(
      (lib, n) => new lib.Queue<{ n: number }>('ab', { connection: redis, prefix: `ab${caseNumber}-${n}` }),
    );
    // Loads the scripts.
    for (const queue of queues) {
      await queue.send({ n: 0 });
      await queue.ackMany(await queue.dequeue());
    }
    const total = [
      { units: 0, usec: 0 },
      { units: 0, usec: 0 },
    ];
    const calls = c.perMessage ? Math.max(1, Math.round(PER / 25)) : PER;
    for (let round = 0; round < ROUNDS; round++) {
      for (const n of round % 2 === 0 ? [0, 1] : [1, 0]) {
        for (let call = 0; call < calls; call++) {
          await c.prepare?.(queues[n]!);
          const before = await scriptTime(redis);
          await c.work(queues[n]!);
          const after = await scriptTime(redis);
          total[n]!.units += c.perMessage ?? after.calls - before.calls;
          total[n]!.usec += after.usec - before.usec;
        }
      }
      // Sends pile up: each round starts from empty queues, for both builds (scripts stay loaded).
      if (!c.prepare) await redis.flushall();
    }
    const [a, b] = total.map(({ units, usec }) => usec / units) as [number, number];
    console.log(
      `| ${label}${c.perMessage ? ' (per message)' : ''} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(2)} |`,
    );
    for (const queue of queues) await queue.close();
  }
} finally {
  stop();
}
