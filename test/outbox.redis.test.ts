import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConnectionError, EventBus } from '../src/index.js';
import { waitFor } from './helpers.js';
import { range, useOutbox } from './outbox.helpers.js';
import { freePort, startRedis } from './servers.js';

const ctx = useOutbox();

describe('outbox relay through a Redis outage', () => {
  it('Redis stopped for a few seconds mid-relay: rows wait, counting no attempt, then go out once', async () => {
    // A Redis of our own that keeps its data across the restart (append-only file), as a production one does.
    const dir = mkdtempSync(join(tmpdir(), 'sluice-outbox-redis-'));
    const port = await freePort();
    const args = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];
    let redis: ChildProcess = await startRedis(port, args);
    ctx.onCleanup(async () => {
      if (redis.exitCode === null) {
        redis.kill('SIGKILL');
        await once(redis, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `redis://127.0.0.1:${port}`;
    const bus = new EventBus('bus', { connection: url, prefix: ctx.prefix(), connectTimeoutMs: 300 });
    ctx.onCleanup(() => bus.close());
    const table = ctx.table('redis');
    const outbox = ctx.outbox(bus, table);
    const errors: unknown[] = [];
    outbox.on('error', (error) => errors.push(error));
    await outbox.migrate();
    await bus.subscribe('all', 'order.#');
    const relay = await outbox.startRelay({ pollMs: 50 });
    ctx.onCleanup(() => relay.stop());
    const write = (from: number) =>
      outbox.publishInTransaction(
        () => undefined,
        range(20).map((n) => ({
          aggregateType: 'order',
          aggregateId: `o${n % 4}`,
          type: 'order.updated',
          data: { seq: from + n },
        })),
      );

    await write(0);
    await waitFor(async () => (await ctx.statuses(table)).PUBLISHED === 20, 'the first rows before the outage');

    redis.kill('SIGTERM');
    await once(redis, 'exit');
    await write(20);
    await write(40);
    // The relay tries, fails on Redis, and backs off; the rows stay pending with no attempt counted.
    await waitFor(
      () => errors.filter((e) => e instanceof ConnectionError).length >= 5,
      'the relay to meet the outage five times (about 1.5 s of backoff)',
    );
    expect(await ctx.statuses(table)).toEqual({ PUBLISHED: 20, PENDING: 40 });
    expect((await outbox.listFailed()).length).toBe(0);

    redis = await startRedis(port, args);
    await waitFor(
      async () => (await ctx.statuses(table)).PUBLISHED === 60,
      'the waiting rows after Redis is back',
      30_000,
    );

    const seen: { id: string; aggregate: string; seq: number }[] = [];
    const consumer = bus.consume<{ seq: number }>('all', (event) => {
      seen.push({ id: event.id, aggregate: String(event.metadata.aggregateId), seq: event.data.seq });
    });
    ctx.onCleanup(() => consumer.close());
    await waitFor(() => seen.length >= 60, 'every event');
    await waitFor(async () => (await bus.subscriberQueue('all').getStats()).counters.acked >= 60, 'every ack');
    expect(seen).toHaveLength(60);
    expect(new Set(seen.map((s) => s.id)).size).toBe(60);
    for (let n = 0; n < 4; n++) {
      expect(seen.filter((s) => s.aggregate === `o${n}`).map((s) => s.seq)).toEqual(range(15, 4, n));
    }
  }, 90_000);
});
