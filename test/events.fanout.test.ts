import { describe, expect, it } from 'vitest';
import type { EventFilter } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';

const t = useBus();

const TYPES = [
  'account.created',
  'account.updated',
  'account.deleted',
  'portfolio.created',
  'portfolio.updated',
  'trade.executed',
  'trade.cancelled',
  'market.data.updated',
  'market.data.snapshot',
  'market.news',
  'price.alert',
  'system.maintenance',
  'system.error',
  'system.error.fatal',
];
const PATTERNS = [
  'account.created',
  'trade.executed',
  'market.data.updated',
  'price.alert',
  'system.error',
  '*.created',
  'account.*',
  'market.*.updated',
  '*.*',
  '*.data.*',
  '#',
  'market.#',
  '#.updated',
  'system.#',
  '#.error.#',
  'trade.#.cancelled',
];
const SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'TSLA'];

type Data = { n: number; symbol: string; qty: number; urgent?: boolean };

/** An oracle for the test, independent of the Lua matcher: RabbitMQ topic semantics by recursion. */
function topicMatches(pattern: string[], words: string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') return topicMatches(rest, words) || (words.length > 0 && topicMatches(pattern, words.slice(1)));
  return words.length > 0 && (head === '*' || head === words[0]) && topicMatches(rest, words.slice(1));
}

interface Subscriber {
  id: string;
  patterns: string[];
  filter?: EventFilter;
  accepts: (data: Data) => boolean;
}

function subscribers(): Subscriber[] {
  const list: Subscriber[] = [];
  for (let s = 0; s < 50; s++) {
    const patterns = [PATTERNS[s % PATTERNS.length]!];
    if (s % 3 === 0) patterns.push(PATTERNS[(s * 7 + 3) % PATTERNS.length]!);
    const symbol = SYMBOLS[s % SYMBOLS.length]!;
    const variant = s % 5;
    const subscriber: Subscriber =
      variant === 1
        ? { id: `s${s}`, patterns, filter: { 'data.symbol': symbol }, accepts: (d) => d.symbol === symbol }
        : variant === 2
          ? {
              id: `s${s}`,
              patterns,
              filter: { 'data.qty': { in: [1, 3, 5] } },
              accepts: (d) => [1, 3, 5].includes(d.qty),
            }
          : variant === 3
            ? {
                id: `s${s}`,
                patterns,
                filter: { 'data.urgent': { exists: true }, 'data.symbol': { in: ['AAPL', 'TSLA'] } },
                accepts: (d) => d.urgent !== undefined && ['AAPL', 'TSLA'].includes(d.symbol),
              }
            : { id: `s${s}`, patterns, accepts: () => true };
    list.push(subscriber);
  }
  return list;
}

describe('fan-out at scale', () => {
  it('50 subscribers with exact, * and # patterns and filters, 5,000 events: each gets exactly its matches, in publish order', async () => {
    const bus = t.bus('fanout', { historyLimit: 100 });
    const subs = subscribers();
    for (const sub of subs) await bus.subscribe(sub.id, sub.patterns, sub.filter ? { filter: sub.filter } : {});

    const events: { type: string; data: Data }[] = [];
    for (let n = 0; n < 5000; n++) {
      const data: Data = { n, symbol: SYMBOLS[(n * 7) % SYMBOLS.length]!, qty: n % 6 };
      if (n % 4 === 1) data.urgent = n % 8 === 1;
      events.push({ type: TYPES[(n * 5 + (n >> 3)) % TYPES.length]!, data });
    }
    const expected = new Map(subs.map((sub) => [sub.id, [] as number[]]));
    let expectedTotal = 0;
    for (const { type, data } of events) {
      const words = type.split('.');
      for (const sub of subs) {
        if (sub.patterns.some((p) => topicMatches(p.split('.'), words)) && sub.accepts(data)) {
          expected.get(sub.id)!.push(data.n);
          expectedTotal += 1;
        }
      }
    }

    // Half in batches, half one by one: both paths are the same script.
    let delivered = 0;
    for (let at = 0; at < 2500; at += 250) {
      for (const result of await bus.publishMany(events.slice(at, at + 250))) delivered += result.delivered;
    }
    for (let at = 2500; at < 5000; at++) {
      const { type, data } = events[at]!;
      delivered += (await bus.publish(type, data)).delivered;
    }
    expect(delivered).toBe(expectedTotal);

    for (const sub of subs) {
      const received = (await drain<Data>(bus.subscriberQueue(sub.id))).map((event) => event.data.n);
      expect({ subscriber: sub.id, patterns: sub.patterns, received }).toEqual({
        subscriber: sub.id,
        patterns: sub.patterns,
        received: expected.get(sub.id),
      });
    }
    // Every subscriber got something, and the mix is not trivial.
    const counts = [...expected.values()].map((list) => list.length);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBe(5000);
    const stats = await bus.getStats();
    expect(stats.events).toMatchObject({ published: 5000, delivered: expectedTotal });
    expect(stats.subscriptions).toBe(50);
  });
});
