// What one scrape reads, for sluice/metrics: every source's stats, in parallel, once per scrape. A source
// that cannot be read is left out and reported; the rest of the scrape is served.
import type { Cluster, Redis } from 'ioredis';
import {
  EventBus,
  Queue,
  ValidationError,
  type EventStats,
  type JobStatus,
  type QueueStats,
  type Scheduler,
} from '../index.js';
import type { Outbox, OutboxStats } from '../outbox/index.js';
import { describeValue } from '../validate.js';

/** A queue of any payload type (its payload type is invariant; the collector reads only its stats). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyQueue = Queue<any>;

/** A fixed list, or a function called at every scrape (a `discover()` of what exists under a prefix, say). */
export type MetricsSource<T> = readonly T[] | (() => readonly T[] | Promise<readonly T[]>);

/** What one scrape read: every metric of the scrape is filled from it. */
export interface Snapshot {
  queues: QueueStats[];
  buses: { name: string; stats: EventStats; subscribers: QueueStats[] }[];
  outboxes: { table: string; stats: OutboxStats }[];
  jobs: JobStatus[];
  durationSeconds: number;
}

export interface SnapshotSources {
  connection: Redis | Cluster | undefined;
  prefix: string;
  queues: MetricsSource<string | AnyQueue>;
  buses: MetricsSource<string | EventBus>;
  subscriberQueues: boolean;
  outboxes: readonly Outbox[];
  scheduler: Scheduler | undefined;
  /** told about each source that could not be read; `source` is its kind (queue, bus, outbox, scheduler, discovery) */
  failed: (error: unknown, what: string, source: string) => void;
}

export class SnapshotReader {
  private readonly namedQueues = new Map<string, AnyQueue>();
  private readonly namedBuses = new Map<string, EventBus>();
  /** the scrape being read; shared by every metric's collect() until it settles */
  private current: Promise<Snapshot> | null = null;
  private readonly queueSource: MetricsSource<string | AnyQueue>;
  private readonly busSource: MetricsSource<string | EventBus>;
  private readonly outboxes: readonly Outbox[];
  private readonly scheduler: Scheduler | undefined;
  private readonly subscriberQueues: boolean;
  private readonly connection: Redis | Cluster | undefined;
  private readonly prefix: string;
  private readonly failed: SnapshotSources['failed'];

  constructor(sources: SnapshotSources) {
    this.queueSource = checkSource('queues', sources.queues, Queue, sources.connection);
    this.busSource = checkSource('buses', sources.buses, EventBus, sources.connection);
    if (!Array.isArray(sources.outboxes)) {
      throw new ValidationError(
        'outboxes',
        `outboxes must be an array of Outbox objects, got ${describeValue(sources.outboxes)}`,
      );
    }
    this.outboxes = sources.outboxes;
    this.scheduler = sources.scheduler;
    this.subscriberQueues = sources.subscriberQueues;
    this.connection = sources.connection;
    this.prefix = sources.prefix;
    this.failed = sources.failed;
  }

  /** One read per scrape: every collect() of the scrape (they start in the same turn) shares it. */
  snapshot(): Promise<Snapshot> {
    if (this.current === null) {
      const reading = this.read();
      this.current = reading;
      const done = (): void => {
        if (this.current === reading) this.current = null;
      };
      reading.then(done, done);
    }
    return this.current;
  }

  private async read(): Promise<Snapshot> {
    const started = performance.now();
    const [queues, buses, outboxes, jobs] = await Promise.all([
      this.readQueues(),
      this.readBuses(),
      Promise.all(
        this.outboxes.map((outbox) => this.attempt(`outbox ${outbox.table}`, 'outbox', () => outbox.stats())),
      ),
      this.scheduler ? this.attempt('scheduler jobs', 'scheduler', () => this.scheduler!.getAllJobsStatus()) : [],
    ]);
    return {
      queues,
      buses,
      outboxes: this.outboxes.flatMap((outbox, n) =>
        outboxes[n] ? [{ table: outbox.table, stats: outboxes[n] }] : [],
      ),
      jobs: jobs ?? [],
      durationSeconds: (performance.now() - started) / 1000,
    };
  }

  private async readQueues(): Promise<QueueStats[]> {
    const listed = await this.attempt('the queue list', 'discovery', () => resolveSource(this.queueSource));
    const queues = (listed ?? []).flatMap((item) => {
      try {
        return [this.queueOf(item)];
      } catch (error) {
        this.failed(error, `queue ${typeof item === 'string' ? item : describeValue(item)}`, 'queue');
        return [];
      }
    });
    const stats = await Promise.all(
      queues.map((queue) => this.attempt(`queue ${queue.name}`, 'queue', () => queue.getStats())),
    );
    return stats.filter((s) => s !== undefined);
  }

  private async readBuses(): Promise<Snapshot['buses']> {
    const listed = await this.attempt('the bus list', 'discovery', () => resolveSource(this.busSource));
    const read = async (item: string | EventBus): Promise<Snapshot['buses'][number] | undefined> => {
      const bus = this.busOf(item);
      const [stats, subscriptions] = await Promise.all([
        bus.getStats(),
        this.subscriberQueues ? bus.listSubscriptions() : [],
      ]);
      const subscribers = await Promise.all(
        subscriptions.map((s) =>
          this.attempt(`subscriber queue ${s.subscriberId} of bus ${bus.name}`, 'bus', () =>
            bus.subscriberQueue(s.subscriberId).getStats(),
          ),
        ),
      );
      return { name: bus.name, stats, subscribers: subscribers.filter((s) => s !== undefined) };
    };
    const buses = await Promise.all(
      (listed ?? []).map((item) =>
        this.attempt(`bus ${typeof item === 'string' ? item : item.name}`, 'bus', () => read(item)),
      ),
    );
    return buses.filter((b) => b !== undefined);
  }

  private async attempt<R>(what: string, source: string, read: () => R | Promise<R>): Promise<R | undefined> {
    try {
      return await read();
    } catch (error) {
      this.failed(error, what, source);
      return undefined;
    }
  }

  private queueOf(item: string | AnyQueue): AnyQueue {
    if (item instanceof Queue) return item;
    if (typeof item !== 'string') {
      throw new ValidationError('queues', `queues must list queue names or Queue objects, got ${describeValue(item)}`);
    }
    let queue = this.namedQueues.get(item);
    if (!queue) {
      // register: false: a scrape reads; it must not list a name it was given by mistake.
      queue = new Queue(item, { connection: this.requireConnection('queues'), prefix: this.prefix, register: false });
      this.namedQueues.set(item, queue);
    }
    return queue;
  }

  private busOf(item: string | EventBus): EventBus {
    if (item instanceof EventBus) return item;
    if (typeof item !== 'string') {
      throw new ValidationError('buses', `buses must list bus names or EventBus objects, got ${describeValue(item)}`);
    }
    let bus = this.namedBuses.get(item);
    if (!bus) {
      bus = new EventBus(item, { connection: this.requireConnection('buses'), prefix: this.prefix, register: false });
      this.namedBuses.set(item, bus);
    }
    return bus;
  }

  private requireConnection(field: string): Redis | Cluster {
    if (this.connection === undefined) {
      throw new ValidationError('connection', `${field} given by name need the connection option (an ioredis client)`);
    }
    return this.connection;
  }
}

async function resolveSource<T>(source: MetricsSource<T>): Promise<readonly T[]> {
  const listed = typeof source === 'function' ? await source() : source;
  if (!Array.isArray(listed)) {
    throw new ValidationError('source', `a metrics source must give an array, got ${describeValue(listed)}`);
  }
  return listed as readonly T[];
}

function checkSource<T>(
  field: string,
  source: unknown,
  kind: abstract new (...args: never[]) => unknown,
  connection: unknown,
): MetricsSource<T> {
  if (typeof source === 'function') return source as MetricsSource<T>;
  if (!Array.isArray(source)) {
    throw new ValidationError(
      field,
      `${field} must be an array or a function returning one, got ${describeValue(source)}`,
    );
  }
  source.forEach((item: unknown, n) => {
    if (item instanceof kind) return;
    if (typeof item !== 'string') {
      throw new ValidationError(field, `${field}[${n}] must be a name or a ${kind.name}, got ${describeValue(item)}`);
    }
    if (connection === undefined) {
      throw new ValidationError('connection', `${field} given by name need the connection option (an ioredis client)`);
    }
  });
  return source as MetricsSource<T>;
}
