import { describe, expect, it } from 'vitest';
import { Priority, ValidationError } from '../src/index.js';
import { snapshot } from './inspect.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

async function refusal(action: () => Promise<unknown>): Promise<ValidationError> {
  const error = await action().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe('send', () => {
  it('returns a uuid v4 per message and delivers payload and fields as sent', async () => {
    const queue = env.queue<{ order: number; note: string }>('orders');
    const id = await queue.send(
      { order: 7, note: 'naïve ünïcode ✓' },
      { type: 'order.created', priority: 'HIGH', maxRetries: 5, partitionKey: 'clïent|42' },
    );
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const [delivery] = await queue.dequeue();
    expect(delivery).toMatchObject({
      id,
      queue: 'orders',
      type: 'order.created',
      payload: { order: 7, note: 'naïve ünïcode ✓' },
      priority: Priority.HIGH,
      attempts: 0,
      maxRetries: 5,
      partitionKey: 'clïent|42',
      runAt: null,
    });
    expect(delivery!.receipt).toMatch(/^\d+$/);
  });

  it('accepts priorities by name, lower-case name and number', async () => {
    const queue = env.queue('p');
    await queue.sendMany([
      { payload: 1, priority: 'low' },
      { payload: 2, priority: 4 },
      { payload: 3, priority: 'NORMAL' },
      { payload: 4 },
    ]);
    const stats = await queue.getStats();
    expect([stats.ready.low, stats.ready.normal, stats.ready.high, stats.ready.critical]).toEqual([1, 2, 0, 1]);
  });

  it('a batch behaves as the same single sends would: same order, same placement, same ids', async () => {
    const items = [
      { payload: 'a', priority: 'LOW' as const },
      { payload: 'b', partitionKey: 'k' },
      { payload: 'c', priority: 'CRITICAL' as const },
      { payload: 'd', partitionKey: 'k' },
      { payload: 'e', delayMs: 60_000 },
      { payload: 'f', dedupKey: 'once' },
      { payload: 'g', dedupKey: 'once' },
      { payload: 'h' },
    ];
    const batched = env.queue<string>('batched');
    const single = env.queue<string>('single');
    const batchIds = await batched.sendMany(items.map((item, n) => ({ ...item, id: `m${n}` })));
    const singleIds: string[] = [];
    for (const [n, item] of items.entries()) singleIds.push(await single.send(item.payload, { ...item, id: `m${n}` }));
    expect(batchIds).toEqual(singleIds);
    expect(batchIds[6]).toBe('m5');

    const drain = async (queue: typeof batched) => (await queue.dequeue({ count: 100 })).map((d) => d.payload);
    expect(await drain(batched)).toEqual(await drain(single));
    const [statsB, statsS] = [await batched.getStats(), await single.getStats()];
    expect({ ...statsB, name: '' }).toEqual({ ...statsS, name: '' });
    expect(statsB.delayed).toBe(1);
    expect(statsB.partitionBacklog).toBe(1);
  });

  it('a dedup key held within its TTL returns the first id and writes nothing; after the TTL it sends again', async () => {
    const queue = env.queue('dedup');
    const first = await queue.send({ n: 1 }, { dedupKey: 'invoice-9', dedupTtlMs: 400 });
    const second = await queue.send({ n: 2 }, { dedupKey: 'invoice-9', dedupTtlMs: 400 });
    expect(second).toBe(first);
    expect((await queue.getStats()).counters.sent).toBe(1);
    // The key expires in Redis; wait for that rather than for a fixed time.
    const dedupKey = `${queue.baseKey}:dd:invoice-9`;
    await waitFor(async () => (await env.redis.exists(dedupKey)) === 0, 'the dedup key to expire');
    const third = await queue.send({ n: 3 }, { dedupKey: 'invoice-9', dedupTtlMs: 400 });
    expect(third).not.toBe(first);
    const payloads = (await queue.dequeue({ count: 10 })).map((d) => d.payload);
    expect(payloads).toEqual([{ n: 1 }, { n: 3 }]);
  });
});

describe('send refuses bad input before writing anything', () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['BigInt payload', { payload: { n: 10n } }, 'payload', /JSON-serialisable.*BigInt/],
    ['cyclic payload', { payload: cycle }, 'payload', /JSON-serialisable.*circular/i],
    ['undefined payload', { payload: undefined }, 'payload', /JSON-serialisable/],
    ['oversized payload', { payload: 'x'.repeat(1024 * 1024) }, 'payload', /bytes as JSON; the limit is 1048576/],
    [
      'unknown priority name',
      { payload: 1, priority: 'URGENT' },
      'priority',
      /one of LOW, NORMAL, HIGH, CRITICAL or 1\.\.4, got "URGENT"/,
    ],
    ['priority out of range', { payload: 1, priority: 7 }, 'priority', /got 7$/],
    ['negative delay', { payload: 1, delayMs: -5 }, 'delayMs', /finite number of ms >= 0, got -5/],
    ['NaN delay', { payload: 1, delayMs: Number.NaN }, 'delayMs', /got NaN/],
    ['infinite delay', { payload: 1, delayMs: Number.POSITIVE_INFINITY }, 'delayMs', /got Infinity/],
    ['invalid runAt', { payload: 1, runAt: new Date('nope') }, 'runAt', /Date or ms/],
    ['maxRetries negative', { payload: 1, maxRetries: -1 }, 'maxRetries', /integer from 0 to 1000, got -1/],
    ['maxRetries fractional', { payload: 1, maxRetries: 1.5 }, 'maxRetries', /got 1\.5/],
    ['maxRetries too large', { payload: 1, maxRetries: 1001 }, 'maxRetries', /got 1001/],
    ['id with a bar', { payload: 1, id: 'a|b' }, 'id', /letters, digits/],
    ['type with a space', { payload: 1, type: 'order created' }, 'type', /letters, digits/],
    ['empty partition key', { payload: 1, partitionKey: '' }, 'partitionKey', /non-empty string/],
  ];
  for (const [label, item, field, message] of cases) {
    it(`refuses ${label}`, async () => {
      const queue = env.queue('bad');
      // A valid message first in the batch proves the whole batch is refused, not just the bad one.
      const error = await refusal(() => queue.sendMany([{ payload: 'fine' }, item as never]));
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
      const snap = await snapshot(env.redis, queue.baseKey);
      expect(snap.places.size).toBe(0);
      expect(await env.redis.exists(`${queue.baseKey}:stats`)).toBe(0);
    });
  }

  it('refuses empty, over-long and malformed queue names and prefixes', () => {
    for (const name of ['', 'x'.repeat(101), 'a b', 'orders{1}', 'a|b', 'ü']) {
      expect(() => env.queue(name), JSON.stringify(name)).toThrow(ValidationError);
    }
    expect(() => env.queue('ok', { prefix: 'bad prefix' })).toThrow(/prefix may contain only/);
    expect(() => env.queue('', {})).toThrow(/queue name must be a non-empty string, got ""/);
  });

  it('a configurable payload limit is enforced', async () => {
    const queue = env.queue('small', { maxPayloadBytes: 64 });
    await expect(queue.send('y'.repeat(100))).rejects.toThrow(/102 bytes as JSON; the limit is 64/);
    await expect(queue.send('y'.repeat(10))).resolves.toEqual(expect.any(String));
  });
});
