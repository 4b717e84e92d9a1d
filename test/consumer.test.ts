import { describe, expect, it, vi } from 'vitest';
import { ClosedError, HandlerTimeoutError } from '../src/index.js';
import { consumerIsBlocked, useRedis, waitFor } from './helpers.js';

const env = useRedis();

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('consumer runtime', () => {
  it('runs at most `concurrency` handlers at once and takes no more than it can run', async () => {
    const queue = env.queue<number>('concurrency');
    await queue.sendMany(Array.from({ length: 12 }, (_, n) => ({ payload: n })));
    const release = gate();
    let running = 0;
    let most = 0;
    const done: number[] = [];
    const consumer = queue.consume(
      async (m) => {
        running++;
        most = Math.max(most, running);
        await release.opened;
        running--;
        done.push(m.payload);
      },
      { concurrency: 3 },
    );
    await waitFor(() => consumer.activeCount === 3, 'three handlers to run');
    expect((await queue.getStats()).inflight).toBe(3);
    release.open();
    await waitFor(() => done.length === 12, 'all messages');
    await consumer.close();
    expect(most).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, n) => n));
  });

  it('an idle consumer blocks in Redis instead of polling, and wakes within milliseconds of a send', async () => {
    const queue = env.queue<number>('idle');
    const dequeues = vi.spyOn(queue, 'dequeueWithWait');
    const startedAt = new Map<number, number>();
    const consumer = queue.consume(
      (m) => {
        startedAt.set(m.payload, Date.now());
      },
      { blockMs: 5_000 },
    );
    await waitFor(() => dequeues.mock.calls.length >= 1, 'the first fetch');
    // Idle for a while: with a 5 s block there is no reason to fetch again.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(dequeues.mock.calls.length, 'dequeue calls while idle').toBe(1);

    const latencies: number[] = [];
    for (let n = 0; n < 10; n++) {
      const sentAt = Date.now();
      await queue.send(n);
      await waitFor(() => startedAt.has(n), `message ${n}`);
      latencies.push(startedAt.get(n)! - sentAt);
    }
    await consumer.close();
    latencies.sort((a, b) => a - b);
    // The median, so that one scheduling hiccup on a loaded machine does not decide; a consumer that
    // polled instead would wait for its 5 s block to end.
    expect(latencies[5], `send-to-handler latencies ${latencies.join(', ')} ms`).toBeLessThan(50);
  });

  it('a handler past its timeout is aborted and its message nacked with the reason', async () => {
    const queue = env.queue<string>('timeout', { retry: { baseMs: 60_000, capMs: 60_000 } });
    const id = await queue.send('slow');
    let signalReason: unknown;
    const consumer = queue.consume(
      (_m, { signal }) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            signalReason = signal.reason;
            resolve();
          });
        }),
      { handlerTimeoutMs: 150 },
    );
    await waitFor(async () => (await queue.getMessage(id))?.status === 'RETRY', 'the timed-out message to be nacked');
    await consumer.close();
    expect(signalReason).toBeInstanceOf(HandlerTimeoutError);
    expect(await queue.getMessage(id)).toMatchObject({
      attempts: 1,
      lastError: 'handler timed out after 150 ms (consumer option handlerTimeoutMs)',
    });
  });

  it('a timed-out handler keeps its slot until it returns, and its signal reads as aborted even when read late', async () => {
    const queue = env.queue<number>('timeout-slot', { retry: { baseMs: 60_000, capMs: 60_000 } });
    await queue.sendMany([1, 2, 3].map((payload) => ({ payload })));
    let running = 0;
    let most = 0;
    const lateReads: boolean[] = [];
    const consumer = queue.consume(
      async (_m, context) => {
        running++;
        most = Math.max(most, running);
        // Ignores its signal and runs past the timeout; reads the signal only at the end.
        await new Promise((resolve) => setTimeout(resolve, 250));
        lateReads.push(context.signal.aborted);
        running--;
      },
      { concurrency: 1, handlerTimeoutMs: 100 },
    );
    await waitFor(() => lateReads.length === 3, 'three handlers to return');
    await consumer.close();
    expect(most).toBe(1);
    expect(lateReads).toEqual([true, true, true]);
    expect((await queue.getStats()).counters.retried).toBe(3);
  });

  it('extends the visibility deadline while a handler runs longer than it', async () => {
    const queue = env.queue<string>('extend', { retry: { baseMs: 0, capMs: 0 } });
    await queue.send('long');
    const runs: number[] = [];
    const consumer = queue.consume(
      async (m) => {
        runs.push(m.attempts);
        await new Promise((resolve) => setTimeout(resolve, 900)); // the work itself: 4.5 visibility periods
      },
      { visibilityMs: 200 },
    );
    // A second consumer would take the message if its deadline ever passed.
    const rival = queue.consume(() => {
      runs.push(-1);
    });
    await waitFor(async () => (await queue.getStats()).counters.acked === 1, 'the long message to be acked');
    await Promise.all([consumer.close(), rival.close()]);
    expect(runs).toEqual([0]);
    expect((await queue.getStats()).counters.reclaimed).toBe(0);
  });

  it('a handler returning false or throwing is nacked with its reason; the seed callback style works', async () => {
    const queue = env.queue<string>('failing', { retry: { baseMs: 0, capMs: 0 } });
    const falsy = await queue.send('returns false', { maxRetries: 1 });
    const thrower = await queue.send('throws', { maxRetries: 0 });
    const fine = await queue.send('fine');
    const failed: string[] = [];
    const consumer = queue.consume((m) => {
      if (m.payload === 'throws') throw new TypeError('cannot read property x');
      return m.payload !== 'returns false';
    });
    consumer.on('failed', (m: { payload: string }) => failed.push(m.payload));
    await waitFor(async () => (await queue.getStats()).deadLetters === 2, 'both failures in the DLQ');
    await consumer.close();
    const letters = await queue.deadLetters();
    expect(Object.fromEntries(letters.map((l) => [l.id, [l.reason, l.message!.attempts]]))).toEqual({
      [falsy]: ['handler returned false', 2],
      [thrower]: ['cannot read property x', 1],
    });
    expect(failed.sort()).toEqual(['returns false', 'returns false', 'throws']);
    expect(await queue.getMessage(fine)).toBeNull();
  });

  it('close() stops fetching, lets running handlers finish within the grace period and hands back the rest', async () => {
    const queue = env.queue<string>('shutdown');
    const quick = await queue.send('quick');
    const stuck = await queue.send('stuck');
    const quickGate = gate();
    let abortedWith: unknown;
    const started: string[] = [];
    const consumer = queue.consume(
      async (m, { signal }) => {
        started.push(m.payload);
        if (m.payload === 'quick') return quickGate.opened;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        abortedWith = signal.reason;
      },
      { concurrency: 2 },
    );
    await waitFor(() => started.length === 2, 'both handlers to start');
    const closing = consumer.close({ graceMs: 300 });
    await queue.send('after close');
    quickGate.open();
    await closing;
    expect(await queue.getMessage(quick)).toBeNull();
    expect(await queue.getMessage(stuck)).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(abortedWith).toBeInstanceOf(ClosedError);
    expect(abortedWith).toMatchObject({
      code: 'CLOSED',
      message: expect.stringMatching(/consumer of queue .* is closed \(the handler had not finished within graceMs\)/),
    });
    expect(started.sort()).toEqual(['quick', 'stuck']);
    expect((await queue.getStats()).ready.normal).toBe(2);
  });

  it('close() of an idle consumer returns without waiting for its block to time out', async () => {
    const queue = env.queue('idle-close');
    const consumer = queue.consume(() => undefined, { blockMs: 30_000 });
    await waitFor(() => consumerIsBlocked(env.redis, queue.baseKey), 'the consumer to block');
    const started = Date.now();
    await consumer.close();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a consumer started right after another one closed gets a message sent at once, not after blockMs', async () => {
    // The closed consumer's BLPOP was still registered in Redis when the send left its wake-up token: it took
    // the token into a closed socket, and the new consumer slept for blockMs. close() now puts a token back.
    // blockMs is ten minutes, so the old behaviour cannot pass within waitFor's deadline.
    const queue = env.queue<number>('restart-consumer');
    for (let round = 0; round < 5; round++) {
      const first = queue.consume(() => undefined, { blockMs: 600_000 });
      await waitFor(() => consumerIsBlocked(env.redis, queue.baseKey), 'the first consumer to block');
      await first.close();
      const handled: number[] = [];
      const second = queue.consume((message) => void handled.push(message.payload), { blockMs: 600_000 });
      await queue.send(round);
      await waitFor(() => handled.length === 1, `round ${round}: the new consumer to get the message`);
      expect(handled).toEqual([round]);
      await second.close();
    }
  });
});
