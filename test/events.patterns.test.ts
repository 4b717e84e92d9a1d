import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.js';
import { drain, useBus } from './events.helpers.js';

const t = useBus();

// [pattern, event type, delivered?]: the RabbitMQ topic tutorial's bindings and routing keys, then edges.
const CASES: [string, string, boolean][] = [
  ['*.orange.*', 'quick.orange.rabbit', true],
  ['*.*.rabbit', 'quick.orange.rabbit', true],
  ['*.orange.*', 'lazy.orange.elephant', true],
  ['lazy.#', 'lazy.orange.elephant', true],
  ['*.orange.*', 'quick.orange.fox', true],
  ['*.*.rabbit', 'quick.orange.fox', false],
  ['lazy.#', 'lazy.brown.fox', true],
  ['*.orange.*', 'lazy.brown.fox', false],
  ['*.*.rabbit', 'lazy.pink.rabbit', true],
  ['lazy.#', 'lazy.pink.rabbit', true],
  ['*.orange.*', 'quick.brown.fox', false],
  ['*.*.rabbit', 'quick.brown.fox', false],
  ['lazy.#', 'quick.brown.fox', false],
  ['*.orange.*', 'orange', false],
  ['*.*.rabbit', 'orange', false],
  ['*.orange.*', 'quick.orange.new.rabbit', false],
  ['*.*.rabbit', 'quick.orange.new.rabbit', false],
  ['lazy.#', 'lazy.orange.new.rabbit', true],
  ['*.*.rabbit', 'lazy.orange.new.rabbit', false],
  ['*.orange.*', 'quick.orange.male.rabbit', false],
  ['lazy.#', 'quick.orange.male.rabbit', false],
  // '#' alone matches every type
  ['#', 'a', true],
  ['#', 'a.b.c.d', true],
  // a.#: a followed by zero or more words
  ['a.#', 'a', true],
  ['a.#', 'a.b', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b.a', false],
  ['a.#', 'ab', false],
  // #.b: zero or more words, then b
  ['#.b', 'b', true],
  ['#.b', 'a.b', true],
  ['#.b', 'x.y.b', true],
  ['#.b', 'b.a', false],
  // a.#.b
  ['a.#.b', 'a.b', true],
  ['a.#.b', 'a.x.b', true],
  ['a.#.b', 'a.x.y.b', true],
  ['a.#.b', 'a', false],
  ['a.#.b', 'a.b.c', false],
  ['a.#.b', 'b.a.b', false],
  // a.*.*: exactly three words
  ['a.*.*', 'a.b.c', true],
  ['a.*.*', 'a.b', false],
  ['a.*.*', 'a.b.c.d', false],
  ['a.*.*', 'x.b.c', false],
  // '*' never matches zero words
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['a.*', 'a', false],
  // exact patterns match only their own type
  ['account.created', 'account.created', true],
  ['account.created', 'account.created.v2', false],
  ['account.created', 'account', false],
  // several '#'
  ['#.#', 'a', true],
  ['#.x.#', 'x', true],
  ['#.x.#', 'a.x.b.c', true],
  ['#.x.#', 'a.b.c', false],
  ['a.#.*', 'a', false],
  ['a.#.*', 'a.b', true],
  ['#.*.#.*.#', 'a.b', true],
  ['#.*.#.*.#', 'a', false],
];

describe('topic patterns (RabbitMQ semantics, matched in the publish script)', () => {
  it.each(CASES)('pattern %s, type %s: delivered %s', async (pattern, type, expected) => {
    const bus = t.bus();
    await bus.subscribe('s', pattern);
    const [result] = await bus.publishMany([{ type, data: { type } }]);
    expect(result!.delivered).toBe(expected ? 1 : 0);
    const received = await drain(bus.subscriberQueue('s'));
    expect(received.map((event) => event.type)).toEqual(expected ? [type] : []);
  });

  it('delivers once to a subscriber whose several patterns match the same event', async () => {
    const bus = t.bus();
    await bus.subscribe('s', ['lazy.#', '*.orange.*', 'lazy.orange.elephant']);
    expect((await bus.publish('lazy.orange.elephant', {})).delivered).toBe(1);
    expect(await drain(bus.subscriberQueue('s'))).toHaveLength(1);
  });

  it.each([
    ['', 'empty'],
    ['a..b', 'empty word'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a.b*', 'wildcard inside a word'],
    ['a.#b', 'wildcard inside a word'],
    ['a b', 'space'],
    ['a.b:c', 'colon'],
  ])('refuses the pattern %j (%s) with a ValidationError naming patterns', async (pattern) => {
    const bus = t.bus();
    const error = await bus.subscribe('s', pattern).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('patterns');
    expect((error as ValidationError).message).toMatch(/pattern must be dot-separated words/);
    expect(await bus.listSubscriptions()).toEqual([]);
  });

  it.each(['', 'a..b', 'a.*', 'a.#', '*', 'a.', 'x'.repeat(201)])('refuses the event type %j', async (type) => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    const error = await bus.publish(type, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('type');
    expect(await bus.history('any')).toEqual([]);
    expect((await bus.getStats()).events.published).toBe(0);
  });

  it('refuses an empty list of patterns', async () => {
    const bus = t.bus();
    await expect(bus.subscribe('s', [])).rejects.toThrow(/patterns must be a pattern or a list of 1\.\.100 patterns/);
  });
});
