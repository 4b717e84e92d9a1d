import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * For figures nothing else may disturb, such as INFO commandstats. `extraArgs` go to redis-server as they are.
 */
export async function startPrivateRedis(
  extraArgs: readonly string[] = [],
): Promise<{ redis: Redis; port: number; stop: () => void; exited: Promise<unknown> }> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
    { stdio: 'ignore' },
  );
  const exited = once(server, 'exit');
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
        return { redis, port, stop, exited };
      }
    } catch (error) {
      if (n > 50) {
        stop();
        throw error;
      }
    }
  }
}

/**
 * A Redis Cluster of the bench's own: `masters` redis-servers on free loopback ports, slots split evenly by
 * `redis-cli --cluster create`, no replicas, answering with cluster_state:ok. `nodes` are plain connections to
 * each master (for INFO); `stop` kills them all and removes their nodes.conf files. (The same steps as
 * test/servers.ts startCluster, which a bench may not import.)
 */
export async function startPrivateCluster(
  masters = 3,
): Promise<{ ports: number[]; nodes: Redis[]; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-cluster-'));
  const started: Awaited<ReturnType<typeof startPrivateRedis>>[] = [];
  const stop = async () => {
    for (const node of started) node.stop();
    await Promise.all(started.map((node) => node.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let n = 0; n < masters; n++) {
      // Each node's config file is named by its index, so the directory is all the cleanup needs.
      started.push(
        await startPrivateRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${n}.conf`, '--dir', dir]),
      );
    }
    const ports = started.map((node) => node.port);
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { stdio: 'ignore' },
    );
    const nodes = started.map((node) => node.redis);
    const formed = async () => {
      const infos = await Promise.all(nodes.map((redis) => redis.cluster('INFO')));
      return infos.every((info) => info.includes('cluster_state:ok'));
    };
    await waitUntil(formed, 'the cluster to form', 30_000);
    return { ports, nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** CPU seconds (user + sys) a redis-server has used since it started, from INFO cpu. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
}

/** The machine's busy and total CPU time so far, in clock ticks (first line of /proc/stat; Linux only). */
export function machineCpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
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
