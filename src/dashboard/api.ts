/**
 * What the dashboard reads and does, on the public API only (as the CLI is built): discovery, queue and bus
 * stats, bounded pages and searches, the scheduler's job table, lock status and the outbox. Every read is a
 * bounded script call or plain command; an overview of N queues and M buses is N + M script calls, sent
 * together on one connection.
 */
import type { Cluster, Redis } from 'ioredis';
import {
  discover,
  EventBus,
  Locks,
  Queue,
  Scheduler,
  ValidationError,
  type Discovery,
  type PeekedMessage,
  type PeekState,
  type QueueStats,
} from '../index.js';
import { DashboardError } from '../errors.js';
import type { Outbox } from '../outbox/index.js';

/** One sample of every queue's counters, for the throughput chart. */
interface Sample {
  at: number;
  counters: Map<string, { sent: number; acked: number; failed: number }>;
}

/** Sent, acked and failed (retried or dead-lettered) per second, summed over the queues, between two samples. */
export interface ThroughputPoint {
  at: number;
  sent: number;
  acked: number;
  failed: number;
}

export interface Warning {
  queue: string;
  kind: 'no-consumer' | 'paused-backlog' | 'dead-letters';
  message: string;
}

export type QueueRow = QueueStats & { sentPerSecond: number | null; ackedPerSecond: number | null };

export interface Overview {
  prefix: string;
  complete: boolean;
  queues: QueueRow[];
  buses: ({ name: string } & Awaited<ReturnType<EventBus['getStats']>>)[];
  throughput: ThroughputPoint[];
  warnings: Warning[];
  outbox: Awaited<ReturnType<Outbox['stats']>> | { error: string } | null;
}

/** How often the overview samples the counters (at most), and how long the chart reaches back. */
export const SAMPLE_EVERY_MS = 2_000;
export const CHART_WINDOW_MS = 10 * 60_000;
/** Discovery (a registry read plus a bounded SCAN) is cached this long. */
const DISCOVERY_TTL_MS = 10_000;
/** Search defaults: entries examined per call, matches per call. */
const SEARCH_SCAN_LIMIT = 2_000;

export const PEEK_STATES: readonly PeekState[] = ['ready', 'delayed', 'inflight', 'dead'];

export interface SearchFilter {
  id?: string;
  type?: string;
  partitionKey?: string;
  text?: string;
}

export class DashboardData {
  private readonly queues = new Map<string, Queue>();
  private readonly buses = new Map<string, EventBus>();
  private readonly subscriberQueues = new Map<string, Queue>();
  private readonly locks: Locks;
  private readonly scheduler: Scheduler;
  private discovery: { at: number; value: Promise<Discovery> } | null = null;
  private readonly types = new Map<string, { at: number; value: Promise<{ types: string[]; complete: boolean }> }>();
  private samples: Sample[] = [];

  constructor(
    private readonly client: Redis | Cluster,
    readonly prefix: string,
    private readonly outbox: Outbox | undefined,
    private readonly scanLimit: number,
  ) {
    this.locks = new Locks({ connection: client, prefix });
    this.scheduler = new Scheduler({ connection: client, prefix });
  }

  get hasOutbox(): boolean {
    return this.outbox !== undefined;
  }

  /**
   * A queue the dashboard reads or acts on; not registered for discovery (a mistyped name would be). The
   * objects are kept for the names last used, at most MAX_CACHED: names come from URLs, which anyone can make up.
   */
  queue(name: string): Queue {
    return cached(
      this.queues,
      name,
      () => new Queue(name, { connection: this.client, prefix: this.prefix, register: false }),
    );
  }

  bus(name: string): EventBus {
    return cached(
      this.buses,
      name,
      () => new EventBus(name, { connection: this.client, prefix: this.prefix, register: false }),
    );
  }

  /**
   * The queue a URL names, which must exist: a queue the discovery found (looked for again once, for one made
   * a moment ago), or with `bus`, the queue of one of that bus's subscribers. Anything else is NOT_FOUND, so a
   * typo in an address reads nothing and writes nothing.
   */
  async resolve(name: string, bus: string | null): Promise<Queue> {
    if (bus !== null) {
      const subscriptions = await this.bus(bus).listSubscriptions();
      if (!subscriptions.some((subscription) => subscription.subscriberId === name)) {
        throw new DashboardError('NOT_FOUND', `bus ${bus} has no subscriber ${name} under prefix ${this.prefix}`);
      }
      return cached(
        this.subscriberQueues,
        `${bus}\u0000${name}`,
        () => this.bus(bus).subscriberQueue(name) as unknown as Queue,
      );
    }
    if (!(await this.discover()).queues.includes(name)) {
      this.rediscover();
      if (!(await this.discover()).queues.includes(name)) {
        throw new DashboardError(
          'NOT_FOUND',
          `no queue ${name} under prefix ${this.prefix} (not in the registry nor found by the scan); check the name`,
        );
      }
    }
    return this.queue(name);
  }

  async requireBus(name: string): Promise<EventBus> {
    if (!(await this.discover()).buses.includes(name)) {
      this.rediscover();
      if (!(await this.discover()).buses.includes(name)) {
        throw new DashboardError('NOT_FOUND', `no event bus ${name} under prefix ${this.prefix}; check the name`);
      }
    }
    return this.bus(name);
  }

  async discover(): Promise<Discovery> {
    const now = Date.now();
    if (!this.discovery || now - this.discovery.at > DISCOVERY_TTL_MS) {
      const value = discover(this.client, { prefix: this.prefix, scanLimit: this.scanLimit });
      this.discovery = { at: now, value };
      value.catch(() => (this.discovery = null));
    }
    return await this.discovery.value;
  }

  /** Forget the cached discovery, so a queue created a moment ago shows at the next refresh. */
  rediscover(): void {
    this.discovery = null;
  }

  async overview(): Promise<Overview> {
    const found = await this.discover();
    const [stats, buses, outbox] = await Promise.all([
      Promise.all(found.queues.map((name) => this.queue(name).getStats())),
      Promise.all(found.buses.map(async (name) => ({ name, ...(await this.bus(name).getStats()) }))),
      this.outboxStats(),
    ]);
    this.sample(stats);
    const rates = this.latestRates();
    const queues = stats.map((row) => ({
      ...row,
      sentPerSecond: rates.get(row.name)?.sent ?? null,
      ackedPerSecond: rates.get(row.name)?.acked ?? null,
    }));
    return {
      prefix: this.prefix,
      complete: found.complete,
      queues,
      buses,
      throughput: this.throughput(),
      warnings: stats.flatMap(warningsOf),
      outbox,
    };
  }

  private async outboxStats(): Promise<Overview['outbox']> {
    if (!this.outbox) return null;
    try {
      return await this.outbox.stats();
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  private sample(stats: QueueStats[]): void {
    const at = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (last && at - last.at < SAMPLE_EVERY_MS) return;
    const counters = new Map<string, { sent: number; acked: number; failed: number }>();
    for (const row of stats) {
      const { sent, acked, retried, deadLettered } = row.counters;
      counters.set(row.name, { sent, acked, failed: retried + deadLettered });
    }
    this.samples.push({ at, counters });
    while (this.samples.length > 2 && at - this.samples[0]!.at > CHART_WINDOW_MS) this.samples.shift();
  }

  /** Per-second rates between each pair of samples, summed over the queues present in both. */
  private throughput(): ThroughputPoint[] {
    const points: ThroughputPoint[] = [];
    for (let n = 1; n < this.samples.length; n++) {
      const before = this.samples[n - 1]!;
      const after = this.samples[n]!;
      const seconds = (after.at - before.at) / 1000;
      const point = { at: after.at, sent: 0, acked: 0, failed: 0 };
      for (const [name, now] of after.counters) {
        const then = before.counters.get(name);
        if (!then) continue;
        // A counter that went down (the queue's keys were deleted) counts as no traffic, not negative.
        point.sent += Math.max(0, now.sent - then.sent) / seconds;
        point.acked += Math.max(0, now.acked - then.acked) / seconds;
        point.failed += Math.max(0, now.failed - then.failed) / seconds;
      }
      points.push({
        at: point.at,
        sent: round(point.sent),
        acked: round(point.acked),
        failed: round(point.failed),
      });
    }
    return points;
  }

  private latestRates(): Map<string, { sent: number; acked: number }> {
    const rates = new Map<string, { sent: number; acked: number }>();
    const after = this.samples[this.samples.length - 1];
    const before = this.samples[this.samples.length - 2];
    if (!after || !before) return rates;
    const seconds = (after.at - before.at) / 1000;
    for (const [name, now] of after.counters) {
      const then = before.counters.get(name);
      if (then) {
        rates.set(name, {
          sent: round(Math.max(0, now.sent - then.sent) / seconds),
          acked: round(Math.max(0, now.acked - then.acked) / seconds),
        });
      }
    }
    return rates;
  }

  async queueDetail(queue: Queue) {
    const [stats, consumers] = await Promise.all([queue.getStats(), queue.consumers()]);
    return { stats, consumers };
  }

  async messages(queue: Queue, state: PeekState, offset: number, limit: number) {
    return await queue.peek(state, { offset, limit });
  }

  /**
   * One bounded step of a search: by id it is one lookup; otherwise at most SEARCH_SCAN_LIMIT entries of
   * the state are examined from `cursor`, and the reply says where to go on.
   */
  async search(
    queue: Queue,
    state: PeekState,
    filter: SearchFilter,
    cursor: number,
    limit: number,
  ): Promise<{ matches: PeekedMessage[]; cursor: number | null; scanned: number }> {
    const { id, type, partitionKey, text } = filter;
    return await queue.search(
      {
        ...(id ? { id } : {}),
        ...(type ? { type } : {}),
        ...(partitionKey ? { partitionKey } : {}),
        ...(text ? { text } : {}),
      },
      { state, cursor, limit, scanLimit: SEARCH_SCAN_LIMIT },
    );
  }

  /**
   * The ids of every dead letter matching the filter, for "replay / purge all matching": bounded search
   * steps until the end of the dead-letter queue or `max` ids.
   */
  async matchingDeadLetters(queue: Queue, filter: SearchFilter, max: number): Promise<string[]> {
    const ids: string[] = [];
    let cursor: number | null = 0;
    while (cursor !== null && ids.length < max) {
      const page = await this.search(queue, 'dead', filter, cursor, Math.min(1000, max - ids.length));
      for (const match of page.matches) if (match.state === 'dead') ids.push(match.id);
      cursor = page.cursor;
    }
    return ids;
  }

  async busDetail(name: string) {
    const bus = await this.requireBus(name);
    const [stats, subscriptions, types] = await Promise.all([
      bus.getStats(),
      bus.listSubscriptions(),
      this.historyTypes(bus),
    ]);
    const withQueues = await Promise.all(
      subscriptions.map(async (subscription) => ({
        ...subscription,
        queue: await bus.subscriberQueue(subscription.subscriberId).getStats(),
      })),
    );
    return { name, stats, subscriptions: withQueues, types: types.types, typesComplete: types.complete };
  }

  /** The bus's event types (a bounded SCAN), cached as discovery is. */
  private historyTypes(bus: EventBus): Promise<{ types: string[]; complete: boolean }> {
    const now = Date.now();
    const known = this.types.get(bus.name);
    if (known && now - known.at <= DISCOVERY_TTL_MS) return known.value;
    const value = bus.historyTypes({ scanLimit: this.scanLimit });
    this.types.set(bus.name, { at: now, value });
    if (this.types.size > MAX_CACHED) this.types.delete(this.types.keys().next().value!);
    value.catch(() => this.types.delete(bus.name));
    return value;
  }

  async history(name: string, type: string, limit: number) {
    return await this.bus(name).history(type, { limit, reverse: true });
  }

  async jobs() {
    return await this.scheduler.getAllJobsStatus();
  }

  async jobAction(name: string, action: 'pause' | 'resume' | 'restart'): Promise<void> {
    if (action === 'pause') await this.scheduler.pauseJob(name);
    else if (action === 'resume') await this.scheduler.resumeJob(name);
    else await this.scheduler.restartJob(name);
  }

  async lockList() {
    const found = await this.discover();
    return await Promise.all(found.locks.map((name) => this.locks.status(name)));
  }

  async outboxDetail(limit: number) {
    const outbox = this.requireOutbox();
    const [stats, failed] = await Promise.all([outbox.stats(), outbox.listFailed({ limit })]);
    return { table: outbox.table, ...stats, failedRows: failed };
  }

  async outboxRetry(eventIds: string[] | undefined): Promise<number> {
    return await this.requireOutbox().retryFailed(eventIds ? { eventIds } : {});
  }

  private requireOutbox(): Outbox {
    if (!this.outbox) {
      throw new ValidationError(
        'outbox',
        'this dashboard has no outbox: pass outbox (an Outbox) to createDashboard, or --mysql-url to sluice dashboard',
      );
    }
    return this.outbox;
  }

  async close(): Promise<void> {
    await Promise.allSettled([
      ...[...this.queues.values()].map((queue) => queue.close()),
      ...[...this.buses.values()].map((bus) => bus.close()),
      ...[...this.subscriberQueues.values()].map((queue) => queue.close()),
      this.locks.close(),
      this.scheduler.close({ graceMs: 0 }),
    ]);
  }
}

/** Queue and bus objects kept per name, at most. */
const MAX_CACHED = 1_000;

/** The object for `name`, made by `make` when missing; the least recently used one is closed past MAX_CACHED. */
function cached<T extends { close(): Promise<void> }>(map: Map<string, T>, name: string, make: () => T): T {
  let value = map.get(name);
  if (value) {
    map.delete(name); // re-inserted below: the map's order is the order of use
  } else {
    value = make();
  }
  map.set(name, value);
  if (map.size > MAX_CACHED) {
    const [oldest, object] = map.entries().next().value!;
    map.delete(oldest);
    // Its client is the dashboard's, shared: closing the object releases nothing that can fail.
    void object.close().catch(() => undefined);
  }
  return value;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function readyTotal(stats: QueueStats): number {
  const { critical, high, normal, low } = stats.ready;
  return critical + high + normal + low;
}

function warningsOf(stats: QueueStats): Warning[] {
  const warnings: Warning[] = [];
  const ready = readyTotal(stats);
  if (ready > 0 && stats.consumers === 0 && !stats.paused) {
    warnings.push({
      queue: stats.name,
      kind: 'no-consumer',
      message: `${ready} ready and no consumer running: start one (queue.consume) or pause the queue`,
    });
  }
  if (ready > 0 && stats.paused) {
    warnings.push({
      queue: stats.name,
      kind: 'paused-backlog',
      message: `${ready} ready while the queue is paused: resume it to deliver them`,
    });
  }
  if (stats.deadLetters > 0) {
    warnings.push({
      queue: stats.name,
      kind: 'dead-letters',
      message: `${stats.deadLetters} in the dead-letter queue: replay or purge them`,
    });
  }
  return warnings;
}
