import { once } from 'node:events';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Queue, ValidationError } from '../src/index.js';
import { startChild } from './children.js';
import { redisUrl, uniquePrefix, useRedis, waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

const env = useRedis();

/** A close that hangs is caught by a generous deadline (as in close.test.ts), not by timing it. */
function settlesWithin<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The tests' heartbeat: a consumer that stops beating drops out after 3 × this. */
const HEARTBEAT_MS = 100;
/**
 * For consumers that must stay counted however loaded the machine is: a 100 ms beat would drop out of the count
 * after one 300 ms stall of the event loop.
 */
const STEADY_MS = 5_000;

async function consumersCounted(queue: Queue<any>, expected: number): Promise<boolean> {
  return (await queue.getStats()).consumers === expected;
}

describe('consumer presence', () => {
  it('stats counts the running consumers: 0 before, 1, 2, and 0 once they closed', async () => {
    const queue = env.queue<string>('work');
    expect((await queue.getStats()).consumers).toBe(0);
    const first = queue.consume(() => undefined, { heartbeatMs: STEADY_MS });
    await waitFor(() => consumersCounted(queue, 1), 'one consumer counted');
    const second = queue.consume(() => undefined, { heartbeatMs: STEADY_MS });
    await waitFor(() => consumersCounted(queue, 2), 'two consumers counted');
    await first.close();
    // A closed consumer leaves at once, not after its TTL.
    expect((await queue.getStats()).consumers).toBe(1);
    await second.close();
    expect((await queue.getStats()).consumers).toBe(0);
    // The set's key goes with its last member.
    expect(await env.redis.exists(`${queue.baseKey}:consumers`)).toBe(0);
  });

  it('counts consumers of every process and queue on their own queue only', async () => {
    const prefix = env.prefix();
    const a = env.queue<string>('a', { prefix });
    const b = env.queue<string>('b', { prefix });
    const other = new Queue<string>('a', { connection: env.connection(), prefix });
    const consumer = other.consume(() => undefined, { heartbeatMs: STEADY_MS });
    await waitFor(() => consumersCounted(a, 1), 'the consumer counted on its queue');
    expect((await b.getStats()).consumers).toBe(0);
    await consumer.close();
    await other.close();
  });

  it('queue.consumers() lists host, pid, concurrency and times', async () => {
    const queue = env.queue<string>('listed');
    expect(await queue.consumers()).toEqual([]);
    const before = Date.now();
    const consumer = queue.consume(() => undefined, { heartbeatMs: HEARTBEAT_MS, concurrency: 4 });
    const [listed] = await waitFor(async () => {
      const found = await queue.consumers();
      return found.length === 1 ? found : null;
    }, 'the consumer listed');
    expect(listed).toEqual({
      id: consumer.id,
      host: hostname(),
      pid: process.pid,
      concurrency: 4,
      startedAt: expect.any(Number),
      lastSeenAt: expect.any(Number),
    });
    expect(consumer.id).toMatch(new RegExp(`^.+:${process.pid}:[A-Za-z0-9_-]+$`));
    expect(listed!.startedAt).toBeGreaterThanOrEqual(before);
    // By Redis's clock, which on this machine is the test's.
    expect(Math.abs(listed!.lastSeenAt - Date.now())).toBeLessThan(10_000);
    // Heartbeats move lastSeenAt on.
    await waitFor(
      async () => ((await queue.consumers())[0]?.lastSeenAt ?? 0) > listed!.lastSeenAt,
      'a later heartbeat',
    );
    await consumer.close();
    expect(await queue.consumers()).toEqual([]);
  });

  it('a consumer whose process was killed drops out after its TTL; one still running stays', async () => {
    const queue = env.queue<string>('killed');
    const staying = queue.consume(() => undefined, { heartbeatMs: STEADY_MS });
    const child = startChild('presence-consumer', {
      REDIS_URL: redisUrl(),
      PREFIX: queue.prefix,
      QUEUE: queue.name,
      HEARTBEAT_MS: String(HEARTBEAT_MS),
    });
    try {
      const started = await child.message(
        (m): m is { id: string; pid: number } => typeof (m as { id?: string }).id === 'string',
        'its consumer id',
      );
      const listed = await waitFor(async () => {
        const found = await queue.consumers();
        return found.length === 2 ? found : null;
      }, 'both consumers listed');
      expect(listed.find((c) => c.id === started.id)).toMatchObject({ pid: started.pid, concurrency: 3 });
      child.process.kill('SIGKILL');
      await child.exited;
      await waitFor(() => consumersCounted(queue, 1), 'the killed consumer to drop out');
      expect((await queue.consumers()).map((c) => c.id)).toEqual([staying.id]);
    } finally {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await staying.close();
    }
  });

  it('close() finishes when Redis was never reachable, and failed heartbeats never throw', async () => {
    const port = await freePort();
    const queue = new Queue<string>('nowhere', { connection: `redis://127.0.0.1:${port}`, prefix: uniquePrefix() });
    const consumer = queue.consume(() => undefined, { heartbeatMs: 10 });
    const errors: unknown[] = [];
    consumer.on('error', (error) => errors.push(error));
    // Heartbeats fail meanwhile (every 10 ms); none may surface as an unhandled rejection.
    await waitFor(() => errors.length > 0, 'the consumer to report the connection error');
    const report = await settlesWithin(consumer.close({ graceMs: 0 }), 'consumer.close');
    expect(report).toEqual({ handedBack: [], notHandedBack: [], notSettled: [] });
    await settlesWithin(queue.close(), 'queue.close');
  });

  it('close() finishes when Redis died after the consumer announced itself (a client that retries forever)', async () => {
    const port = await freePort();
    const server = await startRedis(port);
    const client = new Redis(`redis://127.0.0.1:${port}`); // default options: queues commands until it reconnects
    client.on('error', () => undefined);
    try {
      const queue = new Queue<string>('dying', { connection: client, prefix: uniquePrefix() });
      const consumer = queue.consume(() => undefined, { heartbeatMs: HEARTBEAT_MS });
      consumer.on('error', () => undefined);
      await waitFor(() => consumersCounted(queue, 1), 'the consumer counted');
      server.kill('SIGKILL');
      await once(server, 'exit');
      await settlesWithin(consumer.close({ graceMs: 0 }), 'consumer.close');
      await settlesWithin(queue.close(), 'queue.close');
    } finally {
      client.disconnect();
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  });

  it('heartbeatMs is validated before anything starts', () => {
    const queue = env.queue<string>('checked');
    for (const heartbeatMs of [0, 9, 1.5, 600_001, '5000', Number.NaN]) {
      expect(() => queue.consume(() => undefined, { heartbeatMs: heartbeatMs as number })).toThrow(ValidationError);
    }
    expect(() => queue.consume(() => undefined, { heartbeatMs: 9 })).toThrow(/heartbeatMs must be an integer from 10/);
  });
});
