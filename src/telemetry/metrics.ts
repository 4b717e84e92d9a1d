// sluice/metrics: a Prometheus collector for prom-client (an optional peer dependency; only this entry
// loads it). Built on the public API only: each queue's getStats(), each bus's getStats(), outbox.stats()
// and scheduler.getAllJobsStatus(), read once per scrape and shared by every metric of that scrape.
import { Counter, Gauge, Histogram, register as globalRegister, type Registry } from 'prom-client';
import type { Cluster, Redis } from 'ioredis';
import {
  HandlerTimeoutError,
  ValidationError,
  type Consumer,
  type EventBus,
  type EventStats,
  type HandlerRun,
  type JobStatus,
  type QueueStats,
  type Scheduler,
} from '../index.js';
import type { Outbox } from '../outbox/index.js';
import { SnapshotReader, type AnyQueue, type MetricsSource, type Snapshot } from './snapshot.js';

export type { AnyQueue, MetricsSource } from './snapshot.js';
import { isIoredisClient } from '../client-shape.js';
import { checkOptions, describeValue, optionalBoolean, optionNames } from '../validate.js';

export interface MetricsOptions {
  /** the prom-client registry to register on (default: prom-client's global `register`) */
  register?: Registry;
  /** the client for queues and buses given by name (the collector never closes it) */
  connection?: Redis | Cluster;
  /** key prefix of queues and buses given by name (default `sluice`) */
  prefix?: string;
  /** queues to report, as names or Queue objects */
  queues?: MetricsSource<string | AnyQueue>;
  /** event buses to report, as names or EventBus objects */
  buses?: MetricsSource<string | EventBus>;
  /** report each bus subscriber's queue depth too: one more script call per subscriber per scrape (default true) */
  subscriberQueues?: boolean;
  /** outboxes whose pending rows and lag to report (two SQL queries each per scrape) */
  outboxes?: readonly Outbox[];
  /** a scheduler whose jobs to report (every job registered under its prefix, by any process) */
  scheduler?: Scheduler;
  /** buckets of sluice_handler_duration_seconds (default 1 ms .. 60 s) */
  handlerBuckets?: readonly number[];
  /** told about a source that could not be read during a scrape (default: console.error); its series are left out */
  onError?: (error: unknown, source: string) => void;
}

const METRICS_OPTIONS = optionNames<MetricsOptions>({
  register: true,
  connection: true,
  prefix: true,
  queues: true,
  buses: true,
  subscriberQueues: true,
  outboxes: true,
  scheduler: true,
  handlerBuckets: true,
  onError: true,
});

export const DEFAULT_HANDLER_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

type SetValue = (labels: Record<string, string>, value: number) => void;

const STATES = (stats: QueueStats): [string, number][] => [
  ['ready', stats.ready.critical + stats.ready.high + stats.ready.normal + stats.ready.low],
  ['inflight', stats.inflight],
  ['delayed', stats.delayed],
  ['dead', stats.deadLetters],
  ['backlog', stats.partitionBacklog],
];

const QUEUE_COUNTERS: [keyof QueueStats['counters'], string, string][] = [
  ['sent', 'sent', 'Messages sent to the queue'],
  ['delivered', 'delivered', 'Deliveries handed to consumers (a retried message counts once per delivery)'],
  ['acked', 'acked', 'Messages acked'],
  ['retried', 'retried', 'Failed attempts scheduled for a retry'],
  ['deadLettered', 'dead_lettered', 'Messages moved to the dead-letter queue'],
  ['reclaimed', 'reclaimed', 'Deliveries reclaimed after their visibility timeout passed'],
  ['replayed', 'replayed', 'Dead letters replayed into the queue'],
];

const BUS_COUNTERS: [string, (stats: EventStats) => number, string][] = [
  [
    'sluice_bus_published_events_total',
    (s) => s.events.published,
    'Events accepted by publish (duplicates not counted)',
  ],
  ['sluice_bus_delivered_events_total', (s) => s.events.delivered, 'Event copies placed into subscriber queues'],
  ['sluice_bus_duplicate_events_total', (s) => s.events.duplicates, 'Publishes refused as duplicates of a recent id'],
  ['sluice_bus_replayed_events_total', (s) => s.events.replayed, 'Events copied from history by replay'],
  ['sluice_bus_retried_deliveries_total', (s) => s.events.retried, 'Deliveries retried, over current subscribers'],
  [
    'sluice_bus_dead_lettered_deliveries_total',
    (s) => s.events.failed,
    "Deliveries that ended in a subscriber's dead-letter queue, over current subscribers",
  ],
];

/**
 * Registers sluice's metrics on a prom-client registry. Values are read when the registry is scraped: one
 * stats script call per queue (and per subscriber queue), one per bus, for all metrics of the scrape.
 * `observeConsumer` adds the handler duration histogram of a consumer running in this process.
 */
export class SluiceMetrics {
  readonly register: Registry;
  private readonly names: string[] = [];
  private readonly reader: SnapshotReader;
  private readonly outboxes: readonly Outbox[];
  private readonly onError: (error: unknown, source: string) => void;
  /** each job's last success seen by this collector, for when its latest run failed (see README) */
  private readonly lastSuccess = new Map<string, number>();
  private readonly handlerDuration: Histogram<'queue' | 'outcome'>;
  private readonly collectErrors: Counter<'source'>;

  constructor(options: MetricsOptions = {}) {
    checkOptions(options, METRICS_OPTIONS, 'new SluiceMetrics(options)');
    this.register = options.register ?? globalRegister;
    if (options.connection !== undefined && !isIoredisClient(options.connection)) {
      throw new ValidationError(
        'connection',
        `connection must be an ioredis client (the collector opens no connection of its own), got ${describeValue(options.connection)}`,
      );
    }
    this.outboxes = options.outboxes ?? [];
    this.reader = new SnapshotReader({
      connection: options.connection,
      prefix: options.prefix ?? 'sluice',
      queues: options.queues ?? [],
      buses: options.buses ?? [],
      subscriberQueues: optionalBoolean('subscriberQueues', options.subscriberQueues, true),
      outboxes: this.outboxes,
      scheduler: options.scheduler,
      failed: (error, what, source) => this.failed(error, what, source),
    });
    const buckets = handlerBuckets(options.handlerBuckets);
    if (this.register.getSingleMetric('sluice_queue_messages') !== undefined) {
      throw new ValidationError(
        'register',
        'sluice metrics are registered on this registry already: close() the other collector first, or pass a Registry of your own',
      );
    }
    this.onError =
      options.onError ??
      ((error, source) =>
        console.error(`[sluice] metrics: could not read ${source}:`, error instanceof Error ? error.message : error));

    this.defineQueueMetrics();
    this.defineBusMetrics();
    this.defineOutboxMetrics();
    this.defineSchedulerMetrics();
    this.handlerDuration = new Histogram({
      name: this.named('sluice_handler_duration_seconds'),
      help: 'Time handlers of consumers in this process took, by outcome (completed, failed, timeout)',
      labelNames: ['queue', 'outcome'],
      buckets,
      registers: [this.register],
    });
    this.collectErrors = new Counter({
      name: this.named('sluice_metrics_collect_errors_total'),
      help: 'Sources this collector could not read during a scrape (their series were left out)',
      labelNames: ['source'],
      registers: [this.register],
      // waits for the scrape's read, so that the failures of this scrape are in it
      collect: async () => {
        await this.reader.snapshot();
      },
    });
    this.gauge(
      'sluice_metrics_collect_duration_seconds',
      'Time the last scrape took to read every source',
      [],
      (s, set) => set({}, s.durationSeconds),
    );
  }

  /**
   * Observes how long the consumer's handlers run (sluice_handler_duration_seconds); `queue` labels it
   * (default: the consumer's queue name, the subscriber id for a bus consumer). Returns a function that stops.
   */
  observeConsumer<T>(consumer: Consumer<T>, options: { queue?: string } = {}): () => void {
    checkOptions(options, QUEUE_LABEL_OPTIONS, 'observeConsumer(consumer, options)');
    const queue = options.queue ?? consumer.queue.name;
    const completed = (_message: unknown, run: HandlerRun): void =>
      this.handlerDuration.observe({ queue, outcome: 'completed' }, run.durationMs / 1000);
    const failed = (_message: unknown, error: unknown, run?: HandlerRun): void => {
      if (run === undefined) return; // no handler ran
      const outcome = error instanceof HandlerTimeoutError ? 'timeout' : 'failed';
      this.handlerDuration.observe({ queue, outcome }, run.durationMs / 1000);
    };
    consumer.on('completed', completed);
    consumer.on('failed', failed);
    return () => {
      consumer.off('completed', completed);
      consumer.off('failed', failed);
    };
  }

  /** Removes this collector's metrics from the registry. Connections given to it stay open. */
  close(): void {
    for (const name of this.names) this.register.removeSingleMetric(name);
    this.names.length = 0;
  }

  private named(name: string): string {
    this.names.push(name);
    return name;
  }

  private failed(error: unknown, what: string, source: string): void {
    this.collectErrors.inc({ source });
    try {
      this.onError(error, what);
    } catch {
      // a throwing onError must not fail the scrape
    }
  }

  /**
   * A gauge set at scrape time from the snapshot. Values read from Redis or MySQL are the same in every
   * process, so prom-client's cluster aggregation takes the first worker's value rather than the sum.
   */
  private gauge(
    name: string,
    help: string,
    labelNames: string[],
    fill: (snapshot: Snapshot, set: SetValue) => void,
  ): void {
    new Gauge(
      this.fromSnapshot<Gauge>(name, help, labelNames, fill, (gauge, labels, value) => gauge.set(labels, value)),
    );
  }

  /**
   * A counter whose absolute value comes from Redis at scrape time (prom-client has no counter set():
   * reset, then one inc by the value, in the same turn). It is typed `counter` in the text format.
   */
  private counter(
    name: string,
    help: string,
    labelNames: string[],
    fill: (snapshot: Snapshot, set: SetValue) => void,
  ): void {
    new Counter(
      this.fromSnapshot<Counter>(name, help, labelNames, fill, (counter, labels, value) => counter.inc(labels, value)),
    );
  }

  /** The configuration of a metric whose values are all replaced from the scrape's snapshot. */
  private fromSnapshot<M extends Gauge | Counter>(
    name: string,
    help: string,
    labelNames: string[],
    fill: (snapshot: Snapshot, set: SetValue) => void,
    apply: (metric: M, labels: Record<string, string>, value: number) => void,
  ) {
    const read = (): Promise<Snapshot> => this.reader.snapshot();
    return {
      name: this.named(name),
      help,
      labelNames,
      aggregator: 'first' as const,
      registers: [this.register],
      async collect(this: M) {
        const snapshot = await read();
        this.reset();
        fill(snapshot, (labels, value) => apply(this, labels, value));
      },
    };
  }

  private defineQueueMetrics(): void {
    this.gauge(
      'sluice_queue_messages',
      'Messages in the queue by state: ready, inflight, delayed (delay or retry backoff), dead (DLQ), backlog (partition)',
      ['queue', 'state'],
      (s, set) => {
        for (const q of s.queues) for (const [state, n] of STATES(q)) set({ queue: q.name, state }, n);
      },
    );
    this.gauge('sluice_queue_ready_messages', 'Ready messages by priority', ['queue', 'priority'], (s, set) => {
      for (const q of s.queues) {
        for (const [priority, n] of Object.entries(q.ready)) set({ queue: q.name, priority }, n);
      }
    });
    this.gauge(
      'sluice_queue_oldest_ready_age_seconds',
      'How long the oldest ready message has waited for delivery (0 when none is ready)',
      ['queue'],
      (s, set) => {
        for (const q of s.queues) set({ queue: q.name }, (q.oldestReadyAgeMs ?? 0) / 1000);
      },
    );
    this.gauge('sluice_queue_paused', '1 while deliveries of the queue are paused', ['queue'], (s, set) => {
      for (const q of s.queues) set({ queue: q.name }, q.paused ? 1 : 0);
    });
    this.gauge(
      'sluice_queue_consumers',
      'Consumers running on the queue, in every process (heartbeat within its TTL)',
      ['queue'],
      (s, set) => {
        for (const q of s.queues) set({ queue: q.name }, q.consumers);
      },
    );
    for (const [field, name, help] of QUEUE_COUNTERS) {
      this.counter(
        `sluice_queue_${name}_messages_total`,
        `${help} (counted in Redis, by every process)`,
        ['queue'],
        (s, set) => {
          for (const q of s.queues) set({ queue: q.name }, q.counters[field]);
        },
      );
    }
  }

  private defineBusMetrics(): void {
    for (const [name, value, help] of BUS_COUNTERS) {
      this.counter(name, `${help} (counted in Redis, by every process)`, ['bus'], (s, set) => {
        for (const b of s.buses) set({ bus: b.name }, value(b.stats));
      });
    }
    this.gauge('sluice_bus_subscriptions', 'Subscriptions of the bus, active or paused', ['bus', 'state'], (s, set) => {
      for (const b of s.buses) {
        set({ bus: b.name, state: 'active' }, b.stats.activeSubscriptions);
        set({ bus: b.name, state: 'paused' }, b.stats.subscriptions - b.stats.activeSubscriptions);
      }
    });
    this.gauge(
      'sluice_bus_subscriber_messages',
      "Messages in a subscriber's queue by state (as sluice_queue_messages)",
      ['bus', 'subscriber', 'state'],
      (s, set) => {
        for (const b of s.buses) {
          for (const q of b.subscribers)
            for (const [state, n] of STATES(q)) set({ bus: b.name, subscriber: q.name, state }, n);
        }
      },
    );
    this.gauge(
      'sluice_bus_subscriber_oldest_ready_age_seconds',
      "How long the oldest ready event of a subscriber's queue has waited (0 when none is ready)",
      ['bus', 'subscriber'],
      (s, set) => {
        for (const b of s.buses) {
          for (const q of b.subscribers) set({ bus: b.name, subscriber: q.name }, (q.oldestReadyAgeMs ?? 0) / 1000);
        }
      },
    );
  }

  private defineOutboxMetrics(): void {
    this.gauge(
      'sluice_outbox_rows',
      'Outbox rows by status: pending, failed, published (until retention deletes them)',
      ['table', 'status'],
      (s, set) => {
        for (const o of s.outboxes) {
          set({ table: o.table, status: 'pending' }, o.stats.pending);
          set({ table: o.table, status: 'failed' }, o.stats.failed);
          set({ table: o.table, status: 'published' }, o.stats.published);
        }
      },
    );
    this.gauge(
      'sluice_outbox_lag_seconds',
      'Age of the oldest pending outbox row (0 when none is pending)',
      ['table'],
      (s, set) => {
        for (const o of s.outboxes) set({ table: o.table }, o.stats.oldestPendingAgeMs / 1000);
      },
    );
    const outboxes = this.outboxes;
    new Counter({
      name: this.named('sluice_outbox_relayed_events_total'),
      help: 'Events relayed by the outboxes of this process (per process: sum over processes)',
      labelNames: ['table'],
      registers: [this.register],
      collect() {
        this.reset();
        for (const outbox of outboxes) this.inc({ table: outbox.table }, outbox.relayedCount);
      },
    });
  }

  private defineSchedulerMetrics(): void {
    const seconds = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
    const each = (s: Snapshot, set: SetValue, value: (job: JobStatus) => number | null): void => {
      for (const job of s.jobs) {
        const v = value(job);
        if (v !== null) set({ job: job.name }, v);
      }
    };
    this.gauge(
      'sluice_scheduler_job_last_success_timestamp_seconds',
      'When the last successful run of the job finished (unix seconds, Redis clock)',
      ['job'],
      (s, set) =>
        each(s, set, (job) => {
          if (lastRunSucceeded(job) === true) this.lastSuccess.set(job.name, job.lastFinishedAt!);
          return seconds(this.lastSuccess.get(job.name) ?? null);
        }),
    );
    this.gauge(
      'sluice_scheduler_job_last_run_failed',
      '1 when the latest finished run of the job failed',
      ['job'],
      (s, set) => each(s, set, (job) => (lastRunSucceeded(job) === null ? null : lastRunSucceeded(job) ? 0 : 1)),
    );
    this.gauge(
      'sluice_scheduler_job_last_duration_seconds',
      'How long the last run of the job took',
      ['job'],
      (s, set) => each(s, set, (job) => seconds(job.lastDurationMs)),
    );
    this.gauge(
      'sluice_scheduler_job_next_run_timestamp_seconds',
      'The next tick of the job (unix seconds)',
      ['job'],
      (s, set) => each(s, set, (job) => seconds(job.nextRunAt)),
    );
    this.gauge('sluice_scheduler_job_paused', '1 while the job is paused', ['job'], (s, set) =>
      each(s, set, (job) => (job.paused ? 1 : 0)),
    );
    this.counter('sluice_scheduler_job_runs_total', 'Runs of the job started, by any process', ['job'], (s, set) =>
      each(s, set, (job) => job.runCount),
    );
    this.counter(
      'sluice_scheduler_job_failures_total',
      'Runs of the job that failed, in any process',
      ['job'],
      (s, set) => each(s, set, (job) => job.failureCount),
    );
  }
}

/**
 * Whether the job's latest finished run succeeded, null before its first: the scheduler's scripts keep
 * `lastError` exactly while the latest finished (or restarted) run failed, also while a new run is running.
 */
function lastRunSucceeded(job: JobStatus): boolean | null {
  if (job.lastError !== null) return false;
  return job.lastFinishedAt === null ? null : true;
}

const QUEUE_LABEL_OPTIONS = optionNames<{ queue?: string }>({ queue: true });

function handlerBuckets(buckets: unknown): number[] {
  if (buckets === undefined) return [...DEFAULT_HANDLER_BUCKETS];
  const fine =
    Array.isArray(buckets) &&
    buckets.length > 0 &&
    buckets.every((b, n) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (n === 0 || b > buckets[n - 1]));
  if (!fine) {
    throw new ValidationError(
      'handlerBuckets',
      `handlerBuckets must be increasing positive numbers of seconds, got ${describeValue(buckets)}`,
    );
  }
  return [...(buckets as number[])];
}

/** Registers sluice's metrics (see SluiceMetrics). */
export function createMetrics(options: MetricsOptions = {}): SluiceMetrics {
  return new SluiceMetrics(options);
}
