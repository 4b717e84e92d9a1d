/**
 * The chaos suite: a queue, an event bus and a lock under load while processes, connections and Redis are
 * killed, then an accounting of every message, event and lock grant (see test/chaos/README in the report
 * and the README's guarantees section).
 *
 * It starts its own redis-server on a free 127.0.0.1 port with AOF `appendfsync always` in a temporary
 * directory, kills and restarts it on the same port and directory, and stops it by PID at the end. Every
 * process records what it does to its own file (test/chaos/record.ts), so the record survives the kills.
 *
 * Used by `npm run chaos` (test/chaos/run.ts, 100,000 messages) and test/chaos.test.ts (10,000).
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { EventBus, Queue } from '../../src/index.js';
import { lockKeys, queueKey } from '../../src/keys.js';
import type { RecordLine } from './record.js';
import { RETRY, type WorkerConfig } from './worker-config.js';
import { outstanding } from '../stats.js';

export interface ChaosOptions {
  /** messages sent to the queue (default 10,000) */
  messages?: number;
  /** events published on the bus (default messages / 10) */
  events?: number;
  /** messages per second the producer sends (default 500) */
  rate?: number;
  /** a fault every this many ms while the load runs (default 1,000) */
  faultEveryMs?: number;
  /**
   * besides, a CLIENT KILL every this many ms (default 250): each one drops the replies Redis had not yet
   * written (with appendfsync always, replies wait for the fsync), so that ioredis re-sends script calls
   * that already ran
   */
  clientKillEveryMs?: number;
  visibilityMs?: number;
  handlerTimeoutMs?: number;
  /** how long the drain after the load may take before what is left counts as lost (default 120 s) */
  drainTimeoutMs?: number;
  /** progress lines on stderr (default true) */
  log?: boolean;
}

/** One line of the accounting of a queue (the queue, or one subscriber's queue of the bus). */
export interface QueueAccount {
  name: string;
  /** ids (queue) or events × matching subscribers (bus) whose send or publish resolved */
  sent: number;
  /** sends (publishes) that rejected and were retried by the caller */
  sendsRejected: number;
  /** messages that were written although their send rejected (delivered or dead-lettered anyway) */
  writtenThoughRejected: number;
  /** messages written by Redis's own count (queue counter `sent`) beyond the distinct ids the accounting knows */
  extraCopies: number;
  deliveries: number;
  acked: number;
  /** of `acked`: the last delivery's ack answer was lost or stale, but the message is gone from Redis */
  ackedUnconfirmed: number;
  dlq: number;
  /** sent, and neither acked nor in the DLQ after the drain */
  lost: number;
  /** keys whose last delivery failed (to be retried) and that were never delivered again nor dead-lettered */
  vanishedRetries: number;
  /** redeliveries after the handler threw (retries: not duplicates) */
  retries: number;
  duplicatesExplained: number;
  duplicatesUnexplained: number;
  /** explained duplicates by cause */
  explainedBy: Record<string, number>;
  /** ids delivered under two receipts whose leases were both valid at one moment */
  doubleLeases: number;
  /** of doubleLeases: seen by sampling the in-flight set in Redis */
  doubleLeasesSampled: number;
  examples: string[];
}

export interface LockAccount {
  grants: number;
  /** acquisitions that gave up because the lock stayed held */
  unavailable: number;
  /** pairs of holders whose claimed holding times overlap */
  overlaps: number;
  /** grants whose fence is not greater than that of a grant received before their call was made */
  fenceOrderViolations: number;
  /** fences handed out twice */
  duplicateFences: number;
  /** writes the fenced resource refused (fence lower than one it had accepted: a holder past its lease) */
  staleWritesRefused: number;
  writes: number;
  /** fences Redis handed out (the fence counter): more than `grants` when a grant reached no caller */
  fencesIssued: number;
  /** fencesIssued - grants: grants no caller received (a lost reply, or a contender killed while it asked) */
  fencesUnreceived: number;
  /** lock contender processes killed (each runs two contenders) */
  contendersKilled: number;
  examples: string[];
}

export interface ChaosReport {
  options: Required<Omit<ChaosOptions, 'log'>>;
  seconds: number;
  faults: Record<string, number>;
  queue: QueueAccount;
  bus: QueueAccount[];
  /** publishes of a new event id answered `duplicate: true` on their first attempt */
  publishMisreported: number;
  locks: LockAccount;
  /** totals over the queue and the bus */
  total: {
    sent: number;
    acked: number;
    dlq: number;
    lost: number;
    duplicatesExplained: number;
    duplicatesUnexplained: number;
    doubleLeases: number;
    extraCopies: number;
    vanishedRetries: number;
  };
  table: string;
  /** the directory with the records and the AOF, kept when the run found a problem */
  dir: string | null;
}

const QUEUE = 'chaos';
const BUS = 'chaosbus';
const LOCK = 'chaos-lock';
/** subscriber id -> patterns; events alternate between order.created and user.updated */
const SUBSCRIBERS: Record<string, string> = { all: '#', orders: 'order.*' };
const POISON_EVERY = 97;
const MAX_RETRIES = 5;

// The worker runs compiled (npm test and npm run chaos build first), also when this file runs from source.
const here = fileURLToPath(import.meta.url);
const WORKER = here.endsWith('.ts')
  ? fileURLToPath(new URL('../../dist/test/chaos/worker.js', import.meta.url))
  : fileURLToPath(new URL('./worker.js', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** The run's own redis-server: AOF with fsync before every reply, on a fixed port and directory. */
class RedisProcess {
  child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.port, '127.0.0.1', {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    probe.on('error', () => undefined);
    const deadline = Date.now() + 30_000;
    try {
      for (;;) {
        try {
          if (probe.status !== 'ready') await probe.connect();
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          probe.disconnect();
        }
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 30 s`);
        if (this.child.exitCode !== null)
          throw new Error(`redis-server on port ${this.port} exited (${this.child.exitCode})`);
        await sleep(20);
      }
    } finally {
      probe.disconnect();
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

interface Worker {
  slot: string;
  config: WorkerConfig;
  child: ChildProcess;
  exited: Promise<void>;
}

interface Delivery {
  key: string;
  id: string;
  receipt: number;
  pid: number;
  dequeuedAt: number;
  start: number;
  attempts: number;
  outcome?: 'ok' | 'threw' | 'timeout';
  endAt?: number;
  ack?: { ok: boolean; sentAt: number };
  ackError?: boolean;
  nack?: { result: string; sentAt: number };
  release?: { ok: boolean; sentAt: number };
  /** a lower bound of the lease's deadline: the dequeue call or the last extension that Redis accepted, + visibility */
  extendedUntil: number;
  /** when the first ack, nack or release of it was sent, whatever the answer (it may have ended the lease) */
  firstSettleAt?: number;
  staleAt?: number;
}

/** Runs the suite; whatever happens, the processes and the redis-server it started are gone when it returns. */
export async function runChaos(input: ChaosOptions = {}): Promise<ChaosReport> {
  const started: Started = { redis: null, workers: new Set() };
  try {
    return await chaos(input, started);
  } catch (error) {
    for (const worker of started.workers) worker.child.kill('SIGKILL');
    await started.redis?.kill();
    throw error;
  }
}

interface Started {
  redis: RedisProcess | null;
  workers: Set<Worker>;
}

async function chaos(input: ChaosOptions, started: Started): Promise<ChaosReport> {
  const messages = input.messages ?? 10_000;
  const options = {
    messages,
    events: input.events ?? Math.round(messages / 10),
    rate: input.rate ?? 500,
    faultEveryMs: input.faultEveryMs ?? 1_000,
    clientKillEveryMs: input.clientKillEveryMs ?? 250,
    visibilityMs: input.visibilityMs ?? 1_500,
    handlerTimeoutMs: input.handlerTimeoutMs ?? 300,
    drainTimeoutMs: input.drainTimeoutMs ?? 120_000,
  };
  const log =
    input.log === false
      ? () => undefined
      : (text: string) => process.stderr.write(`[chaos ${((Date.now() - began) / 1000).toFixed(1)}s] ${text}\n`);
  const began = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-chaos-'));
  const dataDir = join(dir, 'redis');
  const recordDir = join(dir, 'records');
  for (const d of [dataDir, recordDir]) mkdirSync(d, { recursive: true });
  const redis = new RedisProcess(await freePort(), dataDir);
  started.redis = redis;
  await redis.start();
  const url = `redis://127.0.0.1:${redis.port}`;
  const prefix = 'chaos';
  log(`redis-server on ${url}, AOF appendfsync always in ${dataDir}`);

  const faults: Record<string, number> = {};
  const killedAt = new Map<number, number>();
  /** times when Redis was down or connections were dropped: [from, to] */
  const outages: [number, number][] = [];
  const workers = started.workers;
  let fileSeq = 0;
  let stopped = false;

  const control = new Redis(url, { connectionName: 'chaos:control' });
  control.on('error', () => undefined);
  const producerClient = new Redis(url, { connectionName: 'chaos:producer' });
  producerClient.on('error', () => undefined);
  const producer = new Queue<{ n: number }>(QUEUE, {
    connection: producerClient,
    prefix,
    retry: RETRY,
    defaultMaxRetries: MAX_RETRIES,
  });
  const bus = new EventBus(BUS, { connection: control, prefix, retry: RETRY });
  for (const [id, pattern] of Object.entries(SUBSCRIBERS))
    await bus.subscribe(id, pattern, { maxRetries: MAX_RETRIES });
  const queueBases = [producer.baseKey, ...Object.keys(SUBSCRIBERS).map((id) => bus.subscriberQueue(id).baseKey)];

  const base: Omit<WorkerConfig, 'role' | 'record' | 'name'> = {
    url,
    prefix,
    concurrency: 24,
    visibilityMs: options.visibilityMs,
    handlerTimeoutMs: options.handlerTimeoutMs,
    throwRate: 0.03,
    hangRate: 0.01,
    poisonEvery: POISON_EVERY,
    maxRetries: MAX_RETRIES,
  };
  const startWorker = (slot: string, config: Omit<WorkerConfig, 'record'>): Worker => {
    const full: WorkerConfig = { ...config, record: join(recordDir, `${slot}.${fileSeq++}.jsonl`) };
    const child = fork(WORKER, [], {
      env: { ...process.env, CHAOS_WORKER: JSON.stringify(full) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('error', () => undefined);
    const worker: Worker = { slot, config: full, child, exited: once(child, 'exit').then(() => undefined) };
    workers.add(worker);
    void worker.exited.then(() => workers.delete(worker));
    return worker;
  };
  const perPublisher = Math.ceil(options.events / 2);
  const loadSeconds = options.messages / options.rate;
  const slots: Record<string, Omit<WorkerConfig, 'record'>> = {
    q0: { ...base, role: 'queue', name: QUEUE },
    q1: { ...base, role: 'queue', name: QUEUE },
    q2: { ...base, role: 'queue', name: QUEUE },
    b0: { ...base, role: 'bus', name: BUS, subscribers: Object.keys(SUBSCRIBERS) },
    b1: { ...base, role: 'bus', name: BUS, subscribers: Object.keys(SUBSCRIBERS) },
    p0: { ...base, role: 'publisher', name: BUS, from: 0, to: perPublisher, rate: perPublisher / loadSeconds },
    p1: {
      ...base,
      role: 'publisher',
      name: BUS,
      from: perPublisher,
      to: options.events,
      rate: (options.events - perPublisher) / loadSeconds,
    },
    l0: { ...base, role: 'locks', name: LOCK, ttlMs: 1_000 },
    l1: { ...base, role: 'locks', name: LOCK, ttlMs: 1_000 },
  };
  for (const [slot, config] of Object.entries(slots)) startWorker(slot, config);
  const publishersDone = new Set<string>();
  const watchPublisher = (worker: Worker) =>
    worker.child.on('message', (m) => m === 'done' && publishersDone.add(worker.slot));
  for (const w of workers) if (w.config.role === 'publisher') watchPublisher(w);

  /** The first event a restarted publisher must (re)publish: the lowest of its range with no answer yet. */
  const publisherResume = (slot: string): number => {
    const config = slots[slot]!;
    const answered = new Set<string>();
    for (const file of readdirSync(recordDir).filter((f) => f.startsWith(`${slot}.`))) {
      for (const line of readLines(join(recordDir, file))) if (line[0] === 'PR') answered.add(String(line[1]));
    }
    let n = config.from!;
    while (n < config.to! && answered.has(`e-${n}`)) n++;
    return n;
  };

  const restart = (worker: Worker, delayMs: number) => {
    setTimeout(() => {
      if (stopped) return;
      if (worker.config.role === 'publisher') {
        const from = publisherResume(worker.slot);
        if (from >= worker.config.to!) {
          publishersDone.add(worker.slot);
          return;
        }
        watchPublisher(startWorker(worker.slot, { ...slots[worker.slot]!, from }));
      } else {
        startWorker(worker.slot, slots[worker.slot]!);
      }
    }, delayMs);
  };
  const killOne = (role: WorkerConfig['role']) => {
    const candidates = [...workers].filter(
      (w) => w.config.role === role && w.child.exitCode === null && !publishersDone.has(w.slot),
    );
    const victim = candidates[Math.floor(Math.random() * candidates.length)];
    if (!victim) return;
    killedAt.set(victim.child.pid!, Date.now());
    victim.child.kill('SIGKILL');
    faults[`SIGKILL ${role}`] = (faults[`SIGKILL ${role}`] ?? 0) + 1;
    restart(victim, 200 + Math.floor(Math.random() * 300));
  };
  const clientKill = async (byName: boolean) => {
    const at = Date.now();
    try {
      if (byName) {
        const list = (await control.client('LIST')) as string;
        const ids = list
          .split('\n')
          .filter(
            (line) =>
              /name=(sluice:consumer:|chaos:(queue|bus|publisher|locks|producer))/.test(line) && Math.random() < 0.5,
          )
          .map((line) => /id=(\d+)/.exec(line)?.[1])
          .filter((id): id is string => id !== undefined);
        for (const id of ids) await control.client('KILL', 'ID', id).catch(() => undefined);
        faults['CLIENT KILL ID (by name)'] = (faults['CLIENT KILL ID (by name)'] ?? 0) + 1;
      } else {
        await control.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        faults['CLIENT KILL TYPE normal'] = (faults['CLIENT KILL TYPE normal'] ?? 0) + 1;
      }
    } catch {
      // Redis is down: nothing to kill
    }
    outages.push([at, Date.now()]);
  };
  let restarts = 0;
  const restartRedis = async () => {
    // Every other restart keeps Redis down longer than the visibility timeout, so leases run out meanwhile.
    const downMs = restarts++ % 2 === 0 ? 200 + Math.floor(Math.random() * 400) : options.visibilityMs + 500;
    const from = Date.now();
    await redis.kill();
    await sleep(downMs);
    await redis.start();
    outages.push([from, Date.now()]);
    faults['SIGKILL redis-server + restart'] = (faults['SIGKILL redis-server + restart'] ?? 0) + 1;
    log(`redis-server restarted after ${Date.now() - from} ms down`);
  };

  // Watch the in-flight sets from Redis's side: an id under two receipts at one moment is a double lease.
  const sampled = new Map<string, Set<string>>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const baseKey of queueBases) {
        try {
          const members = await control.zrange(queueKey(baseKey, 'inflight'), 0, -1);
          const seen = new Set<string>();
          for (const member of members) {
            const id = member.slice(0, member.lastIndexOf('|'));
            if (seen.has(id)) (sampled.get(baseKey) ?? sampled.set(baseKey, new Set()).get(baseKey)!).add(id);
            seen.add(id);
          }
        } catch {
          // Redis down
        }
      }
      await sleep(10);
    }
  })();

  // The producer: sends with generated ids at the given rate, 200 in flight at most; a rejected send is
  // retried by a new send of the same payload, as a caller would.
  const sentIds = new Set<string>();
  let sendsRejected = 0;
  const producing = (async () => {
    // Small windows often: many send script calls, each a chance for a CLIENT KILL to drop its reply.
    const window = Math.max(1, Math.round(options.rate / 25));
    for (let n = 0; n < options.messages; n += window) {
      const due = began + (n / options.rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      await Promise.all(
        Array.from({ length: Math.min(window, options.messages - n) }, async (_, i) => {
          for (let attempt = 0; attempt < 50; attempt++) {
            try {
              sentIds.add(await producer.send({ n: n + i }));
              return;
            } catch {
              sendsRejected++;
              await sleep(100);
            }
          }
        }),
      );
    }
  })();

  // Faults while the load runs, in a fixed rotation.
  const rotation: (() => unknown)[] = [
    () => killOne('queue'),
    () => clientKill(false),
    () => killOne('bus'),
    () => killOne('queue'),
    () => killOne('locks'),
    () => clientKill(true),
    () => killOne('publisher'),
    () => killOne('queue'),
    () => restartRedis(),
  ];
  let producerDone = false;
  void producing.then(() => (producerDone = true));
  let killing = true;
  const clientKills = (async () => {
    for (let n = 0; killing; n++) {
      await sleep(options.clientKillEveryMs);
      if (killing) await clientKill(n % 2 === 1);
    }
  })();
  let step = 0;
  // Bounded: the load should take messages / rate seconds; twice that plus a minute ends it whatever happens.
  const loadDeadline = began + loadSeconds * 2_000 + 60_000;
  while ((!producerDone || publishersDone.size < 2) && Date.now() < loadDeadline) {
    await sleep(options.faultEveryMs);
    if (producerDone && publishersDone.size >= 2) break;
    await rotation[step++ % rotation.length]!();
    if (step % rotation.length === 0) log(`sent ${sentIds.size}/${options.messages}, faults ${JSON.stringify(faults)}`);
  }
  if (!producerDone || publishersDone.size < 2) log('the load did not finish in time; draining what was sent');
  await Promise.race([producing, sleep(30_000)]);
  killing = false;
  await clientKills;
  log(`load done: ${sentIds.size} sends resolved, ${sendsRejected} rejected; draining`);

  // Drain: no more faults; wait until every queue is empty (or the drain deadline passes).
  const drainDeadline = Date.now() + options.drainTimeoutMs;
  const subscriberQueues = Object.keys(SUBSCRIBERS).map((id) => bus.subscriberQueue(id));
  for (;;) {
    let left = 0;
    try {
      for (const q of [producer, ...subscriberQueues]) {
        const s = await q.getStats();
        left += outstanding(s);
      }
    } catch {
      left = -1;
    }
    if (left === 0 || Date.now() > drainDeadline) break;
    await sleep(250);
  }
  stopped = true;
  sampling = false;
  await sampler;
  log('drained; stopping the workers');
  await Promise.all(
    [...workers].map(async (w) => {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.send('stop', () => undefined);
      const timer = setTimeout(() => {
        killedAt.set(w.child.pid!, Date.now());
        w.child.kill('SIGKILL');
      }, 15_000);
      await w.exited;
      clearTimeout(timer);
    }),
  );

  // What Redis holds at the end: dead letters, leftovers, the write counters.
  const endState = new Map<string, { dead: Set<string>; left: Set<string>; sentCounter: number }>();
  for (const q of [producer, ...subscriberQueues]) {
    const dead = new Set(await control.zrange(queueKey(q.baseKey, 'deadLetter'), 0, -1));
    const left = new Set<string>();
    for (const p of [1, 2, 3, 4] as const) {
      for (const rec of await control.lrange(queueKey(q.baseKey, `ready${p}`), 0, -1))
        left.add(rec.slice(0, rec.indexOf('|')));
    }
    for (const id of await control.zrange(queueKey(q.baseKey, 'delayed'), 0, -1)) left.add(id);
    for (const m of await control.zrange(queueKey(q.baseKey, 'inflight'), 0, -1))
      left.add(m.slice(0, m.lastIndexOf('|')));
    endState.set(q.name, { dead, left, sentCounter: (await q.getStats()).counters.sent });
  }
  const fencesIssued = Number((await control.hget(lockKeys(prefix, LOCK).fence, 'n')) ?? 0);
  await producer.close();
  await bus.close();
  producerClient.disconnect();
  control.disconnect();
  await redis.kill();

  // The accounting, from the records.
  const files = readdirSync(recordDir).map((f) => readLines(join(recordDir, f)));
  const byQueue = new Map<string, RecordLine[][]>();
  const lockLines: RecordLine[] = [];
  const publishLines: RecordLine[] = [];
  for (const lines of files) {
    const header = lines[0];
    if (!header || header[0] !== 'H') continue;
    const [, role, name] = header as [string, string, string, number];
    if (role === 'queue' || role === 'bus') byQueue.set(name, [...(byQueue.get(name) ?? []), lines]);
    else if (role === 'locks') lockLines.push(...lines);
    else if (role === 'publisher') publishLines.push(...lines);
  }

  const queueAccount = accountQueue(QUEUE, byQueue.get(QUEUE) ?? [], {
    expected: sentIds,
    rejected: sendsRejected,
    end: endState.get(QUEUE)!,
    sampled: sampled.get(producer.baseKey) ?? new Set(),
    killedAt,
    outages,
    visibilityMs: options.visibilityMs,
  });

  // Events: which publishes resolved, and whether a first attempt was told `duplicate`.
  const published = new Set<string>();
  const attempts = new Map<string, number>();
  let publishRejected = 0;
  let publishMisreported = 0;
  for (const line of publishLines)
    if (line[0] === 'P') attempts.set(String(line[1]), (attempts.get(String(line[1])) ?? 0) + 1);
  for (const line of publishLines) {
    const id = String(line[1]);
    if (line[0] === 'PE') publishRejected++;
    if (line[0] === 'PR') {
      published.add(id);
      if (line[3] === 1 && attempts.get(id) === 1) publishMisreported++;
    }
  }
  const busAccounts = Object.entries(SUBSCRIBERS).map(([sub, pattern]) => {
    const expected = new Set<string>();
    for (const id of published) {
      const n = Number(id.slice(2));
      if (pattern === '#' || n % 2 === 0) expected.add(`${sub}/${id}`);
    }
    const q = subscriberQueues.find((queue) => queue.name === sub)!;
    return accountQueue(sub, byQueue.get(sub) ?? [], {
      expected,
      rejected: publishRejected,
      end: endState.get(q.name)!,
      sampled: sampled.get(q.baseKey) ?? new Set(),
      killedAt,
      outages,
      visibilityMs: options.visibilityMs,
    });
  });
  const locks = accountLocks(lockLines, killedAt, 1_000);
  locks.fencesIssued = fencesIssued;
  locks.fencesUnreceived = fencesIssued - locks.grants;
  locks.contendersKilled = faults['SIGKILL locks'] ?? 0;

  const all = [queueAccount, ...busAccounts];
  const sum = (f: (a: QueueAccount) => number) => all.reduce((s, a) => s + f(a), 0);
  const total = {
    sent: sum((a) => a.sent),
    acked: sum((a) => a.acked),
    dlq: sum((a) => a.dlq),
    lost: sum((a) => a.lost),
    duplicatesExplained: sum((a) => a.duplicatesExplained),
    duplicatesUnexplained: sum((a) => a.duplicatesUnexplained) + publishMisreported,
    doubleLeases: sum((a) => a.doubleLeases),
    extraCopies: sum((a) => a.extraCopies),
    vanishedRetries: sum((a) => a.vanishedRetries),
  };
  const report: ChaosReport = {
    options,
    seconds: Math.round((Date.now() - began) / 100) / 10,
    faults,
    queue: queueAccount,
    bus: busAccounts,
    publishMisreported,
    locks,
    total,
    table: '',
    dir,
  };
  report.table = formatTable(report);
  const clean =
    total.lost === 0 &&
    total.duplicatesUnexplained === 0 &&
    total.doubleLeases === 0 &&
    total.extraCopies === 0 &&
    total.vanishedRetries === 0 &&
    publishMisreported === 0 &&
    locks.fencesUnreceived <= 2 * locks.contendersKilled &&
    locks.overlaps === 0 &&
    locks.fenceOrderViolations === 0 &&
    locks.duplicateFences === 0;
  if (clean && !process.env.CHAOS_KEEP) {
    rmSync(dir, { recursive: true, force: true });
    report.dir = null;
  }
  return report;
}

function readLines(path: string): RecordLine[] {
  const lines: RecordLine[] = [];
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (!text) continue;
    try {
      lines.push(JSON.parse(text) as RecordLine);
    } catch {
      // a line cut by SIGKILL cannot happen with one write(2) per line, but never fail the accounting on it
    }
  }
  return lines;
}

interface QueueContext {
  /** keys (message ids, or `subscriber/eventId`) whose send or publish resolved */
  expected: Set<string>;
  rejected: number;
  end: { dead: Set<string>; left: Set<string>; sentCounter: number };
  sampled: Set<string>;
  killedAt: Map<number, number>;
  outages: [number, number][];
  visibilityMs: number;
}

/** The accounting of one queue's deliveries; see QueueAccount. */
export function accountQueue(name: string, files: RecordLine[][], ctx: QueueContext): QueueAccount {
  const deliveries = new Map<number, Delivery>();
  const vis = ctx.visibilityMs;
  for (const lines of files) {
    const pid = Number(lines[0]![3]);
    for (const line of lines) {
      const kind = line[0];
      if (kind === 'S') {
        const [, key, id, receipt, dequeuedAt, start, attempts] = line as [
          string,
          string,
          string,
          string,
          number,
          number,
          number,
        ];
        deliveries.set(Number(receipt), {
          key,
          id,
          receipt: Number(receipt),
          pid,
          dequeuedAt,
          start,
          attempts,
          extendedUntil: (dequeuedAt || start) + vis,
        });
        continue;
      }
      if (kind === 'T') {
        for (const receipt of line.slice(2)) {
          const d = deliveries.get(Number(receipt));
          if (d) d.firstSettleAt = Math.min(d.firstSettleAt ?? Infinity, Number(line[1]));
        }
        continue;
      }
      const d = deliveries.get(Number(line[1]));
      if (!d) continue; // a delivery whose handler never started (the process died first), or a release of one
      if (['A', 'N', 'R', 'AE', 'NE', 'RE'].includes(String(kind)))
        d.firstSettleAt = Math.min(d.firstSettleAt ?? Infinity, Number(line[String(kind).length > 1 ? 2 : 3]));
      if (kind === 'E') {
        d.outcome = line[2] as Delivery['outcome'];
        d.endAt = Number(line[3]);
      } else if (kind === 'A') {
        if (!d.ack?.ok) d.ack = { ok: line[2] === 1, sentAt: Number(line[3]) };
        if (line[2] !== 1) d.staleAt ??= Number(line[3]);
      } else if (kind === 'N') {
        if (!d.nack || d.nack.result === '') d.nack = { result: String(line[2]), sentAt: Number(line[3]) };
        if (line[2] === '') d.staleAt ??= Number(line[3]);
      } else if (kind === 'X') {
        if (line[2] === 1) d.extendedUntil = Math.max(d.extendedUntil, Number(line[3]) + vis);
        else d.staleAt ??= Number(line[3]);
      } else if (kind === 'R') {
        d.release = { ok: line[2] === 1, sentAt: Number(line[3]) };
      } else if (kind === 'AE') {
        d.ackError = true;
      }
    }
  }

  /** a time until which this delivery's lease was surely valid in Redis */
  // Accepted by Redis: valid when that call ran, so at least until it was sent. Otherwise valid until its
  // deadline at least, unless a settle call ended it first (one whose answer was lost may have).
  const validUntil = (d: Delivery): number => {
    if (d.ack?.ok) return d.ack.sentAt;
    if (d.nack && d.nack.result !== '') return d.nack.sentAt;
    if (d.release?.ok) return d.release.sentAt;
    return Math.min(d.extendedUntil, d.firstSettleAt ?? Number.POSITIVE_INFINITY);
  };
  const killedWhileHeld = (d: Delivery) => {
    const at = ctx.killedAt.get(d.pid);
    return at !== undefined && at >= d.start;
  };

  const byKey = new Map<string, Delivery[]>();
  const byId = new Map<string, Delivery[]>();
  for (const d of deliveries.values()) {
    (byKey.get(d.key) ?? byKey.set(d.key, []).get(d.key)!).push(d);
    (byId.get(d.id) ?? byId.set(d.id, []).get(d.id)!).push(d);
  }
  const account: QueueAccount = {
    name,
    sent: ctx.expected.size,
    sendsRejected: ctx.rejected,
    writtenThoughRejected: 0,
    extraCopies: 0,
    deliveries: deliveries.size,
    acked: 0,
    ackedUnconfirmed: 0,
    dlq: 0,
    lost: 0,
    vanishedRetries: 0,
    retries: 0,
    duplicatesExplained: 0,
    duplicatesUnexplained: 0,
    explainedBy: {},
    doubleLeases: 0,
    doubleLeasesSampled: 0,
    examples: [],
  };
  // At most five examples of each kind (the text up to its first colon).
  const example = (text: string) => {
    const kind = text.slice(0, text.indexOf(':'));
    if (process.env.CHAOS_ALL_EXAMPLES || account.examples.filter((e) => e.startsWith(`${kind}:`)).length < 5)
      account.examples.push(text);
  };
  const explain = (cause: string) => {
    account.duplicatesExplained++;
    account.explainedBy[cause] = (account.explainedBy[cause] ?? 0) + 1;
  };

  // Double leases: two receipts of one id valid at one moment. A later receipt was handed out after the
  // earlier one (receipts grow); if its handler started while the earlier lease was surely still valid,
  // both were live at that moment.
  const doubled = new Set<string>(ctx.sampled);
  for (const [id, list] of byId) {
    list.sort((a, b) => a.receipt - b.receipt);
    for (let i = 1; i < list.length; i++) {
      const later = list[i]!;
      for (let j = 0; j < i; j++) {
        const earlier = list[j]!;
        if (later.start < validUntil(earlier) && later.start - (later.dequeuedAt || later.start) < vis) {
          if (!doubled.has(id))
            example(
              `double lease: ${id} receipt ${later.receipt} started at ${later.start} while receipt ${earlier.receipt} was valid until at least ${validUntil(earlier)}`,
            );
          doubled.add(id);
        }
      }
    }
  }
  account.doubleLeases = doubled.size;
  account.doubleLeasesSampled = ctx.sampled.size;

  // Duplicates: each redelivery of a key, classified by how the delivery before it ended.
  const outageNear = (from: number, to: number) => ctx.outages.some(([a, b]) => a <= to && b >= from);
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.receipt - b.receipt);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const next = list[i]!;
      if (prev.outcome === 'threw') {
        account.retries++;
      } else if (prev.outcome === 'timeout') {
        explain('handler timed out');
      } else if (prev.ack?.ok) {
        account.duplicatesUnexplained++;
        example(
          `unexplained duplicate: ${key} acked under receipt ${prev.receipt} (ack sent at ${prev.ack.sentAt}), delivered again under ${next.receipt} at ${next.start}`,
        );
      } else if (prev.nack?.result === 'dead-lettered') {
        account.duplicatesUnexplained++;
        example(
          `unexplained duplicate: ${key} dead-lettered under receipt ${prev.receipt}, delivered again under ${next.receipt}`,
        );
      } else if (next.start >= prev.extendedUntil) {
        // Redelivered only after the earlier lease may have run out: it was lost, not taken away.
        if (killedWhileHeld(prev)) explain('consumer process killed');
        else if (outageNear(prev.start - vis, next.start))
          explain(
            prev.ackError
              ? 'ack could not be written (Redis unreachable)'
              : 'lease ran out during a Redis outage or dropped connection',
          );
        else explain('lease ran out (process stalled)');
      } else {
        account.duplicatesUnexplained++;
        example(
          `unexplained duplicate: ${key} receipt ${prev.receipt} (outcome ${prev.outcome ?? 'none'}, ack ${JSON.stringify(prev.ack)}, nack ${JSON.stringify(prev.nack)}) then ${next.receipt}`,
        );
      }
    }
  }

  // Final state of every key.
  const keyOfId = new Map<string, string>();
  for (const d of deliveries.values()) keyOfId.set(d.id, d.key);
  const deadKeys = new Set<string>();
  for (const id of ctx.end.dead) deadKeys.add(keyOfId.get(id) ?? id);
  const leftKeys = new Set<string>();
  for (const id of ctx.end.left) leftKeys.add(keyOfId.get(id) ?? id);
  const seenKeys = new Set<string>([...byKey.keys(), ...deadKeys]);
  for (const key of seenKeys) if (!ctx.expected.has(key)) account.writtenThoughRejected++;
  // Redis counts every message it writes: more than the keys known means copies written twice.
  const distinctWritten = new Set([...ctx.expected, ...seenKeys]).size;
  if (name === QUEUE) account.extraCopies = Math.max(0, ctx.end.sentCounter - distinctWritten);
  else {
    // A subscriber queue's messages are event copies: one per event and subscriber.
    const ids = new Set<string>();
    for (const d of deliveries.values()) ids.add(d.id);
    for (const id of ctx.end.dead) ids.add(id);
    const copiesPerKey = new Map<string, number>();
    for (const id of ids) {
      const key = keyOfId.get(id);
      if (key) copiesPerKey.set(key, (copiesPerKey.get(key) ?? 0) + 1);
    }
    for (const [key, copies] of copiesPerKey) {
      if (copies > 1) {
        account.extraCopies += copies - 1;
        example(`extra copies: ${key} written as ${copies} messages`);
      }
    }
  }
  for (const key of new Set([...ctx.expected, ...seenKeys])) {
    const list = byKey.get(key) ?? [];
    const last = list[list.length - 1];
    if (
      last &&
      (last.outcome === 'threw' || last.outcome === 'timeout') &&
      last.nack?.result !== 'dead-lettered' &&
      !deadKeys.has(key) &&
      !leftKeys.has(key)
    ) {
      // Its failure was to be retried, yet it was never delivered again: a copy of the message vanished.
      account.vanishedRetries++;
      example(
        `vanished retry: ${key} failed under receipt ${last.receipt} (outcome ${last.outcome}, nack ${JSON.stringify(last.nack)}), never delivered again, not in the DLQ`,
      );
    }
    if (deadKeys.has(key)) {
      account.dlq++;
      if (list.some((d) => d.ack?.ok)) {
        account.duplicatesUnexplained++;
        example(`unexplained: ${key} acked and also dead-lettered`);
      }
    } else if (list.some((d) => d.ack?.ok)) {
      account.acked++;
    } else if (leftKeys.has(key)) {
      account.lost++;
      example(`lost: ${key} still in the queue after the drain`);
    } else if (list.some((d) => d.outcome === 'ok')) {
      // A handler succeeded; its ack's answer was lost or stale, and the message is gone from Redis: acked.
      account.acked++;
      account.ackedUnconfirmed++;
    } else if (ctx.expected.has(key)) {
      account.lost++;
      example(
        `lost: ${key} ${last ? `last delivered under receipt ${last.receipt} (outcome ${last.outcome ?? 'none'}, nack ${JSON.stringify(last.nack)})` : 'never delivered'}, not acked, not in the DLQ`,
      );
    }
  }
  return account;
}

interface Grant {
  lock: string;
  fence: number;
  pid: number;
  mode: string;
  callStart: number;
  grantedAt: number;
  endAt?: number;
  how?: string;
}

/** The accounting of the lock grants; see LockAccount. */
export function accountLocks(lines: RecordLine[], killedAt: Map<number, number>, ttlMs: number): LockAccount {
  const grants: Grant[] = [];
  const open = new Map<string, Grant>();
  const writes: { fence: number; at: number }[] = [];
  let unavailable = 0;
  let pid = 0;
  for (const line of lines) {
    if (line[0] === 'H') pid = Number(line[3]);
    else if (line[0] === 'G') {
      const g: Grant = {
        lock: String(line[1]),
        fence: Number(line[2]),
        pid,
        mode: String(line[3]),
        callStart: Number(line[4]),
        grantedAt: Number(line[5]),
      };
      grants.push(g);
      open.set(`${pid}/${g.fence}`, g);
    } else if (line[0] === 'L') {
      const g = open.get(`${pid}/${Number(line[2])}`);
      if (g) {
        g.how = String(line[3]);
        g.endAt = Number(line[4]);
      }
    } else if (line[0] === 'W') writes.push({ fence: Number(line[2]), at: Number(line[3]) });
    else if (line[0] === 'U') unavailable++;
  }
  const account: LockAccount = {
    grants: grants.length,
    unavailable,
    overlaps: 0,
    fenceOrderViolations: 0,
    duplicateFences: 0,
    staleWritesRefused: 0,
    writes: writes.length,
    fencesIssued: 0,
    fencesUnreceived: 0,
    contendersKilled: 0,
    examples: [],
  };
  const example = (text: string) => account.examples.length < 20 && account.examples.push(text);
  // A holder that never recorded its end was killed: it held the lock until its death at most, and by the
  // lock's contract no longer than the TTL after its call.
  const claimedEnd = (g: Grant) => {
    if (g.endAt !== undefined) return g.endAt;
    const killed = killedAt.get(g.pid);
    const bound = g.mode === 'acquire' ? g.callStart + ttlMs : Number.POSITIVE_INFINITY;
    return Math.min(killed ?? Number.POSITIVE_INFINITY, bound);
  };

  const fences = new Set<number>();
  for (const g of grants) {
    if (fences.has(g.fence)) {
      account.duplicateFences++;
      example(`fence ${g.fence} handed out twice`);
    }
    fences.add(g.fence);
  }
  // Overlaps: sorted by grant, each holder must have stopped before the next one was granted.
  const byGrant = [...grants].sort((a, b) => a.grantedAt - b.grantedAt);
  let holder: Grant | undefined;
  for (const g of byGrant) {
    if (holder && g.grantedAt < claimedEnd(holder)) {
      account.overlaps++;
      example(
        `overlap: fence ${g.fence} (pid ${g.pid}, ${g.mode}) granted at ${g.grantedAt} while fence ${holder.fence} (pid ${holder.pid}, ${holder.mode}) held until ${claimedEnd(holder)}`,
      );
    }
    if (!holder || claimedEnd(g) > claimedEnd(holder)) holder = g;
  }
  // Fence order: a grant asked for after another was received must carry a greater fence.
  const byCall = [...grants].sort((a, b) => a.callStart - b.callStart);
  let next = 0;
  let maxFence = -1;
  let maxGrant: Grant | undefined;
  for (const g of byCall) {
    while (next < byGrant.length && byGrant[next]!.grantedAt < g.callStart) {
      if (byGrant[next]!.fence > maxFence) {
        maxFence = byGrant[next]!.fence;
        maxGrant = byGrant[next];
      }
      next++;
    }
    if (g.fence <= maxFence) {
      account.fenceOrderViolations++;
      example(
        `fence order: fence ${g.fence} asked for at ${g.callStart}, after fence ${maxFence} was granted at ${maxGrant!.grantedAt}`,
      );
    }
  }
  // The fenced resource: accepts a write only with a fence at least the highest it has seen.
  let highest = -1;
  for (const w of writes.sort((a, b) => a.at - b.at)) {
    if (w.fence < highest) account.staleWritesRefused++;
    else highest = w.fence;
  }
  return account;
}

export function formatTable(r: ChaosReport): string {
  const rows: (string | number)[][] = [
    [
      'queue',
      'sent',
      'acked',
      'DLQ',
      'lost',
      'deliveries',
      'retries',
      'dup explained',
      'dup unexplained',
      'double leases',
      'extra copies',
      'sends rejected',
      'written though rejected',
    ],
  ];
  for (const a of [r.queue, ...r.bus]) {
    rows.push([
      a === r.queue ? `queue ${a.name}` : `bus subscriber ${a.name}`,
      a.sent,
      a.acked,
      a.dlq,
      a.lost,
      a.deliveries,
      a.retries,
      a.duplicatesExplained,
      a.duplicatesUnexplained,
      a.doubleLeases,
      a.extraCopies,
      a.sendsRejected,
      a.writtenThoughRejected,
    ]);
  }
  const t = r.total;
  rows.push([
    'total',
    t.sent,
    t.acked,
    t.dlq,
    t.lost,
    '',
    '',
    t.duplicatesExplained,
    t.duplicatesUnexplained,
    t.doubleLeases,
    t.extraCopies,
    '',
    '',
  ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => String(row[c]).length)));
  const line = (row: (string | number)[]) =>
    `| ${row.map((cell, c) => String(cell).padStart(widths[c]!)).join(' | ')} |`;
  const out = [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)];
  const explained: Record<string, number> = {};
  for (const a of [r.queue, ...r.bus])
    for (const [k, v] of Object.entries(a.explainedBy)) explained[k] = (explained[k] ?? 0) + v;
  const l = r.locks;
  out.push(
    '',
    `explained duplicates by cause: ${
      Object.entries(explained)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
    `acked with the ack's answer lost (message gone from Redis): ${[r.queue, ...r.bus].reduce((s, a) => s + a.ackedUnconfirmed, 0)}; retries that vanished (failed, never delivered again, not in the DLQ): ${r.total.vanishedRetries}`,
    `double leases seen in Redis's in-flight set: ${[r.queue, ...r.bus].reduce((s, a) => s + a.doubleLeasesSampled, 0)}; publishes of a new event told "duplicate": ${r.publishMisreported}`,
    `locks: ${l.grants} grants (${l.fencesIssued} fences issued, ${l.fencesUnreceived} reached no caller; ${l.contendersKilled} contender processes killed), ${l.unavailable} gave up, ${l.writes} writes, overlapping holders ${l.overlaps}, fence order violations ${l.fenceOrderViolations}, duplicate fences ${l.duplicateFences}, stale writes refused by the fence ${l.staleWritesRefused}`,
    `faults: ${Object.entries(r.faults)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ')}`,
    `${r.options.messages} messages, ${r.options.events} events, ${r.seconds} s`,
  );
  return out.join('\n');
}
