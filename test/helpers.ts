import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, inject } from 'vitest';
import { Queue, type QueueOptions } from '../src/index.js';

export const redisUrl = (): string => inject('redisUrl');

/** A prefix no other test uses, so tests never share keys and never flush the database. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/** Deletes every key of a prefix (keys are `{prefix:...}`). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/**
 * Polls `check` until it returns a truthy value or the deadline passes; for waiting on an outcome that
 * has no event to await. The deadline is generous: it only bounds a failing test.
 */
export async function waitFor<R>(
  check: () => R | Promise<R>,
  what: string,
  timeoutMs = 20_000,
): Promise<NonNullable<R>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether a consumer of this queue is blocked in Redis waiting for work (its connection is named after the queue). */
export async function consumerIsBlocked(redis: Redis, baseKey: string): Promise<boolean> {
  const clients = (await redis.client('LIST')) as string;
  return clients
    .split('\n')
    .some((line) => line.includes(`name=sluice:consumer:${baseKey} `) && line.includes('cmd=blpop'));
}

/**
 * One Redis connection per test file, plus queues under a per-test prefix. The keys of a passing test
 * are deleted afterwards; a failing test's are kept for inspection (and named in the output).
 */
export function useRedis() {
  const clients: Redis[] = [];
  let prefixes: string[] = [];
  let queues: Queue<any>[] = [];
  const redis = new Redis(redisUrl());
  clients.push(redis);

  afterEach(async (context) => {
    await Promise.all(queues.map((q) => q.close()));
    queues = [];
    if (context.task.result?.state === 'fail') {
      console.error(`keeping keys of failed test "${context.task.name}": prefixes ${prefixes.join(', ')}`);
    } else {
      for (const prefix of prefixes) await deletePrefix(redis, prefix);
    }
    prefixes = [];
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });

  return {
    redis,
    /** A fresh connection, closed when the file ends. */
    connection(): Redis {
      const client = new Redis(redisUrl());
      clients.push(client);
      return client;
    },
    prefix(): string {
      const prefix = uniquePrefix();
      prefixes.push(prefix);
      return prefix;
    },
    /** A queue under this test's own prefix (pass `prefix` to share one between queues of a test). */
    queue<T = unknown>(name = 'q', options: Partial<QueueOptions> = {}): Queue<T> {
      const prefix = options.prefix ?? this.prefix();
      if (!prefixes.includes(prefix)) prefixes.push(prefix);
      const queue = new Queue<T>(name, { connection: redis, ...options, prefix });
      queues.push(queue);
      return queue;
    },
  };
}

/** A small deterministic generator, so a failing order can be reproduced. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
