import { describe, expect, it, vi } from 'vitest';
import { ValidationError, type CircuitEvent, type Consumer, type ConsumerOptions } from '../src/index.js';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

/** Failed messages wait this long before a retry: none comes back during a test unless it says so. */
const NO_RETRY = { retry: { baseMs: 600_000, capMs: 600_000 } };

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

interface Transition {
  name: 'circuitOpen' | 'circuitHalfOpen' | 'circuitClosed';
  event: CircuitEvent;
  /** handlers started when the event fired */
  started: number;
}

/** Records the consumer's circuit events, with how many handlers had started by then. */
function transitions(consumer: Consumer<any>, started: () => number) {
  const log: Transition[] = [];
  for (const name of ['circuitOpen', 'circuitHalfOpen', 'circuitClosed'] as const) {
    consumer.on(name, (event) => log.push({ name, event, started: started() }));
  }
  return {
    log,
    /** the n-th (from 1) event of that name, once it has fired */
    nth: (name: Transition['name'], n = 1) => waitFor(() => log.filter((t) => t.name === name)[n - 1], `${name} #${n}`),
  };
}

describe('consumer circuit breaker', () => {
  it('closed → open: once minimumCalls outcomes fail at failureRate it stops taking messages', async () => {
    const queue = env.queue<number>('open', NO_RETRY);
    await queue.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: n })));
    let started = 0;
    // Odd payloads fail, each a different way: thrown, returned false, timed out.
    const consumer = queue.consume(
      (m, { signal }) => {
        started++;
        if (m.payload === 1) throw new Error('downstream refused');
        if (m.payload === 3) return false;
        if (m.payload === 5) return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        return undefined;
      },
      {
        concurrency: 1,
        handlerTimeoutMs: 200,
        circuitBreaker: { failureRate: 0.5, windowSize: 10, minimumCalls: 6, coolDownMs: 300 },
      },
    );
    let failedEvents = 0;
    let failedAtOpen = -1;
    consumer.on('failed', () => failedEvents++);
    consumer.once('circuitOpen', () => (failedAtOpen = failedEvents));
    const circuit = transitions(consumer, () => started);
    const opened = await circuit.nth('circuitOpen');
    // The failure that opened the circuit was reported (its `failed` event) before the circuit's event.
    expect(failedAtOpen).toBe(3);
    expect(opened.event).toEqual({
      state: 'open',
      failures: 3,
      calls: 6,
      failureRate: 0.5,
      nextProbeAt: expect.any(Number),
    });
    expect(opened.started).toBe(6);
    expect(consumer.circuitState).toBe('open');
    // While open: the rest waits in the queue and nothing more was delivered (once the last nack is written).
    const stats = await waitFor(async () => {
      const now = await queue.getStats();
      return now.inflight === 0 ? now : null;
    }, 'the last nack');
    expect(stats.ready.normal).toBe(14);
    expect(stats.delayed).toBe(3);
    expect(stats.counters.delivered).toBe(6);
    const halfOpen = await circuit.nth('circuitHalfOpen');
    expect(halfOpen.started, 'handlers started while the circuit was open').toBe(6);
    await consumer.close();
  });

  it('open → half-open after coolDownMs: takes exactly halfOpenProbes messages', async () => {
    const queue = env.queue<number>('half-open', NO_RETRY);
    await queue.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: n })));
    let started = 0;
    let failing = true;
    const probes = gate();
    const consumer = queue.consume(
      async () => {
        started++;
        if (failing) throw new Error('down');
        await probes.opened;
      },
      {
        concurrency: 5,
        batchSize: 5,
        circuitBreaker: { failureRate: 1, windowSize: 5, minimumCalls: 5, coolDownMs: 300, halfOpenProbes: 3 },
      },
    );
    const circuit = transitions(consumer, () => started);
    const opened = await circuit.nth('circuitOpen');
    failing = false;
    const halfOpen = await circuit.nth('circuitHalfOpen');
    expect(halfOpen.event).toEqual({ state: 'half-open', failures: 5, calls: 5, failureRate: 1, nextProbeAt: null });
    expect(consumer.circuitState).toBe('half-open');
    await waitFor(() => started === opened.started + 3, 'three probes');
    // The failures' nacks written, what is in flight is what was taken while half-open.
    const stats = await waitFor(async () => {
      const now = await queue.getStats();
      return now.delayed === opened.started ? now : null;
    }, 'the nacks of the failures');
    expect(stats.inflight, 'messages taken while half-open').toBe(3);
    expect(stats.counters.delivered).toBe(opened.started + 3);
    // The probes are still running: closing hands exactly those back.
    const report = await consumer.close({ graceMs: 0 });
    expect(report.handedBack).toHaveLength(3);
    expect(started).toBe(opened.started + 3);
    probes.open();
  });

  it('halfOpenProbes above concurrency: the probes run at most concurrency at a time, and all must pass to close', async () => {
    const queue = env.queue<number>('probes-over-concurrency', NO_RETRY);
    await queue.sendMany(Array.from({ length: 10 }, (_, n) => ({ payload: n })));
    let started = 0;
    let running = 0;
    let mostRunning = 0;
    let failing = true;
    const consumer = queue.consume(
      async () => {
        started++;
        if (failing) throw new Error('down');
        running++;
        mostRunning = Math.max(mostRunning, running);
        await new Promise<void>((resolve) => setImmediate(resolve));
        running--;
      },
      {
        concurrency: 2,
        batchSize: 2,
        circuitBreaker: { failureRate: 1, windowSize: 2, minimumCalls: 2, coolDownMs: 200, halfOpenProbes: 5 },
      },
    );
    const circuit = transitions(consumer, () => started);
    const opened = await circuit.nth('circuitOpen');
    failing = false;
    const closed = await circuit.nth('circuitClosed');
    // Closed by the fifth successful probe, taken two at a time as earlier ones finished.
    expect(closed.event).toMatchObject({ state: 'closed', failures: 0, calls: 5 });
    expect(closed.started - opened.started).toBe(5);
    expect(mostRunning).toBeLessThanOrEqual(2);
    await consumer.close();
  });

  it('half-open → closed: the probes succeed, fetching resumes at full concurrency and the rest drains', async () => {
    // Failed messages come back quickly, so that every message ends acked.
    const queue = env.queue<number>('closed', { retry: { baseMs: 50, capMs: 50 } });
    const total = 30;
    await queue.sendMany(Array.from({ length: total }, (_, n) => ({ payload: n })));
    let failing = true;
    let running = 0;
    const fullConcurrency = gate();
    const consumer = queue.consume(
      async () => {
        if (failing) throw new Error('down');
        running++;
        // Only when closed again can four handlers run at once: each waits until they do.
        if (running === 4) fullConcurrency.open();
        if (consumer.circuitState === 'closed') await fullConcurrency.opened;
        running--;
      },
      {
        concurrency: 4,
        circuitBreaker: { failureRate: 0.5, windowSize: 4, minimumCalls: 4, coolDownMs: 300, halfOpenProbes: 2 },
      },
    );
    const circuit = transitions(consumer, () => 0);
    await circuit.nth('circuitOpen');
    failing = false;
    const closed = await circuit.nth('circuitClosed');
    expect(closed.event).toEqual({ state: 'closed', failures: 0, calls: 2, failureRate: 0, nextProbeAt: null });
    expect(consumer.circuitState).toBe('closed');
    await fullConcurrency.opened;
    await waitFor(async () => (await queue.getStats()).counters.acked === total, 'every message acked');
    const stats = await queue.getStats();
    expect(stats.deadLetters).toBe(0);
    expect(stats.inflight + stats.delayed + stats.ready.normal).toBe(0);
    expect(circuit.log.map((t) => t.name)).toEqual(['circuitOpen', 'circuitHalfOpen', 'circuitClosed']);
    await consumer.close();
  });

  it('half-open → open: a failed probe opens the circuit again for another coolDownMs', async () => {
    const queue = env.queue<number>('reopen', NO_RETRY);
    await queue.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: n })));
    let started = 0;
    const consumer = queue.consume(
      () => {
        started++;
        throw new Error('still down');
      },
      { concurrency: 2, circuitBreaker: { failureRate: 1, windowSize: 2, minimumCalls: 2, coolDownMs: 250 } },
    );
    const circuit = transitions(consumer, () => started);
    const first = await circuit.nth('circuitOpen');
    const second = await circuit.nth('circuitOpen', 2);
    expect(second.event).toEqual({
      state: 'open',
      failures: 1,
      calls: 1,
      failureRate: 1,
      nextProbeAt: expect.any(Number),
    });
    expect(second.started, 'one probe between the two openings').toBe(first.started + 1);
    expect(second.event.nextProbeAt!).toBeGreaterThan(first.event.nextProbeAt!);
    await circuit.nth('circuitHalfOpen', 2);
    expect(circuit.log.slice(0, 4).map((t) => t.name)).toEqual([
      'circuitOpen',
      'circuitHalfOpen',
      'circuitOpen',
      'circuitHalfOpen',
    ]);
    await consumer.close();
  });

  it('fewer than minimumCalls outcomes never open the circuit, however many fail', async () => {
    const queue = env.queue<number>('minimum', NO_RETRY);
    await queue.sendMany(Array.from({ length: 4 }, (_, n) => ({ payload: n })));
    const failed: number[] = [];
    const consumer = queue.consume(
      () => {
        throw new Error('down');
      },
      { concurrency: 2, circuitBreaker: { failureRate: 0.5, windowSize: 10, minimumCalls: 5, coolDownMs: 300 } },
    );
    consumer.on('failed', (m) => failed.push(m.payload));
    const circuit = transitions(consumer, () => failed.length);
    await waitFor(() => failed.length === 4, 'four failures');
    expect(consumer.circuitState).toBe('closed');
    // A fifth outcome reaches minimumCalls: only now does it open.
    await queue.send(4);
    const opened = await circuit.nth('circuitOpen');
    expect(opened.event).toMatchObject({ failures: 5, calls: 5 });
    expect(circuit.log.map((t) => t.name)).toEqual(['circuitOpen']);
    await consumer.close();
  });

  it('deliveries that arrive after the circuit opened go back to the queue untouched', async () => {
    const queue = env.queue<string>('release', NO_RETRY);
    const [, second] = await queue.sendMany([{ payload: 'first' }, { payload: 'second' }]);
    // Hold the reply of the second fetch until the first handler has failed and opened the circuit.
    const original = queue.dequeueWithWait.bind(queue);
    const secondFetch = gate();
    const fetched = gate();
    let fetches = 0;
    vi.spyOn(queue, 'dequeueWithWait').mockImplementation(async (...args) => {
      const n = ++fetches;
      const result = await original(...args);
      if (n === 2) {
        fetched.open();
        await secondFetch.opened;
      }
      return result;
    });
    const fail = gate();
    const handled: string[] = [];
    const consumer = queue.consume(
      async (m) => {
        handled.push(m.payload);
        await fail.opened;
        throw new Error('down');
      },
      {
        concurrency: 2,
        batchSize: 1,
        circuitBreaker: { failureRate: 1, windowSize: 1, minimumCalls: 1, coolDownMs: 600_000 },
      },
    );
    const circuit = transitions(consumer, () => handled.length);
    await fetched.opened;
    expect((await queue.getStats()).inflight).toBe(2);
    fail.open();
    await circuit.nth('circuitOpen');
    secondFetch.open();
    await waitFor(async () => (await queue.getStats()).ready.normal === 1, 'the second message back in the queue');
    const info = await queue.getMessage(second!);
    expect(info).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(handled).toEqual(['first']);
    await consumer.close({ graceMs: 0 });
  });

  it('close() while open returns at once, not after the cool-down', async () => {
    const queue = env.queue<number>('close-open', NO_RETRY);
    await queue.sendMany(Array.from({ length: 5 }, (_, n) => ({ payload: n })));
    const consumer = queue.consume(
      () => {
        throw new Error('down');
      },
      { circuitBreaker: { failureRate: 1, windowSize: 2, minimumCalls: 2, coolDownMs: 3_600_000 } },
    );
    const circuit = transitions(consumer, () => 0);
    await circuit.nth('circuitOpen');
    // The test's own deadline (a minute) is far below the hour of cool-down: close() must not wait for it.
    const report = await consumer.close();
    expect(report).toEqual({ handedBack: [], notHandedBack: [], notSettled: [] });
    expect(circuit.log.map((t) => t.name)).toEqual(['circuitOpen']);
    expect((await queue.getStats()).ready.normal).toBe(3);
  });

  it('is off without the option; circuitBreaker: {} turns it on with the defaults', async () => {
    const queue = env.queue<number>('defaults', NO_RETRY);
    const plain = queue.consume(() => undefined);
    expect(plain.circuitState).toBe('closed');
    await plain.close();
    await queue.sendMany(Array.from({ length: 12 }, (_, n) => ({ payload: n })));
    let started = 0;
    const consumer = queue.consume(
      () => {
        started++;
        throw new Error('down');
      },
      { circuitBreaker: {} },
    );
    const circuit = transitions(consumer, () => started);
    // Defaults: window 20, at least 10 calls, 50 %: the tenth failure opens; the cool-down is 30 s.
    const opened = await circuit.nth('circuitOpen');
    expect(opened.event).toMatchObject({ failures: 10, calls: 10, failureRate: 1 });
    expect(opened.event.nextProbeAt! - Date.now()).toBeGreaterThan(20_000);
    await consumer.close();
  });

  it('refuses bad options with a ValidationError naming the option', () => {
    const queue = env.queue('options');
    const bad: [unknown, string, RegExp][] = [
      [null, 'circuitBreaker', /circuitBreaker must be an object/],
      [true, 'circuitBreaker', /circuitBreaker must be an object/],
      [{ coolDown: 100 }, 'circuitBreaker.coolDown', /did you mean "coolDownMs"/],
      [{ failureRate: 0 }, 'circuitBreaker.failureRate', /above 0 and at most 1/],
      [{ failureRate: 1.5 }, 'circuitBreaker.failureRate', /above 0 and at most 1/],
      [{ failureRate: '0.5' }, 'circuitBreaker.failureRate', /above 0 and at most 1/],
      [{ failureRate: Number.NaN }, 'circuitBreaker.failureRate', /above 0 and at most 1/],
      [{ windowSize: 0 }, 'circuitBreaker.windowSize', /integer from 1/],
      [{ windowSize: 2.5 }, 'circuitBreaker.windowSize', /integer from 1/],
      [{ minimumCalls: 0 }, 'circuitBreaker.minimumCalls', /integer from 1/],
      [{ windowSize: 5, minimumCalls: 6 }, 'circuitBreaker.minimumCalls', /at most windowSize \(5\)/],
      [{ coolDownMs: 0 }, 'circuitBreaker.coolDownMs', />= 1/],
      [{ coolDownMs: Infinity }, 'circuitBreaker.coolDownMs', /finite/],
      [{ halfOpenProbes: 0 }, 'circuitBreaker.halfOpenProbes', /integer from 1/],
    ];
    for (const [circuitBreaker, field, message] of bad) {
      let error: unknown;
      try {
        queue.consume(() => undefined, { circuitBreaker } as ConsumerOptions);
      } catch (caught) {
        error = caught;
      }
      expect(error, JSON.stringify(circuitBreaker)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
      expect((error as ValidationError).message).toMatch(message);
    }
  });

  it('a consumer whose circuit opened while it was blocked hands the wake-up on: another consumer gets the message at once', async () => {
    // Blocked clients are served in the order they blocked: A (breaker) first, then B. A's circuit opens while
    // A sits in BLPOP (its failing handler was still running when it blocked); the next send's wake-up goes
    // to A, which may not fetch. blockMs is ten minutes, so B would sleep through waitFor's deadline if A
    // kept the token.
    const queue = env.queue<string>('handoff');
    // Connections of this queue's consumers blocked in Redis right now (flag b), not merely last in BLPOP.
    const blocked = async () =>
      ((await env.redis.client('LIST')) as string)
        .split('\n')
        .filter((line) => line.includes(`name=sluice:consumer:${queue.baseKey} `) && /flags=\S*b/.test(line)).length;
    const failNow = gate();
    const a = queue.consume(
      async (m) => {
        if (m.payload !== 'fail') return;
        await failNow.opened;
        throw new Error('downstream refused');
      },
      { concurrency: 2, blockMs: 600_000, circuitBreaker: { minimumCalls: 1, windowSize: 1, coolDownMs: 600_000 } },
    );
    const opened = new Promise<void>((resolve) => a.once('circuitOpen', () => resolve()));
    // Dead-lettered at once: no retry is scheduled (a retry would leave a wake-up token of its own).
    await queue.send('fail', { maxRetries: 0 });
    await waitFor(async () => a.activeCount === 1 && (await blocked()) === 1, 'A to run the handler and block');
    const handledByB: string[] = [];
    const other = env.queue<string>('handoff', { prefix: queue.prefix, connection: env.connection() });
    const b = other.consume((m) => void handledByB.push(m.payload), { blockMs: 600_000 });
    await waitFor(async () => (await blocked()) === 2, 'consumer B to block behind A');
    failNow.open();
    await opened;
    await queue.send('ok');
    await waitFor(() => handledByB.length === 1, 'consumer B to get the message');
    expect(handledByB).toEqual(['ok']);
    expect(a.circuitState).toBe('open');
    await a.close();
    await b.close();
  });
});
