import { afterEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  Queue,
  QueueFullError,
  RequestFailedError,
  RequestTimeoutError,
  ValidationError,
  type Delivery,
} from '../src/index.js';
import { queueKey } from '../src/keys.js';
import { startChild, type Child } from './children.js';
import { useProxy } from './faults.helpers.js';
import { redisUrl, singleNodeOnly, useRedis, waitFor } from './helpers.js';
import { scriptCall } from './proxy.js';
import { outstanding } from './stats.js';
import type { Answer } from './fixtures/request-responder.js';

const env = useRedis();
const faults = useProxy();
/** Talks through a TCP proxy in front of one Redis node: not on the cluster topology. */
const itThroughProxy = it.skipIf(singleNodeOnly('talks through a TCP proxy in front of one Redis node'));
let children: Child[] = [];

afterEach(async () => {
  await Promise.all(children.map((child) => child.stop()));
  children = [];
});

/** A responder in another process (test/fixtures/request-responder.ts), consuming `queue`. */
async function responder(queue: Queue<any>, extra: Record<string, string> = {}): Promise<Child> {
  const child = startChild('request-responder', {
    REDIS_URL: redisUrl(),
    PREFIX: queue.prefix,
    QUEUE: queue.name,
    ...extra,
  });
  children.push(child);
  await child.message((m): m is 'ready' => m === 'ready', 'ready');
  return child;
}

/** What a request leaves in Redis: its `requests` entry and any reply list of the queue. */
async function leftovers(queue: Queue<any>): Promise<{ requests: number; replyLists: string[] }> {
  const replyLists = await env.redis.keys(`${queueKey(queue.baseKey, 'replyPrefix')}*`);
  return { requests: await env.redis.zcard(queueKey(queue.baseKey, 'requests')), replyLists };
}

/** Rejects with what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('queue.request', () => {
  it('resolves with the reply of a handler in another process, matched to its request', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    await responder(queue);
    const answer = await queue.request<Answer>({ n: 21 }, { timeoutMs: 20_000 });
    expect(answer).toEqual({ n: 21, doubled: 42, pid: expect.any(Number) });
    expect(answer.pid).not.toBe(process.pid);
    // A plain send to the same queue is acked as before, with no answer.
    await queue.send({ n: 1 });
    await waitFor(async () => (await queue.getStats()).counters.acked === 2, 'both messages acked');
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('answers 1,000 concurrent requests, each with the reply to its own payload', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    await responder(queue, { CONCURRENCY: '64' });
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, n) => queue.request<Answer>({ n }, { timeoutMs: 60_000 })),
    );
    answers.forEach((answer, n) => expect(answer).toMatchObject({ n, doubled: 2 * n }));
    const stats = await queue.getStats();
    expect(outstanding(stats)).toBe(0);
    expect(stats.counters).toMatchObject({ sent: 1000, acked: 1000, deadLettered: 0 });
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('rejects with RequestTimeoutError when nobody answers, and withdraws the waiting message', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    const error = await rejection(queue.request({ n: 1 }, { timeoutMs: 50 }));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error).toMatchObject({ code: 'REQUEST_TIMEOUT', queueName: 'rpc', timeoutMs: 50 });
    const stats = await queue.getStats();
    expect(outstanding(stats)).toBe(0);
    expect(stats.counters.sent).toBe(0);
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
    // Nothing is delivered afterwards.
    expect(await queue.dequeue()).toEqual([]);
  });

  it('withdraws a timed-out request waiting behind its partition, or for a retry', async () => {
    const queue = env.queue<{ n: number }>('rpc', { retry: { baseMs: 60_000 } });
    await queue.send({ n: 0 }, { partitionKey: 'acct-1' });
    const [head] = await queue.dequeue();
    expect(await rejection(queue.request({ n: 1 }, { partitionKey: 'acct-1', timeoutMs: 50 }))).toBeInstanceOf(
      RequestTimeoutError,
    );
    expect((await queue.getStats()).partitionBacklog).toBe(0);
    await queue.ack(head!);
    expect(await queue.dequeue()).toEqual([]);

    // A request whose first attempt failed waits 60 s for its retry: withdrawn from the delayed set.
    const pending = rejection(queue.request({ n: 2 }, { timeoutMs: 500 }));
    const [delivery] = await waitFor(() => queue.dequeue(), 'the request delivered');
    expect(await queue.nack(delivery!, { error: 'transient' })).toBe('retried');
    expect(await pending).toBeInstanceOf(RequestTimeoutError);
    const stats = await queue.getStats();
    expect(outstanding(stats)).toBe(0);
    expect(await queue.getMessage(delivery!.id)).toBeNull();
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('drops a reply that comes after the timeout, and goes on answering later requests', async () => {
    const requester = env.queue<{ n: number }>('rpc');
    // The handler runs on another Queue object and connection: another requester id, another reply list.
    const worker = new Queue<{ n: number }>('rpc', { connection: env.connection(), prefix: requester.prefix });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const consumer = worker.consume(async (m: Delivery<{ n: number }>) => {
      started.push(m.id);
      if (m.payload.n === 1) await released;
      return m.payload.n * 10;
    });
    try {
      const late = rejection(requester.request({ n: 1 }, { timeoutMs: 1_000 }));
      await waitFor(() => started.length === 1, 'the slow handler started');
      expect(await late).toBeInstanceOf(RequestTimeoutError);
      const completed = new Promise((resolve) => consumer.once('completed', resolve));
      release();
      await completed;
      await waitFor(async () => (await worker.getStats()).counters.acked === 1, 'the late reply acked');
      expect(await leftovers(requester)).toEqual({ requests: 0, replyLists: [] });
      expect(await requester.request({ n: 2 }, { timeoutMs: 20_000 })).toBe(20);
    } finally {
      await worker.close();
    }
  });

  it('rejects with RequestFailedError carrying the last error once the message is dead-lettered', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    await responder(queue, { MODE: 'fail', RETRY_MS: '5' });
    const error = await rejection(queue.request({ n: 3 }, { maxRetries: 1, timeoutMs: 20_000 }));
    expect(error).toBeInstanceOf(RequestFailedError);
    expect(error).toMatchObject({ code: 'REQUEST_FAILED', reason: 'cannot answer 3' });
    const [letter] = await queue.deadLetters();
    expect(letter).toMatchObject({ reason: 'cannot answer 3', message: { payload: { n: 3 }, attempts: 2 } });
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('fails a request whose reply is not JSON-serialisable, as a handler error', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    queue.consume(() => ({ big: 1n }));
    const error = await rejection(queue.request({ n: 1 }, { maxRetries: 0, timeoutMs: 20_000 }));
    expect(error).toBeInstanceOf(RequestFailedError);
    expect((error as RequestFailedError).reason).toMatch(/payload must be JSON-serialisable/);
  });

  it('a handler that returns nothing replies null', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    queue.consume(() => undefined);
    expect(await queue.request({ n: 1 }, { timeoutMs: 20_000 })).toBeNull();
  });

  // prettier-ignore
  itThroughProxy('a request whose reply from Redis was lost (re-sent by ioredis) writes one message and gets its answer', async () => {
    const prefix = env.prefix();
    const requester = new Queue<{ n: number }>('rpc', { connection: faults.proxy.url, prefix });
    try {
      await responder(requester);
      const lost = faults.proxy.loseReply({ command: scriptCall('queue/request') });
      const answer = await requester.request<Answer>({ n: 5 }, { timeoutMs: 20_000 });
      expect(lost.hasFired).toBe(true);
      expect(answer).toMatchObject({ n: 5, doubled: 10 });
      const stats = await requester.getStats();
      expect(stats.counters).toMatchObject({ sent: 1, delivered: 1, acked: 1 });
      expect(outstanding(stats)).toBe(0);
    } finally {
      await requester.close();
    }
  });

  // prettier-ignore
  itThroughProxy('an answer whose reply from Redis was lost (re-sent by ioredis) is acked and answered once', async () => {
    const requester = env.queue<{ n: number }>('rpc');
    const worker = new Queue<{ n: number }>('rpc', { connection: faults.proxy.url, prefix: requester.prefix });
    try {
      const errors: unknown[] = [];
      worker.consume(({ payload }) => payload.n + 1).on('error', (error) => errors.push(error));
      const lost = faults.proxy.loseReply({ command: scriptCall('queue/reply') });
      expect(await requester.request({ n: 41 }, { timeoutMs: 20_000 })).toBe(42);
      await waitFor(() => lost.hasFired, 'the reply of queue/reply lost');
      await waitFor(async () => (await requester.getStats()).counters.acked === 1, 'the request acked');
      const stats = await requester.getStats();
      expect(stats.counters).toMatchObject({ sent: 1, delivered: 1, acked: 1 });
      expect(outstanding(stats)).toBe(0);
      expect(errors.filter((e) => !(e instanceof Error && /connect|closed/i.test(e.message)))).toEqual([]);
      expect(await leftovers(requester)).toEqual({ requests: 0, replyLists: [] });
    } finally {
      await worker.close();
    }
  });

  it('close() rejects pending requests with ClosedError and withdraws them', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    const pending = [1, 2, 3].map((n) => rejection(queue.request({ n }, { timeoutMs: 60_000 })));
    await waitFor(async () => (await queue.getStats()).counters.sent === 3, 'the requests sent');
    await queue.close();
    for (const error of await Promise.all(pending)) expect(error).toBeInstanceOf(ClosedError);
    await expect(queue.request({ n: 4 })).rejects.toBeInstanceOf(ClosedError);
    const probe = new Queue('rpc', { connection: env.redis, prefix: queue.prefix });
    expect(outstanding(await probe.getStats())).toBe(0);
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('refuses bad options before writing anything', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    for (const timeoutMs of [0, -1, Number.NaN, '5']) {
      await expect(queue.request({ n: 1 }, { timeoutMs } as never)).rejects.toThrow(/timeoutMs/);
    }
    await expect(queue.request({ n: 1 }, { delayMs: 5 } as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(queue.request({ n: 1 }, { priority: 'URGENT' } as never)).rejects.toThrow(/priority must be/);
    await expect(queue.request(1n as never)).rejects.toThrow(/JSON-serialisable/);
    expect((await queue.getStats()).counters.sent).toBe(0);
  });

  it('at maxLength a request is refused with QueueFullError and writes nothing', async () => {
    const queue = env.queue<{ n: number }>('rpc', { maxLength: 1, whenFull: 'wait' });
    await queue.send({ n: 0 });
    const error = await queue.request({ n: 1 }, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueFullError);
    // A request never waits for room, so the message does not suggest whenFull or fullWaitMs.
    expect((error as Error).message).toMatch(/request never waits for room.*raise maxLength/);
    expect((error as Error).message).not.toMatch(/fullWaitMs/);
    expect((await queue.getStats()).counters.sent).toBe(1);
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('a consumer with an idempotency guard (default key) answers every request and marks none processed', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    let runs = 0;
    const consumer = queue.consume(
      (m) => {
        runs++;
        return m.payload.n * 2;
      },
      { idempotency: { retentionMs: 60_000 } },
    );
    expect(await queue.request({ n: 1 }, { timeoutMs: 20_000 })).toBe(2);
    expect(await queue.request({ n: 1 }, { timeoutMs: 20_000 })).toBe(2);
    expect(runs).toBe(2);
    expect(await env.redis.keys(`${queueKey(queue.baseKey, 'processedPrefix')}*`)).toEqual([]);
    await consumer.close();
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('the idempotency guard leaves requests alone: a business key marked by a plain message does not skip a request', async () => {
    const queue = env.queue<{ order: string }>('rpc');
    const handled: string[] = [];
    const keys: string[] = [];
    const consumer = queue.consume(
      (m) => {
        handled.push(m.id.includes('@') ? 'request' : 'message');
        return `done ${m.payload.order}`;
      },
      {
        idempotency: {
          retentionMs: 60_000,
          key: (m) => {
            keys.push(m.id);
            return `order-${m.payload.order}`;
          },
        },
      },
    );
    await queue.send({ order: '1' });
    await waitFor(async () => (await queue.getStats()).counters.acked === 1, 'the plain message to be acked');
    expect(await queue.request({ order: '1' }, { timeoutMs: 20_000 })).toBe('done 1');
    expect(handled).toEqual(['message', 'request']);
    // The key function ran on the plain message only.
    expect(keys).toHaveLength(1);
    await consumer.close();
    expect(await leftovers(queue)).toEqual({ requests: 0, replyLists: [] });
  });

  it('a request may carry a priority and a type, and the handler sees them', async () => {
    const queue = env.queue<{ n: number }>('rpc');
    queue.consume((m) => ({ type: m.type, priority: m.priority }));
    expect(await queue.request({ n: 1 }, { type: 'quote.get', priority: 'HIGH', timeoutMs: 20_000 })).toEqual({
      type: 'quote.get',
      priority: 3,
    });
  });
});
