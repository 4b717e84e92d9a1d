import { describe, expect, it } from 'vitest';
import { DEFAULT_HISTORY_LIMIT, UnknownSubscriberError, ValidationError } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';

const t = useBus();

async function publishNumbers(bus: ReturnType<typeof t.bus>, type: string, from: number, to: number): Promise<void> {
  const items = [];
  for (let n = from; n <= to; n++) items.push({ type, data: n });
  for (let at = 0; at < items.length; at += 1000) await bus.publishMany(items.slice(at, at + 1000));
}

describe('history', () => {
  it('keeps the newest 1,000 events per type by default', async () => {
    const bus = t.bus();
    expect(DEFAULT_HISTORY_LIMIT).toBe(1000);
    await publishNumbers(bus, 'tick', 1, 1200);
    await bus.publish('other', 'x');
    const oldest = await bus.history<number>('tick', { limit: 1 });
    const newest = await bus.history<number>('tick', { limit: 1, reverse: true });
    expect(oldest.map((h) => h.event.data)).toEqual([201]);
    expect(newest.map((h) => h.event.data)).toEqual([1200]);
    expect(await t.redis.xlen(`${bus.baseKey}:h:tick`)).toBe(1000);
    expect((await bus.history('other')).map((h) => h.event.data)).toEqual(['x']);
  });

  it('caps at the configured limit, and 0 keeps none', async () => {
    const capped = t.bus('capped', { historyLimit: 3 });
    await publishNumbers(capped, 'a', 1, 10);
    expect((await capped.history<number>('a')).map((h) => h.event.data)).toEqual([8, 9, 10]);
    const none = t.bus('none', { historyLimit: 0 });
    await none.subscribe('s', '#');
    expect((await none.publish('a', 1)).delivered).toBe(1);
    expect(await none.history('a')).toEqual([]);
  });

  it('reads a range by position, oldest first or newest first, with a limit', async () => {
    const bus = t.bus();
    await publishNumbers(bus, 'a', 1, 10);
    const all = await bus.history<number>('a');
    expect(all.map((h) => h.event.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(all[0]!.event).toMatchObject({ type: 'a', version: '1.0' });
    const middle = await bus.history<number>('a', { from: all[2]!.position, to: all[5]!.position });
    expect(middle.map((h) => h.event.data)).toEqual([3, 4, 5, 6]);
    const page = await bus.history<number>('a', { from: all[2]!.position, limit: 2 });
    expect(page.map((h) => h.event.data)).toEqual([3, 4]);
    const backwards = await bus.history<number>('a', { to: all[4]!.position, reverse: true, limit: 3 });
    expect(backwards.map((h) => h.event.data)).toEqual([5, 4, 3]);
  });

  it('reads a range by time (server time of the publish)', async () => {
    const bus = t.bus();
    await publishNumbers(bus, 'a', 1, 3);
    const [first] = await bus.history('a', { limit: 1 });
    const publishedAt = Number(first!.position.split('-')[0]);
    expect(await bus.history('a', { to: publishedAt - 1 })).toEqual([]);
    expect((await bus.history('a', { from: new Date(publishedAt) })).length).toBe(3);
  });

  it('refuses malformed bounds and limits', async () => {
    const bus = t.bus();
    await expect(bus.history('a', { from: 'yesterday' })).rejects.toThrow(/from must be a history position/);
    await expect(bus.history('a', { limit: 0 })).rejects.toThrow(ValidationError);
    await expect(bus.history('a.*')).rejects.toThrow(/event type must be dot-separated words/);
  });

  it('replays a range of history into one subscriber queue only, as new deliveries', async () => {
    const bus = t.bus();
    await publishNumbers(bus, 'a', 1, 5);
    await bus.subscribe('late', 'b');
    await bus.subscribe('bystander', '#');
    const all = await bus.history<number>('a');
    expect(await bus.replay('late', 'a', { from: all[1]!.position, to: all[3]!.position })).toBe(3);
    expect(await bus.replay('late', 'a', { from: all[4]!.position })).toBe(1);
    const replayed = await drain<number>(bus.subscriberQueue('late'));
    expect(replayed.map((e) => e.data)).toEqual([2, 3, 4, 5]);
    expect(replayed[0]!.id).toBe(all[1]!.event.id);
    expect(await drain(bus.subscriberQueue('bystander'))).toEqual([]);
    expect((await bus.getStats()).events.replayed).toBe(4);
  });

  it('replays an event a subscriber still holds as a second, separate delivery', async () => {
    const bus = t.bus();
    await bus.subscribe('s', 'a');
    await bus.publish('a', 1);
    expect(await bus.replay('s', 'a')).toBe(1);
    const queue = bus.subscriberQueue<number>('s');
    const deliveries = await queue.dequeue({ count: 10 });
    expect(deliveries).toHaveLength(2);
    expect(new Set(deliveries.map((d) => d.id)).size).toBe(2);
    expect(await queue.ackMany(deliveries)).toEqual([true, true]);
  });

  it('replay to an unknown subscriber throws UnknownSubscriberError and writes nothing', async () => {
    const bus = t.bus();
    await bus.publish('a', 1);
    await expect(bus.replay('ghost', 'a')).rejects.toThrow(UnknownSubscriberError);
    expect((await bus.subscriberQueue('ghost').getStats()).ready.normal).toBe(0);
  });
});
