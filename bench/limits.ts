import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';

/**
 * The physical limits of the machine, measured in the same run as the libraries: what Redis itself answers
 * through redis-benchmark (one client for the round trip, 50 clients plain and pipelined for throughput),
 * and what an empty script costs inside Redis (EVALSHA of `return 0`, from INFO commandstats).
 */

export interface Limit {
  label: string;
  /** requests per second */
  rps: number;
  /** median latency of one request, ms */
  p50: number;
}

export interface Limits {
  /** null when redis-benchmark is not installed (Debian package redis-tools) */
  benchmark: Limit[] | null;
  /** µs of Redis CPU per empty EVALSHA */
  emptyScriptUs: number;
}

const run = promisify(execFile);

async function redisBenchmark(url: URL, label: string, args: string[]): Promise<Limit | null> {
  try {
    const { stdout } = await run('redis-benchmark', [
      '-h',
      url.hostname,
      '-p',
      url.port || '6379',
      '-q',
      '-n',
      '100000',
      ...args,
    ]);
    // With -q each test ends in "NAME: <rps> requests per second, p50=<ms> msec" (progress lines use \r).
    const match = /([\d.]+) requests per second, p50=([\d.]+) msec/.exec(stdout.split('\r').pop() ?? '');
    return match ? { label, rps: Number(match[1]), p50: Number(match[2]) } : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function evalshaStats(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info('commandstats');
  const match = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  return { calls: Number(match?.[1] ?? 0), usec: Number(match?.[2] ?? 0) };
}

export async function measureLimits(urlText: string, redis: Redis): Promise<Limits> {
  const url = new URL(urlText);
  const sha = (await redis.script('LOAD', 'return 0')) as string;
  // Custom commands on a key of our own, so that nothing is left in the user's database.
  const key = `bench-limits-${process.pid}:list`;
  const cases: [string, string[]][] = [
    ['PING, 1 client (one round trip)', ['-c', '1', 'PING']],
    ['RPUSH, 50 clients', ['RPUSH', key, 'x']],
    ['RPUSH, 50 clients, pipelined 16', ['-P', '16', 'RPUSH', key, 'x']],
    ['EVALSHA `return 0`, 50 clients', ['EVALSHA', sha, '0']],
  ];
  const found: Limit[] = [];
  try {
    for (const [label, args] of cases) {
      const limit = await redisBenchmark(url, label, args);
      if (!limit) return { benchmark: null, emptyScriptUs: await emptyScriptCost(redis, sha) };
      found.push(limit);
    }
  } finally {
    await redis.del(key);
  }
  return { benchmark: found, emptyScriptUs: await emptyScriptCost(redis, sha) };
}

/** Redis CPU per empty script call: the delta of INFO commandstats over 20,000 calls from this client. */
async function emptyScriptCost(redis: Redis, sha: string): Promise<number> {
  const before = await evalshaStats(redis);
  const calls = 20_000;
  for (let i = 0; i < calls; i += 1000) {
    const pipeline = redis.pipeline();
    for (let n = 0; n < 1000; n++) pipeline.evalsha(sha, 0);
    await pipeline.exec();
  }
  const after = await evalshaStats(redis);
  return (after.usec - before.usec) / (after.calls - before.calls);
}
