// What tracing costs on the send and drain paths, in one run:
//   npm run bench:tracing            (REDIS_URL, MESSAGES, TRIALS to change the defaults)
// Three settings, run in interleaved trials (off, api, sdk, then api, sdk, off, ...) so that a machine busy
// with something else slows every setting alike:
//   off  a queue without the instrumentation option (the default: one null check per send and handler);
//   api  instrumentation: tracing() with @opentelemetry/api loaded but no SDK registered (no-op tracer);
//   sdk  instrumentation: tracing() with the SDK's BasicTracerProvider, a BatchSpanProcessor (what production
//        setups use; its queue made large enough to drop nothing) and an InMemorySpanExporter: every span
//        recorded and exported, the W3C context written into every message. (A SimpleSpanProcessor, which
//        exports each span as it ends, costs about twice as much per span.)
// Each trial sends MESSAGES messages with 100 sends in flight, then drains them with a consumer of
// concurrency 32, and reports messages per second for both. Medians over the trials, and the ratio to off.
import { randomBytes } from 'node:crypto';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { Queue, type Instrumentation } from '../src/index.js';
import { tracing } from '../src/telemetry/index.js';
import { deleteMatching, median } from './measure.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MESSAGES = Number(process.env.MESSAGES ?? '20000');
const TRIALS = Number(process.env.TRIALS ?? '5');
const IN_FLIGHT = 100;
const CONCURRENCY = 32;

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 4 * MESSAGES + 100, maxExportBatchSize: 512 })],
});
const settings: Record<string, Instrumentation | undefined> = {
  off: undefined,
  api: tracing(),
  sdk: tracing({ tracerProvider: provider, propagator: new W3CTraceContextPropagator() }),
};
const redis = new Redis(url);

function deletePrefix(prefix: string): Promise<void> {
  return deleteMatching(redis, `{${prefix}:*`);
}

async function trial(instrumentation: Instrumentation | undefined): Promise<{ send: number; drain: number }> {
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const queue = new Queue<{ n: number; body: string }>('bench', {
    connection: redis,
    prefix,
    ...(instrumentation ? { instrumentation } : {}),
  });
  try {
    await queue.send({ n: -1, body: '' }); // loads the script
    let next = 0;
    const sendStarted = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < MESSAGES) await queue.send({ n: next++, body: 'order-created' });
      }),
    );
    const send = MESSAGES / (Number(process.hrtime.bigint() - sendStarted) / 1e9);
    let handled = 0;
    let drained!: () => void;
    const done = new Promise<void>((resolve) => (drained = resolve));
    const drainStarted = process.hrtime.bigint();
    const consumer = queue.consume(
      () => {
        if (++handled === MESSAGES + 1) drained();
      },
      { concurrency: CONCURRENCY },
    );
    await done;
    const drain = (MESSAGES + 1) / (Number(process.hrtime.bigint() - drainStarted) / 1e9);
    await consumer.close();
    await provider.forceFlush();
    const expectedSpans = instrumentation === settings.sdk ? 2 * (MESSAGES + 1) : 0;
    if (exporter.getFinishedSpans().length !== expectedSpans)
      throw new Error(`expected ${expectedSpans} spans, got ${exporter.getFinishedSpans().length}`);
    return { send, drain };
  } finally {
    exporter.reset();
    await queue.close();
    await deletePrefix(prefix);
  }
}

const names = Object.keys(settings);
const results = new Map(names.map((name) => [name, { send: [] as number[], drain: [] as number[] }]));
await trial(undefined); // warm-up: JIT, connection, script cache
for (let t = 0; t < TRIALS; t++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(t + k) % names.length]!;
    const { send, drain } = await trial(settings[name]);
    results.get(name)!.send.push(send);
    results.get(name)!.drain.push(drain);
  }
}
const off = results.get('off')!;
console.log(
  `tracing cost: ${MESSAGES} messages per trial, ${TRIALS} interleaved trials, ${IN_FLIGHT} sends in flight, ` +
    `drain with concurrency ${CONCURRENCY}; medians (messages/s) and ratio to off`,
);
console.log('setting  send/s    ratio  drain/s   ratio');
for (const name of names) {
  const r = results.get(name)!;
  const send = median(r.send);
  const drain = median(r.drain);
  console.log(
    `${name.padEnd(8)} ${send.toFixed(0).padStart(7)}  ${(send / median(off.send)).toFixed(2).padStart(5)}  ` +
      `${drain.toFixed(0).padStart(7)}  ${(drain / median(off.drain)).toFixed(2).padStart(5)}`,
  );
}
await provider.shutdown();
redis.disconnect();
