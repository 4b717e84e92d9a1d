// The usage examples of seeds 000 (architecture guide) and 001 (QueueService README), ported to TypeScript
// as the seed's users wrote them: the singleton, keyword arguments as an options object, handlers that
// catch their own errors and return a boolean, positional register/subscribe calls.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { transform } from 'esbuild';
import { createPool, type RowDataPacket } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  EventType,
  MessagePriority,
  QueueService,
  defaultOutboxTable,
  type QueueMessage,
  type SeedEvent as Event,
} from '../src/service/index.js';
import type { Transaction } from '../src/outbox/index.js';
import { deletePrefix, newClient, ON_CLUSTER, redisUrl, singleNodeOnly, uniquePrefix, waitFor } from './helpers.js';

const mysqlUrl = (): string => process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const redis = newClient();
const pool = createPool({ uri: mysqlUrl(), connectionLimit: 5 });
const HOUR = 3600_000;

// What the seed's Logger printed, per test.
let logs: string[] = [];
const Logger = {
  info: (text: string) => void logs.push(`INFO ${text}`),
  error: (text: string) => void logs.push(`ERROR ${text}`),
};
const getQueueService = (): QueueService => QueueService.getInstance();

let prefix = '';
let table = '';
let accounts = '';
/** the service's Redis on the cluster topology, a Cluster client of its own (on a single node it has the URL) */
let cluster: Redis | null = null;

beforeEach(async () => {
  logs = [];
  prefix = uniquePrefix('seed');
  table = `t_seed_${randomBytes(5).toString('hex')}`;
  accounts = `${table}_accounts`;
  await pool.query(`CREATE TABLE \`${accounts}\` (user_id VARCHAR(64) PRIMARY KEY, email VARCHAR(255))`);
  // main.py's lifespan: initialize_queue_service(db_service)
  if (ON_CLUSTER) cluster = newClient();
  await QueueService.initialize({
    redis: cluster ?? redisUrl(),
    mysql: pool,
    prefix,
    outboxTable: table,
    outboxRelayEveryMs: 100,
    retry: { baseMs: 100 },
    logger: { info: () => undefined },
  });
});
afterEach(async () => {
  await getQueueService().gracefulShutdown();
  await cluster?.quit();
  cluster = null;
  await deletePrefix(redis, prefix);
  await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
  await pool.query(`DROP TABLE IF EXISTS \`${accounts}\``);
});
afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

describe('seed 000: architecture guide', () => {
  it('3.5 sends a message and a delayed message, and registers a consumer', async () => {
    const queueService = getQueueService();
    await queueService.sendMessage({
      queueName: 'user_notifications',
      payload: { user_id: '123', message: 'Welcome!' },
      messageType: 'notification',
      priority: MessagePriority.HIGH,
    });
    await queueService.sendMessage({
      queueName: 'scheduled_tasks',
      payload: { task: 'cleanup' },
      messageType: 'maintenance',
      scheduledAt: new Date(Date.now() + HOUR),
    });

    const messageHandler = (message: QueueMessage): boolean => {
      try {
        Logger.info(`Processing: ${JSON.stringify(message.payload)}`);
        return true;
      } catch (e) {
        Logger.error(`Handler error: ${String(e)}`);
        return false;
      }
    };
    await queueService.registerMessageConsumer('user_notifications', 'notification_worker_1', messageHandler);

    await waitFor(() => logs.length === 1, 'the notification');
    expect(logs).toEqual(['INFO Processing: {"user_id":"123","message":"Welcome!"}']);
    expect(await queueService.getQueueStats('scheduled_tasks')).toMatchObject({ delayed_count: 1 });
  });

  it('4.6 publishes ACCOUNT_CREATED and a subscriber of created/updated handles it', async () => {
    const queueService = getQueueService();
    const eventHandler = (event: Event): boolean => {
      try {
        if (event.event_type === EventType.ACCOUNT_CREATED) {
          const userId = event.data['user_id'] as string;
          Logger.info(`New account created: ${userId}`);
        }
        return true;
      } catch (e) {
        Logger.error(`Event handler error: ${String(e)}`);
        return false;
      }
    };
    await queueService.subscribeEvents(
      'notification_service',
      [EventType.ACCOUNT_CREATED, EventType.ACCOUNT_UPDATED],
      eventHandler,
    );
    await queueService.publishEvent({
      eventType: EventType.ACCOUNT_CREATED,
      source: 'account_service',
      data: { user_id: '123', email: 'user@example.com' },
      correlationId: 'req-456',
    });
    await waitFor(() => logs.length === 1, 'the event');
    expect(logs).toEqual(['INFO New account created: 123']);
  });

  it('6.4 / 8.2.5 creates an account and its event in one transaction (outbox)', async () => {
    const queueService = getQueueService();
    const received: Event[] = [];
    await queueService.subscribeEvents('welcome_mailer', [EventType.ACCOUNT_CREATED], (event) => {
      received.push(event);
      return true;
    });

    const createUserAccount = async (userData: { user_id: string; email: string }) => {
      const businessOperation = async (tx: Transaction) => {
        // account = Account(**user_data); await tx.save(account)
        await tx.query(`INSERT INTO \`${accounts}\` (user_id, email) VALUES (?, ?)`, [
          userData.user_id,
          userData.email,
        ]);
        return { ...userData };
      };
      const result = await queueService.publishEventWithTransaction({
        eventType: 'account.created',
        aggregateId: userData.user_id,
        aggregateType: 'account',
        eventData: userData,
        businessOperation,
      });
      return result;
    };

    const account = await createUserAccount({ user_id: 'u-1', email: 'user@example.com' });
    expect(account).toEqual({ user_id: 'u-1', email: 'user@example.com' });
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT user_id FROM \`${accounts}\``);
    expect(rows.map((row) => row.user_id)).toEqual(['u-1']);
    await waitFor(() => received.length === 1, 'the relayed account.created');
    expect(received[0]).toMatchObject({ event_type: 'account.created', data: account });
    await waitFor(() => queueService.getStats().outbox_events_processed === 1, 'outbox_events_processed');
  });

  it('8.2.1-8.2.4 user tasks, a report in 24 h, and account events by type', async () => {
    const queueService = getQueueService();
    await queueService.sendMessage({
      queueName: 'user_tasks',
      payload: { user_id: '123', action: 'process_data' },
      messageType: 'user_task',
      priority: MessagePriority.NORMAL,
    });
    await queueService.sendMessage({
      queueName: 'scheduled_tasks',
      payload: { task: 'daily_report' },
      messageType: 'report',
      scheduledAt: new Date(Date.now() + 24 * HOUR),
    });
    const processUserData = (userId: string) => ({ userId });
    const processUserTask = (message: QueueMessage): boolean => {
      try {
        const userId = message.payload['user_id'] as string;
        const action = message.payload['action'];
        if (action === 'process_data') {
          processUserData(userId);
          Logger.info(`User task completed: ${userId}`);
          return true;
        }
        return false;
      } catch (e) {
        Logger.error(`User task failed: ${String(e)}`);
        return false;
      }
    };
    await queueService.registerMessageConsumer('user_tasks', 'user_task_worker_1', processUserTask);

    const welcomed: string[] = [];
    const cacheUpdated: string[] = [];
    const handleAccountEvents = (event: Event): boolean => {
      try {
        if (event.event_type === EventType.ACCOUNT_CREATED) {
          welcomed.push(event.data['user_id'] as string); // send_welcome_email(user_id)
        } else if (event.event_type === EventType.ACCOUNT_UPDATED) {
          cacheUpdated.push(event.data['user_id'] as string); // update_user_cache(user_id)
        }
        return true;
      } catch (e) {
        Logger.error(`Event handling failed: ${String(e)}`);
        return false;
      }
    };
    await queueService.subscribeEvents(
      'user_service',
      [EventType.ACCOUNT_CREATED, EventType.ACCOUNT_UPDATED],
      handleAccountEvents,
    );
    await queueService.publishEvent({
      eventType: EventType.ACCOUNT_CREATED,
      source: 'account_service',
      data: { user_id: '123', email: 'user@example.com', created_at: new Date().toISOString() },
      correlationId: 'req-456',
    });
    await queueService.publishEvent({
      eventType: EventType.ACCOUNT_UPDATED,
      source: 'account_service',
      data: { user_id: '123' },
    });

    await waitFor(() => logs.length === 1 && welcomed.length === 1 && cacheUpdated.length === 1, 'tasks and events');
    expect(logs).toEqual(['INFO User task completed: 123']);
    expect(await queueService.getQueueStats('scheduled_tasks')).toMatchObject({ delayed_count: 1 });
  });

  it('9.1 prints queue, event and service stats in the seed shapes', async () => {
    const queueService = getQueueService();
    for (const priority of [MessagePriority.HIGH, MessagePriority.HIGH, MessagePriority.NORMAL, MessagePriority.LOW]) {
      await queueService.sendMessage({ queueName: 'user_tasks', payload: {}, messageType: 'user_task', priority });
    }
    await queueService.sendMessage({
      queueName: 'user_tasks',
      payload: {},
      messageType: 'user_task',
      scheduledAt: new Date(Date.now() + HOUR),
    });
    await queueService.subscribeEvents('s1', [EventType.ACCOUNT_CREATED], () => true);
    await queueService.subscribeEvents('s2', [EventType.ACCOUNT_CREATED, EventType.PORTFOLIO_UPDATED], () => true);
    await queueService.publishEvent({ eventType: EventType.ACCOUNT_CREATED, source: 'a', data: {} });

    const queueStats = await queueService.getQueueStats('user_tasks');
    expect(queueStats).toMatchObject({
      queue_name: 'user_tasks',
      priority_4_count: 0,
      priority_3_count: 2,
      priority_2_count: 1,
      priority_1_count: 1,
      processing_count: 0,
      dlq_count: 0,
      delayed_count: 1,
    });
    const eventStats = await waitFor(async () => {
      const stats = await queueService.getEventStats();
      return stats.event_stats.delivered === 2 ? stats : null;
    }, 'both deliveries');
    expect(eventStats).toMatchObject({
      total_subscriptions: 2,
      active_subscribers: 2,
      event_stats: { published: 1, delivered: 2, failed: 0 },
      subscriptions_by_type: { 'account.created': 2, 'portfolio.updated': 1 },
    });
    expect(queueService.getStats()).toEqual({
      messages_processed: 0,
      events_published: 1,
      outbox_events_processed: 0,
      errors: 0,
    });
  });
});

describe('seed 001: QueueService README', () => {
  it('sends a notification, consumes it with a positional register, and handles portfolio events', async () => {
    const queueService = getQueueService();
    await queueService.sendMessage({
      queueName: 'user_notifications',
      payload: { user_id: 'user123', message: '포트폴리오 업데이트' },
      messageType: 'notification',
      priority: MessagePriority.HIGH,
    });
    const notificationHandler = async (message: QueueMessage): Promise<boolean> => {
      try {
        Logger.info(`알림 처리: ${JSON.stringify(message.payload)}`);
        return true;
      } catch (e) {
        Logger.error(`알림 처리 실패: ${String(e)}`);
        return false;
      }
    };
    await queueService.registerMessageConsumer('user_notifications', 'notification_worker_1', notificationHandler);

    const portfolioEventHandler = async (event: Event): Promise<boolean> => {
      try {
        Logger.info(`포트폴리오 이벤트 처리: ${JSON.stringify(event.data)}`);
        return true;
      } catch (e) {
        Logger.error(`이벤트 처리 실패: ${String(e)}`);
        return false;
      }
    };
    await queueService.subscribeEvents(
      'portfolio_monitor',
      [EventType.PORTFOLIO_UPDATED, EventType.TRADE_EXECUTED],
      portfolioEventHandler,
    );
    await queueService.publishEvent({
      eventType: EventType.PORTFOLIO_UPDATED,
      source: 'portfolio_service',
      data: { portfolio_id: 'portfolio123', changes: ['AAPL', 'GOOGL'] },
    });

    await waitFor(() => logs.length === 2, 'the notification and the event');
    expect(logs.sort()).toEqual(
      [
        'INFO 알림 처리: {"user_id":"user123","message":"포트폴리오 업데이트"}',
        'INFO 포트폴리오 이벤트 처리: {"portfolio_id":"portfolio123","changes":["AAPL","GOOGL"]}',
      ].sort(),
    );
  });

  it('6.1 a price alert handler that pushes and logs; a failing push is retried', async () => {
    const queueService = getQueueService();
    const pushed: string[] = [];
    const notificationLog: [string, string, string][] = [];
    let pushFailures = 1;
    const sendPushNotification = async (userId: string, text: string) => {
      if (pushFailures-- > 0) throw new Error('push gateway unavailable');
      pushed.push(`${userId}: ${text}`);
    };
    const saveNotificationLog = async (userId: string, kind: string, text: string) =>
      void notificationLog.push([userId, kind, text]);

    await queueService.sendMessage({
      queueName: 'user_notifications',
      payload: {
        user_id: 'user123',
        message: '주가 알림: AAPL이 $150.00에 도달했습니다',
        notification_type: 'price_alert',
        stock_symbol: 'AAPL',
        target_price: 150.0,
      },
      messageType: 'price_alert',
      priority: MessagePriority.HIGH,
    });
    const priceAlertHandler = async (message: QueueMessage): Promise<boolean> => {
      try {
        const payload = message.payload;
        const userId = payload['user_id'] as string;
        const messageText = payload['message'] as string;
        await sendPushNotification(userId, messageText);
        await saveNotificationLog(userId, 'price_alert', messageText);
        Logger.info(`가격 알림 처리 완료: ${userId}`);
        return true;
      } catch (e) {
        Logger.error(`가격 알림 처리 실패: ${(e as Error).message}`);
        return false;
      }
    };
    await queueService.registerMessageConsumer('user_notifications', 'price_alert_worker', priceAlertHandler);

    await waitFor(() => pushed.length === 1, 'the push after a retry');
    expect(logs).toEqual(['ERROR 가격 알림 처리 실패: push gateway unavailable', 'INFO 가격 알림 처리 완료: user123']);
    expect(notificationLog).toEqual([['user123', 'price_alert', '주가 알림: AAPL이 $150.00에 도달했습니다']]);
    expect(queueService.getStats()).toMatchObject({ messages_processed: 1, errors: 1 });
  });

  it('6.2 and the delayed examples: rebalancing in 10 minutes, maintenance in an hour, an email now', async () => {
    const queueService = getQueueService();
    const delayedTime = new Date(Date.now() + 10 * 60_000);
    await queueService.sendMessage({
      queueName: 'portfolio_tasks',
      payload: {
        task_type: 'portfolio_rebalancing',
        portfolio_id: 'portfolio123',
        target_allocation: { stocks: 0.6, bonds: 0.3, cash: 0.1 },
        rebalance_threshold: 0.05,
      },
      messageType: 'scheduled_task',
      priority: MessagePriority.NORMAL,
      scheduledAt: delayedTime,
    });
    await queueService.sendMessage({
      queueName: 'maintenance_tasks',
      payload: { task: 'database_cleanup', tables: ['user_sessions', 'temp_data'], retention_days: 30 },
      messageType: 'maintenance',
      priority: MessagePriority.LOW,
      scheduledAt: new Date(Date.now() + HOUR),
    });
    await queueService.sendMessage({
      queueName: 'email_notifications',
      payload: {
        to: 'user@example.com',
        subject: '포트폴리오 업데이트',
        body: '포트폴리오가 성공적으로 업데이트되었습니다.',
      },
      messageType: 'email',
      priority: MessagePriority.NORMAL,
    });

    const sent: { to_emails: string[]; subject: string; body: string }[] = [];
    const EmailService = { send_email: async (mail: (typeof sent)[number]) => void sent.push(mail) };
    const emailHandler = async (message: QueueMessage): Promise<boolean> => {
      try {
        const payload = message.payload as { to: string; subject: string; body: string };
        await EmailService.send_email({ to_emails: [payload.to], subject: payload.subject, body: payload.body });
        return true;
      } catch (e) {
        Logger.error(`이메일 처리 실패: ${String(e)}`);
        return false;
      }
    };
    await queueService.registerMessageConsumer('email_notifications', 'email_worker', emailHandler);
    const rebalanced: string[] = [];
    await queueService.registerMessageConsumer('portfolio_tasks', 'rebalancing_worker', async (message) => {
      rebalanced.push(message.payload['portfolio_id'] as string);
      return true;
    });

    await waitFor(() => sent.length === 1, 'the email');
    expect(sent[0]).toEqual({
      to_emails: ['user@example.com'],
      subject: '포트폴리오 업데이트',
      body: '포트폴리오가 성공적으로 업데이트되었습니다.',
    });
    expect(await queueService.getQueueStats('portfolio_tasks')).toMatchObject({ delayed_count: 1 });
    expect(await queueService.getQueueStats('maintenance_tasks')).toMatchObject({ delayed_count: 1 });
    expect(rebalanced).toEqual([]);
  });
});

describe("sluice's README: the QueueService example", () => {
  it.skipIf(singleNodeOnly('runs the example in child processes given one redis:// URL, a single-node client'))(
    'runs as written, twice in a row, against the same Redis prefix and database',
    async () => {
      const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
      const section = readme.slice(readme.indexOf("## QueueService (the seed's names)"));
      const example = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
      // Only the addresses change (a prefix and a table of its own, so that tests never share them).
      const examplePrefix = uniquePrefix('readme');
      const exampleAccounts = `t_readme_${randomBytes(5).toString('hex')}_accounts`;
      const substitutions: [string | RegExp, string][] = [
        ["'sluice/service'", JSON.stringify(new URL('../dist/src/service/index.js', import.meta.url).href)],
        [
          "redis: 'redis://127.0.0.1:6379'",
          `redis: ${JSON.stringify(redisUrl())}, prefix: ${JSON.stringify(examplePrefix)}`,
        ],
        ["'mysql://root@127.0.0.1:3306/test'", JSON.stringify(mysqlUrl())],
        [/\baccounts\b/g, exampleAccounts],
      ];
      let source = example;
      for (const [from, to] of substitutions) {
        expect(source).toMatch(from);
        source = source.replace(from, to);
      }
      const { code } = await transform(source, { loader: 'ts', format: 'esm', target: 'node20' });
      try {
        for (const run of [1, 2]) {
          const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], {
            cwd: fileURLToPath(new URL('..', import.meta.url)),
            encoding: 'utf8',
            timeout: 60_000,
          });
          expect(stderr, `run ${run}`).toBe('');
          expect(stdout).toContain("'notification, retry 0'");
          expect(stdout).toContain("'account.created 123 req-456'");
          expect(stdout).toMatch(/'account\.created [0-9a-f-]{36} -'/);
          expect(stdout).toMatch(
            /messages_processed: 1,\s+events_published: 1,\s+outbox_events_processed: 1,\s+errors: 0/,
          );
        }
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${exampleAccounts}\``);
        expect(Number(rows[0]!.n)).toBe(2);
      } finally {
        await pool.query(`DROP TABLE IF EXISTS \`${exampleAccounts}\``);
        await pool.query(`DROP TABLE IF EXISTS \`${defaultOutboxTable(examplePrefix)}\``);
        await deletePrefix(redis, examplePrefix);
      }
    },
  );
});
