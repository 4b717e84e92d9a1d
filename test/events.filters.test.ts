import { describe, expect, it } from 'vitest';
import { ValidationError, type EventFilter } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';

const t = useBus();

const TRADES = [
  { symbol: 'AAPL', qty: 10, side: 'buy', account: { tier: 'gold', region: 'eu' }, legs: [{ venue: 'XNAS' }] },
  { symbol: 'MSFT', qty: 5, side: 'sell', account: { tier: 'silver', region: 'us' }, note: null },
  { symbol: 'AAPL', qty: 7.5, side: 'sell', account: { tier: 'gold' }, legs: [{ venue: 'XNYS' }], urgent: true },
  { symbol: 'TSLA', qty: 10, side: 'buy', account: { tier: 'bronze', region: 'eu' }, urgent: false },
];

/** Subscribes one subscriber with the filter, publishes TRADES, returns the indexes of the trades it received. */
async function received(filter: EventFilter, metadata?: Record<string, unknown>): Promise<number[]> {
  const bus = t.bus();
  await bus.subscribe('s', 'trade.executed', { filter });
  await bus.publishMany(
    TRADES.map((data, n) => ({ type: 'trade.executed', data: { n, ...data }, ...(metadata ? { metadata } : {}) })),
  );
  return (await drain<{ n: number }>(bus.subscriberQueue('s'))).map((event) => event.data.n);
}

describe('filters (evaluated in the publish script, as data)', () => {
  it.each<[string, EventFilter, number[]]>([
    ['equality on a nested field', { 'data.symbol': 'AAPL' }, [0, 2]],
    ['equality written as { eq }', { 'data.symbol': { eq: 'MSFT' } }, [1]],
    ['equality two levels down', { 'data.account.tier': 'gold' }, [0, 2]],
    ['equality on a number', { 'data.qty': 10 }, [0, 3]],
    ['equality on a fractional number', { 'data.qty': 7.5 }, [2]],
    ['equality on a boolean', { 'data.urgent': true }, [2]],
    ['equality on null matches only a present null', { 'data.note': null }, [1]],
    ['a number never equals its string', { 'data.qty': '10' }, []],
    ['membership in a list', { 'data.symbol': { in: ['MSFT', 'TSLA'] } }, [1, 3]],
    ['membership with mixed value types', { 'data.qty': { in: [5, '10', true] } }, [1]],
    ['existence', { 'data.legs': { exists: true } }, [0, 2]],
    ['absence', { 'data.account.region': { exists: false } }, [2]],
    ['null counts as absent', { 'data.note': { exists: true } }, []],
    ['absent includes null', { 'data.note': { exists: false } }, [0, 1, 2, 3]],
    ['an array step counts from 0', { 'data.legs.0.venue': 'XNYS' }, [2]],
    ['a path through a scalar finds nothing', { 'data.symbol.length': { exists: true } }, []],
    [
      'all conditions must hold',
      { 'data.symbol': 'AAPL', 'data.side': 'sell', 'data.account.tier': { in: ['gold'] } },
      [2],
    ],
    ['top-level event fields', { type: 'trade.executed', version: '1.0' }, [0, 1, 2, 3]],
  ])('%s', async (_name, filter, expected) => {
    expect(await received(filter)).toEqual(expected);
  });

  it('filters on metadata and source', async () => {
    expect(await received({ 'metadata.tenant': 'acme' }, { tenant: 'acme' })).toEqual([0, 1, 2, 3]);
    expect(await received({ 'metadata.tenant': 'acme' }, { tenant: 'other' })).toEqual([]);
    expect(await received({ source: 'desk-7' })).toEqual([]);
  });

  it('compares strings that look like Lua or Redis commands as plain strings', async () => {
    const bus = t.bus();
    const hostile = "') redis.call('FLUSHALL') --";
    await bus.subscribe('s', '#', { filter: { 'data.text': hostile, 'data.other': { in: ['os.exit()', '%s%d'] } } });
    await bus.publish('x', { text: hostile, other: '%s%d' });
    await bus.publish('x', { text: 'plain', other: '%s%d' });
    const events = await drain<{ text: string }>(bus.subscriberQueue('s'));
    expect(events.map((event) => event.data.text)).toEqual([hostile]);
    expect(await t.redis.dbsize()).toBeGreaterThan(0);
  });

  it('applies each subscriber its own filter on one publish', async () => {
    const bus = t.bus();
    await bus.subscribe('apple', 'trade.*', { filter: { 'data.symbol': 'AAPL' } });
    await bus.subscribe('big', 'trade.*', { filter: { 'data.qty': { in: [10] } } });
    await bus.subscribe('all', 'trade.*');
    const result = await bus.publish('trade.executed', { symbol: 'AAPL', qty: 5 });
    expect(result.delivered).toBe(2);
    expect(await drain(bus.subscriberQueue('apple'))).toHaveLength(1);
    expect(await drain(bus.subscriberQueue('big'))).toHaveLength(0);
    expect(await drain(bus.subscriberQueue('all'))).toHaveLength(1);
  });

  it('lists a subscription with its filter as conditions', async () => {
    const bus = t.bus();
    await bus.subscribe('s', 'a.*', {
      filter: { 'data.symbol': 'AAPL', 'data.side': { in: ['buy'] }, 'metadata.x': { exists: true } },
    });
    const [subscription] = await bus.listSubscriptions();
    expect(subscription!.filter).toEqual({
      'data.symbol': { eq: 'AAPL' },
      'data.side': { in: ['buy'] },
      'metadata.x': { exists: true },
    });
  });

  it.each<[string, unknown, RegExp]>([
    [
      'a field outside the event',
      { symbol: 'AAPL' },
      /must be a dotted path starting with one of id, type, source, data/,
    ],
    ['an empty path step', { 'data..symbol': 'AAPL' }, /must be a dotted path/],
    ['an object as value', { 'data.symbol': { name: 'AAPL' } }, /a condition is a value, \{ eq: value \}/],
    ['an empty membership list', { 'data.symbol': { in: [] } }, /"in" must be a non-empty list/],
    ['a non-boolean existence', { 'data.symbol': { exists: 'yes' } }, /"exists" must be true or false/],
    ['a non-finite number', { 'data.qty': Number.NaN }, /values must be strings, finite numbers, booleans or null/],
    ['a function', { 'data.qty': () => true }, /a condition is a value|values must be/],
    ['a list instead of an object', [['data.symbol', 'AAPL']], /filter must be an object/],
  ])('refuses %s, writing nothing', async (_name, filter, message) => {
    const bus = t.bus();
    const error = await bus.subscribe('s', '#', { filter: filter as EventFilter }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('filter');
    expect((error as Error).message).toMatch(message);
    expect(await bus.listSubscriptions()).toEqual([]);
  });
});
