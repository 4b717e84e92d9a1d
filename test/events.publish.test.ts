import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';
import { waitFor } from './helpers.js';

const t = useBus();

describe('publish', () => {
  it('delivers one event with the whole event model and says how many subscribers received it', async () => {
    const bus = t.bus('orders', { source: 'order-service' });
    await bus.subscribe('billing', 'account.created');
    await bus.subscribe('audit', '#');
    await bus.subscribe('other', 'portfolio.*');
    const result = await bus.publish(
      'account.created',
      { userId: '123', email: 'user@example.com' },
      { correlationId: 'req-456', metadata: { tenant: 'acme' }, timestamp: new Date('2026-01-02T03:04:05.678Z') },
    );
    expect(result).toEqual({ id: expect.any(String), delivered: 2, duplicate: false });
    const [event] = await drain(bus.subscriberQueue('billing'));
    expect(event).toEqual({
      id: result.id,
      type: 'account.created',
      source: 'order-service',
      data: { userId: '123', email: 'user@example.com' },
      timestamp: '2026-01-02T03:04:05.678Z',
      correlationId: 'req-456',
      version: '1.0',
      metadata: { tenant: 'acme' },
    });
    expect(await drain(bus.subscriberQueue('audit'))).toEqual([event]);
    expect(await drain(bus.subscriberQueue('other'))).toEqual([]);
  });

  it('fills defaults: uuid id, bus source, now, no correlation id, empty metadata', async () => {
    const bus = t.bus();
    await bus.subscribe('s', 'a.b');
    const before = Date.now();
    const { id } = await bus.publish('a.b', 42);
    const [event] = await drain<number>(bus.subscriberQueue('s'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(event).toMatchObject({ id, source: '', data: 42, correlationId: null, version: '1.0', metadata: {} });
    expect(Date.parse(event!.timestamp)).toBeGreaterThanOrEqual(before);
  });

  it('publishes a batch in order in one call, each with its own count', async () => {
    const bus = t.bus();
    await bus.subscribe('accounts', 'account.*');
    await bus.subscribe('everything', '#');
    const results = await bus.publishMany([
      { type: 'account.created', data: 1 },
      { type: 'trade.executed', data: 2 },
      { type: 'account.deleted', data: 3 },
    ]);
    expect(results.map((r) => r.delivered)).toEqual([2, 1, 2]);
    expect((await drain<number>(bus.subscriberQueue('accounts'))).map((e) => e.data)).toEqual([1, 3]);
    expect((await drain<number>(bus.subscriberQueue('everything'))).map((e) => e.data)).toEqual([1, 2, 3]);
  });

  it('returns 0 when nobody subscribes, and still keeps the event in history', async () => {
    const bus = t.bus();
    expect(await bus.publish('lonely.event', {})).toMatchObject({ delivered: 0, duplicate: false });
    expect(await bus.history('lonely.event')).toHaveLength(1);
  });

  it('delivers an event id once within the window: a second publish writes nothing', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    expect(await bus.publish('outbox.row', { v: 1 }, { id: 'outbox-17' })).toEqual({
      id: 'outbox-17',
      delivered: 1,
      duplicate: false,
    });
    expect(await bus.publish('outbox.row', { v: 2 }, { id: 'outbox-17' })).toEqual({
      id: 'outbox-17',
      delivered: 0,
      duplicate: true,
    });
    const events = await drain<{ v: number }>(bus.subscriberQueue('s'));
    expect(events.map((e) => e.data.v)).toEqual([1]);
    expect(await bus.history('outbox.row')).toHaveLength(1);
    expect((await bus.getStats()).events).toMatchObject({ published: 1, delivered: 1, duplicates: 1 });
  });

  it('deduplicates inside one batch too', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    const results = await bus.publishMany([
      { type: 'a', data: 1, id: 'x' },
      { type: 'a', data: 2, id: 'y' },
      { type: 'a', data: 3, id: 'x' },
    ]);
    expect(results.map((r) => [r.id, r.delivered, r.duplicate])).toEqual([
      ['x', 1, false],
      ['y', 1, false],
      ['x', 0, true],
    ]);
    expect((await drain<number>(bus.subscriberQueue('s'))).map((e) => e.data)).toEqual([1, 2]);
  });

  it('delivers the same id again once the window has passed', async () => {
    const bus = t.bus('b', { dedupWindowMs: 50 });
    await bus.subscribe('s', '#');
    await bus.publish('a', 1, { id: 'again' });
    await waitFor(async () => !(await bus.publish('a', 2, { id: 'again' })).duplicate, 'the dedup window to pass');
    expect((await drain<number>(bus.subscriberQueue('s'))).map((e) => e.data)).toEqual([1, 2]);
  });

  it('with dedupWindowMs 0 every publish delivers', async () => {
    const bus = t.bus('b', { dedupWindowMs: 0 });
    await bus.subscribe('s', '#');
    await bus.publish('a', 1, { id: 'same' });
    await bus.publish('a', 2, { id: 'same' });
    expect(await drain(bus.subscriberQueue('s'))).toHaveLength(2);
  });

  it('keeps events with the same partition key in order for competing workers', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    await bus.publishMany([1, 2, 3].map((n) => ({ type: 'order.step', data: n, partitionKey: 'order-1' })));
    const queue = bus.subscriberQueue<number>('s');
    // Only the head of a partition is deliverable until it is acked.
    const first = await queue.dequeue({ count: 10 });
    expect(first.map((d) => d.payload.data)).toEqual([1]);
    await queue.ackMany(first);
    const second = await queue.dequeue({ count: 10 });
    expect(second.map((d) => d.payload.data)).toEqual([2]);
  });

  it('keeps publish order in a subscriber queue when plain and partitioned events are mixed in a batch', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    await bus.publishMany([
      { type: 'e', data: 1 },
      { type: 'e', data: 2, partitionKey: 'p' },
      { type: 'e', data: 3 },
      { type: 'e', data: 4, partitionKey: 'q' },
      { type: 'e', data: 5 },
    ]);
    expect((await drain<number>(bus.subscriberQueue('s'))).map((e) => e.data)).toEqual([1, 2, 3, 4, 5]);
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['an id with a space', { id: 'a b' }, 'id', /event id must be 1\.\.100 letters/],
    ['a non-object metadata', { metadata: [1] }, 'metadata', /metadata must be an object/],
    ['an unparsable timestamp', { timestamp: 'yesterday' }, 'timestamp', /timestamp must be a Date/],
    ['an empty partition key', { partitionKey: '' }, 'partitionKey', /partitionKey must be a non-empty string/],
    ['a non-string correlation id', { correlationId: 7 }, 'correlationId', /correlationId must be a string/],
  ])('refuses %s, writing nothing', async (_name, options, field, message) => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    const error = await bus.publish('a.b', {}, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
    expect(await drain(bus.subscriberQueue('s'))).toEqual([]);
  });

  it('refuses data that is not JSON or too large, and a whole batch when one event is bad', async () => {
    const bus = t.bus('b', { maxEventBytes: 1000 });
    await bus.subscribe('s', '#');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await expect(bus.publish('a', { n: 1n })).rejects.toThrow(/event must be JSON-serialisable/);
    await expect(bus.publish('a', cycle)).rejects.toThrow(/event must be JSON-serialisable/);
    await expect(bus.publish('a', 'x'.repeat(2000))).rejects.toThrow(/the limit is 1000 \(option maxEventBytes\)/);
    await expect(
      bus.publishMany([
        { type: 'a', data: 1 },
        { type: 'a..b', data: 2 },
      ]),
    ).rejects.toThrow(ValidationError);
    expect(await drain(bus.subscriberQueue('s'))).toEqual([]);
  });
});
