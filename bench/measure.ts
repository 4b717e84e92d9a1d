import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';

/** Small measuring helpers shared by the cases. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Milliseconds since the epoch with sub-millisecond resolution, comparable across processes of one machine. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

/** Calls per command from INFO commandstats (commands run inside Lua scripts included). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

export function commandDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, calls] of after) {
    const d = calls - (before.get(name) ?? 0);
    if (d > 0) delta[name] = d;
  }
  return delta;
}

export async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Calls and µs of the scripts run so far (EVAL and EVALSHA in INFO commandstats): Redis's share of the work. */
export async function scriptTime(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info('commandstats');
  let calls = 0;
  let usec = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(match[1]);
    usec += Number(match[2]);
  }
  return { calls, usec };
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (for a private redis-server). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A redis-server of the bench's own on a free loopback port (no persistence), answering PING; `stop` kills it.
 * For figures nothing else may disturb, such as INFO commandstats.
 */
export async function startPrivateRedis(): Promise<{ redis: Redis; stop: () => void }> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const redis = new Redis(port, '127.0.0.1', { retryStrategy: (n) => (n > 50 ? null : 100) });
  // Refused connections while the server starts are expected: the PING loop below waits them out.
  const starting = () => undefined;
  redis.on('error', starting);
  const stop = () => {
    redis.disconnect();
    server.kill('SIGKILL');
  };
  for (let n = 0; ; n++) {
    try {
      if ((await redis.ping()) === 'PONG') {
        redis.off('error', starting);
        return { redis, stop };
      }
    } catch (error) {
      if (n > 50) {
        stop();
        throw error;
      }
    }
  }
}

/** Deletes every key matching `pattern` (SCAN + UNLINK, a thousand at a time): a system's keys after a trial. */
export async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
