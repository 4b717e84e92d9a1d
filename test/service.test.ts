import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  QUEUE_JOB_NAMES,
  SCHEDULER_JOB_NAMES,
  Scheduler,
  SluiceError,
  ValidationError,
} from '../src/index.js';
import { OUTBOX_JOB_NAMES } from '../src/outbox/index.js';
import {
  EventType,
  MessagePriority,
  NotInitializedError,
  OutboxNotConfiguredError,
  QueueService,
  type QueueMessage,
  type SeedEvent,
} from '../src/service/index.js';
import { deletePrefix, redisUrl, uniquePrefix, waitFor } from './helpers.js';

const mysqlUrl = (): string => process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const redis = new Redis(redisUrl());
const pool = createPool({ uri: mysqlUrl(), connectionLimit: 5 });
let services: QueueService[] = [];
let prefixes: string[] = [];
let tables: string[] = [];

afterEach(async () => {
  for (const service of services) await service.gracefulShutdown();
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
    redis: redisUrl(),
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
    const options = { redis: redisUrl(), prefix, logger: { info: () => undefined } };
    const service = await QueueService.initialize(options);
    expect(QueueService.getInstance()).toBe(service);
    expect(await QueueService.initialize(options)).toBe(service);
    await service.gracefulShutdown();
    expect(() => QueueService.getInstance()).toThrow(NotInitializedError);
    await expect(service.publishEvent({ eventType: 'a.b', source: 's', data: {} })).rejects.toBeInstanceOf(ClosedError);
  });

  it('refuses initialize without redis with a ValidationError', async () => {
    const service = new QueueService();
    await expect(service.initialize({} as never)).rejects.toBeInstanceOf(ValidationError);
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
    await second.initialize({ redis: redisUrl(), prefix, logger: { info: () => undefined } });
    await service.sendMessage({ queueName: 'q', payload: {}, messageType: 't' });
    const scheduler = new Scheduler({ connection: redisUrl(), prefix });
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

    const scheduler = new Scheduler({ connection: redisUrl(), prefix: prefixes.at(-1)! });
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
    expect(() => service.getStats()).toThrow(ClosedError);
  });

  it('a program using the service without mysql never loads the outbox nor mysql2', () => {
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
