import { describe, expect, it } from 'vitest';
import {
  EventBus,
  Locks,
  Queue,
  queueMaintenanceJobs,
  Scheduler,
  schedulerCleanupJobs,
  UnknownSubscriberError,
  ValidationError,
  type Delivery,
} from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import { useRedis, waitFor } from './helpers.js';

/**
 * Bad inputs found by trying 152 of them as a user would: each is refused with a ValidationError naming the
 * field, before anything is written (no key under the test's prefix, or the stats unchanged).
 */
const env = useRedis();

/** Every key under a prefix (queues, buses, locks and the scheduler all live under `{prefix:`). */
async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await env.redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

/** The ValidationError a call throws or rejects with (fails the test if it does not). */
async function refusal(call: () => unknown): Promise<ValidationError> {
  try {
    await call();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('INVALID_ARGUMENT');
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, the call succeeded');
}

async function expectRefused(call: () => unknown, field: string, message: RegExp): Promise<ValidationError> {
  const error = await refusal(call);
  expect({ field: error.field, message: error.message }).toMatchObject({
    field,
    message: expect.stringMatching(message),
  });
  return error;
}

describe('options objects: unknown keys and non-objects are refused', () => {
  it('send(payload, "HIGH") and misspelled send options are refused, naming the key and the known ones', async () => {
    const prefix = env.prefix();
    const queue = env.queue('q', { prefix });
    await expectRefused(
      () => queue.send(1, 'HIGH' as never),
      'options',
      /send\(payload, options\): options must be an object .*priority.*got "HIGH"/,
    );
    await expectRefused(
      () => queue.send(1, { priorty: 'HIGH' } as never),
      'priorty',
      /unknown option "priorty".*did you mean "priority"\?.*Known options: id, type, priority/,
    );
    await expectRefused(() => queue.send(1, { delay: 5 } as never), 'delay', /did you mean "delayMs"/);
    await expectRefused(() => queue.send(1, { payload: 2 } as never), 'payload', /the payload is the first argument/);
    await expectRefused(
      () => queue.sendMany([{ payload: 1 }, { payload: 2, maxRetry: 3 } as never]),
      'item.maxRetry',
      /items\[1\]: .*did you mean "maxRetries"/,
    );
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('unknown keys of dequeue, nack, consume, close, dead-letter calls and setRateLimit are refused', async () => {
    const prefix = env.prefix();
    const queue = env.queue<number>('q', { prefix });
    await queue.send(1);
    const before = await env.redis.dump(`${queue.baseKey}:r2`);
    await expectRefused(
      () => queue.dequeue({ count: 1, visibility: 5 } as never),
      'visibility',
      /dequeue\(options\).*did you mean "visibilityMs"/,
    );
    await expectRefused(() => queue.dequeue(5 as never), 'options', /must be an object/);
    const fake = { id: 'x', receipt: '1' };
    await expectRefused(() => queue.nack(fake, { retries: false } as never), 'retries', /did you mean "retry"/);
    await expectRefused(() => queue.nack(fake, 'bad input' as never), 'options', /nack\(delivery, options\)/);
    expect(() => queue.consume(() => true, { concurency: 2 } as never)).toThrow(/did you mean "concurrency"/);
    const consumer = queue.consume(() => true, { blockMs: 50 });
    await expectRefused(() => consumer.close({ grace: 1 } as never), 'grace', /did you mean "graceMs"/);
    await consumer.close({ graceMs: 0 });
    await expectRefused(() => queue.deadLetters({ limt: 5 } as never), 'limt', /did you mean "limit"/);
    await expectRefused(() => queue.replayDeadLetters({ id: ['a'] } as never), 'id', /did you mean "ids"/);
    await expectRefused(() => queue.purgeDeadLetters({ ids: [], all: true } as never), 'all', /unknown option "all"/);
    await expectRefused(
      () => queue.setRateLimit({ max: 5, window: 1000 } as never),
      'rateLimit.window',
      /did you mean "windowMs"/,
    );
    expect(await env.redis.dump(`${queue.baseKey}:r2`)).toEqual(before);
    expect(await env.redis.exists(`${queue.baseKey}:meta`)).toBe(0);
  });

  it('an unknown key of a nested option is named where it is, and a message without a suggestion still reads', async () => {
    const prefix = env.prefix();
    const queue = env.queue<number>('q', { prefix });
    await expectRefused(
      () => queue.consume(() => true, { idempotency: { retentionMs: 1000, kye: 1 } } as never),
      'idempotency.kye',
      /^consume\(handler, options\)\.idempotency: unknown option "kye"; did you mean "key"\? Known options: retentionMs, key$/,
    );
    await expectRefused(
      () => queue.consume(() => true, { circuitBreaker: { probes: 2 } } as never),
      'circuitBreaker.probes',
      /^consume\(handler, options\)\.circuitBreaker: unknown option "probes"[;].* Known options: failureRate, /,
    );
    await expectRefused(
      () => queue.consume(() => true, { circuitBreaker: 5 } as never),
      'circuitBreaker',
      /^consume\(handler, options\)\.circuitBreaker must be an object with some of failureRate, .*; got 5$/,
    );
    await expectRefused(
      () => new Queue('q', { connection: env.redis, prefix, retry: { capMS: 5 } } as never),
      'retry.capMS',
      /^new Queue\(name, options\)\.retry: unknown option "capMS"; did you mean "capMs"\?/,
    );
    await expectRefused(
      () => new EventBus('b', { connection: env.redis, prefix, retry: { x: 5 } } as never),
      'retry.x',
      /^new EventBus\(name, options\)\.retry: unknown option "x"; Known options: baseMs, capMs, jitter$/,
    );
    // No close name: the known ones follow after a separator, not run into the sentence.
    await expectRefused(
      () => queue.request(1, { delayMs: 5 } as never),
      'delayMs',
      /^request\(payload, options\): unknown option "delayMs"; Known options: /,
    );
    expect(await keysUnder(prefix)).toEqual([]);
    expect(await env.redis.exists(`${queue.baseKey}:meta`)).toBe(0);
  });

  it('constructors of Queue, EventBus, Locks and Scheduler refuse unknown options and misspelled retry keys', async () => {
    const prefix = env.prefix();
    const connection = env.redis;
    await expectRefused(
      () => new Queue('q', { connection, prefix, visibilityTimeout: 5 } as never),
      'visibilityTimeout',
      /new Queue\(name, options\): unknown option "visibilityTimeout".*Known options: connection, connectTimeoutMs, prefix/,
    );
    await expectRefused(
      () => new Queue('q', { connection, prefix, retry: { base: 5 } } as never),
      'retry.base',
      /did you mean "baseMs"/,
    );
    await expectRefused(
      () => new Queue('q', { connection, prefix, retry: 5 } as never),
      'retry',
      /retry must be an object/,
    );
    await expectRefused(
      () => new EventBus('b', { connection, prefix, historyLimt: 5 } as never),
      'historyLimt',
      /did you mean "historyLimit"/,
    );
    await expectRefused(() => new EventBus('b', null as never), 'options', /needs options with a connection/);
    await expectRefused(
      () => new Locks({ connection, prefix, ttlMs: 5 } as never),
      'ttlMs',
      /new Locks\(options\): unknown option "ttlMs"/,
    );
    await expectRefused(() => new Locks(undefined as never), 'options', /needs options/);
    await expectRefused(
      () => new Scheduler({ connection, prefix, pollMS: 5 } as never),
      'pollMS',
      /did you mean "pollMs"/,
    );
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('publish, publishMany, subscribe, unsubscribe, history and replay refuse unknown keys', async () => {
    const prefix = env.prefix();
    const bus = new EventBus('b', { connection: env.redis, prefix });
    try {
      await expectRefused(
        () => bus.publish('a.b', 1, { correlationID: 'x' } as never),
        'correlationID',
        /did you mean "correlationId"/,
      );
      await expectRefused(() => bus.publish('a.b', 1, 'x' as never), 'options', /publish\(type, data, options\)/);
      await expectRefused(
        () => bus.publishMany([{ type: 'a.b', data: 1 }, { type: 'a.b', data: 2, partition: 'k' } as never]),
        'item.partition',
        /items\[1\]: .*did you mean "partitionKey"/,
      );
      await expectRefused(
        () => bus.publishMany([{ type: 'a.b', data: 1 }, null as never]),
        'items[1]',
        /items\[1\] must be an event/,
      );
      await expectRefused(
        () => bus.subscribe('s', 'a.*', { filters: {} } as never),
        'filters',
        /did you mean "filter"/,
      );
      await expectRefused(() => bus.unsubscribe('s', { drop: true } as never), 'drop', /did you mean "dropQueue"/);
      await expectRefused(
        () => bus.unsubscribe('s', { dropQueue: 'yes' } as never),
        'dropQueue',
        /true or false, got "yes"/,
      );
      await expectRefused(
        () => bus.history('a.b', { reversed: true } as never),
        'range.reversed',
        /did you mean "reverse"/,
      );
      await expectRefused(() => bus.history('a.b', { reverse: 'no' } as never), 'reverse', /true or false, got "no"/);
      await expectRefused(() => bus.replay('s', 'a.b', { form: '0' } as never), 'range.form', /did you mean "from"/);
      expect(await keysUnder(prefix)).toEqual([]);
    } finally {
      await bus.close();
    }
  });

  it('acquire, withLock and addJob refuse unknown keys and string booleans', async () => {
    const prefix = env.prefix();
    const locks = new Locks({ connection: env.redis, prefix });
    const scheduler = new Scheduler({ connection: env.redis, prefix });
    try {
      await expectRefused(
        () => locks.acquire('l', { ttl: 5 } as never),
        'ttl',
        /acquire\(name, options\).*did you mean "ttlMs"/,
      );
      await expectRefused(
        () => locks.withLock('l', () => 1, { wait: 5 } as never),
        'wait',
        /withLock.*did you mean "waitMs"/,
      );
      const job = { name: 'j', every: 1000, handler: () => undefined };
      expect(() => scheduler.addJob({ ...job, catchUp: 'no' } as never)).toThrow(
        expect.objectContaining({ field: 'catchUp', message: 'catchUp must be true or false, got "no"' }),
      );
      expect(() => scheduler.addJob({ ...job, oncePerTick: 0 } as never)).toThrow(
        expect.objectContaining({ field: 'oncePerTick' }),
      );
      expect(() => scheduler.addJob({ ...job, timeout: 5 } as never)).toThrow(
        expect.objectContaining({ field: 'job.timeout', message: expect.stringMatching(/did you mean "timeoutMs"/) }),
      );
      expect(() => schedulerCleanupJobs(scheduler, { retention: 5 } as never)).toThrow(
        expect.objectContaining({ field: 'retention', message: expect.stringMatching(/did you mean "retentionMs"/) }),
      );
      expect(() => queueMaintenanceJobs([], { loger: console } as never)).toThrow(
        expect.objectContaining({ field: 'loger' }),
      );
      expect(scheduler.jobNames).toEqual([]);
      expect(await keysUnder(prefix)).toEqual([]);
    } finally {
      await scheduler.close();
      await locks.close();
    }
  });
});

describe('batches', () => {
  it('sendMany(null | {} | [ok, null]) is refused naming the index, not a TypeError', async () => {
    const prefix = env.prefix();
    const queue = env.queue('q', { prefix });
    await expectRefused(() => queue.sendMany(null as never), 'items', /items must be an array of messages.*got null/);
    await expectRefused(() => queue.sendMany({} as never), 'items', /got an object/);
    await expectRefused(
      () => queue.sendMany([{ payload: 1 }, null as never]),
      'items[1]',
      /items\[1\] must be a message \{ payload/,
    );
    await expectRefused(
      () => queue.sendMany([{ payload: 1 }, { payload: 2, priority: 9 } as never]),
      'priority',
      /^items\[1\]: priority must be one of/,
    );
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('nackMany checks every item (shape, ref, error, retry, delayMs) before anything is written, naming the index', async () => {
    const queue = env.queue<number>('nacks');
    await queue.sendMany([{ payload: 1 }, { payload: 2 }]);
    const [a, b] = (await queue.dequeue({ count: 2 })) as [Delivery<number>, Delivery<number>];
    const stats = await queue.getStats();
    await expectRefused(() => queue.nackMany(null as never), 'items', /items must be an array/);
    await expectRefused(
      () => queue.nackMany([a] as never),
      'ref',
      /^items\[0\]: got a delivery; each item is \{ ref: delivery/,
    );
    await expectRefused(
      () => queue.nackMany([{ ref: a }, null] as never),
      'items[1]',
      /items\[1\] must be an object \{ ref, error\?, retry\?, delayMs\? \}/,
    );
    await expectRefused(
      () => queue.nackMany([{ ref: a }, { ref: b, delayMs: 1e300 }]),
      'delayMs',
      /^items\[1\]: delayMs must be at most 315360000000 ms \(10 years\)/,
    );
    await expectRefused(
      () => queue.nackMany([{ ref: a }, { ref: b, retry: 'false' }] as never),
      'retry',
      /^items\[1\]: retry must be true or false, got "false"/,
    );
    await expectRefused(
      () => queue.nackMany([{ ref: a, error: { code: 5 } }] as never),
      'error',
      /^items\[0\]: error must be a string or an Error/,
    );
    await expectRefused(
      () => queue.nackMany([{ ref: a, reason: 'x' }] as never),
      'item.reason',
      /^items\[0\]: .*unknown option "reason"/,
    );
    await expectRefused(() => queue.nack(a, { delayMs: 1e300 }), 'delayMs', /^delayMs must be at most/);
    expect(await queue.getStats()).toEqual(stats);
    expect(
      await queue.nackMany([
        { ref: a, retry: false, error: 'bad' },
        { ref: b, delayMs: 60_000 },
      ]),
    ).toEqual(['dead-lettered', 'retried']);
  });
});

describe('upper bounds on durations', () => {
  it('refuses visibility over 12 h (dequeue, extend, queue, consumer), handler timeouts over 24 h and nack delays over 10 years', async () => {
    const queue = env.queue<number>('bounds');
    await queue.send(1);
    const before = await queue.getStats();
    await expectRefused(
      () => queue.dequeue({ visibilityMs: 1e300 }),
      'visibilityMs',
      /at most 43200000 ms \(12 hours\), got 1e\+300/,
    );
    await expectRefused(() => queue.dequeue({ visibilityMs: 12 * 3600_000 + 1 }), 'visibilityMs', /12 hours/);
    // Nothing changed, but time passed: the ready message is older.
    expect({ ...(await queue.getStats()), oldestReadyAgeMs: 0 }).toEqual({ ...before, oldestReadyAgeMs: 0 });
    const [d] = await queue.dequeue({ visibilityMs: 12 * 3600_000 });
    const deadline = Number(await env.redis.zscore(`${queue.baseKey}:i`, `${d!.id}|${d!.receipt}`));
    await expectRefused(() => queue.extend(d!, { visibilityMs: 1e300 }), 'visibilityMs', /12 hours/);
    await expectRefused(() => queue.extendMany([d!], { visibilityMs: 43_200_001 }), 'visibilityMs', /12 hours/);
    await expectRefused(() => queue.nack(d!, { delayMs: 1e300 }), 'delayMs', /10 years/);
    // The options object, not a bare number, as every operation takes its optional arguments.
    await expectRefused(
      () => queue.extend(d!, 60_000 as never),
      'options',
      /extend\(delivery, options\).*visibilityMs/,
    );
    await expectRefused(() => queue.extendMany([d!], 60_000 as never), 'options', /extendMany\(deliveries, options\)/);
    expect(Number(await env.redis.zscore(`${queue.baseKey}:i`, `${d!.id}|${d!.receipt}`))).toBe(deadline);
    expect(() => queue.consume(() => true, { visibilityMs: 1e300 })).toThrow(
      expect.objectContaining({ field: 'visibilityMs' }),
    );
    expect(() => queue.consume(() => true, { handlerTimeoutMs: 1e300 })).toThrow(
      expect.objectContaining({ field: 'handlerTimeoutMs', message: expect.stringMatching(/24 hours/) }),
    );
    expect(() => queue.consume(() => true, { graceMs: 1e300 })).toThrow(expect.objectContaining({ field: 'graceMs' }));
    expect(() => queue.consume(() => true, { blockMs: 1e300 })).toThrow(expect.objectContaining({ field: 'blockMs' }));
    expect(() => env.queue('q2', { visibilityMs: 1e300 })).toThrow(expect.objectContaining({ field: 'visibilityMs' }));
    expect(() => new EventBus('b', { connection: env.redis, visibilityMs: 0 })).toThrow(
      expect.objectContaining({ field: 'visibilityMs' }),
    );
    expect((await queue.getStats()).inflight).toBe(1);
  });

  it('a retry policy with capMs < baseMs, jitter outside 0..1 or delays over 10 years is refused; one of the two alone moves the other', () => {
    const retry = (policy: unknown) => env.queue('r', { retry: policy as never });
    expect(() => retry({ baseMs: 10_000, capMs: 1_000 })).toThrow(
      expect.objectContaining({
        field: 'retry.capMs',
        message:
          'retry.capMs (1000) must be at least retry.baseMs (10000): capMs is the longest delay, baseMs the first',
      }),
    );
    expect(() => retry({ jitter: 1.5 })).toThrow(expect.objectContaining({ field: 'retry.jitter' }));
    expect(() => retry({ jitter: -0.1 })).toThrow(expect.objectContaining({ field: 'retry.jitter' }));
    expect(() => retry({ baseMs: 1e300 })).toThrow(expect.objectContaining({ field: 'retry.baseMs' }));
    expect(() => retry({ capMs: 'x' })).toThrow(expect.objectContaining({ field: 'retry.capMs' }));
    expect(retry({ baseMs: 600_000 }).retry).toEqual({ baseMs: 600_000, capMs: 600_000, jitter: 0 });
    expect(retry({ capMs: 1_000 }).retry).toEqual({ baseMs: 1_000, capMs: 1_000, jitter: 0 });
    expect(retry({ baseMs: 0, capMs: 0, jitter: 1 }).retry).toEqual({ baseMs: 0, capMs: 0, jitter: 1 });
  });

  it('lock waitMs and retryDelayMs and scheduler pollMs are bounded', async () => {
    const prefix = env.prefix();
    const locks = new Locks({ connection: env.redis, prefix });
    try {
      await expectRefused(() => locks.acquire('l', { waitMs: 1e300 }), 'waitMs', /24 hours/);
      await expectRefused(() => locks.acquire('l', { retryDelayMs: 1e300 }), 'retryDelayMs', /1 minute/);
      await expectRefused(() => new Scheduler({ connection: env.redis, prefix, pollMs: 1e300 }), 'pollMs', /1 hour/);
      expect(await keysUnder(prefix)).toEqual([]);
    } finally {
      await locks.close();
    }
  });
});

describe('other gaps', () => {
  it('withLock(name, notAFunction) is refused before the lock is taken: no fence is used up', async () => {
    const prefix = env.prefix();
    const locks = new Locks({ connection: env.redis, prefix });
    try {
      await expectRefused(
        () => locks.withLock('l', 'not a function' as never),
        'fn',
        /withLock\(name, fn, options\) needs a function fn\(signal, lock\), got "not a function"/,
      );
      await expectRefused(() => locks.withLock('l', undefined as never), 'fn', /got undefined/);
      expect(await keysUnder(prefix)).toEqual([]);
      const fence = await locks.withLock('l', (_signal, lock) => lock.fence);
      expect(fence).toBe(1);
    } finally {
      await locks.close();
    }
  });

  it('runAt in Unix seconds is refused with a message to pass ms or a Date; a ms time from the past still runs', async () => {
    const prefix = env.prefix();
    const queue = env.queue('q', { prefix });
    const seconds = Math.floor(Date.now() / 1000) + 60;
    const error = await expectRefused(
      () => queue.send(1, { runAt: seconds }),
      'runAt',
      /looks like Unix seconds.*Pass milliseconds .* or a Date/,
    );
    expect(error.message).toContain(String(seconds));
    await expectRefused(() => queue.sendMany([{ payload: 1, runAt: new Date(seconds) }]), 'runAt', /Unix seconds/);
    await expectRefused(() => queue.send(1, { runAt: 0 }), 'runAt', /Unix seconds/);
    expect(await keysUnder(prefix)).toEqual([]);
    const id = await queue.send(1, { runAt: Date.now() - 60_000 });
    expect((await queue.dequeue()).map((d) => d.id)).toEqual([id]);
  });

  it('a handler throwing a plain object records its message or its JSON, not "[object Object]"', async () => {
    const queue = env.queue<number>('plain-throws', { retry: { baseMs: 60_000 } });
    const thrown: unknown[] = [
      { message: 'upstream said no', status: 503 },
      { code: 'E42', detail: ['a', 'b'] },
      'x'.repeat(5000),
      7,
    ];
    const ids = await queue.sendMany(thrown.map((_, n) => ({ payload: n })));
    const consumer = queue.consume(
      (message) => {
        throw thrown[message.payload];
      },
      { concurrency: 4 },
    );
    const errors = await waitFor(async () => {
      const infos = await Promise.all(ids.map((id) => queue.getMessage(id)));
      return infos.every((info) => info?.lastError) ? infos.map((info) => info!.lastError!) : null;
    }, 'four failures recorded');
    await consumer.close();
    expect(errors.slice(0, 2)).toEqual(['upstream said no', '{"code":"E42","detail":["a","b"]}']);
    expect(errors[2]).toBe(`${'x'.repeat(1000)}...`);
    expect(errors[3]).toBe('7');
  });

  it('bus.consume of a subscriber that does not exist: ready rejects, an error event, the consumer closes', async () => {
    const prefix = env.prefix();
    const bus = new EventBus('b', { connection: env.redis, prefix });
    try {
      const consumer = bus.consume('nobody', () => true, { blockMs: 50 });
      const reported: unknown[] = [];
      consumer.on('error', (error) => reported.push(error));
      const closed = new Promise<void>((resolve) => consumer.once('closed', () => resolve()));
      const error = await consumer.ready.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UnknownSubscriberError);
      expect(error).toMatchObject({ code: 'UNKNOWN_SUBSCRIBER', subscriberId: 'nobody' });
      expect((error as Error).message).toMatch(
        /event bus b has no subscriber nobody; subscribe it first \(its consumer was closed; .*subscriberQueue\(id\)\.consume/,
      );
      expect(reported).toEqual([error]);
      await closed;
      expect(await keysUnder(prefix)).toEqual([]);

      // A subscribe sent before consume (not even awaited) is seen by the check.
      void bus.subscribe('someone', 'a.b');
      const seen: unknown[] = [];
      const good = bus.consume('someone', (event) => void seen.push(event.data), { blockMs: 50 });
      await good.ready;
      await bus.publish('a.b', 42);
      await waitFor(() => seen.length === 1, 'the event');
      await good.close();
      expect(seen).toEqual([42]);
    } finally {
      await bus.close();
    }
  });

  it('getJobStatus of an unknown job returns null, as documented; pauseJob of one throws JobNotFoundError', async () => {
    const prefix = env.prefix();
    const scheduler = new Scheduler({ connection: env.redis, prefix });
    try {
      expect(await scheduler.getJobStatus('nope')).toBeNull();
      await expect(scheduler.pauseJob('nope')).rejects.toMatchObject({ code: 'JOB_NOT_FOUND', jobName: 'nope' });
      await expectRefused(() => scheduler.getJobStatus('a b'), 'job name', /may contain only/);
      expect(await keysUnder(prefix)).toEqual([]);
    } finally {
      await scheduler.close();
    }
  });
});

describe('one options object per operation', () => {
  it('reclaim, promote and locks.extend refuse a bare number where their options go, writing nothing', async () => {
    const prefix = env.prefix();
    const queue = env.queue('shapes', { prefix });
    const locks = new Locks({ connection: env.redis, prefix });
    try {
      await expectRefused(
        () => queue.reclaim(5 as never),
        'options',
        /reclaim\(options\): options must be an object with some of limit/,
      );
      await expectRefused(() => queue.promote(5 as never), 'options', /promote\(options\)/);
      await expectRefused(() => queue.reclaim({ limit: 0 }), 'limit', /limit must be an integer from 1 to 1000/);
      expect(await keysUnder(prefix)).toEqual([]);
      expect(await queue.promote({ limit: 10 })).toBe(0);
      const lock = (await locks.acquire('l', { ttlMs: 10_000 }))!;
      await expectRefused(() => locks.extend(lock, 60_000 as never), 'options', /extend\(lock, options\).*ttlMs/);
      await expectRefused(() => locks.extend(lock, { ttl: 5 } as never), 'ttl', /did you mean "ttlMs"/);
      await locks.extend(lock, { ttlMs: 60_000 });
      expect(await env.redis.pttl(lockKeys(prefix, 'l').holder)).toBeGreaterThan(50_000);
    } finally {
      await locks.close();
    }
  });
});
