import { createInterface } from 'node:readline/promises';
import {
  discover,
  Locks,
  Queue,
  Scheduler,
  ValidationError,
  type PeekState,
  type QueueStats,
  type SendOptions,
} from '../index.js';
import { arg, EXIT, intOption, listOption, openBus, openQueue, type Command } from './context.js';
import { duration, fields, short, table, time } from './format.js';
import { bench, dashboardCommand, doctor, eventsTail, outboxCommand, outboxStatus } from './ops.js';

function readyTotal(stats: QueueStats): number {
  const { critical, high, normal, low } = stats.ready;
  return critical + high + normal + low;
}

function queueRow(stats: QueueStats): (string | number)[] {
  const { critical, high, normal, low } = stats.ready;
  return [
    stats.name,
    readyTotal(stats),
    `${critical}/${high}/${normal}/${low}`,
    stats.inflight,
    stats.delayed,
    stats.deadLetters,
    duration(stats.oldestReadyAgeMs),
    stats.paused ? 'yes' : 'no',
    stats.rateLimit ? `${stats.rateLimit.max}/${stats.rateLimit.windowMs}ms` : '-',
    stats.consumers,
  ];
}

const QUEUE_HEADERS = [
  'QUEUE',
  'READY',
  'C/H/N/L',
  'INFLIGHT',
  'DELAYED',
  'DLQ',
  'OLDEST',
  'PAUSED',
  'RATE',
  'CONSUMERS',
];

const status: Command = async (context) => {
  const found = await discover(context.redis, {
    prefix: context.prefix,
    scanLimit: intOption(context.values, 'scan-limit', 10_000),
  });
  const queues = await Promise.all(found.queues.map((name) => openQueue(context, name).getStats()));
  const buses = await Promise.all(
    found.buses.map(async (name) => ({ name, ...(await openBus(context, name).getStats()) })),
  );
  // An outbox that cannot be read (no table yet, MySQL down) is reported in its place; the rest is still shown.
  const outbox = context.mysqlUrl
    ? await outboxStatus(context).catch((error: unknown) => ({
        error: error instanceof Error ? error.message : String(error),
      }))
    : null;
  const dead = queues.reduce((sum, stats) => sum + stats.deadLetters, 0);
  context.out.print({ prefix: context.prefix, complete: found.complete, queues, buses, outbox }, () => {
    const parts = [
      `prefix ${context.prefix}: ${plural(queues.length, 'queue')}, ${plural(buses.length, 'bus', 'buses')}` +
        (found.complete ? '' : ' (scan limit reached: queues written before the registry may be missing)'),
      '',
      table(QUEUE_HEADERS, queues.map(queueRow)),
      '',
      table(
        ['BUS', 'SUBSCRIPTIONS', 'ACTIVE', 'PUBLISHED', 'DELIVERED', 'FAILED'],
        buses.map((bus) => [
          bus.name,
          bus.subscriptions,
          bus.activeSubscriptions,
          bus.events.published,
          bus.events.delivered,
          bus.events.failed,
        ]),
      ),
    ];
    if (outbox && 'error' in outbox) {
      parts.push('', `outbox: ${outbox.error}`);
    } else if (outbox) {
      parts.push(
        '',
        fields([
          ['outbox pending', outbox.pending],
          ['outbox failed', outbox.failed],
          ['outbox lag', duration(outbox.oldestPendingAgeMs)],
        ]),
      );
    }
    return parts.join('\n');
  });
  if (outbox && 'error' in outbox) {
    process.stderr.write(`sluice: the outbox could not be read: ${outbox.error}\n`);
    return EXIT.unhealthy;
  }
  if (context.values['fail-on-dlq'] && dead > 0) {
    process.stderr.write(
      `sluice: ${plural(dead, 'dead letter')} under prefix ${context.prefix}; see sluice dlq list <queue>\n`,
    );
    return EXIT.unhealthy;
  }
};

const queue: Command = async (context) => {
  const stats = await openQueue(context, arg(context, 0, 'queue name')).getStats();
  context.out.print(stats, () =>
    fields([
      ['queue', stats.name],
      ['ready critical', stats.ready.critical],
      ['ready high', stats.ready.high],
      ['ready normal', stats.ready.normal],
      ['ready low', stats.ready.low],
      ['in flight', stats.inflight],
      ['delayed', stats.delayed],
      ['dead letters', stats.deadLetters],
      ['partition backlog', stats.partitionBacklog],
      ['oldest ready', duration(stats.oldestReadyAgeMs)],
      ['paused', stats.paused ? 'yes' : 'no'],
      ['rate limit', stats.rateLimit ? `${stats.rateLimit.max} per ${stats.rateLimit.windowMs} ms` : 'none'],
      ['consumers', stats.consumers],
      ...Object.entries(stats.counters).map(([name, value]): [string, number] => [name, value]),
    ]),
  );
};

const STATES = ['ready', 'delayed', 'inflight', 'dead'];

const peek: Command = async (context) => {
  const state = context.values.state ?? 'ready';
  if (!STATES.includes(state)) {
    throw new ValidationError('state', `--state must be one of ${STATES.join(', ')}, got ${JSON.stringify(state)}`);
  }
  const entries = await openQueue(context, arg(context, 0, 'queue name')).peek(state as PeekState, {
    limit: intOption(context.values, 'limit', 20, 1),
    offset: intOption(context.values, 'offset', 0),
  });
  context.out.print(entries, () =>
    table(
      ['ID', 'PRIORITY', 'ATTEMPTS', 'AT', 'TYPE', 'PAYLOAD', 'LAST ERROR'],
      entries.map((entry) => [
        entry.id,
        entry.message?.priority ?? '?',
        entry.message?.attempts ?? '?',
        time(entry.at),
        entry.message?.type || '-',
        entry.message ? short(entry.message.payload) : `(undecodable) ${short(entry.raw ?? '')}`,
        short(entry.lastError ?? '-', 40),
      ]),
    ),
  );
};

const message: Command = async (context) => {
  const name = arg(context, 0, 'queue name');
  const id = arg(context, 1, 'message id');
  const info = await openQueue(context, name).getMessage(id);
  context.out.print(info, () =>
    info
      ? fields([
          ['id', info.id],
          ['status', info.status],
          ['type', info.type || '-'],
          ['priority', info.priority],
          ['attempts', `${info.attempts} of ${info.maxRetries + 1}`],
          ['created', time(info.createdAt)],
          ['run at', time(info.runAt)],
          ['at', time(info.at)],
          ['partition key', info.partitionKey ?? '-'],
          ['last error', info.lastError ?? '-'],
          ['payload', JSON.stringify(info.payload)],
        ])
      : `message ${id} is not in queue ${name}`,
  );
  if (!info) {
    process.stderr.write(`sluice: message ${id} not found in queue ${name} (acked, purged or never sent)\n`);
    return EXIT.unhealthy;
  }
};

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

const dlq: Command = async (context) => {
  const action = arg(context, 0, 'dlq action (list, replay or purge)');
  const q = openQueue(context, arg(context, 1, 'queue name'));
  const ids = listOption(context.values, 'ids');
  const limit = context.values.limit === undefined ? undefined : intOption(context.values, 'limit', 100, 1);
  if (action === 'list') {
    const entries = await q.deadLetters({ limit: limit ?? 100, offset: intOption(context.values, 'offset', 0) });
    context.out.print(entries, () =>
      table(
        ['ID', 'FAILED AT', 'ATTEMPTS', 'TYPE', 'REASON', 'PAYLOAD'],
        entries.map((entry) => [
          entry.id,
          time(entry.failedAt),
          entry.message?.attempts ?? '?',
          entry.message?.type || '-',
          short(entry.reason ?? '-', 40),
          entry.message ? short(entry.message.payload, 40) : '(undecodable)',
        ]),
      ),
    );
    return;
  }
  if (action !== 'replay' && action !== 'purge') {
    throw new ValidationError('dlq action', `dlq takes list, replay or purge, got ${JSON.stringify(action)}`);
  }
  if (ids !== undefined && limit !== undefined) throw new ValidationError('ids', 'give --ids or --limit, not both');
  if (action === 'purge' && ids === undefined && limit === undefined) {
    throw new ValidationError('limit', 'dlq purge needs --ids a,b or --limit n (the oldest n dead letters)');
  }
  const dryRun = context.values['dry-run'] === true;
  if (dryRun) {
    // What would be selected: the listed ids that are dead letters now, or the oldest `limit`.
    let selected: string[];
    if (ids) {
      const infos = await Promise.all(ids.map((id) => q.getMessage(id)));
      selected = ids.filter((_, n) => infos[n]?.status === 'FAILED');
    } else {
      selected = (await q.deadLetters({ limit: limit ?? 1000 })).map((entry) => entry.id);
    }
    context.out.print({ action, queue: q.name, dryRun: true, ids: selected }, () =>
      [`would ${action} ${plural(selected.length, 'dead letter')} of queue ${q.name}`, ...selected].join('\n'),
    );
    return;
  }
  if (action === 'replay') {
    const replayed = await q.replayDeadLetters(ids ? { ids } : { limit: limit ?? 1000 });
    context.out.print({ action, queue: q.name, dryRun: false, ids: replayed }, () =>
      [`replayed ${plural(replayed.length, 'dead letter')} of queue ${q.name}`, ...replayed].join('\n'),
    );
    return;
  }
  if (context.values.yes !== true) {
    if (!process.stdin.isTTY) {
      throw new ValidationError(
        'yes',
        `dlq purge deletes dead letters of queue ${q.name} for good: add --yes to confirm (stdin is not a terminal)`,
      );
    }
    const what = ids ? `${ids.length} listed` : `the oldest ${limit}`;
    if (!(await confirm(`delete ${what} dead letters of queue ${q.name} for good?`))) {
      process.stderr.write('sluice: nothing purged\n');
      return EXIT.unhealthy;
    }
  }
  const purged = await q.purgeDeadLetters(ids ? { ids } : { limit: limit! });
  context.out.print(
    { action, queue: q.name, dryRun: false, purged },
    () => `purged ${plural(purged, 'dead letter')} of queue ${q.name}`,
  );
};

const pauseOrResume =
  (paused: boolean): Command =>
  async (context) => {
    const q = openQueue(context, arg(context, 0, 'queue name'));
    await (paused ? q.pause() : q.resume());
    context.out.print({ queue: q.name, paused }, () => `queue ${q.name} ${paused ? 'paused' : 'resumed'}`);
  };

const send: Command = async (context) => {
  const name = arg(context, 0, 'queue name');
  const text = arg(context, 1, 'payload (JSON)');
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    throw new ValidationError('payload', `the payload must be JSON, like '{"orderId":1}': ${(error as Error).message}`);
  }
  const { values } = context;
  const options: SendOptions = {};
  if (values.priority !== undefined) {
    options.priority = (/^\d+$/.test(values.priority) ? Number(values.priority) : values.priority) as never;
  }
  if (values['delay-ms'] !== undefined) options.delayMs = intOption(values, 'delay-ms', 0);
  if (values['partition-key'] !== undefined) options.partitionKey = values['partition-key'];
  if (values['dedup-key'] !== undefined) options.dedupKey = values['dedup-key'];
  if (values.type !== undefined) options.type = values.type;
  if (values.id !== undefined) options.id = values.id;
  // The one command that writes a message creates the queue: it is registered for discovery.
  const q = new Queue(name, { connection: context.redis, prefix: context.prefix });
  const id = await q.send(payload, options);
  context.out.print({ queue: name, id }, () => id);
};

const subs: Command = async (context) => {
  const bus = openBus(context, arg(context, 0, 'bus name'));
  const subscriptions = await bus.listSubscriptions();
  const rows = await Promise.all(
    subscriptions.map(async (subscription) => ({
      ...subscription,
      queue: await bus.subscriberQueue(subscription.subscriberId).getStats(),
    })),
  );
  context.out.print(rows, () =>
    table(
      ['SUBSCRIBER', 'PATTERNS', 'ACTIVE', 'READY', 'INFLIGHT', 'DELAYED', 'DLQ', 'OLDEST'],
      rows.map((row) => [
        row.subscriberId,
        row.patterns.join(' '),
        row.active ? 'yes' : 'no',
        readyTotal(row.queue),
        row.queue.inflight,
        row.queue.delayed,
        row.queue.deadLetters,
        duration(row.queue.oldestReadyAgeMs),
      ]),
    ),
  );
};

const jobs: Command = async (context) => {
  const scheduler = new Scheduler({ connection: context.redis, prefix: context.prefix });
  try {
    const action = context.args[0];
    if (action !== undefined) {
      if (action !== 'pause' && action !== 'resume' && action !== 'restart') {
        throw new ValidationError(
          'jobs action',
          `jobs takes pause, resume or restart <name>, got ${JSON.stringify(action)}`,
        );
      }
      const name = arg(context, 1, 'job name');
      await (action === 'pause'
        ? scheduler.pauseJob(name)
        : action === 'resume'
          ? scheduler.resumeJob(name)
          : scheduler.restartJob(name));
      context.out.print({ job: name, action }, () => `job ${name}: ${action} done`);
      return;
    }
    const statuses = await scheduler.getAllJobsStatus();
    context.out.print(statuses, () =>
      table(
        ['JOB', 'SCHEDULE', 'STATE', 'PAUSED', 'NEXT RUN', 'LAST FINISHED', 'RUNS', 'FAILURES', 'LAST ERROR'],
        statuses.map((job) => [
          job.name,
          job.schedule ?? '-',
          job.state,
          job.paused ? 'yes' : 'no',
          time(job.nextRunAt),
          time(job.lastFinishedAt),
          job.runCount,
          job.failureCount,
          short(job.lastError ?? '-', 40),
        ]),
      ),
    );
  } finally {
    await scheduler.close({ graceMs: 0 });
  }
};

const locks: Command = async (context) => {
  const found = await discover(context.redis, {
    prefix: context.prefix,
    scanLimit: intOption(context.values, 'scan-limit', 10_000),
  });
  const service = new Locks({ connection: context.redis, prefix: context.prefix });
  const statuses = await Promise.all(found.locks.map((name) => service.status(name)));
  context.out.print(statuses, () =>
    table(
      ['LOCK', 'HELD', 'HOLDER', 'TTL', 'FENCE'],
      statuses.map((lock) => [
        lock.name,
        lock.held ? 'yes' : 'no',
        lock.holder ?? '-',
        duration(lock.ttlMs),
        lock.fence,
      ]),
    ),
  );
};

const events: Command = async (context) => {
  const action = arg(context, 0, 'events action (tail)');
  if (action !== 'tail') throw new ValidationError('events action', `events takes tail, got ${JSON.stringify(action)}`);
  return eventsTail(context, openBus(context, arg(context, 1, 'bus name')), context.args[2]);
};

export const COMMANDS: Record<string, Command> = {
  status,
  queue,
  peek,
  message,
  dlq,
  pause: pauseOrResume(true),
  resume: pauseOrResume(false),
  send,
  events,
  subs,
  jobs,
  locks,
  outbox: outboxCommand,
  doctor,
  bench,
  dashboard: dashboardCommand,
};

/** `1 queue`, `2 queues`. */
function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
