import { describe, expect, it } from 'vitest';
import type { Event } from '../src/index.js';
import { useBus } from './events.helpers.js';
import { waitFor } from './helpers.js';

const t = useBus();
const FAST_RETRY = { baseMs: 5, capMs: 5, jitter: 0 };

describe('consuming a subscriber queue', () => {
  it('N workers compete for one subscriber: each event is handled by exactly one of them', async () => {
    const bus = t.bus('b', { retry: FAST_RETRY });
    await bus.subscribe('workers', 'job.*');
    const handledBy = new Map<number, string[]>();
    // Each worker holds its first event until every worker holds one: only possible if they share the queue.
    const workers = 3;
    const holding = new Set<string>();
    let release!: () => void;
    const allHolding = new Promise<void>((resolve) => (release = resolve));
    const consumers = Array.from({ length: workers }, (_, w) =>
      bus.consume<{ n: number }>('workers', async (event) => {
        const name = `w${w}`;
        handledBy.set(event.data.n, [...(handledBy.get(event.data.n) ?? []), name]);
        if (!holding.has(name)) {
          holding.add(name);
          if (holding.size === workers) release();
          await allHolding;
        }
        return true;
      }),
    );
    const total = 60;
    await bus.publishMany(Array.from({ length: total }, (_, n) => ({ type: 'job.run', data: { n } })));
    await waitFor(() => handledBy.size === total, `${total} events handled`, 60_000);
    await Promise.all(consumers.map((c) => c.close()));
    expect(holding.size).toBe(workers);
    for (const [n, names] of handledBy) expect({ n, names: names.length }).toEqual({ n, names: 1 });
    expect((await bus.subscriberQueue('workers').getStats()).counters.acked).toBe(total);
  });

  it('runs concurrency N in one consumer and delivers each subscriber its own copy', async () => {
    const bus = t.bus();
    await bus.subscribe('email', 'account.created');
    await bus.subscribe('crm', 'account.*');
    const seen: Record<string, string[]> = { email: [], crm: [] };
    const email = bus.consume('email', (event) => void seen.email!.push(event.id), { concurrency: 4 });
    const crm = bus.consume('crm', (event) => void seen.crm!.push(event.id), { concurrency: 4 });
    const results = await bus.publishMany(Array.from({ length: 20 }, (_, n) => ({ type: 'account.created', data: n })));
    await waitFor(() => seen.email!.length === 20 && seen.crm!.length === 20, 'both subscribers to handle 20 events');
    await Promise.all([email.close(), crm.close()]);
    const ids = results.map((r) => r.id).sort();
    expect([...seen.email!].sort()).toEqual(ids);
    expect([...seen.crm!].sort()).toEqual(ids);
  });

  it('a handler returning false (the seed callback style) is retried, then dead-lettered; stats count it failed', async () => {
    const bus = t.bus('b', { retry: FAST_RETRY });
    await bus.subscribe('flaky', 'price.alert', { maxRetries: 2 });
    const attempts: number[] = [];
    const consumer = bus.consume<{ symbol: string }>('flaky', (event, { delivery }) => {
      attempts.push(delivery.attempts);
      return event.data.symbol !== 'FAIL';
    });
    await bus.publish('price.alert', { symbol: 'FAIL' });
    await bus.publish('price.alert', { symbol: 'OK' });
    const queue = bus.subscriberQueue('flaky');
    await waitFor(
      async () => (await queue.getStats()).deadLetters === 1 && (await queue.getStats()).counters.acked === 1,
      'one dead letter and one ack',
    );
    await consumer.close();
    const [dead] = await queue.deadLetters();
    expect(dead!.reason).toBe('handler returned false');
    expect((dead!.message!.payload as Event<{ symbol: string }>).data.symbol).toBe('FAIL');
    expect(attempts.filter((a) => a > 0).sort()).toEqual([1, 2]);
    const stats = await bus.getStats();
    expect(stats.events).toMatchObject({ published: 2, delivered: 2, failed: 1, retried: 2 });
  });

  it('a thrown error is nacked with its message, and a dead letter can be replayed to the subscriber', async () => {
    const bus = t.bus('b', { retry: FAST_RETRY });
    await bus.subscribe('s', '#', { maxRetries: 0 });
    let healthy = false;
    const handled: string[] = [];
    const consumer = bus.consume('s', (event) => {
      if (!healthy) throw new Error('database down');
      handled.push(event.type);
    });
    await bus.publish('order.placed', {});
    const queue = bus.subscriberQueue('s');
    await waitFor(async () => (await queue.getStats()).deadLetters === 1, 'the event to be dead-lettered');
    expect((await queue.deadLetters())[0]!.reason).toBe('database down');
    healthy = true;
    expect(await queue.replayDeadLetters()).toHaveLength(1);
    await waitFor(() => handled.length === 1, 'the replayed event to be handled');
    await consumer.close();
    expect(handled).toEqual(['order.placed']);
  });
});
