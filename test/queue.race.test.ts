import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Queue, type Consumer } from '../src/index.js';
import {
  RACE_HANDLER_TIMEOUT_MS,
  RACE_MAX_RETRIES,
  RACE_QUEUE,
  RACE_RETRY,
  RACE_VISIBILITY_MS,
  raceHandler,
  type RaceEvent,
  type RaceMode,
} from './fixtures/race-handler.js';
import { misplaced, snapshot } from './inspect.js';
import { redisUrl, useRedis, waitFor } from './helpers.js';

const env = useRedis();
const CHILD = fileURLToPath(new URL('../dist/test/fixtures/race-consumer.js', import.meta.url));
const TOTAL = 20_000;

interface Run {
  events: RaceEvent[];
  children: ChildProcess[];
  consumers: Consumer<{ n: number }>[];
  producer: Queue<{ n: number }>;
  stopInflightSampler: () => Promise<string[]>;
}

async function startRace(prefix: string, modes: { inProcess: RaceMode; children: RaceMode[] }): Promise<Run> {
  const events: RaceEvent[] = [];
  const record = (event: RaceEvent) => events.push(event);
  const children = modes.children.map((mode, c) => {
    const child = fork(CHILD, [], {
      env: {
        ...process.env,
        REDIS_URL: redisUrl(),
        PREFIX: prefix,
        MODE: mode,
        CONSUMER_NAME: `child-${c}`,
        CONCURRENCY: '8',
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (event: RaceEvent) => record(event));
    return child;
  });
  await waitFor(
    () => events.filter((e) => e.id === 'ready').length === children.length,
    'the child consumers to start',
  );

  const consumers = Array.from({ length: 6 }, (_, c) => {
    const queue = env.queue<{ n: number }>(RACE_QUEUE, { prefix, connection: env.connection(), retry: RACE_RETRY });
    const name = `local-${c}`;
    const consumer = queue.consume(raceHandler(modes.inProcess, name, record), {
      concurrency: 8,
      visibilityMs: RACE_VISIBILITY_MS,
      handlerTimeoutMs: RACE_HANDLER_TIMEOUT_MS,
    });
    const end = (m: { id: string; receipt: string }) =>
      record({ kind: 'end', id: m.id, receipt: m.receipt, at: Date.now(), consumer: name });
    consumer.on('completed', end);
    consumer.on('failed', end);
    consumer.on('error', () => undefined);
    return consumer;
  });

  // Watch the in-flight set from Redis's side while the race runs: no id may ever hold two receipts.
  const producer = env.queue<{ n: number }>(RACE_QUEUE, { prefix, connection: env.connection(), retry: RACE_RETRY });
  const sampler = env.connection();
  const doubled: string[] = [];
  let sampling = true;
  const sampled = (async () => {
    while (sampling) {
      const ids = (await sampler.zrange(`${producer.baseKey}:i`, 0, -1)).map((m) => m.slice(0, m.lastIndexOf('|')));
      const seen = new Set<string>();
      for (const id of ids) {
        if (seen.has(id)) doubled.push(id);
        seen.add(id);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  for (let from = 0; from < TOTAL; from += 1_000) {
    await producer.sendMany(
      Array.from({ length: 1_000 }, (_, i) => ({ payload: { n: from + i }, maxRetries: RACE_MAX_RETRIES })),
    );
  }
  return {
    events,
    children,
    consumers,
    producer,
    stopInflightSampler: async () => {
      sampling = false;
      await sampled;
      return doubled;
    },
  };
}

async function stopRace(run: Run): Promise<void> {
  await Promise.all(run.consumers.map((c) => c.close()));
  await Promise.all(
    run.children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map(async (child) => {
        child.send('stop');
        await once(child, 'exit');
      }),
  );
}

/** Deliveries of one id, in receipt order, must never overlap: each starts after the one before ended. */
function overlaps(events: RaceEvent[], killed: Set<string>): string[] {
  const byDelivery = new Map<string, { id: string; receipt: number; start: number; end?: number; consumer: string }>();
  for (const e of events) {
    if (e.id === 'ready') continue;
    const key = `${e.id}|${e.receipt}`;
    const delivery = byDelivery.get(key) ?? { id: e.id, receipt: Number(e.receipt), start: 0, consumer: e.consumer };
    if (e.kind === 'start') delivery.start = e.at;
    else delivery.end = e.at;
    byDelivery.set(key, delivery);
  }
  const byId = new Map<string, (typeof byDelivery extends Map<string, infer D> ? D : never)[]>();
  for (const d of byDelivery.values()) byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
  const problems: string[] = [];
  for (const [id, deliveries] of byId) {
    deliveries.sort((a, b) => a.receipt - b.receipt);
    for (let i = 1; i < deliveries.length; i++) {
      const before = deliveries[i - 1]!;
      const after = deliveries[i]!;
      // A killed consumer never reports an end: its lease ran until its visibility deadline, counted from
      // the dequeue in Redis, which precedes the recorded handler start by the reply's latency (large under
      // load). Half the visibility timeout still catches a real second delivery, which would be immediate.
      const ended =
        before.end ?? (killed.has(before.consumer) ? before.start + RACE_VISIBILITY_MS / 2 : Number.POSITIVE_INFINITY);
      if (after.start < ended)
        problems.push(
          `${id}: receipt ${after.receipt} started at ${after.start} before ${before.receipt} ended at ${ended}`,
        );
    }
  }
  return problems;
}

describe('race: 8 consumers on separate connections, 2 in other processes, 20,000 messages', () => {
  it('with no failures every message is delivered exactly once', async () => {
    const prefix = env.prefix();
    const run = await startRace(prefix, { inProcess: 'clean', children: ['clean', 'clean'] });
    await waitFor(async () => (await run.producer.getStats()).counters.acked === TOTAL, 'every message acked', 120_000);
    const doubled = await run.stopInflightSampler();
    await stopRace(run);

    const starts = run.events.filter((e) => e.kind === 'start' && e.id !== 'ready');
    const perId = new Map<string, number>();
    for (const e of starts) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
    expect(perId.size).toBe(TOTAL);
    expect([...perId.values()].filter((count) => count !== 1)).toEqual([]);
    expect(new Set(starts.map((e) => e.receipt)).size).toBe(TOTAL);
    // Every consumer, including both child processes, took part.
    expect(new Set(starts.map((e) => e.consumer)).size).toBe(8);
    expect(doubled).toEqual([]);
    const stats = await run.producer.getStats();
    expect(stats.counters).toMatchObject({ sent: TOTAL, delivered: TOTAL, acked: TOTAL, retried: 0 });
    expect((await snapshot(env.redis, run.producer.baseKey)).places.size).toBe(0);
  });

  it('with throws, handler timeouts and a consumer killed mid-handler, every message ends acked or dead-lettered', async () => {
    const prefix = env.prefix();
    const run = await startRace(prefix, { inProcess: 'faulty', children: ['faulty', 'faulty-slow'] });
    const victim = run.children[1]!;
    // Kill the slow child once it holds deliveries it has started but not finished.
    await waitFor(() => {
      const open = new Map<string, number>();
      for (const e of run.events) {
        if (e.consumer !== 'child-1' || e.id === 'ready') continue;
        open.set(`${e.id}|${e.receipt}`, (open.get(`${e.id}|${e.receipt}`) ?? 0) + (e.kind === 'start' ? 1 : -1));
      }
      return [...open.values()].filter((v) => v > 0).length >= 1;
    }, 'the slow child to hold deliveries');
    victim.kill('SIGKILL');
    await once(victim, 'exit');

    const poison = Array.from({ length: TOTAL }, (_, n) => n).filter((n) => n % 97 === 0).length;
    await waitFor(
      async () => {
        const stats = await run.producer.getStats();
        return stats.counters.acked + stats.deadLetters === TOTAL;
      },
      'every message to end acked or dead-lettered',
      180_000,
    );
    const doubled = await run.stopInflightSampler();
    await stopRace(run);

    const stats = await run.producer.getStats();
    expect(stats).toMatchObject({
      inflight: 0,
      delayed: 0,
      deadLetters: poison,
      ready: { low: 0, normal: 0, high: 0, critical: 0 },
    });
    expect(stats.counters.acked).toBe(TOTAL - poison);
    expect(stats.counters.reclaimed).toBeGreaterThanOrEqual(1);
    const letters = await run.producer.deadLetters({ limit: 1_000 });
    expect(letters.map((l) => l.message!.payload.n % 97)).toEqual(new Array(poison).fill(0));
    // A poison message whose last attempt the killed consumer held fails by its visibility timeout.
    const reasons = letters
      .map((l) => l.reason!)
      .filter((r) => !/^(poison message \d+|visibility timeout expired \(receipt \d+\))$/.test(r));
    expect(reasons).toEqual([]);
    expect(
      misplaced(
        await snapshot(env.redis, run.producer.baseKey),
        letters.map((l) => l.id),
      ),
    ).toEqual([]);
    expect(doubled).toEqual([]);
    expect(overlaps(run.events, new Set(['child-1']))).toEqual([]);
    // The faults really happened: timeouts and transient throws were retried.
    expect(stats.counters.retried).toBeGreaterThan(poison * RACE_MAX_RETRIES);
  });
});
