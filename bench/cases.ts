import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import b from 'benny';
import type { Redis } from 'ioredis';
import { commandCalls, commandDelta, percentile, preciseNow, usedMemory, waitUntil } from './measure.js';
import { createSystem, type Payload, type Running, type System } from './systems.js';

/**
 * The cases. Each function runs ONE trial of a case for every system, the systems one after another in the
 * order given (run.ts rotates it from trial to trial), so that the libraries are interleaved within each
 * trial and a drift of the machine (another process, a warmer cache) falls on all of them alike. Each
 * system lives under its own prefix, and its keys are deleted after its part of the trial.
 * The send cases are benny suites, one per trial with one entry per system (one benny operation = one
 * whole run of the case; benny runs it twice to warm up, then once measured); drain, latency, memory and
 * commands do not fit benny's ops/s model and use a small harness of their own.
 */

export type SystemName = 'sluice' | 'bullmq' | 'bee';

/** One trial's value per system (and what else the case recorded). */
export type TrialResult = Partial<Record<SystemName, { value: number; details?: unknown }>>;

export interface Settings {
  url: string;
  trials: number;
  sendCount: number;
  bulkChunk: number;
  inFlight: number;
  drainCount: number;
  drainConcurrency: number[];
  latencyRate: number;
  latencySeconds: number;
  latencyWarmupSeconds: number;
  latencyConcurrency: number;
  memoryCount: number;
  commandsCount: number;
  commandsConcurrency: number;
}

const payload = (i: number): Payload => ({ i, ts: Date.now() });

async function fill(system: System, count: number, chunk: number): Promise<void> {
  for (let from = 0; from < count; from += chunk) {
    const payloads: Payload[] = [];
    for (let i = from; i < Math.min(count, from + chunk); i++) payloads.push(payload(i));
    await system.sendBulk(payloads);
  }
}

type SendMode = 'sequential' | 'inFlight' | 'bulk';

async function sendAll(system: System, mode: SendMode, s: Settings): Promise<void> {
  const count = s.sendCount;
  if (mode === 'sequential') {
    for (let i = 0; i < count; i++) await system.send(payload(i));
  } else if (mode === 'bulk') {
    await fill(system, count, s.bulkChunk);
  } else {
    // A window of `inFlight` sends: a new one starts as soon as one finishes.
    let next = 0;
    const worker = async () => {
      while (next < count) await system.send(payload(next++));
    };
    await Promise.all(Array.from({ length: s.inFlight }, worker));
  }
}

/** Messages per second of one send mode: one benny suite, one entry per system. */
export async function sendCase(order: readonly SystemName[], mode: SendMode, s: Settings): Promise<TrialResult> {
  const systems = order.map((name) => createSystem(name, s.url));
  try {
    const summary = await b.suite(
      `send ${mode}`,
      ...systems.map((system) =>
        // The messages of the warm-up runs stay in the queue (benny has no untimed step between runs), as
        // they do for every system.
        b.add(system.name, () => sendAll(system, mode, s), { minSamples: 1, initCount: 1, maxTime: 0.001, delay: 0 }),
      ),
    );
    const out: TrialResult = {};
    summary.results.forEach((result, n) => {
      const name = order[n]!;
      out[name] = {
        value: s.sendCount / result.details.sampleResults[0]!,
        details: { bennySamples: result.samples, seconds: result.details.sampleResults },
      };
    });
    return out;
  } finally {
    for (const system of systems) {
      await system.cleanup();
      await system.close();
    }
  }
}

/** Messages per second draining `drainCount` pre-filled messages at one concurrency. */
export async function drainCase(order: readonly SystemName[], concurrency: number, s: Settings): Promise<TrialResult> {
  const out: TrialResult = {};
  for (const name of order) {
    const system = createSystem(name, s.url);
    try {
      await fill(system, s.drainCount, 1000);
      const before = await system.completed();
      const t0 = performance.now();
      const running = await consumeUntil(system, concurrency, s.drainCount, before);
      const seconds = (performance.now() - t0) / 1000;
      out[name] = { value: s.drainCount / seconds };
      await running.close();
    } finally {
      await system.cleanup();
      await system.close();
    }
  }
  return out;
}

/**
 * Starts a consumer and resolves once `count` messages have been completed in Redis. Completion is polled
 * only after every handler has started, so that the polls add next to nothing to what is measured.
 */
async function consumeUntil(system: System, concurrency: number, count: number, before: number): Promise<Running> {
  let started = 0;
  let allStarted!: () => void;
  const startedAll = new Promise<void>((resolve) => (allStarted = resolve));
  const running = await system.consume(concurrency, () => {
    if (++started === count) allStarted();
  });
  await startedAll;
  await waitUntil(async () => (await system.completed()) - before >= count, 'completion');
  return running;
}

export interface LatencyTrial {
  p50: number;
  p99: number;
  max: number;
  count: number;
}

/**
 * Send-to-handler-start latency at a steady rate, one trial per system in `order` ('raw' is the floor);
 * the consumer runs in a child process. `ts` in the payload is a sub-millisecond wall-clock time
 * (performance.timeOrigin + now), comparable across processes.
 */
export async function latencyCase(
  order: readonly (SystemName | 'raw')[],
  s: Settings,
): Promise<Partial<Record<SystemName | 'raw', LatencyTrial>>> {
  const out: Partial<Record<SystemName | 'raw', LatencyTrial>> = {};
  for (const name of order) {
    const system = createSystem(name, s.url);
    const child = fork(fileURLToPath(new URL('./latency-consumer.js', import.meta.url)), [
      name,
      s.url,
      (system as unknown as { prefix: string }).prefix,
      String(s.latencyConcurrency),
    ]);
    try {
      await once(child, 'message');
      const warmup = Math.round(s.latencyRate * s.latencyWarmupSeconds);
      const total = warmup + Math.round(s.latencyRate * s.latencySeconds);
      const sends: Promise<unknown>[] = [];
      const start = preciseNow();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((preciseNow() - start) * s.latencyRate) / 1000) + 1);
        while (sent < due) {
          sends.push(system.send({ i: sent < warmup ? -1 : sent, ts: preciseNow() }));
          sent++;
        }
        await sleep(1);
      }
      await Promise.all(sends);
      child.send({ stop: total - warmup });
      const [reply] = (await once(child, 'message')) as [{ latencies: number[] }];
      const sorted = reply.latencies.sort((x, y) => x - y);
      out[name] = {
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted[sorted.length - 1]!,
        count: sorted.length,
      };
    } finally {
      if (child.exitCode === null) await once(child, 'exit');
      await system.cleanup();
      await system.close();
    }
  }
  return out;
}

/** Redis used_memory delta per pending message, N messages sent in bulk and left pending. */
export async function memoryCase(order: readonly SystemName[], s: Settings, redis: Redis): Promise<TrialResult> {
  const out: TrialResult = {};
  for (const name of order) {
    const system = createSystem(name, s.url);
    try {
      // Create the connection and load the scripts first, so that neither is counted.
      await system.sendBulk([payload(-1)]);
      await system.cleanup();
      await sleep(200);
      const before = await usedMemory(redis);
      await fill(system, s.memoryCount, 1000);
      const after = await usedMemory(redis);
      out[name] = { value: (after - before) / s.memoryCount };
    } finally {
      await system.cleanup();
      await system.close();
    }
  }
  return out;
}

/**
 * Redis commands per message end to end: N messages sent one at a time, then consumed at a concurrency,
 * counted as the INFO commandstats delta (commands run inside Lua scripts included).
 */
export async function commandsCase(order: readonly SystemName[], s: Settings, redis: Redis): Promise<TrialResult> {
  const out: TrialResult = {};
  for (const name of order) {
    const system = createSystem(name, s.url);
    try {
      await system.sendBulk([payload(-1)]);
      const warm = await system.consume(1, () => undefined);
      await waitUntil(async () => (await system.completed()) >= 1, 'warm-up');
      await warm.close();
      await system.cleanup();
      const before = await commandCalls(redis);
      for (let i = 0; i < s.commandsCount; i++) await system.send(payload(i));
      const done = await system.completed();
      const running = await consumeUntil(system, s.commandsConcurrency, s.commandsCount, done);
      await running.close();
      const after = await commandCalls(redis);
      const delta = commandDelta(before, after);
      // The INFO calls themselves are not part of the work.
      delete delta.info;
      const total = Object.values(delta).reduce((sum, n) => sum + n, 0);
      out[name] = { value: total / s.commandsCount, details: delta };
    } finally {
      await system.cleanup();
      await system.close();
    }
  }
  return out;
}
