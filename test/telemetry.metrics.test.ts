import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EventBus, Scheduler, ValidationError, type Consumer } from '../src/index.js';
import { SluiceMetrics } from '../src/telemetry/metrics.js';
import { useRedis, waitFor } from './helpers.js';
import { useOutbox } from './outbox.helpers.js';

const t = useRedis();
const ob = useOutbox();

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format (0.0.4), parsed: HELP and TYPE per family, and every sample. */
function parse(text: string): { help: Map<string, string>; type: Map<string, string>; samples: Sample[] } {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    }
    const raw = sample[3]!;
    samples.push({
      name: sample[1]!,
      labels,
      value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw),
    });
  }
  return { help, type, samples };
}

async function scrape(register: Registry) {
  const parsed = parse(await register.metrics());
  /** the value of the one sample of `name` whose labels include `labels`; undefined when there is none */
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    const found = parsed.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
    return found[0]?.value;
  };
  return { ...parsed, value };
}

/** Counts the script calls (EVALSHA, or EVAL after a NOSCRIPT) sent on a connection, client side. */
function countScripts(client: Redis): { calls: () => number; reset: () => void } {
  let calls = 0;
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: { name: string }, ...rest: unknown[]) => {
    if (command.name === 'evalsha' || command.name === 'eval') calls++;
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  };
  return { calls: () => calls, reset: () => (calls = 0) };
}

describe('sluice/metrics', () => {
  it('exposes queue depth by state and priority, oldest age and the Redis counters, typed and described', async () => {
    const prefix = t.prefix();
    const orders = t.queue<{ n: number }>('orders', { prefix });
    const idle = t.queue('idle', { prefix });
    for (let n = 0; n < 5; n++) await orders.send({ n });
    const taken = await orders.dequeue({ count: 5 });
    for (const d of taken.slice(0, 3)) await orders.ack(d);
    await orders.nack(taken[3]!, { retry: false, error: 'poison' });
    await orders.nack(taken[4]!, { delayMs: 60_000 });
    await orders.send({ n: 5 }, { priority: 'HIGH' });
    await orders.send({ n: 6 });
    await orders.send({ n: 7 });
    await orders.send({ n: 8 }, { delayMs: 60_000 });
    const [inflight] = await orders.dequeue(); // the HIGH one
    expect(inflight!.payload.n).toBe(5);
    await waitFor(async () => ((await orders.getStats()).oldestReadyAgeMs ?? 0) > 0, 'the oldest ready message to age');
    await orders.pause();

    const register = new Registry();
    const metrics = new SluiceMetrics({ register, connection: t.redis, prefix, queues: ['orders', idle] });
    const m = await scrape(register);
    const q = { queue: 'orders' };
    expect(m.value('sluice_queue_messages', { ...q, state: 'ready' })).toBe(2);
    expect(m.value('sluice_queue_messages', { ...q, state: 'inflight' })).toBe(1);
    expect(m.value('sluice_queue_messages', { ...q, state: 'delayed' })).toBe(2);
    expect(m.value('sluice_queue_messages', { ...q, state: 'dead' })).toBe(1);
    expect(m.value('sluice_queue_messages', { ...q, state: 'backlog' })).toBe(0);
    expect(m.value('sluice_queue_ready_messages', { ...q, priority: 'normal' })).toBe(2);
    expect(m.value('sluice_queue_ready_messages', { ...q, priority: 'high' })).toBe(0);
    expect(m.value('sluice_queue_paused', q)).toBe(1);
    expect(m.value('sluice_queue_paused', { queue: 'idle' })).toBe(0);
    const age = m.value('sluice_queue_oldest_ready_age_seconds', q)!;
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThan(60);
    expect(m.value('sluice_queue_oldest_ready_age_seconds', { queue: 'idle' })).toBe(0);
    expect(m.value('sluice_queue_sent_messages_total', q)).toBe(9);
    expect(m.value('sluice_queue_delivered_messages_total', q)).toBe(6);
    expect(m.value('sluice_queue_acked_messages_total', q)).toBe(3);
    expect(m.value('sluice_queue_retried_messages_total', q)).toBe(1);
    expect(m.value('sluice_queue_dead_lettered_messages_total', q)).toBe(1);
    expect(m.value('sluice_queue_reclaimed_messages_total', q)).toBe(0);
    expect(m.value('sluice_queue_sent_messages_total', { queue: 'idle' })).toBe(0);
    // every state of every queue is a series: 5 states x 2 queues
    expect(m.samples.filter((s) => s.name === 'sluice_queue_messages')).toHaveLength(10);

    expect(m.type.get('sluice_queue_messages')).toBe('gauge');
    expect(m.type.get('sluice_queue_oldest_ready_age_seconds')).toBe('gauge');
    expect(m.type.get('sluice_queue_sent_messages_total')).toBe('counter');
    expect(m.type.get('sluice_handler_duration_seconds')).toBe('histogram');
    for (const [name, type] of m.type) {
      expect(m.help.get(name), `HELP of ${name}`).toMatch(/\w/);
      // Prometheus conventions: _total only and always on counters; base units
      expect(name.endsWith('_total'), `${name} is a ${type}`).toBe(type === 'counter');
      expect(name).not.toMatch(/_(ms|milliseconds|minutes)$/);
    }
    // Counters keep their absolute value from Redis across scrapes (not added up again)
    await orders.send({ n: 9 });
    const again = await scrape(register);
    expect(again.value('sluice_queue_sent_messages_total', q)).toBe(10);
    expect(again.value('sluice_queue_messages', { ...q, state: 'ready' })).toBe(3);
    metrics.close();
    expect(await register.metrics()).toBe('\n');
  });

  it('reads each queue with one script call per scrape, and a discovery function at every scrape', async () => {
    const prefix = t.prefix();
    const client = t.connection();
    const names = ['a', 'b', 'c'];
    for (const name of names) await t.queue(name, { prefix }).send({ name });
    let discovered = 0;
    const register = new Registry();
    new SluiceMetrics({
      register,
      connection: client,
      prefix,
      queues: async () => {
        discovered++;
        return names;
      },
    });
    await register.metrics(); // loads the scripts on this connection (a NOSCRIPT retry would count twice)
    const counter = countScripts(client);
    const m = await scrape(register);
    expect(counter.calls()).toBe(3);
    expect(discovered).toBe(2);
    expect(m.value('sluice_queue_messages', { queue: 'c', state: 'ready' })).toBe(1);
    // A queue that appears is reported from the next scrape on
    names.push('d');
    await t.queue('d', { prefix }).send({ name: 'd' });
    counter.reset();
    const next = await scrape(register);
    expect(counter.calls()).toBe(4);
    expect(next.value('sluice_queue_messages', { queue: 'd', state: 'ready' })).toBe(1);
    // two scrapes at once share one read
    counter.reset();
    await Promise.all([register.metrics(), register.metrics()]);
    expect(counter.calls()).toBe(4);
  });

  it('a source that cannot be read is left out and counted, the rest is reported', async () => {
    const prefix = t.prefix();
    await t.queue('ok', { prefix }).send({});
    const errors: string[] = [];
    const register = new Registry();
    new SluiceMetrics({
      register,
      connection: t.redis,
      prefix,
      queues: ['ok', 'bad name!'],
      onError: (_error, source) => errors.push(source),
    });
    const m = await scrape(register);
    expect(m.value('sluice_queue_messages', { queue: 'ok', state: 'ready' })).toBe(1);
    expect(m.value('sluice_metrics_collect_errors_total', { source: 'queue' })).toBe(1);
    expect(errors).toEqual(['queue bad name!']);
    expect(m.value('sluice_metrics_collect_duration_seconds')).toBeGreaterThan(0);
  });

  it('prom-client is loaded by sluice/metrics only, never by the main entry (npm run build first)', async () => {
    const loads = async (entry: string): Promise<boolean> => {
      const url = new URL(`../dist/src/${entry}`, import.meta.url).href;
      const script =
        `import(${JSON.stringify(url)}).then(() => console.log(Object.keys(require('node:module')._cache)` +
        `.some((path) => path.includes('/prom-client/'))))`;
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      });
      return stdout.trim() === 'true';
    };
    expect(await loads('index.js')).toBe(false);
    expect(await loads('telemetry/metrics.js')).toBe(true);
  });

  it('refuses options it cannot use', () => {
    expect(() => new SluiceMetrics({ register: new Registry(), queues: ['orders'] })).toThrow(ValidationError);
    expect(() => new SluiceMetrics({ register: new Registry(), connection: 'redis://x' as never })).toThrow(
      /ioredis client/,
    );
    expect(() => new SluiceMetrics({ register: new Registry(), queus: [] } as never)).toThrow(/queues/);
    expect(() => new SluiceMetrics({ register: new Registry(), handlerBuckets: [1, 0.5] })).toThrow(/increasing/);
    const register = new Registry();
    const first = new SluiceMetrics({ register });
    expect(() => new SluiceMetrics({ register })).toThrow(/registered on this registry already/);
    first.close();
    new SluiceMetrics({ register }).close();
  });

  it('observes handler durations of a consumer as a histogram, by outcome', async () => {
    const prefix = t.prefix();
    const queue = t.queue<{ fail?: boolean; hang?: boolean }>('work', { prefix, retry: { baseMs: 60_000 } });
    const register = new Registry();
    const metrics = new SluiceMetrics({ register, queues: [queue] });
    for (let n = 0; n < 3; n++) await queue.send({});
    await queue.send({ fail: true });
    await queue.send({ hang: true });
    const consumer: Consumer<{ fail?: boolean; hang?: boolean }> = queue.consume(
      async (message, { signal }) => {
        if (message.payload.hang) {
          await new Promise((resolve) => signal.addEventListener('abort', resolve));
          return;
        }
        await sleep(30);
        return !message.payload.fail;
      },
      { concurrency: 5, handlerTimeoutMs: 200 },
    );
    metrics.observeConsumer(consumer);
    await waitFor(async () => (await queue.getStats()).counters.acked === 3, 'three acks');
    await waitFor(async () => (await queue.getStats()).counters.retried === 2, 'the failure and the timeout nacked');
    await consumer.close();

    const m = await scrape(register);
    const completed = { queue: 'work', outcome: 'completed' };
    expect(m.value('sluice_handler_duration_seconds_count', completed)).toBe(3);
    expect(m.value('sluice_handler_duration_seconds_count', { queue: 'work', outcome: 'failed' })).toBe(1);
    expect(m.value('sluice_handler_duration_seconds_count', { queue: 'work', outcome: 'timeout' })).toBe(1);
    // each handler slept 30 ms: none in the 10 ms bucket, all by +Inf; buckets are cumulative
    expect(m.value('sluice_handler_duration_seconds_bucket', { ...completed, le: '0.01' })).toBe(0);
    expect(m.value('sluice_handler_duration_seconds_bucket', { ...completed, le: '+Inf' })).toBe(3);
    const buckets = m.samples.filter(
      (s) => s.name === 'sluice_handler_duration_seconds_bucket' && s.labels.outcome === 'completed',
    );
    expect(buckets.map((b) => b.labels.le)).toEqual([
      '0.001',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '30',
      '60',
      '+Inf',
    ]);
    for (let n = 1; n < buckets.length; n++) expect(buckets[n]!.value).toBeGreaterThanOrEqual(buckets[n - 1]!.value);
    const sum = m.value('sluice_handler_duration_seconds_sum', completed)!;
    expect(sum).toBeGreaterThanOrEqual(0.09);
    expect(sum).toBeLessThan(60);
    // the timed-out handler is observed at its timeout (200 ms, measured by Date.now(): a millisecond either way)
    expect(
      m.value('sluice_handler_duration_seconds_sum', { queue: 'work', outcome: 'timeout' }),
    ).toBeGreaterThanOrEqual(0.19);
  });

  it('exposes bus counters, subscriptions and each subscriber queue', async () => {
    const prefix = t.prefix();
    const bus = new EventBus('orders', { connection: t.redis, prefix });
    await bus.subscribe('billing', ['order.#']);
    await bus.subscribe('audit', ['#']);
    await bus.pause('audit');
    await bus.publishMany([
      { type: 'order.created', data: {}, id: 'e1' },
      { type: 'order.created', data: {}, id: 'e1' },
      { type: 'order.paid', data: {} },
    ]);
    const billing = bus.subscriberQueue('billing');
    const [first] = await billing.dequeue();
    await billing.nack(first!, { retry: false });

    const register = new Registry();
    new SluiceMetrics({ register, connection: t.redis, prefix, buses: ['orders'] });
    const m = await scrape(register);
    const b = { bus: 'orders' };
    expect(m.value('sluice_bus_published_events_total', b)).toBe(2);
    expect(m.value('sluice_bus_duplicate_events_total', b)).toBe(1);
    expect(m.value('sluice_bus_delivered_events_total', b)).toBe(2); // audit was paused: billing got both
    expect(m.value('sluice_bus_dead_lettered_deliveries_total', b)).toBe(1);
    expect(m.value('sluice_bus_subscriptions', { ...b, state: 'active' })).toBe(1);
    expect(m.value('sluice_bus_subscriptions', { ...b, state: 'paused' })).toBe(1);
    expect(m.value('sluice_bus_subscriber_messages', { ...b, subscriber: 'billing', state: 'ready' })).toBe(1);
    expect(m.value('sluice_bus_subscriber_messages', { ...b, subscriber: 'billing', state: 'dead' })).toBe(1);
    expect(m.value('sluice_bus_subscriber_messages', { ...b, subscriber: 'audit', state: 'ready' })).toBe(0);
    expect(m.type.get('sluice_bus_published_events_total')).toBe('counter');
    await bus.close();
  });

  it('reads a bus with one script call, plus one per subscriber queue unless subscriberQueues is false', async () => {
    const prefix = t.prefix();
    const client = t.connection();
    const bus = new EventBus('domain', { connection: t.redis, prefix });
    for (const id of ['a', 'b', 'c']) await bus.subscribe(id, ['#']);
    await bus.publish('thing.done', {});
    const registers = [new Registry(), new Registry()];
    new SluiceMetrics({ register: registers[0], connection: client, prefix, buses: ['domain'] });
    new SluiceMetrics({
      register: registers[1],
      connection: client,
      prefix,
      buses: ['domain'],
      subscriberQueues: false,
    });
    await Promise.all(registers.map((r) => r.metrics())); // loads the scripts
    const counter = countScripts(client);
    const full = await scrape(registers[0]!);
    expect(counter.calls()).toBe(4);
    expect(full.value('sluice_bus_subscriber_messages', { subscriber: 'c', state: 'ready' })).toBe(1);
    counter.reset();
    const light = await scrape(registers[1]!);
    expect(counter.calls()).toBe(1);
    expect(light.value('sluice_bus_delivered_events_total', { bus: 'domain' })).toBe(3);
    expect(light.samples.filter((s) => s.name === 'sluice_bus_subscriber_messages')).toEqual([]);
    await bus.close();
  });

  it("labels a bus consumer's handler durations with its subscriber id; the returned function stops observing", async () => {
    const prefix = t.prefix();
    const bus = new EventBus('domain', { connection: t.redis, prefix });
    await bus.subscribe('mailer', ['#']);
    const register = new Registry();
    const metrics = new SluiceMetrics({ register });
    let handled = 0;
    const consumer = bus.consume('mailer', () => {
      handled++;
    });
    await consumer.ready;
    const stop = metrics.observeConsumer(consumer);
    await bus.publish('user.joined', {});
    await waitFor(async () => (await bus.subscriberQueue('mailer').getStats()).counters.acked === 1, 'the first ack');
    stop();
    await bus.publish('user.joined', {});
    await waitFor(async () => (await bus.subscriberQueue('mailer').getStats()).counters.acked === 2, 'the second ack');
    await consumer.close();
    expect(handled).toBe(2);
    const m = await scrape(register);
    expect(m.value('sluice_handler_duration_seconds_count', { queue: 'mailer', outcome: 'completed' })).toBe(1);
    await bus.close();
  });

  it('exposes scheduler jobs: last success, failures, runs', async () => {
    const prefix = t.prefix();
    const scheduler = new Scheduler({ connection: t.redis, prefix, pollMs: 20 });
    scheduler.on('error', () => undefined);
    scheduler
      .addJob({ name: 'fine', every: 50, handler: () => 'ok' })
      .addJob({
        name: 'broken',
        every: 50,
        handler: () => {
          throw new Error('boom');
        },
      })
      .start();
    await waitFor(async () => {
      const jobs = await scheduler.getAllJobsStatus();
      return jobs.length === 2 && jobs.every((job) => job.runCount >= 2 && job.state !== 'running');
    }, 'both jobs to run twice');
    await scheduler.close();

    const reader = new Scheduler({ connection: t.redis, prefix });
    const register = new Registry();
    new SluiceMetrics({ register, scheduler: reader });
    const m = await scrape(register);
    const jobs = Object.fromEntries((await reader.getAllJobsStatus()).map((j) => [j.name, j]));
    expect(m.value('sluice_scheduler_job_last_success_timestamp_seconds', { job: 'fine' })).toBe(
      jobs.fine!.lastFinishedAt! / 1000,
    );
    expect(m.value('sluice_scheduler_job_last_success_timestamp_seconds', { job: 'broken' })).toBeUndefined();
    expect(m.value('sluice_scheduler_job_failures_total', { job: 'broken' })).toBe(jobs.broken!.failureCount);
    expect(jobs.broken!.failureCount).toBeGreaterThanOrEqual(2);
    expect(m.value('sluice_scheduler_job_failures_total', { job: 'fine' })).toBe(0);
    expect(m.value('sluice_scheduler_job_runs_total', { job: 'fine' })).toBe(jobs.fine!.runCount);
    expect(m.value('sluice_scheduler_job_last_run_failed', { job: 'broken' })).toBe(1);
    expect(m.value('sluice_scheduler_job_last_run_failed', { job: 'fine' })).toBe(0);
    expect(m.value('sluice_scheduler_job_paused', { job: 'fine' })).toBe(0);
    expect(m.type.get('sluice_scheduler_job_failures_total')).toBe('counter');
    await reader.close();
  });

  it("keeps a job's last success it has seen while the job's later runs fail", async () => {
    const prefix = t.prefix();
    const scheduler = new Scheduler({ connection: t.redis, prefix, pollMs: 20 });
    scheduler.on('error', () => undefined);
    let runs = 0;
    scheduler
      .addJob({
        name: 'flaky',
        every: 50,
        handler: async () => {
          runs++;
          // The first run pauses the job, so the collector sees it succeeded before the next run starts.
          if (runs === 1) return scheduler.pauseJob('flaky');
          throw new Error('down');
        },
      })
      .start();
    const status = async () => (await scheduler.getJobStatus('flaky'))!;
    await waitFor(async () => (await status()).state === 'succeeded', 'the first run to succeed');
    const register = new Registry();
    new SluiceMetrics({ register, scheduler });
    const first = await scrape(register);
    const succeededAt = (await status()).lastFinishedAt! / 1000;
    expect(first.value('sluice_scheduler_job_last_success_timestamp_seconds', { job: 'flaky' })).toBe(succeededAt);
    expect(first.value('sluice_scheduler_job_paused', { job: 'flaky' })).toBe(1);
    await scheduler.resumeJob('flaky');
    await waitFor(async () => (await status()).failureCount >= 1 && (await status()).state === 'failed', 'a failure');
    const later = await scrape(register);
    expect(later.value('sluice_scheduler_job_last_success_timestamp_seconds', { job: 'flaky' })).toBe(succeededAt);
    expect(later.value('sluice_scheduler_job_last_run_failed', { job: 'flaky' })).toBe(1);
    expect(later.value('sluice_scheduler_job_failures_total', { job: 'flaky' })).toBeGreaterThanOrEqual(1);
    await scheduler.close();
  });

  it('exposes outbox pending rows, lag and failed rows from MariaDB', async () => {
    const prefix = ob.prefix();
    const bus = ob.bus(prefix);
    const table = ob.table();
    const outbox = ob.outbox(bus, table, { maxAttempts: 1 });
    await outbox.migrate();
    const event = (aggregateId: string) => ({ aggregateType: 'order', aggregateId, type: 'order.created', data: {} });
    await outbox.publishInTransaction(() => undefined, [event('a'), event('b'), event('c')]);
    await waitFor(async () => (await outbox.stats()).oldestPendingAgeMs > 0, 'the oldest pending row to age');

    const register = new Registry();
    const metrics = new SluiceMetrics({ register, outboxes: [outbox] });
    const before = await scrape(register);
    expect(before.value('sluice_outbox_rows', { table, status: 'pending' })).toBe(3);
    expect(before.value('sluice_outbox_rows', { table, status: 'published' })).toBe(0);
    const lag = before.value('sluice_outbox_lag_seconds', { table })!;
    expect(lag).toBeGreaterThan(0);
    expect(lag).toBeLessThan(60);
    expect(before.value('sluice_outbox_relayed_events_total', { table })).toBe(0);

    await outbox.relayOnce();
    const after = await scrape(register);
    expect(after.value('sluice_outbox_rows', { table, status: 'pending' })).toBe(0);
    expect(after.value('sluice_outbox_rows', { table, status: 'published' })).toBe(3);
    expect(after.value('sluice_outbox_lag_seconds', { table })).toBe(0);
    expect(after.value('sluice_outbox_relayed_events_total', { table })).toBe(3);
    metrics.close();
  });
});
