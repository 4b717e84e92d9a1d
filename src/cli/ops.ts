import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { Queue, ValidationError, type Event, type EventBus, type HistoryEntry } from '../index.js';
import type { OutboxStats } from '../outbox/index.js';
import { arg, EXIT, intOption, listOption, openBus, type Command, type Context } from './context.js';
import { duration, fields, short, table } from './format.js';

// ---------------------------------------------------------------- doctor

interface Check {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** what to do, for warn and fail */
  fix?: string;
}

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** CONFIG GET, or undefined where CONFIG is disabled (managed services often rename or forbid it). */
async function config(redis: Redis, name: string): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', name)) as string[];
    return reply[1];
  } catch {
    return undefined;
  }
}

export const doctor: Command = async (context) => {
  const { redis } = context;
  const checks: Check[] = [];
  const server = await redis.info('server');
  const version = infoField(server, 'redis_version') ?? 'unknown';
  const major = Number(version.split('.')[0]);
  checks.push(
    major >= 7
      ? { check: 'redis version', status: 'ok', detail: version }
      : { check: 'redis version', status: 'fail', detail: version, fix: 'upgrade to Redis 7 or later' },
  );

  const policy = await config(redis, 'maxmemory-policy');
  const maxmemory = await config(redis, 'maxmemory');
  if (policy === undefined) {
    checks.push({
      check: 'maxmemory-policy',
      status: 'warn',
      detail: 'CONFIG GET is not allowed here',
      fix: 'make sure the server runs with maxmemory-policy noeviction (ask your provider)',
    });
  } else if (policy === 'noeviction') {
    checks.push({ check: 'maxmemory-policy', status: 'ok', detail: `noeviction (maxmemory ${maxmemory ?? '?'})` });
  } else {
    checks.push({
      check: 'maxmemory-policy',
      status: 'fail',
      detail: `${policy}: Redis may evict keys, which drops messages and locks`,
      fix: 'CONFIG SET maxmemory-policy noeviction, and set it in redis.conf',
    });
  }

  const appendonly = await config(redis, 'appendonly');
  const save = await config(redis, 'save');
  const fsync = await config(redis, 'appendfsync');
  if (appendonly === undefined) {
    checks.push({
      check: 'persistence',
      status: 'warn',
      detail: 'CONFIG GET is not allowed here',
      fix: 'make sure AOF persistence (appendonly yes) is on',
    });
  } else if (appendonly === 'yes') {
    checks.push({ check: 'persistence', status: 'ok', detail: `AOF on (appendfsync ${fsync ?? '?'})` });
  } else if (save !== undefined && save !== '') {
    checks.push({
      check: 'persistence',
      status: 'warn',
      detail: `RDB snapshots only (save ${save}): a crash loses the writes since the last snapshot`,
      fix: 'CONFIG SET appendonly yes (and appendonly yes in redis.conf)',
    });
  } else {
    checks.push({
      check: 'persistence',
      status: 'fail',
      detail: 'none (appendonly no, no save points): a restart loses every message',
      fix: 'CONFIG SET appendonly yes (and appendonly yes in redis.conf)',
    });
  }

  const cluster = infoField(await redis.info('cluster'), 'cluster_enabled') === '1';
  checks.push({
    check: 'cluster mode',
    status: 'ok',
    detail: cluster
      ? 'enabled: each queue and bus is one slot; give the library an ioredis Cluster client'
      : 'disabled (standalone)',
  });

  // A read-only script under a key of its own, on this prefix: proves EVAL/EVALSHA run here.
  const probe = new Queue('doctor', {
    connection: redis,
    prefix: context.prefix,
    baseKey: `{${context.prefix}:doctor/}`,
    register: false,
  });
  try {
    await probe.getStats();
    const cached = infoField(await redis.info('memory'), 'number_of_cached_scripts');
    checks.push({ check: 'script cache', status: 'ok', detail: `scripts run (${cached ?? '?'} cached)` });
  } catch (error) {
    checks.push({
      check: 'script cache',
      status: 'fail',
      detail: `a sluice script failed: ${(error as Error).message}`,
      fix: 'allow EVAL, EVALSHA and SCRIPT for this user (ACL) and check lua-time-limit',
    });
  }

  const failed = checks.filter((check) => check.status === 'fail');
  context.out.print({ ok: failed.length === 0, checks }, () =>
    [
      table(
        ['CHECK', 'STATUS', 'DETAIL'],
        checks.map((check) => [check.check, check.status.toUpperCase(), check.detail]),
      ),
      ...checks.filter((check) => check.fix).map((check) => `${check.check}: fix: ${check.fix}`),
    ].join('\n'),
  );
  return failed.length > 0 ? EXIT.unhealthy : EXIT.ok;
};

// ---------------------------------------------------------------- bench

/** Deletes the keys matching `pattern`, on every master of a Cluster (a SCAN reads one node). */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  const client: unknown = redis;
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // One key at a time: on a Cluster the keys of a pattern are in many slots.
      for (const key of keys) await node.del(key);
    } while (cursor !== '0');
  }
}

export const bench: Command = async (context) => {
  const count = intOption(context.values, 'count', 10_000, 1);
  if (count > 1_000_000) throw new ValidationError('count', `--count must be at most 1000000, got ${count}`);
  const prefix = `sluice-bench-${randomBytes(4).toString('hex')}`;
  const queue = new Queue<{ n: number }>('bench', { connection: context.redis, prefix });
  try {
    const sendStart = performance.now();
    for (let from = 0; from < count; from += 1000) {
      const sends: Promise<string>[] = [];
      for (let n = from; n < Math.min(count, from + 1000); n++) sends.push(queue.send({ n }));
      await Promise.all(sends);
    }
    const sendMs = performance.now() - sendStart;
    const drainStart = performance.now();
    let drained = 0;
    while (drained < count) {
      const deliveries = await queue.dequeue({ count: 1000 });
      if (deliveries.length === 0) break;
      await queue.ackMany(deliveries);
      drained += deliveries.length;
    }
    const drainMs = performance.now() - drainStart;
    const result = {
      count,
      drained,
      sendMs: Math.round(sendMs),
      drainMs: Math.round(drainMs),
      sendPerSecond: Math.round(count / (sendMs / 1000)),
      drainPerSecond: Math.round(drained / (drainMs / 1000)),
    };
    context.out.print(result, () =>
      fields([
        ['messages', count],
        ['send', `${result.sendPerSecond} msgs/s (${result.sendMs} ms; send() coalesced, 1000 in flight)`],
        ['drain', `${result.drainPerSecond} msgs/s (${result.drainMs} ms; dequeue + ackMany of 1000)`],
      ]),
    );
    return drained === count ? EXIT.ok : EXIT.unhealthy;
  } finally {
    await queue.close();
    await deleteKeys(context.redis, `{${prefix}:*`);
  }
};

// ---------------------------------------------------------------- events tail

const PATTERN = /^([A-Za-z0-9_-]+|\*|#)(\.([A-Za-z0-9_-]+|\*|#))*$/;

/** RabbitMQ topic matching: `*` one word, `#` zero or more. */
export function topicMatches(pattern: string[], words: string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let skip = 0; skip <= words.length; skip++) if (topicMatches(rest, words.slice(skip))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && topicMatches(rest, words.slice(1));
}

/** Stream positions `ms-seq` in order. */
function comparePositions(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am! - bm! || as! - bs!;
}

const TYPE_RESCAN_MS = 2000;

/**
 * Prints events published from now on, read from the bus's per-type history (so nothing is subscribed and
 * nothing is left behind when the tail is killed), until SIGINT or SIGTERM. New event types are found by
 * a bounded SCAN every 2 s; an event of a type found late is still printed, since reads start from the
 * tail's start time.
 */
export async function eventsTail(context: Context, bus: EventBus, pattern: string | undefined): Promise<number> {
  if (pattern !== undefined && !PATTERN.test(pattern)) {
    throw new ValidationError(
      'pattern',
      `pattern must be dot-separated words, * (one word) or # (zero or more), like "order.*", got ${JSON.stringify(pattern)}`,
    );
  }
  const words = (pattern ?? '#').split('.');
  const intervalMs = intOption(context.values, 'interval-ms', 250, 10);
  const [seconds, micros] = await context.redis.time();
  const startMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const last = new Map<string, string>();
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let stopping = false;
  const onSignal = () => {
    stopping = true;
    stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // An exact type needs no scan; a pattern finds types by a bounded SCAN of the bus's history keys, so on a
    // database of more keys than the scan's limit it may miss some: it says so once.
    const exact = pattern !== undefined && !/[*#]/.test(pattern) ? [pattern] : null;
    const seen = new Set<string>(exact ?? []);
    let types: string[] = exact ?? [];
    let scannedAt = exact ? Infinity : -Infinity;
    let announced = false;
    let warned = false;
    while (!stopping) {
      if (performance.now() - scannedAt >= TYPE_RESCAN_MS) {
        const found = await bus.historyTypes();
        for (const type of found.types) if (topicMatches(words, type.split('.'))) seen.add(type);
        types = [...seen];
        scannedAt = performance.now();
        if (!found.complete && !warned) {
          process.stderr.write(
            `sluice: the scan for event types stopped at its key limit (a large database): events of types it did ` +
              `not reach are not shown; give an exact type (events tail ${bus.name} <type>) to follow one for sure\n`,
          );
          warned = true;
        }
      }
      if (!announced) {
        process.stderr.write(
          `sluice: following events of bus ${bus.name}${pattern ? ` matching ${pattern}` : ''}; Ctrl-C to stop\n`,
        );
        announced = true;
      }
      const fresh: HistoryEntry<unknown>[] = [];
      for (const type of types) {
        const from = last.get(type);
        const entries = await bus.history(type, { from: from ?? startMs, limit: 1000 });
        for (const entry of entries)
          if (from === undefined || comparePositions(entry.position, from) > 0) fresh.push(entry);
        if (entries.length > 0) last.set(type, entries[entries.length - 1]!.position);
      }
      fresh.sort((a, b) => comparePositions(a.position, b.position));
      for (const entry of fresh) printEvent(context, entry.position, entry.event);
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, intervalMs))]);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT.ok;
}

function printEvent(context: Context, position: string, event: Event<unknown>): void {
  context.out.print(
    { position, event },
    () => `${event.timestamp}  ${event.type}  ${event.id}  ${short(event.data, 200)}`,
  );
}

// ---------------------------------------------------------------- outbox

async function openOutbox(context: Context) {
  if (!context.mysqlUrl) {
    throw new ValidationError(
      'mysql-url',
      'the outbox commands need --mysql-url or MYSQL_URL (mysql://user:password@host:3306/database)',
    );
  }
  const { Outbox } = await import('../outbox/index.js');
  return new Outbox({
    mysql: context.mysqlUrl,
    bus: openBus(context, context.values.bus ?? 'events'),
    ...(context.values.table === undefined ? {} : { table: context.values.table }),
  });
}

/** The outbox's backlog, for status and outbox status: counts by state and the relay lag. */
export async function outboxStatus(context: Context): Promise<Omit<OutboxStats, 'relayed'>> {
  const outbox = await openOutbox(context);
  try {
    const { pending, failed, published, oldestPendingAgeMs } = await outbox.stats();
    return { pending, failed, published, oldestPendingAgeMs };
  } finally {
    await outbox.close();
  }
}

export const outboxCommand: Command = async (context) => {
  const action = arg(context, 0, 'outbox action (status or retry-failed)');
  if (action !== 'status' && action !== 'retry-failed') {
    throw new ValidationError('outbox action', `outbox takes status or retry-failed, got ${JSON.stringify(action)}`);
  }
  const outbox = await openOutbox(context);
  try {
    if (action === 'status') {
      const { pending, failed, published, oldestPendingAgeMs } = await outbox.stats();
      const failedRows = await outbox.listFailed({ limit: intOption(context.values, 'limit', 20, 1) });
      context.out.print({ table: outbox.table, pending, failed, published, oldestPendingAgeMs, failedRows }, () =>
        [
          fields([
            ['table', outbox.table],
            ['pending', pending],
            ['failed', failed],
            ['published', published],
            ['relay lag', duration(oldestPendingAgeMs)],
          ]),
          '',
          table(
            ['FAILED EVENT', 'TYPE', 'AGGREGATE', 'ATTEMPTS', 'AGE', 'LAST ERROR'],
            failedRows.map((row) => [
              row.eventId,
              row.type,
              `${row.aggregateType}/${row.aggregateId}`,
              row.attempts,
              duration(row.ageMs),
              short(row.lastError ?? '-', 50),
            ]),
          ),
        ].join('\n'),
      );
      return;
    }
    const ids = listOption(context.values, 'ids');
    const retried = await outbox.retryFailed(ids ? { eventIds: ids } : {});
    context.out.print(
      { table: outbox.table, retried },
      () => `${retried} failed rows of ${outbox.table} back to PENDING`,
    );
  } finally {
    await outbox.close();
  }
};

// ---------------------------------------------------------------- dashboard

/**
 * The web dashboard on its own port until SIGINT or SIGTERM. The token comes from --token or
 * SLUICE_DASHBOARD_TOKEN (the environment keeps it out of `ps`); the outbox is shown with --mysql-url.
 */
export const dashboardCommand: Command = async (context) => {
  const { values } = context;
  const port = intOption(values, 'port', 8080);
  const token = values.token ?? process.env.SLUICE_DASHBOARD_TOKEN;
  const outbox = context.mysqlUrl ? await openOutbox(context) : undefined;
  const { serveDashboard } = await import('../dashboard/index.js');
  let running;
  try {
    running = await serveDashboard({
      connection: context.redis,
      prefix: context.prefix,
      port,
      host: values.host ?? '127.0.0.1',
      readOnly: values['read-only'] === true,
      ...(token ? { token } : {}),
      ...(outbox ? { outbox } : {}),
    });
  } catch (error) {
    await outbox?.close();
    throw error;
  }
  context.out.print({ url: running.url, readOnly: values['read-only'] === true, prefix: context.prefix }, () =>
    [
      `sluice dashboard for prefix ${context.prefix} at ${running.url}${token ? '?token=<token>' : ''}`,
      values['read-only'] ? '(read-only: actions are refused)' : '',
      'Ctrl-C to stop',
    ]
      .filter(Boolean)
      .join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  await outbox?.close();
};
