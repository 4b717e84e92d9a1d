import { afterEach, describe, expect, it } from 'vitest';
import { Queue, QueueFullError, ValidationError, type QueueOptions } from '../src/index.js';
import { useProxy } from './faults.helpers.js';
import { scriptCall } from './proxy.js';
import { outstanding } from './stats.js';
import { singleNodeOnly, useRedis, waitFor } from './helpers.js';

const env = useRedis();
const faults = useProxy();
/** Talks through a TCP proxy in front of one Redis node: not on the cluster topology. */
const describeThroughProxy = describe.skipIf(singleNodeOnly('talks through a TCP proxy in front of one Redis node'));
let opened: Queue<any>[] = [];

afterEach(async () => {
  await Promise.all(opened.map((q) => q.close()));
  opened = [];
});

/** A queue of its own prefix; `shared` names another queue object of the same queue. */
function bounded(options: Partial<QueueOptions>, connection?: QueueOptions['connection'], prefix = env.prefix()) {
  const q = new Queue<{ n: number }>('q', { connection: connection ?? env.redis, prefix, ...options });
  opened.push(q);
  return q;
}

async function expectFull(promise: Promise<unknown>): Promise<QueueFullError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(QueueFullError);
  expect((error as QueueFullError).code).toBe('QUEUE_FULL');
  return error as QueueFullError;
}

describe('queue maxLength', () => {
  it('refuses a send at the limit with QueueFullError naming the queue and the limit; nothing is written', async () => {
    const q = bounded({ maxLength: 3 });
    for (let n = 0; n < 3; n++) await q.send({ n });
    const error = await expectFull(q.send({ n: 3 }));
    expect(error.queueName).toBe('q');
    expect(error.maxLength).toBe(3);
    expect(error.message).toMatch(/maxLength 3/);
    expect(error.message).toMatch(/whenFull/);
    const stats = await q.getStats();
    expect(stats.counters.sent).toBe(3);
    expect(outstanding(stats)).toBe(3);
    // An ack makes room for exactly one more.
    const [delivery] = await q.dequeue();
    await q.send({ n: 4 }).catch(() => undefined);
    expect(outstanding(await q.getStats())).toBe(3);
    await q.ack(delivery!);
    await q.send({ n: 5 });
    await expectFull(q.send({ n: 6 }));
    expect(outstanding(await q.getStats())).toBe(3);
  });

  it('counts ready, delayed, in-flight, retrying and partition-backlog messages; dead letters free room, replay takes it', async () => {
    const q = bounded({ maxLength: 5, retry: { baseMs: 60_000 } });
    await q.send({ n: 1 });
    await q.send({ n: 2 }, { delayMs: 60_000 });
    await q.send({ n: 3 }, { partitionKey: 'p' });
    await q.send({ n: 4 }, { partitionKey: 'p' });
    await q.send({ n: 5 }, { maxRetries: 0 });
    await expectFull(q.send({ n: 6 }));
    const taken = await q.dequeue({ count: 3 });
    expect(taken).toHaveLength(3);
    await expectFull(q.send({ n: 6 }));
    // One retried (delayed again: still counts), one dead-lettered (frees one place).
    const five = taken.find((d) => d.payload.n === 5)!;
    const one = taken.find((d) => d.payload.n === 1)!;
    expect(await q.nack(one)).toBe('retried');
    expect(await q.nack(five)).toBe('dead-lettered');
    expect(outstanding(await q.getStats())).toBe(4);
    await q.send({ n: 7 });
    await expectFull(q.send({ n: 8 }));
    // Replay puts the dead letter back even beyond the limit; sends wait until the queue is below it again.
    expect(await q.replayDeadLetters()).toEqual([five.id]);
    expect(outstanding(await q.getStats())).toBe(6);
    await expectFull(q.send({ n: 9 }));
  });

  it('a dedup repeat or a repeat of a sender-chosen id is answered with its id at the limit, not refused', async () => {
    const q = bounded({ maxLength: 2 });
    const first = await q.send({ n: 1 }, { dedupKey: 'order-1' });
    await q.send({ n: 2 }, { id: 'mine' });
    expect(await q.send({ n: 3 }, { dedupKey: 'order-1' })).toBe(first);
    expect(await q.send({ n: 4 }, { id: 'mine' })).toBe('mine');
    expect(
      await q.sendMany([
        { payload: { n: 5 }, dedupKey: 'order-1' },
        { payload: { n: 6 }, id: 'mine' },
      ]),
    ).toEqual([first, 'mine']);
    await expectFull(q.send({ n: 7 }, { dedupKey: 'order-2' }));
    // The refused send held no dedup key: once there is room it is written.
    const [delivery] = await q.dequeue();
    await q.ack(delivery!);
    const second = await q.send({ n: 8 }, { dedupKey: 'order-2' });
    expect(second).not.toBe(first);
    expect((await q.getStats()).counters.sent).toBe(3);
  });

  it('20 producers on their own connections, 50 sends each, against maxLength 100: exactly 100 written', async () => {
    const prefix = env.prefix();
    const producers = Array.from({ length: 20 }, () => bounded({ maxLength: 100 }, env.connection(), prefix));
    const results = await Promise.allSettled(
      producers.flatMap((q, p) => Array.from({ length: 50 }, (_, n) => q.send({ n: p * 100 + n }))),
    );
    const written = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(written).toHaveLength(100);
    expect(refused).toHaveLength(900);
    for (const r of refused) expect(r.reason).toBeInstanceOf(QueueFullError);
    const stats = await producers[0]!.getStats();
    expect(stats.counters.sent).toBe(100);
    expect(outstanding(stats)).toBe(100);
  });

  it('sendMany is all or nothing: a batch that does not fit is refused whole, one that fits is written', async () => {
    const q = bounded({ maxLength: 5 });
    await q.sendMany([1, 2, 3].map((n) => ({ payload: { n } })));
    const error = await expectFull(q.sendMany([4, 5, 6].map((n) => ({ payload: { n } }))));
    expect(error.message).toMatch(/3 messages of sendMany/);
    expect((await q.getStats()).counters.sent).toBe(3);
    // Repeats in the batch are not new: two new messages plus a dedup repeat fit in the two places left.
    await q.send({ n: 7 }, { dedupKey: 'k' }).then(async () => {
      const [d] = await q.dequeue();
      await q.ack(d!);
    });
    const ids = await q.sendMany([{ payload: { n: 8 } }, { payload: { n: 9 }, dedupKey: 'k' }, { payload: { n: 10 } }]);
    expect(ids).toHaveLength(3);
    expect(outstanding(await q.getStats())).toBe(5);
  });

  it('sends coalesced into one script call each get their own answer: those that fit are written', async () => {
    const q = bounded({ maxLength: 3 });
    await q.send({ n: 0 });
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => q.send({ n })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    const delivered = await q.dequeue({ count: 10 });
    expect(delivered.map((d) => d.payload.n)).toEqual([0, 1, 2]);
    expect((await q.getStats()).counters.sent).toBe(3);
  });

  it("whenFull 'wait': a send blocked at the limit is written once a consumer acks; one that waits too long fails", async () => {
    const prefix = env.prefix();
    const q = bounded({ maxLength: 2, whenFull: 'wait', fullWaitMs: 20_000 }, undefined, prefix);
    await q.send({ n: 1 });
    await q.send({ n: 2 });
    let done = false;
    const blocked = q.send({ n: 3 }).then((id) => ((done = true), id));
    const later = q.send({ n: 4 });
    expect((await q.getStats()).counters.sent).toBe(2);
    expect(done).toBe(false);
    const order: number[] = [];
    const consumer = q.consume((message) => void order.push(message.payload.n));
    const [id, laterId] = await Promise.all([blocked, later]);
    expect(typeof id).toBe('string');
    expect(typeof laterId).toBe('string');
    await waitFor(async () => (await q.getStats()).counters.acked === 4, 'all four handled');
    await consumer.close();
    // The waiting sends were written in the order they were made.
    expect(order).toEqual([1, 2, 3, 4]);

    const short = bounded({ maxLength: 1, whenFull: 'wait', fullWaitMs: 200 });
    await short.send({ n: 1 });
    const error = await expectFull(short.send({ n: 2 }));
    expect(error.message).toMatch(/after waiting 200 ms/);
    // It already waited: the advice is to wait longer or make room, not to turn on waiting.
    expect(error.message).toMatch(/raise fullWaitMs/);
    expect(error.message).not.toMatch(/give the queue whenFull/);
    const manyError = await expectFull(short.sendMany([{ payload: { n: 3 } }]));
    expect(manyError.message).toMatch(/fullWaitMs/);
    expect((await short.getStats()).counters.sent).toBe(1);
  });

  it('refuses bad maxLength, whenFull and fullWaitMs with a ValidationError naming the field', () => {
    const cases: [Partial<QueueOptions>, string][] = [
      [{ maxLength: 0 }, 'maxLength'],
      [{ maxLength: 1.5 }, 'maxLength'],
      [{ maxLength: '10' as never }, 'maxLength'],
      [{ maxLength: 10, whenFull: 'drop' as never }, 'whenFull'],
      [{ whenFull: 'wait' }, 'whenFull'],
      [{ maxLength: 10, fullWaitMs: 100 }, 'fullWaitMs'],
      [{ maxLength: 10, whenFull: 'wait', fullWaitMs: -1 }, 'fullWaitMs'],
      [{ fullWaitMs: 100 }, 'fullWaitMs'],
    ];
    for (const [options, field] of cases) {
      let error: unknown;
      try {
        new Queue('q', { connection: env.redis, ...options });
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
  });
});

describeThroughProxy('queue maxLength: a lost reply re-sent by ioredis has one effect', () => {
  function viaProxy(options: Partial<QueueOptions>) {
    return bounded(options, faults.proxy.url);
  }

  it('an accepted send whose reply was lost writes one message', async () => {
    const q = viaProxy({ maxLength: 2 });
    await q.send({ n: 1 });
    const lost = faults.proxy.loseReply({ command: scriptCall('queue/send') });
    const id = await q.send({ n: 2 });
    expect(lost.hasFired).toBe(true);
    const stats = await q.getStats();
    expect(stats.counters.sent).toBe(2);
    expect(outstanding(stats)).toBe(2);
    expect((await q.dequeue({ count: 5 })).map((d) => d.id)).toContain(id);
  });

  it('a refused send whose reply was lost is refused, and writes nothing', async () => {
    const q = viaProxy({ maxLength: 1 });
    await q.send({ n: 1 });
    const lost = faults.proxy.loseReply({ command: scriptCall('queue/send') });
    await expectFull(q.send({ n: 2 }));
    expect(lost.hasFired).toBe(true);
    expect((await q.getStats()).counters.sent).toBe(1);
  });

  it('a coalesced batch partly refused, reply lost: the repeat answers the same split and writes once', async () => {
    const q = viaProxy({ maxLength: 2 });
    const lost = faults.proxy.loseReply({ command: scriptCall('queue/send') });
    const results = await Promise.allSettled([1, 2, 3].map((n) => q.send({ n })));
    expect(lost.hasFired).toBe(true);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((await q.getStats()).counters.sent).toBe(2);
  });

  it('a refused sendMany whose reply was lost writes nothing', async () => {
    const q = viaProxy({ maxLength: 2 });
    await q.send({ n: 0 });
    const lost = faults.proxy.loseReply({ command: scriptCall('queue/send') });
    await expectFull(q.sendMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]));
    expect(lost.hasFired).toBe(true);
    expect((await q.getStats()).counters.sent).toBe(1);
  });
});
