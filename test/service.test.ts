import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  ConnectionError,
  EventBus,
  QUEUE_JOB_NAMES,
  SCHEDULER_JOB_NAMES,
  Scheduler,
  SluiceError,
  ValidationError,
} from '../src/index.js';
import { OUTBOX_JOB_NAMES, Outbox } from '../src/outbox/index.js';
import {
  AlreadyInitializedError,
  EventType,
  MessagePriority,
  NotInitializedError,
  defaultOutboxTable,
  OutboxNotConfiguredError,
  QueueService,
  type QueueMessage,
  type SeedEvent,
} from '../src/service/index.js';
import { deletePrefix, newClient, ON_CLUSTER, redisUrl, singleNodeOnly, uniquePrefix, waitFor } from './helpers.js';
import { freePort } from './ports.js';
import { FaultProxy } from './proxy.js';

const mysqlUrl = (): string => process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const redis = newClient();
const pool = createPool({ uri: mysqlUrl(), connectionLimit: 5 });
let services: QueueService[] = [];
let prefixes: string[] = [];
let tables: string[] = [];
let clients: Redis[] = [];

/**
 * What a service (or a part a test makes) is given as its Redis: the URL on a single node, where each part
 * opens its own connections; on the cluster topology a Cluster client of its own, closed after the test.
 */
function serviceRedis(): Redis | string {
  if (!ON_CLUSTER) return redisUrl();
  const client = newClient();
  clients.push(client);
  return client;
}

// The tests that cannot apply to a cluster, each with the reason.
const itWithChildUrl = it.skipIf(singleNodeOnly('its child process is given REDIS_URL, a single-node client'));
const itWithDeadUrl = it.skipIf(singleNodeOnly('about a redis:// URL nobody listens on, given to it and a child'));
const itThroughProxy = it.skipIf(singleNodeOnly('talks through a TCP proxy in front of one Redis node'));

afterEach(async () => {
  for (const service of services) await service.gracefulShutdown();
  await Promise.all(clients.map((client) => client.quit().catch(() => undefined)));
  clients = [];
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
  services = [];
  prefixes = [];
  tables = [];
});
afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

async function start(options: { mysql?: boolean; relayEveryMs?: number } = {}) {
  const prefix = uniquePrefix('svc');
  prefixes.push(prefix);
  const table = `t_svc_${randomBytes(5).toString('hex')}`;
  if (options.mysql) tables.push(table);
  const service = new QueueService();
  services.push(service);
  await service.initialize({
    redis: serviceRedis(),
    prefix,
    logger: { info: () => undefined },
    ...(options.mysql && { mysql: pool, outboxTable: table, outboxRelayEveryMs: options.relayEveryMs ?? 100 }),
  });
  return { service, prefix, table };
}

describe('QueueService', () => {
  it('throws NotInitializedError from getInstance() before initialize, and from methods of a new service', async () => {
    expect(() => QueueService.getInstance()).toThrow(NotInitializedError);
    const service = new QueueService();
    await expect(service.sendMessage({ queueName: 'q', payload: {}, messageType: 't' })).rejects.toMatchObject({
      code: 'NOT_INITIALIZED',
    });
    expect(() => service.getStats()).toThrow(SluiceError);
  });

  it('QueueService.initialize sets up the one instance getInstance returns, until gracefulShutdown', async () => {
    const prefix = uniquePrefix('svc');
    prefixes.push(prefix);
    const options = { redis: serviceRedis(), prefix, logger: { info: () => undefined } };
    const service = await QueueService.initialize(options);
    expect(QueueService.getInstance()).toBe(service);
    expect(await QueueService.initialize(options)).toBe(service);
    await service.gracefulShutdown();
    expect(() => QueueService.getInstance()).toThrow(NotInitializedError);
    await expect(service.publishEvent({ eventType: 'a.b', source: 's', data: {} })).rejects.toBeInstanceOf(ClosedError);
  });

  it('refuses initialize without redis, or with an unknown option, with a ValidationError', async () => {
    const service = new QueueService();
    await expect(service.initialize({} as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(service.initialize({ redis: redisUrl(), outboxtable: 'x' } as never)).rejects.toThrow(
      /unknown option "outboxtable"; did you mean "outboxTable"\?/,
    );
  });

  it('sendMessage and registerMessageConsumer: the handler gets the seed QueueMessage, by priority', async () => {
    const { service } = await start();
    await service.sendMessage({
      queueName: 'tasks',
      payload: { n: 1 },
      messageType: 'low',
      priority: MessagePriority.LOW,
    });
    const id = await service.sendMessage({
      queueName: 'tasks',
      payload: { n: 2 },
      messageType: 'urgent',
      priority: MessagePriority.CRITICAL,
      partitionKey: 'user-1',
      maxRetries: 5,
    });
    const seen: QueueMessage[] = [];
    expect(
      await service.registerMessageConsumer('tasks', 'worker-1', (message) => {
        seen.push(message);
        return true;
      }),
    ).toBe(true);
    await waitFor(() => seen.length === 2, 'both messages');
    expect(seen.map((m) => m.payload.n)).toEqual([2, 1]);
    expect(seen[0]).toMatchObject({
      id,
      queue_name: 'tasks',
      message_type: 'urgent',
      priority: 4,
      status: 'PROCESSING',
      retry_count: 0,
      max_retries: 5,
      scheduled_at: null,
      partition_key: 'user-1',
    });
    expect(seen[0]!.created_at).toBeInstanceOf(Date);
    await waitFor(() => service.getStats().messages_processed === 2, 'processed count');
    await expect(service.registerMessageConsumer('tasks', 'worker-1', () => true)).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it('sendMessage with scheduledAt delays the message until then', async () => {
    const { service } = await start();
    const at = new Date(Date.now() + 700);
    await service.sendMessage({ queueName: 'later', payload: {}, messageType: 'report', scheduledAt: at });
    expect(await service.getQueueStats('later')).toMatchObject({ delayed_count: 1 });
    const handledAt: number[] = [];
    const scheduled: (Date | null)[] = [];
    await service.registerMessageConsumer('later', 'w', (message) => {
      handledAt.push(Date.now());
      scheduled.push(message.scheduled_at);
      return true;
    });
    await waitFor(() => handledAt.length === 1, 'the delayed message');
    expect(handledAt[0]).toBeGreaterThanOrEqual(at.getTime() - 50);
    expect(scheduled[0]?.getTime()).toBe(at.getTime());
  });

  it('a handler returning false or throwing is retried, then dead-lettered; errors are counted', async () => {
    const { service } = await start();
    await service.sendMessage({ queueName: 'bad', payload: { k: 'false' }, messageType: 't', maxRetries: 0 });
    await service.sendMessage({ queueName: 'bad', payload: { k: 'throw' }, messageType: 't', maxRetries: 0 });
    await service.registerMessageConsumer<{ k: string }>('bad', 'w', (message) => {
      if (message.payload.k === 'throw') throw new Error('boom');
      return false;
    });
    const stats = await waitFor(async () => {
      const s = await service.getQueueStats('bad');
      return s.dlq_count === 2 ? s : null;
    }, 'two dead letters');
    expect(stats).toMatchObject({ queue_name: 'bad', processing_count: 0, priority_2_count: 0 });
    expect(service.getStats()).toMatchObject({ messages_processed: 0, errors: 2 });
  });

  it('getQueueStats counts by priority in the seed shape', async () => {
    const { service } = await start();
    const send = (priority: (typeof MessagePriority)[keyof typeof MessagePriority]) =>
      service.sendMessage({ queueName: 'user_tasks', payload: {}, messageType: 't', priority });
    await send(MessagePriority.HIGH);
    await send(MessagePriority.HIGH);
    await send(MessagePriority.NORMAL);
    await send(MessagePriority.LOW);
    expect(await service.getQueueStats('user_tasks')).toMatchObject({
      queue_name: 'user_tasks',
      priority_4_count: 0,
      priority_3_count: 2,
      priority_2_count: 1,
      priority_1_count: 1,
      processing_count: 0,
      dlq_count: 0,
      delayed_count: 0,
    });
  });

  it('publishEvent reaches subscribers of its type that pass their filter conditions; getEventStats counts', async () => {
    const { service } = await start();
    const all: SeedEvent[] = [];
    const vip: SeedEvent[] = [];
    const other: SeedEvent[] = [];
    expect(
      await service.subscribeEvents('all', [EventType.ACCOUNT_CREATED, EventType.ACCOUNT_UPDATED], (event) => {
        all.push(event);
        return true;
      }),
    ).toBe('all');
    await service.subscribeEvents(
      'vip',
      [EventType.ACCOUNT_CREATED],
      (event) => {
        vip.push(event);
        return true;
      },
      { 'data.tier': 'vip' },
    );
    await service.subscribeEvents('other', 'portfolio.*', (event) => {
      other.push(event);
      return true;
    });
    const id = await service.publishEvent({
      eventType: EventType.ACCOUNT_CREATED,
      source: 'account_service',
      data: { user_id: '123', tier: 'vip' },
      correlationId: 'req-456',
    });
    await service.publishEvent({
      eventType: EventType.ACCOUNT_UPDATED,
      source: 'account_service',
      data: { tier: 'x' },
    });
    await waitFor(() => all.length === 2 && vip.length === 1, 'deliveries');
    expect(vip[0]).toMatchObject({
      id,
      event_type: 'account.created',
      source: 'account_service',
      data: { user_id: '123', tier: 'vip' },
      correlation_id: 'req-456',
    });
    expect(vip[0]!.timestamp).toBeInstanceOf(Date);
    expect(other).toEqual([]);
    expect(service.getStats().events_published).toBe(2);
    const stats = await waitFor(async () => {
      const s = await service.getEventStats();
      return s.event_stats.delivered === 3 ? s : null;
    }, 'event stats');
    expect(stats).toMatchObject({
      total_subscriptions: 3,
      active_subscribers: 3,
      event_stats: { published: 2, delivered: 3, failed: 0 },
      subscriptions_by_type: { 'account.created': 2, 'account.updated': 1, 'portfolio.*': 1 },
    });
  });

  it('unsubscribeFromEvents stops the callback; a second call returns false', async () => {
    const { service } = await start();
    const seen: SeedEvent[] = [];
    const subscription = await service.subscribeEvents('s1', 'price.alert', (event) => {
      seen.push(event);
      return true;
    });
    await service.publishEvent({ eventType: EventType.PRICE_ALERT, source: 'm', data: { n: 1 } });
    await waitFor(() => seen.length === 1, 'first event');
    expect(await service.unsubscribeFromEvents(subscription)).toBe(true);
    await service.publishEvent({ eventType: EventType.PRICE_ALERT, source: 'm', data: { n: 2 } });
    expect(await service.getEventStats()).toMatchObject({ total_subscriptions: 0 });
    expect(await service.unsubscribeFromEvents(subscription)).toBe(false);
    expect(seen).toHaveLength(1);
  });

  it('initialize registers the seed jobs once, across two services on one prefix', async () => {
    const { service, prefix } = await start();
    const second = new QueueService();
    services.push(second);
    await second.initialize({ redis: serviceRedis(), prefix, logger: { info: () => undefined } });
    await service.sendMessage({ queueName: 'q', payload: {}, messageType: 't' });
    const scheduler = new Scheduler({ connection: serviceRedis(), prefix });
    try {
      const jobs = await scheduler.getAllJobsStatus();
      expect(jobs.map((job) => job.name).sort()).toEqual(
        [QUEUE_JOB_NAMES.maintenance, QUEUE_JOB_NAMES.monitoring, SCHEDULER_JOB_NAMES.cleanup].sort(),
      );
      const schedules = Object.fromEntries(jobs.map((job) => [job.name, job.schedule]));
      expect(schedules).toEqual({
        [QUEUE_JOB_NAMES.maintenance]: 'every 10000 ms',
        [QUEUE_JOB_NAMES.monitoring]: 'every 300000 ms',
        [SCHEDULER_JOB_NAMES.cleanup]: 'every 3600000 ms',
      });
      expect(jobs.every((job) => job.oncePerTick)).toBe(true);
    } finally {
      await scheduler.close();
    }
  });

  it('publishEventWithTransaction commits the business write and the event together; the relay job publishes it', async () => {
    const { service, table } = await start({ mysql: true, relayEveryMs: 100 });
    const accounts = `${table}_accounts`;
    tables.push(accounts);
    await pool.query(`CREATE TABLE \`${accounts}\` (id VARCHAR(64) PRIMARY KEY, email VARCHAR(255))`);
    const seen: SeedEvent[] = [];
    await service.subscribeEvents('mailer', EventType.ACCOUNT_CREATED, (event) => {
      seen.push(event);
      return true;
    });
    const user = { user_id: 'u1', email: 'user@example.com' };
    const result = await service.publishEventWithTransaction({
      eventType: 'account.created',
      aggregateId: user.user_id,
      aggregateType: 'account',
      eventData: user,
      businessOperation: async (tx) => {
        await tx.query(`INSERT INTO \`${accounts}\` VALUES (?, ?)`, [user.user_id, user.email]);
        return 'saved';
      },
    });
    expect(result).toBe('saved');
    await waitFor(() => seen.length === 1, 'the relayed event');
    expect(seen[0]).toMatchObject({ event_type: 'account.created', data: user });
    await waitFor(() => service.getStats().outbox_events_processed === 1, 'outbox count');

    // A business operation that throws rolls back its write, and no event is ever stored.
    await expect(
      service.publishEventWithTransaction({
        eventType: 'account.created',
        aggregateId: 'u2',
        aggregateType: 'account',
        eventData: { user_id: 'u2' },
        businessOperation: async (tx) => {
          await tx.query(`INSERT INTO \`${accounts}\` VALUES ('u2', 'x')`);
          throw new Error('refused');
        },
      }),
    ).rejects.toThrow('refused');
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT id FROM \`${accounts}\``);
    expect(rows.map((row) => row.id)).toEqual(['u1']);
    const [outbox] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${table}\``);
    expect(Number(outbox[0]!.n)).toBe(1);

    const scheduler = new Scheduler({ connection: serviceRedis(), prefix: prefixes.at(-1)! });
    try {
      const names = (await scheduler.getAllJobsStatus()).map((job) => job.name);
      expect(names).toContain(`${OUTBOX_JOB_NAMES.relay}:${table}`);
    } finally {
      await scheduler.close();
    }
  });

  it('publishEventWithTransaction without mysql throws OutboxNotConfiguredError', async () => {
    const { service } = await start();
    await expect(
      service.publishEventWithTransaction({
        eventType: 'a.b',
        aggregateId: 1,
        aggregateType: 'a',
        eventData: {},
        businessOperation: () => undefined,
      }),
    ).rejects.toBeInstanceOf(OutboxNotConfiguredError);
  });

  it('gracefulShutdown waits for a running handler and closes everything; a second call is a no-op', async () => {
    const { service } = await start();
    let finished = false;
    let started = false;
    await service.sendMessage({ queueName: 'slow', payload: {}, messageType: 't' });
    await service.registerMessageConsumer('slow', 'w', async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 300));
      finished = true;
      return true;
    });
    await waitFor(() => started, 'the handler to start');
    await service.gracefulShutdown();
    expect(finished).toBe(true);
    await service.gracefulShutdown();
    // The final counts stay readable (they are this instance's own).
    expect(service.getStats()).toEqual({
      messages_processed: 1,
      events_published: 0,
      outbox_events_processed: 0,
      errors: 0,
    });
    await expect(service.sendMessage({ queueName: 'slow', payload: {}, messageType: 't' })).rejects.toBeInstanceOf(
      ClosedError,
    );
  });

  itWithChildUrl('a program using the service without mysql never loads the outbox nor mysql2', () => {
    const prefix = uniquePrefix('svc');
    prefixes.push(prefix);
    const script = `
      const hooks = 'data:text/javascript,' + encodeURIComponent(
        "export async function resolve(s, c, next) { const r = await next(s, c); " +
        "if (/mysql2|\\\\/(outbox|service)\\\\//.test(r.url)) console.log('LOADED ' + r.url); return r; }");
      const { register } = await import('node:module');
      register(hooks);
      const { QueueService } = await import(${JSON.stringify(new URL('../dist/src/service/index.js', import.meta.url).href)});
      const service = new QueueService();
      await service.initialize({ redis: process.env.REDIS_URL, prefix: process.env.PREFIX, logger: { info() {} } });
      await service.sendMessage({ queueName: 'q', payload: {}, messageType: 't' });
      await service.gracefulShutdown();
      console.log('DONE');
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, REDIS_URL: redisUrl(), PREFIX: prefix },
      encoding: 'utf8',
    });
    // The hook sees the service itself load (it works), and nothing of the outbox or mysql2.
    const lines = output.trim().split('\n');
    expect(lines.at(-1)).toBe('DONE');
    expect(lines.slice(0, -1).every((line) => line.startsWith('LOADED ') && line.includes('/dist/src/service/'))).toBe(
      true,
    );
    expect(lines.length).toBeGreaterThan(1);
  });
});

describe('QueueService: startup, shutdown and its outbox', () => {
  const silent = { info: () => undefined };

  itWithDeadUrl(
    'initialize against a Redis nobody listens on rejects with ConnectionError and leaves nothing running',
    async () => {
      const dead = `redis://127.0.0.1:${await freePort()}`;
      const service = new QueueService();
      const error = await service.initialize({ redis: dead, logger: silent }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).message).toContain('127.0.0.1');
      // The static initialize too; it can be called again once Redis is there.
      await expect(QueueService.initialize({ redis: dead, logger: silent })).rejects.toBeInstanceOf(ConnectionError);
      expect(() => QueueService.getInstance()).toThrow(NotInitializedError);

      // A program that does this and nothing else exits by itself: no connection, timer or job is left.
      const script = `
      const { QueueService } = await import(${JSON.stringify(new URL('../dist/src/service/index.js', import.meta.url).href)});
      const lines = [];
      try {
        await QueueService.initialize({ redis: process.env.DEAD_URL, mysql: process.env.MYSQL_URL, logger: { info: (m) => lines.push(m) } });
        console.log('RESOLVED');
      } catch (error) {
        console.log('REJECTED ' + error.code + ' ' + error.constructor.name);
      }
      process.on('exit', () => console.log('EXIT ' + lines.length));
    `;
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, DEAD_URL: dead, MYSQL_URL: mysqlUrl() },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(stdout.trim().split('\n')).toEqual(['REJECTED CONNECTION ConnectionError', 'EXIT 0']);
      expect(stderr).toBe('');
    },
  );

  it('logs a repeating job failure in one line, once per cause, and again after the job recovered', async () => {
    const lines: string[] = [];
    const prefix = uniquePrefix('svc');
    prefixes.push(prefix);
    const table = `t_svc_${randomBytes(5).toString('hex')}`;
    tables.push(table, `${table}_away`);
    const service = new QueueService();
    services.push(service);
    await service.initialize({
      redis: serviceRedis(),
      prefix,
      mysql: pool,
      outboxTable: table,
      outboxRelayEveryMs: 50,
      logger: { info: (message: string, details?: unknown) => void lines.push(message + (details ? ' +details' : '')) },
    });
    const relayJob = `${OUTBOX_JOB_NAMES.relay}:${table}`;
    const jobLines = () => lines.filter((line) => line.includes(relayJob));
    // The table vanishing makes the relay job (every 50 ms) and the relay fail again and again.
    await pool.query(`RENAME TABLE \`${table}\` TO \`${table}_away\``);
    const relayLines = () => lines.filter((line) => line.includes('outbox relay failed'));
    // the relay, not woken, finds out at its next poll (1 s)
    await waitFor(
      () => service.getStats().errors >= 10 && relayLines().length > 0,
      'ten failures, the relay among them',
    );
    expect(jobLines()).toHaveLength(1);
    expect(jobLines()[0]).toMatch(
      new RegExp(`^\\[sluice\\] QueueService scheduler job ${relayJob} failed: .*${table}`),
    );
    expect(relayLines()).toHaveLength(1);
    expect(lines.every((line) => !line.includes('\n') && !line.endsWith('+details'))).toBe(true);

    // Back: the job's next success is logged as a recovery, and the next failure is logged again.
    await pool.query(`RENAME TABLE \`${table}_away\` TO \`${table}\``);
    await waitFor(() => jobLines().some((line) => line.endsWith(' recovered')), 'the recovery');
    await pool.query(`RENAME TABLE \`${table}\` TO \`${table}_away\``);
    await waitFor(() => jobLines().length === 3, 'the failure logged again');
    expect(jobLines()[2]).toContain(' failed: ');
    await pool.query(`RENAME TABLE \`${table}_away\` TO \`${table}\``);
  });

  itThroughProxy(
    'a Redis outage after startup: each job logs its failure once, in one line, and again after the reconnect',
    async () => {
      const proxy = await FaultProxy.start(redisUrl());
      const lines: string[] = [];
      const prefix = uniquePrefix('svc');
      prefixes.push(prefix);
      const service = new QueueService();
      services.push(service);
      try {
        await service.initialize({
          redis: proxy.url,
          prefix,
          logger: {
            info: (message: string, details?: unknown) => void lines.push(message + (details ? ' +details' : '')),
          },
        });
        const jobs = [QUEUE_JOB_NAMES.maintenance, QUEUE_JOB_NAMES.monitoring, SCHEDULER_JOB_NAMES.cleanup];
        const failures = () => lines.filter((line) => line.includes(' failed: '));
        const outage = async (round: number) => {
          const before = service.getStats().errors;
          proxy.refuse();
          proxy.dropAll();
          // Each job's loop fails about once a second: several failures each, one line each. Wait for every
          // job's line (on a loaded machine one job's first failure can come after the others' fourth) and for
          // the failures that must not be logged again.
          const logged = (job: string) =>
            failures().filter((line) => line.startsWith(`[sluice] QueueService scheduler job ${job} failed: `)).length;
          await waitFor(
            () => jobs.every((job) => logged(job) >= round) && service.getStats().errors >= before + 4 * jobs.length,
            `round ${round} failures`,
            60_000,
          );
          for (const job of jobs) {
            expect(
              failures().filter((line) => line.startsWith(`[sluice] QueueService scheduler job ${job} failed: `)),
            ).toHaveLength(round);
          }
          expect(failures()).toHaveLength(round * jobs.length);
          expect(
            failures().every((line) => line.includes('ConnectionError') || line.includes('Redis at 127.0.0.1')),
          ).toBe(true);
          proxy.accept();
        };
        await outage(1);
        await waitFor(() => proxy.connectionCount > 0, 'the reconnect');
        await service.sendMessage({ queueName: 'q', payload: {}, messageType: 't' });
        await outage(2);
        expect(lines.every((line) => !line.includes('\n') && !line.endsWith('+details'))).toBe(true);
      } finally {
        await service.gracefulShutdown();
        await proxy.close();
      }
    },
  );

  it('defaultOutboxTable: sluice_outbox for the default prefix, else one table per prefix within 64 characters', () => {
    expect(defaultOutboxTable(undefined)).toBe('sluice_outbox');
    expect(defaultOutboxTable('sluice')).toBe('sluice_outbox');
    expect(defaultOutboxTable('billing')).toBe('billing_outbox');
    expect(defaultOutboxTable('my-app.v2')).toBe('my_app_v2_outbox');
    expect(defaultOutboxTable('2026-app')).toBe('_2026_app_outbox');
    const long = (end: string) => defaultOutboxTable(`${'a'.repeat(80)}${end}`);
    expect(long('x')).toHaveLength(64);
    expect(long('x')).toMatch(/^a{48}_[0-9a-f]{8}_outbox$/);
    expect(long('y')).not.toBe(long('x'));
  });

  it('two services with other prefixes on one MySQL each relay only their own events (default tables)', async () => {
    const started = await Promise.all(
      ['A', 'B'].map(async (name) => {
        const prefix = uniquePrefix(`svc${name}`);
        prefixes.push(prefix);
        tables.push(defaultOutboxTable(prefix));
        const service = new QueueService();
        services.push(service);
        await service.initialize({ redis: serviceRedis(), prefix, mysql: pool, logger: silent });
        const seen: SeedEvent[] = [];
        await service.subscribeEvents('audit', 'account.*', (event) => {
          seen.push(event);
          return true;
        });
        return { name, prefix, service, seen };
      }),
    );
    for (const round of [1, 2]) {
      for (const { name, service } of started) {
        await service.publishEventWithTransaction({
          eventType: 'account.created',
          aggregateId: `${name}-${round}`,
          aggregateType: 'account',
          eventData: { from: name, round },
          businessOperation: () => undefined,
        });
      }
      await waitFor(() => started.every(({ seen }) => seen.length >= round), `round ${round}`);
    }
    for (const { name, prefix, service, seen } of started) {
      await service.gracefulShutdown();
      expect(seen.map((event) => event.data)).toEqual([
        { from: name, round: 1 },
        { from: name, round: 2 },
      ]);
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT aggregate_id, status FROM \`${defaultOutboxTable(prefix)}\` ORDER BY id`,
      );
      expect(rows.map((row) => `${row.aggregate_id} ${row.status}`)).toEqual([
        `${name}-1 PUBLISHED`,
        `${name}-2 PUBLISHED`,
      ]);
      expect(service.getStats().outbox_events_processed).toBe(2);
    }
  });

  it('an event published with its transaction reaches subscribers at once, not at the 60 s relay job', async () => {
    const { service } = await start({ mysql: true, relayEveryMs: 60_000 });
    const seen: SeedEvent[] = [];
    await service.subscribeEvents('mailer', 'account.created', (event) => {
      seen.push(event);
      return true;
    });
    await service.publishEventWithTransaction({
      eventType: 'account.created',
      aggregateId: 'u1',
      aggregateType: 'account',
      eventData: { user_id: 'u1' },
      businessOperation: () => undefined,
    });
    // far below the job's 60 s: only the service's relay can have published it
    await waitFor(() => seen.length === 1, 'the event', 15_000);
    expect(seen[0]).toMatchObject({ event_type: 'account.created', data: { user_id: 'u1' } });
    // The relay counts a row once it is marked, which may be after the subscriber has the event.
    await waitFor(() => service.getStats().outbox_events_processed === 1, 'the relay to count the row', 15_000);
  });

  it('gracefulShutdown relays every row committed before it: none of the service is left PENDING', async () => {
    const { service, table, prefix } = await start({ mysql: true, relayEveryMs: 60_000 });
    const ids = Array.from({ length: 300 }, (_, n) => n);
    for (let from = 0; from < ids.length; from += 50) {
      await Promise.all(
        ids.slice(from, from + 50).map((n) =>
          service.publishEventWithTransaction({
            eventType: 'order.placed',
            aggregateId: `o${n}`,
            aggregateType: 'order',
            eventData: { n },
            businessOperation: () => undefined,
          }),
        ),
      );
    }
    // Rows committed without a wake-up (another writer's own transaction, outbox.add): the service's relay
    // would find them only at its next poll, after the shutdown; the shutdown relays them itself.
    const writerBus = new EventBus('writer', { connection: serviceRedis(), prefix });
    const writer = new Outbox({ mysql: pool, bus: writerBus, table });
    const tx = await pool.getConnection();
    try {
      await tx.beginTransaction();
      await writer.add(
        tx,
        ids
          .slice(0, 20)
          .map((n) => ({ type: 'order.placed', aggregateType: 'order', aggregateId: `late${n}`, data: { n } })),
      );
      await tx.commit();
    } finally {
      tx.release();
      await writer.close();
      await writerBus.close();
    }
    await service.gracefulShutdown();
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT status, COUNT(*) AS n FROM \`${table}\` GROUP BY status ORDER BY status`,
    );
    expect(rows.map((row) => `${row.status} ${row.n}`)).toEqual(['PUBLISHED 320']);
    expect(service.getStats().outbox_events_processed).toBe(320);
  });

  it('QueueService.initialize again: the same options give the same instance, others AlreadyInitializedError', async () => {
    const prefix = uniquePrefix('svc');
    prefixes.push(prefix);
    const options = { redis: serviceRedis(), prefix, retry: { baseMs: 100 }, logger: silent };
    const service = await QueueService.initialize(options);
    services.push(service);
    expect(await QueueService.initialize(options)).toBe(service);
    expect(await QueueService.initialize({ ...options, retry: { baseMs: 100 }, outboxTable: undefined })).toBe(service);
    const error = await QueueService.initialize({ ...options, prefix: `${prefix}-other` }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadyInitializedError);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'ALREADY_INITIALIZED' });
    expect((error as Error).message).toMatch(/getInstance\(\).*new QueueService\(\)/);
    await expect(service.initialize({ ...options, retry: { baseMs: 200 } })).rejects.toBeInstanceOf(
      AlreadyInitializedError,
    );
    expect(QueueService.getInstance()).toBe(service);
    // An independent service is not pointed at the process's instance.
    const own = new QueueService();
    services.push(own);
    prefixes.push(`${prefix}-own`);
    await own.initialize({ ...options, prefix: `${prefix}-own` });
    const ownError = await own.initialize({ ...options, prefix: `${prefix}-else` }).catch((e: unknown) => e);
    expect(ownError).toMatchObject({ code: 'ALREADY_INITIALIZED' });
    expect((ownError as Error).message).toMatch(/^initialize\(\): this QueueService .*new QueueService\(\)/);
    expect((ownError as Error).message).not.toMatch(/getInstance/);
  });

  it('a handler or callback returning nothing (undefined) is a failure: retried, dead-lettered, logged once', async () => {
    const lines: string[] = [];
    const prefix = uniquePrefix('svc');
    prefixes.push(prefix);
    const service = new QueueService();
    services.push(service);
    await service.initialize({
      redis: serviceRedis(),
      prefix,
      logger: { info: (message: string) => void lines.push(message) },
    });
    for (const n of [1, 2]) {
      await service.sendMessage({
        queueName: 'q',
        payload: { n },
        messageType: 't',
        maxRetries: 0,
        scheduledAt: undefined,
        partitionKey: undefined,
        priority: undefined,
      });
    }
    const handled: number[] = [];
    // A JavaScript caller (or a cast) can return nothing; the types ask for a boolean.
    const noReturn = (async (message: QueueMessage) => void handled.push(message.payload.n as number)) as never;
    await service.registerMessageConsumer('q', 'w', noReturn);
    await waitFor(async () => (await service.getQueueStats('q')).dlq_count === 2, 'both dead-lettered');
    expect(handled.sort()).toEqual([1, 2]);
    expect(service.getStats()).toMatchObject({ messages_processed: 0, errors: 2 });
    expect(lines.filter((line) => line.includes('returned undefined'))).toEqual([
      '[sluice] QueueService consumer w of q returned undefined: counted as a failure (retried, then dead-lettered); return true when handled',
    ]);
  });

  it('the public types take `undefined` for optional options under exactOptionalPropertyTypes; the README example compiles', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-types-'));
    try {
      const entry = fileURLToPath(new URL('../dist/src/service/index.js', import.meta.url));
      const file = join(dir, 'check.ts');
      await writeFile(
        file,
        `import { QueueService, type QueueServiceOptions } from ${JSON.stringify(entry)};
         const options: QueueServiceOptions = { redis: 'redis://x', mysql: undefined, prefix: undefined,
           outboxTable: undefined, outboxRelayEveryMs: undefined, retry: undefined, logger: undefined };
         export async function use(service: QueueService, later: Date | undefined, key: string | undefined) {
           await QueueService.initialize(options);
           await service.sendMessage({ queueName: 'q', payload: {}, messageType: 't', scheduledAt: later,
             partitionKey: key, priority: undefined, maxRetries: undefined });
           await service.publishEvent({ eventType: 'a.b', source: 's', data: {}, correlationId: undefined, metadata: undefined });
           await service.publishEventWithTransaction({ eventType: 'a.b', aggregateId: 1, aggregateType: 'a', eventData: {},
             businessOperation: () => 1, source: undefined, correlationId: undefined });
           await service.registerMessageConsumer('q', 'w', async () => true);
           // @ts-expect-error a handler must say whether it handled the message
           await service.registerMessageConsumer('q', 'w', async () => {});
         }
        `,
      );
      // The README's example too, as a user's ESM program with these settings.
      const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
      const section = readme.slice(readme.indexOf("## QueueService (the seed's names)"));
      const example = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
      expect(example).toContain("from 'sluice/service'");
      await writeFile(join(dir, 'readme.mts'), example.replace("'sluice/service'", JSON.stringify(entry)));
      const root = fileURLToPath(new URL('..', import.meta.url));
      const compilerOptions = {
        noEmit: true,
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
        paths: { 'mysql2/promise': [join(root, 'node_modules/mysql2/promise.d.ts')] },
      };
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions, files: ['check.ts', 'readme.mts'] }),
      );
      const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
      const result = await promisify(execFile)(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' }).catch(
        (error: { stdout: string }) => ({ stdout: error.stdout }),
      );
      expect(result.stdout).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
