import { context, propagation, SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBus, ValidationError, type Delivery, type Event, type Queue } from '../src/index.js';
import { QueueService } from '../src/service/index.js';
import { tracing } from '../src/telemetry/index.js';
import { ON_CLUSTER, redisUrl, useRedis, waitFor } from './helpers.js';
import { useOutbox } from './outbox.helpers.js';

const ctx = useRedis();
const outboxes = useOutbox();
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
const instrumentation = tracing({ tracerProvider: provider, propagator: new W3CTraceContextPropagator() });
const appTracer = provider.getTracer('app');

afterAll(async () => {
  await provider.shutdown();
  context.disable();
});
beforeEach(() => exporter.reset());

const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);
const onlySpan = (name: string): ReadableSpan => {
  const found = spans(name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
};
const idsOf = (span: { spanContext(): SpanContext } | SpanContext) => {
  const c = 'spanContext' in span ? span.spanContext() : span;
  return { traceId: c.traceId, spanId: c.spanId };
};
/** The producer span is the process span's parent and its link. */
function expectContinues(process: ReadableSpan, producer: ReadableSpan): void {
  expect(process.spanContext().traceId).toBe(producer.spanContext().traceId);
  expect(idsOf(process.parentSpanContext!)).toEqual(idsOf(producer));
  expect(process.links.map((link) => idsOf(link.context))).toEqual([idsOf(producer)]);
}

/** Runs `fn` inside an application span (an incoming request, say) and returns that span. */
async function inRequest(fn: () => Promise<unknown>): Promise<ReadableSpan> {
  let id = '';
  await appTracer.startActiveSpan('request', async (span) => {
    id = span.spanContext().spanId;
    await fn();
    span.end();
  });
  return exporter.getFinishedSpans().find((s) => s.spanContext().spanId === id)!;
}

function consume<T>(queue: Queue<T>, handler: (delivery: Delivery<T>) => unknown) {
  const consumer = queue.consume(handler, { handlerTimeoutMs: 10_000 });
  consumer.on('error', () => undefined);
  return consumer;
}

describe('tracing', () => {
  it('send: a producer span in the caller trace, whose context the handler continues', async () => {
    const queue = ctx.queue<{ n: number }>('orders', { instrumentation });
    let sentId = '';
    const request = await inRequest(async () => {
      sentId = await queue.send({ n: 1 });
    });
    const handled: string[] = [];
    const consumer = consume(queue, (delivery) => {
      // The handler runs in the process span: its own spans are children of it.
      appTracer.startSpan('handler work').end();
      handled.push(delivery.id);
    });
    await waitFor(() => spans('process orders').length === 1, 'the process span');
    await consumer.close();

    const send = onlySpan('send orders');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(idsOf(send.parentSpanContext!)).toEqual(idsOf(request));
    expect(send.attributes).toEqual({
      'messaging.system': 'sluice',
      'messaging.destination.name': 'orders',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.message.id': sentId,
    });
    const process = onlySpan('process orders');
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expectContinues(process, send);
    expect(process.attributes).toEqual({
      'messaging.system': 'sluice',
      'messaging.destination.name': 'orders',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.message.id': sentId,
      'messaging.sluice.message.delivery_attempt': 1,
    });
    expect(process.status.code).toBe(SpanStatusCode.UNSET);
    expect(idsOf(onlySpan('handler work').parentSpanContext!)).toEqual(idsOf(process));
    expect(handled).toEqual([sentId]);
    expect(instrumentation).toBeDefined();
  });

  it('a retry and a replay from the dead-letter queue continue the same producer context', async () => {
    const queue = ctx.queue<string>('jobs', { instrumentation, retry: { baseMs: 1, capMs: 1 } });
    await inRequest(() => queue.send('x', { maxRetries: 1 }));
    let runs = 0;
    const consumer = consume(queue, () => {
      runs += 1;
      if (runs <= 2) throw new Error(`attempt ${runs} failed`);
    });
    await waitFor(async () => (await queue.getStats()).deadLetters === 1, 'the message to be dead-lettered');
    expect(await queue.replayDeadLetters()).toHaveLength(1);
    await waitFor(() => spans('process jobs').length === 3, 'three process spans');
    await consumer.close();

    const send = onlySpan('send jobs');
    const runsSpans = spans('process jobs').sort(
      (a, b) =>
        Number(a.attributes['messaging.sluice.message.delivery_attempt']) -
          Number(b.attributes['messaging.sluice.message.delivery_attempt']) || a.startTime[0] - b.startTime[0],
    );
    expect(runsSpans.map((s) => s.attributes['messaging.sluice.message.delivery_attempt'])).toEqual([1, 1, 2]);
    for (const span of runsSpans) expectContinues(span, send);
    const failedRuns = runsSpans.filter((s) => s.status.code === SpanStatusCode.ERROR);
    expect(failedRuns.map((s) => s.status.message).sort()).toEqual(['attempt 1 failed', 'attempt 2 failed']);
    expect(failedRuns.map((s) => s.attributes['error.type'])).toEqual(['Error', 'Error']);
    expect(runsSpans.filter((s) => s.status.code === SpanStatusCode.UNSET)).toHaveLength(1);
  });

  it('a handler returning false is an error; sendMany is one span with the batch count, continued by each', async () => {
    const queue = ctx.queue<number>('batch', { instrumentation });
    const ids = await queue.sendMany([{ payload: 1 }, { payload: 2 }, { payload: 3, maxRetries: 0 }]);
    const consumer = consume(queue, (delivery) => delivery.payload !== 3);
    await waitFor(() => spans('process batch').length === 3, 'three process spans');
    await consumer.close();
    const send = onlySpan('send batch');
    expect(send.attributes['messaging.batch.message_count']).toBe(3);
    expect(send.attributes).not.toHaveProperty('messaging.message.id');
    const processed = spans('process batch');
    for (const span of processed) expectContinues(span, send);
    expect(processed.map((s) => s.attributes['messaging.message.id']).sort()).toEqual([...ids].sort());
    const failed = processed.find((s) => s.status.code === SpanStatusCode.ERROR)!;
    expect(failed.attributes['messaging.message.id']).toBe(ids[2]);
    expect(failed.status.message).toBe('handler returned false');
  });

  it('a refused send ends its span with the error; headers the caller gave are kept', async () => {
    const queue = ctx.queue<number>('refused', { instrumentation });
    await expect(queue.send(1, { priority: 9 as never })).rejects.toBeInstanceOf(ValidationError);
    const refused = onlySpan('send refused');
    expect(refused.status).toMatchObject({ code: SpanStatusCode.ERROR });
    expect(refused.attributes['error.type']).toBe('ValidationError');

    exporter.reset();
    await queue.send(2, { headers: { tenant: 'acme' } });
    const [delivery] = await queue.dequeue();
    expect(delivery!.headers).toEqual({ tenant: 'acme', traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-/) });
    expect(delivery!.headers!.traceparent).toContain(onlySpan('send refused').spanContext().spanId);
  });

  it('bus publish: a producer span, continued by every subscriber handler with its subscription', async () => {
    const prefix = ctx.prefix();
    const bus = new EventBus('market', { connection: ctx.redis, prefix, instrumentation });
    await bus.subscribe('alerts', 'price.*');
    await bus.subscribe('audit', '#');
    let eventId = '';
    await inRequest(async () => {
      eventId = (await bus.publish('price.changed', { p: 1 }, { correlationId: 'c-1' })).id;
    });
    const seen: Event[] = [];
    const consumers = ['alerts', 'audit'].map((id) => bus.consume(id, (event) => void seen.push(event)));
    await waitFor(() => spans('process market').length === 2, 'two process spans');
    await Promise.all(consumers.map((c) => c.close()));
    await bus.close();

    const publish = onlySpan('publish market');
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.attributes).toMatchObject({
      'messaging.destination.name': 'market',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'publish',
      'messaging.message.id': eventId,
    });
    const processed = spans('process market');
    for (const span of processed) {
      expectContinues(span, publish);
      expect(span.attributes).toMatchObject({
        'messaging.system': 'sluice',
        'messaging.destination.name': 'market',
        'messaging.operation.type': 'process',
        'messaging.message.id': eventId,
        'messaging.message.conversation_id': 'c-1',
      });
    }
    expect(processed.map((s) => s.attributes['messaging.destination.subscription.name']).sort()).toEqual([
      'alerts',
      'audit',
    ]);
    expect(seen.every((event) => typeof event.headers?.traceparent === 'string')).toBe(true);
  });

  it("outbox: the writer's trace goes through the row and the relay to the subscriber's handler", async () => {
    const prefix = outboxes.prefix();
    const bus = outboxes.bus(prefix, { instrumentation });
    const outbox = outboxes.outbox(bus, outboxes.table());
    await outbox.migrate();
    await bus.subscribe('billing', 'order.*');
    const request = await inRequest(() =>
      outbox.publishInTransaction(
        async (tx) => tx.query('SELECT 1'),
        [{ aggregateType: 'order', aggregateId: 7, type: 'order.placed', data: {} }],
      ),
    );
    const create = onlySpan('create bus');
    expect(create.kind).toBe(SpanKind.PRODUCER);
    expect(idsOf(create.parentSpanContext!)).toEqual(idsOf(request));
    expect(create.attributes).toMatchObject({
      'messaging.operation.type': 'create',
      'messaging.operation.name': 'create',
    });

    // The relay runs outside any request: its publish span is a trace of its own, linked to the row's context.
    expect(await outbox.relayOnce()).toEqual({ published: 1, refused: 0 });
    const publish = onlySpan('publish bus');
    expect(publish.parentSpanContext).toBeUndefined();
    expect(publish.links.map((link) => idsOf(link.context))).toEqual([idsOf(create)]);

    const consumer = bus.consume('billing', () => undefined);
    await waitFor(() => spans('process bus').length === 1, 'the process span');
    await consumer.close();
    const process = onlySpan('process bus');
    expect(process.spanContext().traceId).toBe(request.spanContext().traceId);
    expectContinues(process, create);
  });

  it('nothing is traced or added to messages without the option, or with the API and no SDK', async () => {
    const plain = ctx.queue<number>('plain');
    const noSdk = ctx.queue<number>('nosdk', { instrumentation: tracing() });
    expect(trace.getTracerProvider().getTracer('x').startSpan('probe').isRecording()).toBe(false);
    await inRequest(async () => {
      await plain.send(1);
      await noSdk.send(2);
      await noSdk.sendMany([{ payload: 3 }]);
    });
    const ran: Delivery<number>[] = [];
    const consumers = [consume(plain, (d) => void ran.push(d)), consume(noSdk, (d) => void ran.push(d))];
    await waitFor(() => ran.length === 3, 'three handler runs');
    await Promise.all(consumers.map((c) => c.close()));
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['request']);
    for (const delivery of ran) expect(delivery).not.toHaveProperty('headers');
    expect(() => ctx.queue('bad', { instrumentation: {} as never })).toThrow(/instrumentation must be an object/);
  });

  it('QueueService passes its instrumentation option to its queues and bus', async () => {
    const service = new QueueService();
    await service.initialize({
      redis: ON_CLUSTER ? ctx.connection() : redisUrl(),
      prefix: ctx.prefix(),
      logger: { info: () => undefined },
      instrumentation,
    });
    try {
      const handled: unknown[] = [];
      await inRequest(() => service.sendMessage({ queueName: 'tasks', payload: { n: 1 }, messageType: 'job' }));
      await service.registerMessageConsumer('tasks', 'worker', (message) => {
        handled.push(message.payload);
        return true;
      });
      await waitFor(() => spans('process tasks').length === 1, 'the process span');
      expectContinues(onlySpan('process tasks'), onlySpan('send tasks'));
      expect(handled).toEqual([{ n: 1 }]);
    } finally {
      await service.gracefulShutdown();
    }
  });

  it('outbox.add in your own transaction, a handler timeout, and a sampled-out trace', async () => {
    const prefix = outboxes.prefix();
    const bus = outboxes.bus(prefix, { instrumentation });
    const outbox = outboxes.outbox(bus, outboxes.table());
    await outbox.migrate();
    await bus.subscribe('slow', 'order.*');
    const request = await inRequest(async () => {
      const tx = await outboxes.pool.getConnection();
      try {
        await tx.beginTransaction();
        await outbox.add(tx, { aggregateType: 'order', aggregateId: 1, type: 'order.placed', data: {} });
        await tx.commit();
      } finally {
        tx.release();
      }
    });
    const create = onlySpan('create bus');
    expect(idsOf(create.parentSpanContext!)).toEqual(idsOf(request));
    await outbox.relayOnce();
    const consumer = bus.consume('slow', () => new Promise(() => undefined), { handlerTimeoutMs: 50 });
    consumer.on('error', () => undefined);
    await waitFor(() => spans('process bus').length === 1, 'the timed-out process span');
    await consumer.close({ graceMs: 0 });
    const timedOut = onlySpan('process bus');
    expectContinues(timedOut, create);
    expect(timedOut.status.code).toBe(SpanStatusCode.ERROR);
    expect(timedOut.attributes['error.type']).toBe('HandlerTimeoutError');

    // A sampler that records nothing: no span is exported, but the (unsampled) context still travels.
    const unsampled = new BasicTracerProvider({
      sampler: new AlwaysOffSampler(),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const queue = ctx.queue<number>('unsampled', {
      instrumentation: tracing({ tracerProvider: unsampled, propagator: new W3CTraceContextPropagator() }),
    });
    exporter.reset();
    await queue.send(1);
    const [delivery] = await queue.dequeue();
    expect(delivery!.headers!.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('only sluice/telemetry imports @opentelemetry/api: sluice itself never loads it', () => {
    const importers: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/from '@opentelemetry\//.test(readFileSync(path, 'utf8'))) importers.push(relative('src', path));
      }
    };
    walk('src');
    expect(importers.sort()).toEqual([join('telemetry', 'tracing.ts')]);
  });

  // Last: it registers the global provider, which stays for the rest of this file.
  it('tracing() without a provider picks up an SDK registered after it was made', async () => {
    const late = tracing();
    const queue = ctx.queue<number>('late', { instrumentation: late });
    await queue.send(1);
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    await queue.send(2);
    const deliveries = await queue.dequeue({ count: 2 });
    expect(deliveries.map((d) => [d.payload, typeof d.headers?.traceparent])).toEqual([
      [1, 'undefined'],
      [2, 'string'],
    ]);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['send late']);
  });
});
