import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { UnknownSubscriberError, ValidationError, type PublishResult } from '../src/index.js';
import { drain, scanAll, useBus } from './events.helpers.js';
import { REQUEST_KEY_SUFFIX } from '../src/keys.js';
import { redisUrl } from './helpers.js';

const t = useBus();
const run = promisify(execFile);

describe('subscriptions in Redis', () => {
  it('lists subscriptions with patterns, filter, maxRetries and state', async () => {
    const bus = t.bus();
    expect(await bus.subscribe('notifications', ['account.created', 'account.updated'])).toBe(true);
    expect(await bus.subscribe('risk', 'trade.#', { filter: { 'data.qty': { exists: true } }, maxRetries: 5 })).toBe(
      true,
    );
    await bus.pause('risk');
    expect(await bus.listSubscriptions()).toEqual([
      {
        subscriberId: 'notifications',
        patterns: ['account.created', 'account.updated'],
        filter: null,
        maxRetries: 3,
        active: true,
      },
      {
        subscriberId: 'risk',
        patterns: ['trade.#'],
        filter: { 'data.qty': { exists: true } },
        maxRetries: 5,
        active: false,
      },
    ]);
  });

  it('subscribing again replaces patterns and filter and keeps the queue and the paused state', async () => {
    const bus = t.bus();
    await bus.subscribe('s', 'a.*');
    await bus.publish('a.x', 1);
    await bus.pause('s');
    expect(await bus.subscribe('s', 'b.*', { filter: { data: 2 } })).toBe(false);
    await bus.resume('s');
    await bus.publishMany([
      { type: 'a.x', data: 2 },
      { type: 'b.x', data: 1 },
      { type: 'b.x', data: 2 },
    ]);
    expect((await drain<number>(bus.subscriberQueue('s'))).map((e) => `${e.type}=${e.data}`)).toEqual([
      'a.x=1',
      'b.x=2',
    ]);
  });

  it('pause stops deliveries to one subscriber until resume; events meanwhile are not delivered to it', async () => {
    const bus = t.bus();
    await bus.subscribe('paused', '#');
    await bus.subscribe('running', '#');
    await bus.pause('paused');
    expect((await bus.publish('e', 1)).delivered).toBe(1);
    await bus.resume('paused');
    expect((await bus.publish('e', 2)).delivered).toBe(2);
    expect((await drain<number>(bus.subscriberQueue('paused'))).map((e) => e.data)).toEqual([2]);
    expect((await drain<number>(bus.subscriberQueue('running'))).map((e) => e.data)).toEqual([1, 2]);
  });

  it('pause and resume of an unknown subscriber throw UnknownSubscriberError', async () => {
    const bus = t.bus('b');
    await expect(bus.pause('ghost')).rejects.toThrow(UnknownSubscriberError);
    await expect(bus.resume('ghost')).rejects.toMatchObject({ code: 'UNKNOWN_SUBSCRIBER', subscriberId: 'ghost' });
  });

  it('unsubscribe stops deliveries and keeps what was delivered for the consumers to drain', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    await bus.publish('e', 1);
    expect(await bus.unsubscribe('s')).toBe(true);
    expect(await bus.unsubscribe('s')).toBe(false);
    expect((await bus.publish('e', 2)).delivered).toBe(0);
    expect(await bus.listSubscriptions()).toEqual([]);
    expect((await drain<number>(bus.subscriberQueue('s'))).map((e) => e.data)).toEqual([1]);
  });

  it('unsubscribe with dropQueue deletes the queue: pending, in-flight, delayed and partitioned events', async () => {
    const bus = t.bus();
    await bus.subscribe('s', '#');
    await bus.subscribe('keep', '#');
    await bus.publishMany([
      { type: 'e', data: 1 },
      { type: 'e', data: 2 },
      { type: 'e', data: 3, partitionKey: 'p' },
      { type: 'e', data: 4, partitionKey: 'p' },
    ]);
    const queue = bus.subscriberQueue('s');
    const [inFlight] = await queue.dequeue();
    await queue.nack(inFlight!, { retry: false });
    await bus.unsubscribe('s', { dropQueue: true });
    const stats = await queue.getStats();
    expect(stats).toMatchObject({ ready: { normal: 0 }, inflight: 0, deadLetters: 0, delayed: 0, partitionBacklog: 0 });
    // Only the remembered replies of the calls above remain; they expire on their own (REQUEST_TTL_MS).
    const subscriberKeys = (await scanAll(t.redis, `${queue.baseKey}*`)).filter(
      (key) => !key.includes(REQUEST_KEY_SUFFIX),
    );
    expect(subscriberKeys).toEqual([]);
    expect(await drain(bus.subscriberQueue('keep'))).toHaveLength(4);
  });

  it('a subscription corrupted in Redis is skipped: publishing goes on for everyone else', async () => {
    const bus = t.bus();
    await bus.subscribe('broken', ['a.b', 'a.*']);
    await bus.subscribe('fine', 'a.b');
    await t.redis.hset(`${bus.baseKey}:subs`, 'broken', '{not json');
    expect((await bus.publish('a.b', 1)).delivered).toBe(1);
    expect(await drain(bus.subscriberQueue('broken'))).toEqual([]);
    expect(await drain(bus.subscriberQueue('fine'))).toHaveLength(1);
    expect((await bus.listSubscriptions()).find((s) => s.subscriberId === 'broken')!.patterns).toEqual([]);
    expect((await bus.getStats()).subscriptions).toBe(2);
    // Subscribing again repairs it.
    await bus.subscribe('broken', 'a.b');
    expect((await bus.publish('a.b', 2)).delivered).toBe(2);
    expect(await bus.unsubscribe('broken')).toBe(true);
  });

  it('refuses subscriber ids that would break the key layout', async () => {
    const bus = t.bus();
    for (const id of ['', 'a:b', 'a b', '{x}', 'x'.repeat(101)]) {
      const error = await bus.subscribe(id, '#').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('subscriberId');
    }
    expect(await bus.listSubscriptions()).toEqual([]);
  });

  it('a process that only publishes reaches subscribers registered by another process', async () => {
    const prefix = t.prefix();
    const bus = t.bus('shared', { prefix });
    await bus.subscribe('accounts', 'account.*');
    await bus.subscribe('apple-watch', '#', { filter: { 'data.symbol': 'AAPL' } });
    await bus.subscribe('portfolios', 'portfolio.updated');
    const { stdout } = await run(process.execPath, ['dist/test/fixtures/events-publisher.js'], {
      env: { ...process.env, REDIS_URL: redisUrl(), PREFIX: prefix, BUS: 'shared', COUNT: '6' },
      timeout: 60_000,
    });
    const results = JSON.parse(stdout) as PublishResult[];
    // n = 0..5: even n are account.created, odd portfolio.updated; n % 3 == 0 is AAPL (n = 0, 3).
    expect(results.map((r) => r.delivered)).toEqual([2, 1, 1, 2, 1, 1]);
    const dataOf = async (id: string) => (await drain<{ n: number }>(bus.subscriberQueue(id))).map((e) => e.data.n);
    expect(await dataOf('accounts')).toEqual([0, 2, 4]);
    expect(await dataOf('portfolios')).toEqual([1, 3, 5]);
    expect(await dataOf('apple-watch')).toEqual([0, 3]);
    const [history] = await bus.history('account.created', { limit: 1 });
    expect(history!.event.source).toMatch(/^publisher-\d+$/);
  });
});
