// A process of the chaos suite (test/chaos/harness.ts starts it, SIGKILLs it and starts another).
// CHAOS_WORKER (JSON, see WorkerConfig) says its role: a queue consumer, an event bus subscriber
// consumer, an event publisher or a lock contender. It writes what it does to its record file
// (test/chaos/record.ts) and stops when the parent sends 'stop'.
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  EventBus,
  HandlerTimeoutError,
  LockUnavailableError,
  LockNotHeldError,
  Locks,
  Queue,
  type Consumer,
  type Delivery,
  type DeliveryRef,
  type NackOptions,
} from '../../src/index.js';
import { Recorder } from './record.js';
import { RETRY, type WorkerConfig } from './worker-config.js';

const config = JSON.parse(process.env.CHAOS_WORKER!) as WorkerConfig;
const recorders: Recorder[] = [];
/** one record file per queue this process consumes (receipts are numbered per queue) */
function recorder(path: string, name: string): Recorder {
  const made = new Recorder(path);
  made.write(['H', config.role, name, process.pid]);
  recorders.push(made);
  return made;
}
const rec = recorder(config.record, config.name);
let stopping = false;

function newClient(): Redis {
  const client = new Redis(config.url, { connectionName: `chaos:${config.role}` });
  client.on('error', () => undefined);
  return client;
}

/**
 * Wraps the queue calls the consumer runtime makes, on this queue object only, to record each answer:
 * what Redis said about a receipt is the ground truth the accounting rests on.
 */
function instrument<T>(queue: Queue<T>, dequeuedAt: Map<string, number>, rec: Recorder): void {
  const q = queue as unknown as Record<string, (...args: any[]) => Promise<any>>;
  const dequeueWithWait = q.dequeueWithWait!.bind(queue);
  q.dequeueWithWait = async (count: number, visibilityMs: number) => {
    const at = Date.now();
    const result = await dequeueWithWait(count, visibilityMs);
    for (const d of result.deliveries as Delivery<T>[]) dequeuedAt.set(d.receipt, at);
    return result;
  };
  const wrap = (
    method: string,
    ok: string,
    failed: string,
    answer: (value: any) => string | number,
    refOf: (item: any) => DeliveryRef,
  ) => {
    const original = q[method]!.bind(queue);
    q[method] = async (items: readonly any[], ...rest: unknown[]) => {
      const sentAt = Date.now();
      // A settle call may end the lease as soon as it is sent, even if this process dies before the answer.
      if (method !== 'extendMany') rec.write(['T', sentAt, ...items.map((item) => refOf(item).receipt)]);
      try {
        const results = (await original(items, ...rest)) as unknown[];
        const doneAt = Date.now();
        items.forEach((item, n) => rec.write([ok, refOf(item).receipt, answer(results[n]), sentAt, doneAt]));
        return results;
      } catch (error) {
        const errorAt = Date.now();
        for (const item of items) rec.write([failed, refOf(item).receipt, sentAt, errorAt]);
        throw error;
      }
    };
  };
  const ref = (item: DeliveryRef) => item;
  wrap('ackMany', 'A', 'AE', (r) => (r ? 1 : 0), ref);
  wrap(
    'nackMany',
    'N',
    'NE',
    (r) => r ?? '',
    (item: NackOptions & { ref: DeliveryRef }) => item.ref,
  );
  wrap('extendMany', 'X', 'XE', (r) => (r ? 1 : 0), ref);
  wrap('release', 'R', 'RE', (r) => (r ? 1 : 0), ref);
}

function watch<T>(consumer: Consumer<T>, rec: Recorder): void {
  consumer.on('completed', (m) => rec.write(['E', m.receipt, 'ok', Date.now()]));
  consumer.on('failed', (m, error) =>
    rec.write(['E', m.receipt, error instanceof HandlerTimeoutError ? 'timeout' : 'threw', Date.now()]),
  );
  consumer.on('error', () => undefined);
}

/** The handler's faults: poison messages always throw, others throw or hang past the timeout at a rate. */
async function work(n: number, signal: AbortSignal): Promise<void> {
  if (config.poisonEvery && n % config.poisonEvery === 0) throw new Error(`poison ${n}`);
  const roll = Math.random();
  if (roll < (config.throwRate ?? 0)) throw new Error('transient failure');
  if (roll < (config.throwRate ?? 0) + (config.hangRate ?? 0)) {
    await new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => setTimeout(resolve, 50), { once: true }),
    );
    return;
  }
  // Some work, so that a killed consumer or a dropped connection finds handlers running.
  await sleep(10 + Math.floor(Math.random() * 90));
}

const stops: (() => Promise<void>)[] = [];
const clients: Redis[] = [];

function consumerOptions() {
  return {
    concurrency: config.concurrency ?? 8,
    visibilityMs: config.visibilityMs!,
    handlerTimeoutMs: config.handlerTimeoutMs!,
    graceMs: 2_000,
  };
}

if (config.role === 'queue') {
  const client = newClient();
  clients.push(client);
  const queue = new Queue<{ n: number }>(config.name, { connection: client, prefix: config.prefix, retry: RETRY });
  const dequeuedAt = new Map<string, number>();
  instrument(queue, dequeuedAt, rec);
  const consumer = queue.consume(async (m, { signal }) => {
    rec.write(['S', m.id, m.id, m.receipt, dequeuedAt.get(m.receipt) ?? 0, Date.now(), m.attempts]);
    dequeuedAt.delete(m.receipt);
    await work(m.payload.n, signal);
  }, consumerOptions());
  watch(consumer, rec);
  stops.push(() => consumer.close({ graceMs: 2_000 }).then(() => undefined));
}

if (config.role === 'bus') {
  const client = newClient();
  clients.push(client);
  const bus = new EventBus(config.name, { connection: client, prefix: config.prefix, retry: RETRY });
  for (const subscriber of config.subscribers ?? []) {
    const dequeuedAt = new Map<string, number>();
    const rec = recorder(`${config.record}.${subscriber}`, subscriber);
    instrument(bus.subscriberQueue(subscriber), dequeuedAt, rec);
    const consumer = bus.consume<{ n: number }>(
      subscriber,
      async (event, { delivery, signal }) => {
        rec.write([
          'S',
          `${subscriber}/${event.id}`,
          delivery.id,
          delivery.receipt,
          dequeuedAt.get(delivery.receipt) ?? 0,
          Date.now(),
          delivery.attempts,
        ]);
        dequeuedAt.delete(delivery.receipt);
        await work(event.data.n, signal);
      },
      consumerOptions(),
    );
    watch(consumer, rec);
    stops.push(() => consumer.close({ graceMs: 2_000 }).then(() => undefined));
  }
}

if (config.role === 'publisher') {
  const client = newClient();
  clients.push(client);
  const bus = new EventBus(config.name, {
    connection: client,
    prefix: config.prefix,
    source: `publisher-${process.pid}`,
  });
  const publishOne = async (n: number) => {
    const id = `e-${n}`;
    const type = n % 2 === 0 ? 'order.created' : 'user.updated';
    // A publisher retries a failed publish with the same event id, as the outbox relay does.
    for (let attempt = 0; attempt < 100 && !stopping; attempt++) {
      rec.write(['P', id, Date.now()]);
      try {
        const result = await bus.publish(type, { n }, { id });
        rec.write(['PR', id, result.delivered, result.duplicate ? 1 : 0, Date.now()]);
        return;
      } catch {
        rec.write(['PE', id, Date.now()]);
        await sleep(100);
      }
    }
  };
  const from = config.from ?? 0;
  const to = config.to ?? 0;
  const window = 8;
  const started = Date.now();
  void (async () => {
    for (let n = from; n < to && !stopping; n += window) {
      const due = started + ((n - from) / (config.rate ?? 1000)) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      await Promise.all(Array.from({ length: Math.min(window, to - n) }, (_, i) => publishOne(n + i)));
    }
    rec.close();
    await client.quit().catch(() => client.disconnect());
    process.send?.('done');
    process.disconnect?.();
  })();
}

if (config.role === 'locks') {
  const client = newClient();
  clients.push(client);
  const locks = new Locks({ connection: client, prefix: config.prefix });
  const name = config.name;
  const ttlMs = config.ttlMs ?? 1_000;
  const pause = () => sleep(5 + Math.floor(Math.random() * 30));

  const withLockLoop = async () => {
    while (!stopping) {
      const callStart = Date.now();
      try {
        await locks.withLock(
          name,
          async (signal, lock) => {
            rec.write(['G', name, lock.fence, 'withLock', callStart, Date.now()]);
            let lostAt = 0;
            signal.addEventListener('abort', () => (lostAt = Date.now()), { once: true });
            for (let w = 0; w < 4 && !signal.aborted; w++) {
              rec.write(['W', name, lock.fence, Date.now()]);
              await sleep(10 + Math.floor(Math.random() * 120));
            }
            rec.write([
              'L',
              name,
              lock.fence,
              signal.aborted ? 'lost' : 'released',
              signal.aborted ? lostAt : Date.now(),
            ]);
          },
          { ttlMs, waitMs: 3_000 },
        );
      } catch (error) {
        if (error instanceof LockUnavailableError) rec.write(['U', name, callStart, Date.now()]);
        else await sleep(50);
      }
      await pause();
    }
  };

  const acquireLoop = async () => {
    while (!stopping) {
      const callStart = Date.now();
      let lock;
      try {
        lock = await locks.acquire(name, { ttlMs, waitMs: 3_000 });
      } catch {
        await sleep(50);
        continue;
      }
      if (!lock) {
        rec.write(['U', name, callStart, Date.now()]);
        continue;
      }
      rec.write(['G', name, lock.fence, 'acquire', callStart, Date.now()]);
      // Held, by the lock's contract, until at least ttlMs after the call that took or extended it was made.
      let heldUntil = callStart + ttlMs;
      let how = 'released';
      let endAt = 0;
      for (let w = 0; w < 4; w++) {
        if (Date.now() >= heldUntil) {
          how = 'expired';
          endAt = heldUntil;
          break;
        }
        rec.write(['W', name, lock.fence, Date.now()]);
        await sleep(10 + Math.floor(Math.random() * 120));
        if (w === 1) {
          const sentAt = Date.now();
          try {
            await locks.extend(lock, { ttlMs });
            heldUntil = sentAt + ttlMs;
          } catch (error) {
            if (error instanceof LockNotHeldError) {
              how = 'lost';
              endAt = Math.min(sentAt, heldUntil);
              break;
            }
          }
        }
      }
      if (endAt === 0) {
        const sentAt = Date.now();
        endAt = Math.min(sentAt, heldUntil);
        try {
          await locks.release(lock);
        } catch (error) {
          if (error instanceof LockNotHeldError) how = sentAt < heldUntil ? 'lost' : 'expired';
        }
      }
      rec.write(['L', name, lock.fence, how, endAt]);
      await pause();
    }
  };
  const loops = [withLockLoop(), acquireLoop()];
  stops.push(async () => {
    await Promise.race([Promise.all(loops), sleep(5_000)]);
  });
}

process.on('message', async (message) => {
  if (message !== 'stop' || stopping) return;
  stopping = true;
  await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  for (const made of recorders) made.close();
  process.exit(0);
});
// Die with the parent rather than linger.
process.on('disconnect', () => setTimeout(() => process.exit(0), 3_000).unref());
process.send?.('ready');
