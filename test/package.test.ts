import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix } from './helpers.js';
import { mysqlUrl, uniqueTable } from './outbox.helpers.js';

/**
 * sluice as a user gets it: `npm pack` of a fresh checkout (no dist/: the pack scripts build it), the
 * tarball installed into a new project next to the project's own ioredis 6, and an ESM file that imports
 * sluice, sends one message and consumes it against REDIS_URL. The packing works on a copy of the
 * repository, so that cleaning dist/ there never disturbs other test files that run fixtures from dist/.
 */

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sluice-pack-'));

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const APP = `
import { Redis } from 'ioredis';
import { Queue, SCRIPTS_VERSION } from 'sluice';

const [url, prefix] = process.argv.slice(2);
const redis = new Redis(url); // the project's own ioredis, not sluice's
const queue = new Queue('orders', { connection: redis, prefix });
const fromUrl = new Queue('orders', { connection: url, prefix }); // a client sluice opens itself
const id = await fromUrl.send({ orderId: 42 });
const received = await new Promise((resolve, reject) => {
  const consumer = queue.consume((message) => {
    consumer.close().then(() => resolve(message), reject);
  });
});
const stats = await queue.getStats();
await Promise.all([queue.close(), fromUrl.close()]);
const keys = await redis.keys('{' + prefix + ':*');
if (keys.length > 0) await redis.del(...keys);
await redis.quit();
// The main entry never loads mysql2, even when it is installed.
const { createRequire } = await import('node:module');
const mysql2Loaded = Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/mysql2/'));
console.log(JSON.stringify({ sent: id, received: received.id, payload: received.payload, acked: stats.counters.acked, scriptsVersion: SCRIPTS_VERSION, mysql2Loaded }));
`;

/** sluice/service: the seed's QueueService, one message sent and handled, without mysql. */
const SERVICE_APP = `
import { Redis } from 'ioredis';
import { MessagePriority, QueueService } from 'sluice/service';

const [url, prefix] = process.argv.slice(2);
const service = await QueueService.initialize({ redis: url, prefix, logger: { info() {} } });
const handled = new Promise((resolve) =>
  service.registerMessageConsumer('orders', 'worker_1', (message) => (resolve(message), true)),
);
const id = await QueueService.getInstance().sendMessage({
  queueName: 'orders',
  payload: { orderId: 7 },
  messageType: 'order',
  priority: MessagePriority.HIGH,
});
const message = await handled;
await service.gracefulShutdown();
const redis = new Redis(url);
const keys = await redis.keys('{' + prefix + ':*');
if (keys.length > 0) await redis.del(...keys);
await redis.quit();
console.log(JSON.stringify({ sent: id, received: message.id, queue: message.queue_name, payload: message.payload }));
`;

/** sluice/outbox with the project's own mysql2: a table, one event committed and relayed into the bus. */
const OUTBOX_APP = `
import { EventBus } from 'sluice';
import { Outbox, outboxJobs } from 'sluice/outbox';
import { createPool } from 'mysql2/promise';

const [redisUrl, mysqlUrl, prefix, table] = process.argv.slice(2);
const bus = new EventBus('app', { connection: redisUrl, prefix });
const pool = createPool(mysqlUrl);
const outbox = new Outbox({ mysql: pool, bus, table });
await outbox.migrate();
await bus.subscribe('mailer', 'account.*');
const { eventIds } = await outbox.publishInTransaction(async (tx) => { await tx.query('SELECT 1'); }, {
  aggregateType: 'account', aggregateId: 7, type: 'account.created', data: { email: 'a@example.com' },
});
const relayed = await outbox.relayOnce();
const [delivery] = await bus.subscriberQueue('mailer').dequeue();
await pool.query('DROP TABLE ' + table);
await Promise.all([outbox.close(), bus.close()]);
await pool.end();
console.log(JSON.stringify({ eventIds, relayed, received: delivery.payload.id, jobs: outboxJobs(outbox).map((job) => job.name) }));
`;

/** sluice/dashboard from the package: its page and bundled assets are served from the installed files. */
const DASHBOARD_APP = `
import { serveDashboard } from 'sluice/dashboard';

const [url, prefix] = process.argv.slice(2);
const dashboard = await serveDashboard({ connection: url, prefix, port: 0 });
const status = async (path) => (await fetch(dashboard.url + path)).status;
const script = await (await fetch(dashboard.url + 'assets/app.js')).text();
const overview = await (await fetch(dashboard.url + 'api/overview')).json();
const result = { page: await status(''), css: await status('assets/app.css'), scriptBytes: script.length, queues: overview.queues };
await dashboard.close();
console.log(JSON.stringify(result));
`;

describe('the packed package', () => {
  it('packs a built dist/ and lua/ from a fresh checkout, installs into a new project and sends and consumes', async () => {
    // A fresh checkout: the sources without dist/ (node_modules linked, so that the build needs no install).
    const checkout = join(work, 'checkout');
    const skip = new Set(['node_modules', 'dist', '.git']);
    cpSync(repo, checkout, {
      recursive: true,
      filter: (source) => !skip.has(source.slice(repo.length).split('/')[0] ?? ''),
    });
    expect(existsSync(join(checkout, 'dist'))).toBe(false);
    symlinkSync(join(repo, 'node_modules'), join(checkout, 'node_modules'), 'dir');

    const npmEnv = {
      ...process.env,
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: checkout,
      env: npmEnv,
      maxBuffer: 16 << 20,
    });
    // npm prints the JSON after the output of the pack scripts.
    const [pack] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as [
      { filename: string; files: { path: string }[] },
    ];
    const files = pack.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'lua/queue/send.lua',
        'dist/dashboard/app.js',
        'dist/dashboard/app.css',
      ]),
    );
    expect(files.filter((f) => f.startsWith('lua/includes/')).length).toBeGreaterThan(0);
    // Nothing but the build and the scripts: no sources, tests, benchmarks or compiled fixtures.
    expect(
      files.filter((f) => !/^(dist\/src\/|dist\/dashboard\/|lua\/|package\.json$|README\.md$|LICENSE)/.test(f)),
    ).toEqual([]);

    // A new project that depends on the tarball and on ioredis 6 (what `npm install ioredis` gives today).
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        private: true,
        type: 'module',
        dependencies: { sluice: `file:${join(work, pack.filename)}`, ioredis: '^6.0.0', mysql2: '^3.0.0' },
      }),
    );
    writeFileSync(join(app, 'app.mjs'), APP);
    writeFileSync(join(app, 'outbox.mjs'), OUTBOX_APP);
    writeFileSync(join(app, 'service.mjs'), SERVICE_APP);
    writeFileSync(join(app, 'dashboard.mjs'), DASHBOARD_APP);
    await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-package-lock'], {
      cwd: app,
      env: npmEnv,
      maxBuffer: 16 << 20,
    });
    const installed = (path: string) =>
      JSON.parse(readFileSync(join(app, 'node_modules', path, 'package.json'), 'utf8')) as { version: string };
    expect(installed('ioredis').version).toMatch(/^6\./);
    // The peer dependency: sluice uses the project's ioredis, no second copy of its own.
    expect(existsSync(join(app, 'node_modules', 'sluice', 'node_modules', 'ioredis'))).toBe(false);
    // The declarations hold the public API only: the consumer runtime's plumbing (@internal) is stripped.
    const declarations = (path: string) =>
      readFileSync(join(app, 'node_modules', 'sluice', 'dist', 'src', path), 'utf8');
    const queueTypes = declarations('queue/queue.d.ts');
    expect(queueTypes).toMatch(/sendMany\(/);
    expect(queueTypes).not.toMatch(/dequeueWithWait|wake\(|wakeKey|DequeueResult/);
    expect(declarations('index.d.ts')).not.toMatch(/DequeueResult/);

    const { stdout } = await run(process.execPath, ['app.mjs', redisUrl(), uniquePrefix('pack')], {
      cwd: app,
      timeout: 30_000,
    });
    const result = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(result).toMatchObject({ payload: { orderId: 42 }, acked: 1 });
    expect(result.received).toBe(result.sent);
    expect(result.mysql2Loaded).toBe(false);
    // The optional peer: sluice uses the project's mysql2, no copy of its own.
    expect(existsSync(join(app, 'node_modules', 'sluice', 'node_modules', 'mysql2'))).toBe(false);

    const outbox = await run(
      process.execPath,
      ['outbox.mjs', redisUrl(), mysqlUrl(), uniquePrefix('pack'), uniqueTable('pack')],
      { cwd: app, timeout: 30_000 },
    );
    const relayed = JSON.parse(outbox.stdout.trim()) as {
      eventIds: string[];
      relayed: unknown;
      received: string;
      jobs: string[];
    };
    expect(relayed.relayed).toEqual({ published: 1, refused: 0 });
    expect(relayed.received).toBe(relayed.eventIds[0]);
    expect(relayed.jobs).toEqual(expect.arrayContaining(['sluice.outbox-relay:' + relayed.jobs[0]!.split(':')[1]]));

    const service = await run(process.execPath, ['service.mjs', redisUrl(), uniquePrefix('pack')], {
      cwd: app,
      timeout: 30_000,
    });
    const served = JSON.parse(service.stdout.trim()) as Record<string, unknown>;
    expect(served).toMatchObject({ queue: 'orders', payload: { orderId: 7 } });
    expect(served.received).toBe(served.sent);

    const dashboard = await run(process.execPath, ['dashboard.mjs', redisUrl(), uniquePrefix('pack')], {
      cwd: app,
      timeout: 30_000,
    });
    expect(JSON.parse(dashboard.stdout.trim())).toMatchObject({ page: 200, css: 200, queues: [] });
    expect(JSON.parse(dashboard.stdout.trim()).scriptBytes).toBeGreaterThan(10_000);
  }, 120_000);
});
