import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  IdempotencyKeyError,
  MAX_IDEMPOTENCY_RETENTION_MS,
  Queue,
  StaleReceiptError,
  ValidationError,
  type Consumer,
  type ConsumerOptions,
  type Delivery,
} from '../src/index.js';
import { QUEUE_KEY_SUFFIXES } from '../src/keys.js';
import { SCRIPTS } from '../src/scripts.js';
import { startChild, type Child } from './children.js';
import { useProxy } from './faults.helpers.js';
import { singleNodeOnly, useRedis, waitFor } from './helpers.js';
import { scriptCall } from './proxy.js';
import { outstanding } from './stats.js';

/**
 * The idempotent-consumer guard (consumer option `idempotency`): the ack of a handler that succeeded marks
 * the message's key processed in the same script, and a later delivery of a marked key is acked without
 * running the handler. Faults are injected with the proxy (a commit held or its reply lost) and by killing
 * a consumer process.
 */

const env = useRedis();
const faults = useProxy();
/** Talks through a TCP proxy in front of one Redis node: not on the cluster topology. */
const describeThroughProxy = describe.skipIf(singleNodeOnly('talks through a TCP proxy in front of one Redis node'));
const FAST_RETRY = { baseMs: 1, capMs: 1 };
const GUARD = { retentionMs: 60_000 };
type Order = { order: string };

let children: Child[] = [];
let opened: Queue<any>[] = [];
afterEach(async () => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  await Promise.all(children.map((child) => child.exited));
  children = [];
  await Promise.all(opened.map((q) => q.close({ graceMs: 0 })));
  opened = [];
});

// Scripts already known to Redis, so that a released command runs as sent (no NOSCRIPT and EVAL re-send).
beforeAll(async () => {
  for (const name of ['queue/ack', 'queue/ackProcessed', 'queue/skipProcessed'] as const) {
    await env.redis.script('LOAD', SCRIPTS.get(name)!.lua);
  }
});

/** A queue reached through the fault proxy, under `prefix`. */
function proxiedQueue(prefix: string): Queue<Order> {
  const queue = new Queue<Order>('orders', { connection: faults.proxy.url, prefix, retry: FAST_RETRY });
  opened.push(queue);
  return queue;
}

/** The side effects of handlers, in Redis so that every process's are seen: an id per handler run. */
function effects(prefix: string) {
  const key = `{${prefix}:test}:effects`;
  return {
    key,
    record: async (message: Delivery<Order>) => void (await env.redis.rpush(key, message.id)),
    list: () => env.redis.lrange(key, 0, -1),
  };
}

function marked(queue: Queue<any>, key: string): Promise<boolean> {
  return env.redis.exists(queue.baseKey + QUEUE_KEY_SUFFIXES.processedPrefix + key).then((n) => n === 1);
}

/** A consumer whose skipped ids and errors are collected. */
function watch(consumer: Consumer<Order>) {
  const seen = { skipped: [] as string[], errors: [] as unknown[] };
  consumer.on('skipped', (message) => seen.skipped.push(message.id));
  consumer.on('error', (error) => seen.errors.push(error));
  return seen;
}

const isStale = (error: unknown) => error instanceof StaleReceiptError;

async function drained(queue: Queue<any>): Promise<void> {
  await waitFor(async () => outstanding(await queue.getStats()) === 0, 'every message acked');
}

describeThroughProxy('idempotent consumer: a consumer dies or its commit is late', () => {
  it('killed after its handler, before the ack and mark reach Redis: the redelivery runs the handler once more', async () => {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix, retry: FAST_RETRY });
    const hold = faults.proxy.holdCommand({ command: scriptCall('queue/ackProcessed') });
    const child = startChild('idempotent-consumer', {
      REDIS_URL: faults.proxy.url,
      PREFIX: prefix,
      QUEUE: 'orders',
      EFFECTS_KEY: effect.key,
      // Long enough that the child's delivery cannot expire (and go back to the child) before the kill.
      VISIBILITY_MS: '1000',
    });
    children.push(child);
    await child.message((m): m is { kind: 'ready' } => (m as { kind?: string }).kind === 'ready', 'ready');

    const id = await queue.send({ order: 'o-1' });
    // The child's handler has run and its ack + mark is caught in the proxy: kill the child there.
    await hold.held;
    expect(await effect.list()).toEqual([id]);
    child.process.kill('SIGKILL');
    await child.exited;
    expect((await queue.getMessage(id))?.status).toBe('PROCESSING');
    expect(await marked(queue, id)).toBe(false);

    // Nothing marked it: once its visibility timeout passes, the redelivery runs the handler again (at least once).
    const consumer = queue.consume(effect.record, { idempotency: GUARD, visibilityMs: 1000 });
    const seen = watch(consumer);
    await drained(queue);
    expect(await effect.list()).toEqual([id, id]);
    expect(seen.skipped).toEqual([]);
    expect(await marked(queue, id)).toBe(true);
    expect((await queue.getStats()).counters).toMatchObject({ acked: 1, reclaimed: 1 });
  });

  /**
   * The order that makes this deterministic: consumer A's ack + mark is held in the proxy while the
   * delivery's visibility timeout passes and the test reclaims it; the held commit then lands (stale
   * receipt, key marked), and only after that can any consumer fetch the message again.
   */
  async function lateCommit(guarded: boolean) {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix, retry: FAST_RETRY });
    // A's delivery must not expire while its handler runs, or A's own next fetch could take it back.
    const options: ConsumerOptions<Order> = { visibilityMs: 1000, ...(guarded ? { idempotency: GUARD } : {}) };
    const hold = faults.proxy.holdCommand({ command: scriptCall(guarded ? 'queue/ackProcessed' : 'queue/ack') });
    const a = watch(proxiedQueue(prefix).consume(effect.record, options));

    const id = await queue.send({ order: 'o-2' });
    await hold.held;
    await waitFor(async () => (await queue.reclaim()) === 1, 'the delivery reclaimed after its visibility timeout');
    hold.release();
    await waitFor(() => a.errors.some(isStale), "the late commit answered stale: A's receipt was reclaimed");
    const b = watch(queue.consume(effect.record, options));
    await drained(queue);
    return { id, runs: await effect.list(), skipped: [...a.skipped, ...b.skipped], marked: await marked(queue, id) };
  }

  it('a commit held past the visibility timeout lands stale but marks the key: the redelivery is skipped', async () => {
    const { id, runs, skipped, marked } = await lateCommit(true);
    expect(runs).toEqual([id]);
    expect(skipped).toEqual([id]);
    expect(marked).toBe(true);
  });

  it('control, guard off: the same late commit and the redelivery runs the handler twice', async () => {
    const { id, runs, skipped } = await lateCommit(false);
    expect(runs).toEqual([id, id]);
    expect(skipped).toEqual([]);
  });

  it('the lost reply of an ack + mark: one effect, acked once, no stale receipt', async () => {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix });
    const lost = faults.proxy.loseReply({ command: scriptCall('queue/ackProcessed') });
    const consumer = proxiedQueue(prefix).consume(effect.record, { idempotency: GUARD });
    const seen = watch(consumer);

    const id = await queue.send({ order: 'o-3' });
    await lost.fired;
    await drained(queue);
    // close() waits for the re-sent commit's answer: it was recognised as the same request.
    expect((await consumer.close()).notSettled).toEqual([]);
    expect(seen.errors.filter(isStale)).toEqual([]);
    expect(await effect.list()).toEqual([id]);
    expect(await marked(queue, id)).toBe(true);
    expect((await queue.getStats()).counters.acked).toBe(1);
  });

  it('the lost reply of a skip: the re-sent check still reports the duplicate skipped', async () => {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix });
    const consumer = proxiedQueue(prefix).consume(effect.record, {
      idempotency: { ...GUARD, key: (message) => message.payload.order },
    });
    const seen = watch(consumer);
    const first = await queue.send({ order: 'o-4' });
    await waitFor(() => marked(queue, 'o-4'), 'the first message processed');

    const lost = faults.proxy.loseReply({ command: scriptCall('queue/skipProcessed') });
    const second = await queue.send({ order: 'o-4' });
    await lost.fired;
    await waitFor(() => seen.skipped.length === 1, 'the duplicate skipped');
    expect(seen.skipped).toEqual([second]);
    expect(seen.errors.filter(isStale)).toEqual([]);
    expect(await effect.list()).toEqual([first]);
    await drained(queue);
  });
});

describe('idempotent consumer: keys and retention', () => {
  it('two sends with the same business key: the handler runs once, the second is skipped, both leave the queue', async () => {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix });
    const consumer = queue.consume(effect.record, {
      concurrency: 4,
      idempotency: { ...GUARD, key: (message) => message.payload.order },
    });
    const seen = watch(consumer);
    // The same partition key keeps the two from being in flight at once (see README "Idempotent consumers").
    const first = await queue.send({ order: 'o-5' }, { partitionKey: 'o-5' });
    const second = await queue.send({ order: 'o-5' }, { partitionKey: 'o-5' });
    await waitFor(() => seen.skipped.length === 1, 'the second message skipped');
    expect(seen.skipped).toEqual([second]);
    expect(await effect.list()).toEqual([first]);
    await drained(queue);
    const stats = await queue.getStats();
    expect(stats.counters).toMatchObject({ sent: 2, acked: 2, retried: 0 });
    expect(await queue.getMessage(first)).toBeNull();
    expect(await queue.getMessage(second)).toBeNull();
  });

  it('after retentionMs the mark expires and the same key runs again', async () => {
    const prefix = env.prefix();
    const effect = effects(prefix);
    const queue = env.queue<Order>('orders', { prefix });
    const seen = watch(queue.consume(effect.record, { idempotency: { retentionMs: 200 } }));
    await queue.send({ order: 'o-6' }, { id: 'order-6' });
    await waitFor(async () => (await effect.list()).length === 1, 'the first run');
    await drained(queue); // its ack, and the mark with it, has been written
    await waitFor(async () => !(await marked(queue, 'order-6')), 'the mark expired after retentionMs');

    await queue.send({ order: 'o-6' }, { id: 'order-6' });
    await waitFor(async () => (await effect.list()).length === 2, 'the second run');
    expect(await effect.list()).toEqual(['order-6', 'order-6']);
    expect(seen.skipped).toEqual([]);
    await drained(queue);
  });

  it('a key function that throws or returns no string fails the message without running the handler', async () => {
    const queue = env.queue<Order>('orders');
    let runs = 0;
    const consumer = queue.consume(() => void runs++, {
      idempotency: {
        ...GUARD,
        key: (message) => {
          if (message.payload.order === 'throws') throw new Error('no order id');
          return message.payload.order;
        },
      },
    });
    const failed: unknown[] = [];
    consumer.on('failed', (_message, error) => failed.push(error));
    await queue.send({ order: 'throws' }, { maxRetries: 0 });
    await queue.send({ order: '' }, { maxRetries: 0 });
    await waitFor(async () => (await queue.getStats()).deadLetters === 2, 'both dead-lettered');
    expect(runs).toBe(0);
    expect(failed).toHaveLength(2);
    for (const error of failed) expect(error).toBeInstanceOf(IdempotencyKeyError);
    expect((failed[0] as IdempotencyKeyError).code).toBe('INVALID_IDEMPOTENCY_KEY');
    const reasons = (await queue.deadLetters()).map((letter) => letter.reason ?? '');
    expect(reasons.filter((reason) => /idempotency\.key\(message\) for message .* threw/.test(reason))).toHaveLength(1);
    expect(
      reasons.filter((reason) => /idempotency\.key\(message\) for message .* returned ""/.test(reason)),
    ).toHaveLength(1);
  });
});

describe('idempotent consumer: options', () => {
  it('refuses a bad idempotency option with a ValidationError naming it', () => {
    const queue = env.queue<Order>('orders');
    const refused = (idempotency: unknown) => {
      try {
        queue.consume(() => undefined, { idempotency } as ConsumerOptions<Order>);
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return { field: (error as ValidationError).field, message: (error as Error).message };
      }
      throw new Error(`idempotency ${JSON.stringify(idempotency)} was accepted`);
    };
    expect(refused(null)).toMatchObject({ field: 'idempotency', message: /must be an object \{ retentionMs/ });
    expect(refused(60_000)).toMatchObject({ field: 'idempotency', message: /got 60000/ });
    expect(refused({})).toMatchObject({ field: 'idempotency.retentionMs', message: /is required/ });
    expect(refused({ retentionMs: 0 })).toMatchObject({ field: 'idempotency.retentionMs', message: /from 1 to/ });
    expect(refused({ retentionMs: 1.5 })).toMatchObject({ field: 'idempotency.retentionMs' });
    expect(refused({ retentionMs: MAX_IDEMPOTENCY_RETENTION_MS + 1 })).toMatchObject({
      field: 'idempotency.retentionMs',
    });
    expect(refused({ retentionMs: 1000, key: 'order' })).toMatchObject({
      field: 'idempotency.key',
      message: /must be a function \(message\) => string, got "order"/,
    });
    expect(refused({ retentionMS: 1000 })).toMatchObject({ message: /did you mean "retentionMs"/ });
  });
});
