import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, Locks, Scheduler } from '../src/index.js';
import { runCli, spawnCli } from './cli.helpers.js';
import { useRedis, waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

const env = useRedis();
const servers: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const server of servers) {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await once(server, 'exit');
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A queue with 2 ready (one HIGH), 1 delayed and 1 dead letter. */
async function seeded(prefix: string) {
  const queue = env.queue('orders', { prefix });
  await queue.send({ n: 1 }, { id: 'high-1', priority: 'HIGH' });
  await queue.send({ n: 2 }, { id: 'normal-1' });
  await queue.send({ n: 3 }, { id: 'later', delayMs: 600_000 });
  await queue.send({ n: 4 }, { id: 'poison', priority: 'CRITICAL' });
  const [delivery] = await queue.dequeue();
  await queue.nack(delivery!, { retry: false, error: 'cannot parse' });
  return queue;
}

describe('sluice status, queue, peek, message', () => {
  it('status shows the counts that are in Redis, as JSON and as a table', async () => {
    const prefix = env.prefix();
    await seeded(prefix);
    const result = await runCli(['status', '--prefix', prefix, '--json']);
    expect(result.code).toBe(0);
    const status = result.json();
    expect(status).toMatchObject({ prefix, complete: true, buses: [], outbox: null });
    expect(status.queues).toHaveLength(1);
    expect(status.queues[0]).toMatchObject({
      name: 'orders',
      ready: { critical: 0, high: 1, normal: 1, low: 0 },
      inflight: 0,
      delayed: 1,
      deadLetters: 1,
      paused: false,
      rateLimit: null,
      consumers: 0,
      counters: { sent: 4, deadLettered: 1 },
    });

    const human = await runCli(['status', '--prefix', prefix]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /^QUEUE\s+READY\s+C\/H\/N\/L\s+INFLIGHT\s+DELAYED\s+DLQ\s+OLDEST\s+PAUSED\s+RATE\s+CONSUMERS$/m,
    );
    expect(human.stdout).toMatch(/^orders\s+2\s+0\/1\/1\/0\s+0\s+1\s+1\s+\S+\s+no\s+-\s+0$/m);

    // As a health check: a dead letter is unhealthy with --fail-on-dlq.
    const check = await runCli(['status', '--prefix', prefix, '--fail-on-dlq']);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/1 dead letter under prefix .*sluice dlq list/);
    expect((await runCli(['status', '--prefix', env.prefix(), '--fail-on-dlq'])).code).toBe(0);
  });

  it('queue, peek and message read one queue; a missing message exits 1', async () => {
    const prefix = env.prefix();
    await seeded(prefix);
    const detail = (await runCli(['queue', 'orders', '--prefix', prefix, '--json'])).json();
    expect(detail).toMatchObject({ name: 'orders', deadLetters: 1, delayed: 1 });

    const ready = await runCli(['peek', 'orders', '--prefix', prefix, '--json']);
    expect(ready.json().map((entry: { id: string }) => entry.id)).toEqual(['high-1', 'normal-1']);
    const delayed = await runCli(['peek', 'orders', '--state', 'delayed', '--prefix', prefix]);
    expect(delayed.stdout).toMatch(/^later\s+2\s+0\s+\d{4}-\d\d-\d\dT/m);
    const page = await runCli(['peek', 'orders', '--limit', '1', '--offset', '1', '--prefix', prefix, '--json']);
    expect(page.json()).toMatchObject([{ id: 'normal-1', message: { payload: { n: 2 } } }]);
    expect((await runCli(['peek', 'orders', '--state', 'pending', '--prefix', prefix])).code).toBe(2);

    const message = await runCli(['message', 'orders', 'poison', '--prefix', prefix, '--json']);
    expect(message.json()).toMatchObject({ id: 'poison', status: 'FAILED', lastError: 'cannot parse' });
    const missing = await runCli(['message', 'orders', 'nope', '--prefix', prefix]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/message nope not found in queue orders/);
  });

  it('send writes a message with its options; pause and resume', async () => {
    const prefix = env.prefix();
    const sent = await runCli([
      'send',
      'mail',
      '{"to":"ann"}',
      '--priority',
      'HIGH',
      '--type',
      'welcome',
      '--partition-key',
      'ann',
      '--prefix',
      prefix,
      '--json',
    ]);
    expect(sent.code).toBe(0);
    const { id } = sent.json();
    const queue = env.queue('mail', { prefix });
    expect(await queue.getMessage(id)).toMatchObject({
      status: 'PENDING',
      priority: 3,
      type: 'welcome',
      partitionKey: 'ann',
      payload: { to: 'ann' },
    });
    const bad = await runCli(['send', 'mail', '{not json', '--prefix', prefix]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^sluice: the payload must be JSON/);
    expect((await runCli(['send', 'mail', '1', '--priority', 'URGENT', '--prefix', prefix])).code).toBe(2);

    expect((await runCli(['pause', 'mail', '--prefix', prefix])).code).toBe(0);
    expect((await queue.getStats()).paused).toBe(true);
    expect((await runCli(['resume', 'mail', '--prefix', prefix])).stdout).toBe('queue mail resumed\n');
    expect((await queue.getStats()).paused).toBe(false);
  });
});

describe('sluice dlq', () => {
  it('list, then replay moves a dead letter back to ready', async () => {
    const prefix = env.prefix();
    const queue = await seeded(prefix);
    const list = await runCli(['dlq', 'list', 'orders', '--prefix', prefix, '--json']);
    expect(list.json()).toMatchObject([{ id: 'poison', reason: 'cannot parse' }]);
    const dry = await runCli([
      'dlq',
      'replay',
      'orders',
      '--ids',
      'poison,nope',
      '--dry-run',
      '--prefix',
      prefix,
      '--json',
    ]);
    expect(dry.json()).toEqual({ action: 'replay', queue: 'orders', dryRun: true, ids: ['poison'] });
    expect((await queue.getStats()).deadLetters).toBe(1);

    const replay = await runCli(['dlq', 'replay', 'orders', '--ids', 'poison', '--prefix', prefix]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/^replayed 1 dead letter of queue orders\npoison\n$/);
    expect(await queue.getMessage('poison')).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect((await queue.getStats()).deadLetters).toBe(0);
  });

  it('purge refuses without --yes when stdin is not a terminal, and deletes with it', async () => {
    const prefix = env.prefix();
    const queue = await seeded(prefix);
    const refused = await runCli(['dlq', 'purge', 'orders', '--limit', '10', '--prefix', prefix]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/add --yes to confirm/);
    expect((await queue.getStats()).deadLetters).toBe(1);
    expect((await runCli(['dlq', 'purge', 'orders', '--prefix', prefix, '--yes'])).code).toBe(2); // no selection

    const purged = await runCli(['dlq', 'purge', 'orders', '--limit', '10', '--yes', '--prefix', prefix, '--json']);
    expect(purged.json()).toEqual({ action: 'purge', queue: 'orders', dryRun: false, purged: 1 });
    expect((await queue.getStats()).deadLetters).toBe(0);
  });
});

describe('sluice subs, events tail, jobs, locks', () => {
  it('subs lists a bus and its subscribers', async () => {
    const prefix = env.prefix();
    const bus = new EventBus('domain', { connection: env.redis, prefix });
    await bus.subscribe('billing', ['order.*']);
    await bus.publish('order.created', { id: 1 });
    const subs = await runCli(['subs', 'domain', '--prefix', prefix, '--json']);
    expect(subs.json()).toMatchObject([{ subscriberId: 'billing', patterns: ['order.*'], active: true }]);
    expect(subs.json()[0].queue.ready.normal).toBe(1);
    const human = await runCli(['status', '--prefix', prefix]);
    expect(human.stdout).toMatch(/^domain\s+1\s+1\s+1\s+1\s+0$/m);
  });

  it('events tail follows new events matching the pattern and leaves nothing behind', async () => {
    const prefix = env.prefix();
    const bus = new EventBus('domain', { connection: env.redis, prefix });
    await bus.publish('order.created', { n: 'before' }); // history before the tail started: not shown
    const tail = spawnCli(['events', 'tail', 'domain', 'order.*', '--prefix', prefix, '--json', '--interval-ms', '50']);
    let stdout = '';
    let stderr = '';
    tail.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    tail.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitFor(() => stderr.includes('following events of bus domain'), 'the tail to start');
      await bus.publish('order.created', { n: 1 });
      await bus.publish('user.created', { n: 2 });
      await bus.publish('order.paid', { n: 3 }); // a type with no history when the tail started
      await waitFor(() => stdout.split('\n').filter(Boolean).length >= 2, 'two events on stdout');
    } finally {
      tail.kill('SIGINT');
    }
    const [code] = await once(tail, 'exit');
    expect(code).toBe(0);
    const lines = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => [line.event.type, line.event.data.n])).toEqual([
      ['order.created', 1],
      ['order.paid', 3],
    ]);
    expect(await bus.listSubscriptions()).toEqual([]);
    expect((await bus.getStats()).subscriptions).toBe(0);
  });

  it('jobs lists and controls scheduler jobs; locks shows held locks', async () => {
    const prefix = env.prefix();
    const scheduler = new Scheduler({ connection: env.redis, prefix, pollMs: 50 });
    scheduler.addJob({ name: 'report', every: 600_000, handler: () => 'done' }).start();
    await waitFor(() => scheduler.getJobStatus('report'), 'the job to be registered');
    await scheduler.close();
    const jobs = await runCli(['jobs', '--prefix', prefix, '--json']);
    expect(jobs.json()).toMatchObject([{ name: 'report', schedule: 'every 600000 ms', paused: false }]);
    expect((await runCli(['jobs', 'pause', 'report', '--prefix', prefix])).code).toBe(0);
    expect((await runCli(['jobs', '--prefix', prefix, '--json'])).json()[0].paused).toBe(true);
    const missing = await runCli(['jobs', 'restart', 'nope', '--prefix', prefix]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^sluice: .*nope/);

    const locks = new Locks({ connection: env.redis, prefix });
    const lock = await locks.acquire('nightly', { ttlMs: 600_000 });
    const listed = await runCli(['locks', '--prefix', prefix, '--json']);
    expect(listed.json()).toMatchObject([
      { name: 'nightly', held: true, holder: `${hostname()}:${process.pid}`, fence: lock!.fence },
    ]);
    const human = (await runCli(['locks', '--prefix', prefix])).stdout;
    expect(human).toMatch(/^LOCK\s+HELD\s+HOLDER\s+TTL\s+FENCE$/m);
    expect(human).toContain(`${hostname()}:${process.pid}`);
    expect(human).toMatch(/^nightly\s+yes\s+\S+:\d+\s+\S+\s+1$/m);
  });
});

describe('sluice doctor, bench, usage and connection errors', () => {
  async function privateRedis(args: string[]): Promise<string> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-doctor-'));
    dirs.push(dir);
    servers.push(await startRedis(port, ['--dir', dir, ...args]));
    return `redis://127.0.0.1:${port}`;
  }

  it('doctor exits 1 on a server with an evicting maxmemory-policy, naming the fix', async () => {
    const url = await privateRedis(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'yes']);
    const result = await runCli(['doctor', '--url', url, '--json']);
    expect(result.code).toBe(1);
    const report = result.json();
    expect(report.ok).toBe(false);
    expect(report.checks.find((check: { check: string }) => check.check === 'maxmemory-policy')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/maxmemory-policy noeviction/),
    });
    const human = await runCli(['doctor', '--url', url]);
    expect(human.stdout).toMatch(/^maxmemory-policy\s+FAIL\s+allkeys-lru/m);
    expect(human.stdout).toMatch(/^maxmemory-policy: fix: CONFIG SET maxmemory-policy noeviction/m);
  });

  it('doctor exits 0 on a server set up for sluice', async () => {
    const url = await privateRedis(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes']);
    const result = await runCli(['doctor', '--url', url, '--json']);
    expect(result.code).toBe(0);
    expect(result.json().checks.map((check: { status: string }) => check.status)).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
      'ok',
    ]);
  });

  it('bench sends and drains on a temporary prefix that it deletes', async () => {
    const url = await privateRedis([]);
    const result = await runCli(['bench', '--count', '300', '--url', url, '--json']);
    expect(result.code).toBe(0);
    expect(result.json()).toMatchObject({ count: 300, drained: 300 });
    expect(result.json().sendPerSecond).toBeGreaterThan(0);
    const keys = await runCli(['status', '--url', url, '--prefix', 'sluice', '--json']);
    expect(keys.json().queues).toEqual([]);
    // Nothing of the temporary prefix is left on the private server.
    const { Redis } = await import('ioredis');
    const admin = new Redis(url);
    expect(await admin.dbsize()).toBe(0);
    await admin.quit();
  });

  it('an unknown command or option is a usage error (exit 2); --help exits 0', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^sluice: unknown command "frobnicate"\nusage: sluice/);
    expect((await runCli(['status', '--colour'])).code).toBe(2);
    expect((await runCli([])).code).toBe(2);
    expect((await runCli(['peek'])).stderr).toMatch(/missing queue name/);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/exit codes: 0 ok, 1 a check failed or unhealthy, 2 usage error, 3 cannot connect/);
  });

  it('an unreachable Redis exits 3 at once with one line naming the address and the fix', async () => {
    const port = await freePort(); // nothing listens there
    const started = Date.now();
    const result = await runCli(['status', '--connect-timeout-ms', '30000'], {
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    expect(result.code).toBe(3);
    // A refused connection is not waited on: well under the connect timeout.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.stderr).toMatch(
      new RegExp(`^sluice: Redis at 127\\.0\\.0\\.1:${port}: .*refused.*--url or REDIS_URL`),
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect((await runCli(['status', '--url', 'http://example.com'])).code).toBe(2);
  });
});
