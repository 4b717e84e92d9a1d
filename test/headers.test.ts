import { describe, expect, it } from 'vitest';
import { EventBus, MAX_HEADERS, ValidationError, type Delivery, type Event } from '../src/index.js';
import { queueKey } from '../src/keys.js';
import { decodeRecord, encodeRecord } from '../src/queue/record.js';
import { useRedis, waitFor } from './helpers.js';
import { useOutbox } from './outbox.helpers.js';

const ctx = useRedis();
const outboxes = useOutbox();
const headers = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tenant: 'acme' };

async function takeOne<T>(queue: ReturnType<typeof ctx.queue<T>>): Promise<Delivery<T>> {
  return waitFor(async () => (await queue.dequeue())[0], 'a delivery');
}

describe('message headers', () => {
  it('travel with a message through delay, retry, the dead-letter queue and replay', async () => {
    const queue = ctx.queue<{ n: number }>('q', { retry: { baseMs: 1, capMs: 1 } });
    const id = await queue.send({ n: 1 }, { headers, delayMs: 20, partitionKey: 'p' });
    expect((await queue.getMessage(id))!.headers).toEqual(headers);

    const first = await takeOne(queue);
    expect(first).toMatchObject({ id, payload: { n: 1 }, headers, partitionKey: 'p', attempts: 0 });
    expect(await queue.nack(first, { error: 'again' })).toBe('retried');

    const retried = await takeOne(queue);
    expect(retried).toMatchObject({ id, payload: { n: 1 }, headers, attempts: 1 });
    expect(await queue.nack(retried, { retry: false })).toBe('dead-lettered');

    const [dead] = await queue.deadLetters();
    expect(dead!.message).toMatchObject({ id, payload: { n: 1 }, headers });
    expect(await queue.replayDeadLetters()).toEqual([id]);

    const replayed = await takeOne(queue);
    expect(replayed).toMatchObject({ id, payload: { n: 1 }, headers, attempts: 0 });
    await queue.ack(replayed);
  });

  it('sendMany and request carry each message its own; non-ASCII names and values survive', async () => {
    const queue = ctx.queue<string>('q');
    await queue.sendMany([
      { payload: 'a', headers: { k: 'é日本' } },
      { payload: 'b' },
      { payload: 'c', headers: { 'x-b3-traceid': '1', k: '' }, partitionKey: 'ключ' },
    ]);
    const got = await waitFor(async () => {
      const batch = await queue.dequeue({ count: 3 });
      return batch.length === 3 ? batch : null;
    }, 'three deliveries');
    expect(got.map((d) => [d.payload, d.headers])).toEqual([
      ['a', { k: 'é日本' }],
      ['b', undefined],
      ['c', { 'x-b3-traceid': '1', k: '' }],
    ]);
    expect(got[1]).not.toHaveProperty('headers');
    expect(got[2]!.partitionKey).toBe('ключ');
  });

  it('a message without headers is stored exactly as before headers existed, and old records decode', async () => {
    const queue = ctx.queue<{ n: number }>('q');
    await queue.send({ n: 1 });
    await queue.send({ n: 2 }, { headers: {} });
    const [plain, empty] = await ctx.redis.lrange(queueKey(queue.baseKey, 'ready2'), 0, -1);
    // <id>|<priority>|<attempts>|<maxRetries>|<createdAt>|<runAt>|<type>|<pkLen>|<partitionKey><payload JSON>
    expect(plain).toMatch(/^[0-9a-f-]{36}\|2\|0\|3\|\d+\|\|\|0\|\{"n":1\}$/);
    expect(empty).toMatch(/^[0-9a-f-]{36}\|2\|0\|3\|\d+\|\|\|0\|\{"n":2\}$/);

    const old = 'm-1|3|2|5|1700000000000||t|1|k{"a":[1,"|"]}';
    expect(decodeRecord('q', old)).toEqual({
      id: 'm-1',
      queue: 'q',
      type: 't',
      payload: { a: [1, '|'] },
      priority: 3,
      attempts: 2,
      maxRetries: 5,
      createdAt: 1700000000000,
      runAt: null,
      partitionKey: 'k',
    });
    const fields = { id: 'm-1', priority: 3, attempts: 2, maxRetries: 5, createdAt: 1, runAt: null, type: '' } as const;
    const withHeaders = encodeRecord({ ...fields, partitionKey: '', payloadJson: '"x"', headersJson: '{"a":"ü"}' });
    expect(withHeaders).toBe('m-1|3|2|5|1|||0|\u000110:{"a":"ü"}"x"');
    expect(decodeRecord('q', withHeaders)).toMatchObject({ payload: 'x', headers: { a: 'ü' } });
  });

  it('are refused when not a small map of strings, naming the option', async () => {
    const queue = ctx.queue('q');
    const refused = async (value: unknown, pattern: RegExp) => {
      const error = await queue.send(1, { headers: value as Record<string, string> }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('headers');
      expect((error as Error).message).toMatch(pattern);
    };
    await refused('traceparent', /must be an object/);
    await refused(['a'], /must be an object/);
    await refused(null, /must be an object/);
    await refused({ n: 1 }, /headers\.n must be a string, got 1/);
    await refused({ 'a b': 'x' }, /header name/);
    await refused({ '': 'x' }, /header name/);
    await refused(Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, n) => [`h${n}`, ''])), /at most 64/);
    await refused({ big: 'x'.repeat(9000) }, /the limit is 8192/);
    const manyError = await queue
      .sendMany([{ payload: 1 }, { payload: 2, headers: { n: 2 as unknown as string } }])
      .catch((e: unknown) => e);
    expect((manyError as Error).message).toMatch(/^items\[1\]: headers\.n must be a string/);
    expect((await queue.getStats()).counters.sent).toBe(0);
  });

  it('travel in an event to every subscriber, its retries and dead letters, history and replay', async () => {
    const prefix = ctx.prefix();
    const bus = new EventBus('bus', { connection: ctx.redis, prefix, retry: { baseMs: 1, capMs: 1 } });
    await bus.subscribe('a', 'order.*');
    await bus.subscribe('b', 'order.#', { maxRetries: 0, filter: { 'data.n': 1 } });
    const [published] = await bus.publishMany([{ type: 'order.placed', data: { n: 1 }, headers }]);
    await bus.publish('order.placed', { n: 2 });
    const a = bus.subscriberQueue<{ n: number }>('a');
    const b = bus.subscriberQueue<{ n: number }>('b');
    const [fromA] = await a.dequeue({ count: 1 });
    expect(fromA!.payload).toMatchObject({ id: published!.id, data: { n: 1 }, headers });
    const [fromB] = await b.dequeue();
    expect(fromB!.payload.headers).toEqual(headers);
    await b.nack(fromB!, { retry: false });
    expect((await b.deadLetters())[0]!.message!.payload.headers).toEqual(headers);
    const [second] = await a.dequeue();
    expect(second!.payload).not.toHaveProperty('headers');

    const history = await bus.history<{ n: number }>('order.placed');
    expect(history.map((entry) => entry.event.headers)).toEqual([headers, undefined]);
    expect(await bus.replay('a', 'order.placed')).toBe(2);
    const replayed = await a.dequeue({ count: 2 });
    expect(replayed.map((d) => (d.payload as Event).headers)).toEqual([headers, undefined]);
    const refused = await bus.publish('order.placed', {}, { headers: { n: 1 } as never }).catch((e: unknown) => e);
    expect((refused as ValidationError).field).toBe('headers');
    await bus.close();
  });

  it('travel in an outbox row to the subscribers', async () => {
    const prefix = outboxes.prefix();
    const bus = outboxes.bus(prefix);
    const outbox = outboxes.outbox(bus, outboxes.table());
    await outbox.migrate();
    await bus.subscribe('s', 'order.*');
    await outbox.publishInTransaction(
      () => undefined,
      [
        { aggregateType: 'order', aggregateId: 1, type: 'order.placed', data: { n: 1 }, headers },
        { aggregateType: 'order', aggregateId: 2, type: 'order.placed', data: { n: 2 } },
      ],
    );
    expect(await outbox.relayOnce()).toEqual({ published: 2, refused: 0 });
    const deliveries = await bus.subscriberQueue<{ n: number }>('s').dequeue({ count: 2 });
    expect(deliveries.map((d) => [d.payload.data.n, d.payload.headers])).toEqual([
      [1, headers],
      [2, undefined],
    ]);
  });
});
