// The whole pipeline of seed 002 on sluice's public API: signal source → NotificationService → one queue
// per channel → a consumer per channel → the channel (in-app rows in MariaDB; email, SMS, push rendered),
// with retries after an exponential backoff and a dead-letter queue per channel. It stops by itself once
// every queued message was delivered or dead-lettered, and closes every connection it opened.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Queue, RateLimiter, type Consumer, type QueueStats } from '../../src/index.js';
import {
  Channel,
  CHANNELS,
  DEFAULT_FAILURE_RATES,
  renderingProvider,
  type ChannelName,
  type DeliveredNotification,
  type InjectedFailure,
  type NotificationMessage,
} from './channels.js';
import { NotificationService } from './service.js';
import { makeSignals, signalSource, type Signal, type User } from './signals.js';
import { InAppStore } from './store.js';
import { emptyChannelSummary, totalOf, type ChannelSummary, type Summary } from './summary.js';

export interface PipelineOptions {
  /** seeds the users, the signals and the channels' faults (default 1) */
  seed?: number;
  /** users (default 20) */
  users?: number;
  /** signals the source emits (default 200) */
  signals?: number;
  /** default: REDIS_URL, else redis://127.0.0.1:6379 */
  redisUrl?: string;
  /** default: MYSQL_URL, else mysql://root@127.0.0.1:3306/test */
  mysqlUrl?: string;
  /** key prefix of this run, also its tag in the in-app table (default: notify-<time>-<random>) */
  prefix?: string;
  /** notifications per user per window (default 10) */
  perUserLimit?: number;
  /** the limit's window (default 60,000 ms) */
  limitWindowMs?: number;
  /** how long a (user, signal, channel) is remembered (default 24 hours, as in the seed) */
  dedupTtlMs?: number;
  /** retries of a failed delivery before the DLQ (default 3) */
  maxRetries?: number;
  /** first retry delay, doubling after each failure (default 20 ms) */
  retryBaseMs?: number;
  /** longest retry delay (default 200 ms) */
  retryCapMs?: number;
  /** chance that one attempt fails, per channel (default DEFAULT_FAILURE_RATES) */
  failureRates?: Partial<Record<ChannelName, number>>;
  /** handlers per channel (default 4) */
  concurrency?: number;
  /** the run fails if the queues have not drained this long after the last signal (default 60,000 ms) */
  drainTimeoutMs?: number;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

export interface PipelineResult {
  /** the run's key prefix and its tag in the in-app table: give it to deleteRunData */
  prefix: string;
  summary: Summary;
  users: User[];
  signals: Signal[];
  /** queue name per channel (under `prefix`) */
  queueNames: Record<ChannelName, string>;
  /** what each channel delivered, one entry per sent message */
  delivered: Record<ChannelName, DeliveredNotification[]>;
  /** the faults each channel injected, one entry per failed attempt */
  injected: Record<ChannelName, InjectedFailure[]>;
  /** the failure rates and retry limit the run used */
  failureRates: Record<ChannelName, number>;
  maxRetries: number;
  /** errors the consumers reported (none in a healthy run) */
  errors: string[];
  elapsedMs: number;
}

export const queueNameOf = (channel: ChannelName): string => `notifications.${channel}`;

const redisUrlOf = (options: { redisUrl?: string }) =>
  options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const mysqlUrlOf = (options: { mysqlUrl?: string }) =>
  options.mysqlUrl ?? process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

function perChannel<V>(make: (channel: ChannelName) => V): Record<ChannelName, V> {
  return Object.fromEntries(CHANNELS.map((channel) => [channel, make(channel)])) as Record<ChannelName, V>;
}

/** What the consumers' events said, per channel: settled = sent + dead-lettered. */
interface Tally {
  queued: number;
  sent: number;
  retried: number;
  deadLettered: number;
}

export async function runNotificationPipeline(options: PipelineOptions = {}): Promise<PipelineResult> {
  const startedAt = Date.now();
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? 1;
  const prefix = options.prefix ?? `notify-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const maxRetries = options.maxRetries ?? 3;
  const failureRates = { ...DEFAULT_FAILURE_RATES, ...options.failureRates };
  const { users, signals } = makeSignals({ seed, users: options.users ?? 20, signals: options.signals ?? 200 });

  const redis = new Redis(redisUrlOf(options));
  const store = new InAppStore(mysqlUrlOf(options), prefix);
  const queues = perChannel(
    (channel) =>
      new Queue<NotificationMessage>(queueNameOf(channel), {
        connection: redis,
        prefix,
        retry: { baseMs: options.retryBaseMs ?? 20, capMs: options.retryCapMs ?? 200, jitter: 0 },
        defaultMaxRetries: maxRetries,
      }),
  );
  const limiter = new RateLimiter({
    connection: redis,
    prefix,
    name: 'notifications',
    limit: options.perUserLimit ?? 10,
    windowMs: options.limitWindowMs ?? 60_000,
  });
  const consumers: Consumer<NotificationMessage>[] = [];
  const errors: string[] = [];
  try {
    await store.createTable();
    const channels = perChannel(
      (channel) =>
        new Channel(
          channel,
          channel === 'inapp'
            ? async (messageId, message) => {
                await store.save(messageId, message);
                return message.title;
              }
            : renderingProvider(channel),
          { seed, rate: failureRates[channel] },
        ),
    );
    const service = new NotificationService({
      queues,
      limiter,
      users,
      dedupTtlMs: options.dedupTtlMs ?? 24 * 3600_000,
      maxRetries,
    });

    // Drained when the source is done and every queued message was sent or dead-lettered, as the consumers'
    // events tell (checked against the queues' own counters below, once the consumers have closed).
    const tally = perChannel((): Tally => ({ queued: 0, sent: 0, retried: 0, deadLettered: 0 }));
    let sourceDone = false;
    let drained!: () => void;
    const allDrained = new Promise<void>((resolve) => (drained = resolve));
    const check = () => {
      if (sourceDone && CHANNELS.every((c) => tally[c].sent + tally[c].deadLettered === tally[c].queued)) drained();
    };
    for (const channel of CHANNELS) {
      const consumer = queues[channel].consume(
        (delivery) => channels[channel].deliver(delivery.id, delivery.payload, delivery.attempts),
        { concurrency: options.concurrency ?? 4 },
      );
      consumer.on('completed', () => {
        tally[channel].sent++;
        check();
      });
      // 'failed' does not say what the nack did; the delivery does: `attempts` counts the failures before
      // this one, and the nack dead-letters once they reach maxRetries.
      consumer.on('failed', (delivery) => {
        if (delivery.attempts < delivery.maxRetries) tally[channel].retried++;
        else tally[channel].deadLettered++;
        check();
      });
      consumer.on('error', (error) => {
        errors.push(`${channel}: ${error instanceof Error ? error.message : String(error)}`);
        log(`consumer of ${channel} reported: ${errors[errors.length - 1]}`);
      });
      consumers.push(consumer);
    }

    const counts = perChannel(() => ({ rateLimited: 0, deduplicated: 0 }));
    const signalCounts = { total: 0, rateLimited: 0, duplicates: 0 };
    for await (const signal of signalSource(signals)) {
      const outcome = await service.notify(signal);
      signalCounts.total++;
      if (outcome.status === 'rate-limited') {
        signalCounts.rateLimited++;
        for (const channel of outcome.channels) counts[channel].rateLimited++;
        continue;
      }
      for (const channel of outcome.queued) tally[channel].queued++;
      for (const channel of outcome.deduplicated) counts[channel].deduplicated++;
      if (outcome.deduplicated.length > 0) signalCounts.duplicates++;
    }
    log(
      `source done: ${signalCounts.total} signals, ${CHANNELS.map((c) => `${tally[c].queued} ${c}`).join(', ')} queued`,
    );

    sourceDone = true;
    check();
    const drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `queues not drained ${drainTimeoutMs} ms after the last signal: ${JSON.stringify(tally)} (prefix ${prefix})`,
            ),
          ),
        drainTimeoutMs,
      );
    });
    try {
      await Promise.race([allDrained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    log('every queued message was sent or dead-lettered; closing the consumers');

    // Closing a consumer writes its last acks and nacks; its report lists what it could not write.
    for (const report of await Promise.all(consumers.splice(0).map((consumer) => consumer.close({ graceMs: 5_000 })))) {
      const unwritten = [...report.notHandedBack, ...report.notSettled, ...report.handedBack];
      if (unwritten.length > 0) throw new Error(`consumers closed with unsettled messages: ${unwritten.join(', ')}`);
    }
    const stats = perChannel(() => null as QueueStats | null);
    for (const channel of CHANNELS) stats[channel] = await queues[channel].getStats();
    const channelSummaries = perChannel((channel): ChannelSummary => {
      const { ready, inflight, delayed, partitionBacklog, counters } = stats[channel]!;
      const outstanding =
        ready.critical + ready.high + ready.normal + ready.low + inflight + delayed + partitionBacklog;
      const own = tally[channel];
      if (
        outstanding !== 0 ||
        counters.sent !== own.queued ||
        counters.acked !== own.sent ||
        counters.retried !== own.retried ||
        counters.deadLettered !== own.deadLettered
      ) {
        throw new Error(
          `queue ${queueNameOf(channel)} disagrees with its consumer's events: ${JSON.stringify({ outstanding, counters, events: own })}`,
        );
      }
      return {
        ...emptyChannelSummary(),
        queued: counters.sent,
        sent: counters.acked,
        retried: counters.retried,
        deadLettered: counters.deadLettered,
        rateLimited: counts[channel].rateLimited,
        deduplicated: counts[channel].deduplicated,
      };
    });
    const summary: Summary = {
      seed,
      users: { total: users.length, premium: users.filter((u) => u.premium).length },
      signals: signalCounts,
      channels: channelSummaries,
      totals: totalOf(channelSummaries),
    };
    return {
      prefix,
      summary,
      users,
      signals,
      queueNames: perChannel(queueNameOf),
      delivered: perChannel((channel) => channels[channel].delivered),
      injected: perChannel((channel) => channels[channel].injected),
      failureRates,
      maxRetries,
      errors,
      elapsedMs: Date.now() - startedAt,
    };
  } finally {
    // Everything opened above is closed, whatever happened: the process then exits by itself.
    await Promise.allSettled(consumers.map((consumer) => consumer.close({ graceMs: 1_000 })));
    await Promise.allSettled(CHANNELS.map((channel) => queues[channel].close()));
    await Promise.allSettled([limiter.close(), store.close()]);
    await redis.quit().catch(() => redis.disconnect());
  }
}

/**
 * Deletes what a run left: its Redis keys (every sluice key of a prefix is `{prefix:...}`: queues, dedup
 * keys, the limiter's windows) and its rows in the in-app table. Returns how many of each it deleted.
 */
export async function deleteRunData(options: {
  prefix: string;
  redisUrl?: string;
  mysqlUrl?: string;
}): Promise<{ redisKeys: number; inAppRows: number }> {
  const redis = new Redis(redisUrlOf(options));
  const store = new InAppStore(mysqlUrlOf(options), options.prefix);
  try {
    let redisKeys = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${options.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) redisKeys += await redis.del(...keys);
    } while (cursor !== '0');
    return { redisKeys, inAppRows: await store.deleteRun() };
  } finally {
    await store.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}
