import { ValidationError } from './errors.js';

/**
 * The one definition of sluice's key layout.
 *
 * A queue lives under one base key whose whole text is a Redis Cluster hash tag, `{<prefix>:<name>}`,
 * so every key below it maps to the same slot. Scripts receive the base key as KEYS[1] and derive the
 * rest by appending these suffixes; the loader injects this table into every script (see scripts.ts),
 * so the layout is written here and nowhere else.
 */
export const QUEUE_KEY_SUFFIXES = {
  /** ready lists, one per priority (index 1 = LOW .. 4 = CRITICAL); entries are whole message records */
  ready1: ':r1',
  ready2: ':r2',
  ready3: ':r3',
  ready4: ':r4',
  /** delayed set: id scored by the time it becomes due (DELAYED and RETRY messages) */
  delayed: ':d',
  /** in-flight set: `id|receipt` scored by its visibility deadline */
  inflight: ':i',
  /** dead-letter set: id scored by the time it failed */
  deadLetter: ':x',
  /** records of messages that are delayed, in flight or dead-lettered (ready ones carry theirs inline) */
  records: ':m',
  /** last error per message id */
  errors: ':e',
  /** ids chosen by the sender that are still live (not acked or purged), so that none is used twice */
  liveIds: ':ids',
  /** partition key -> messages of that partition not yet acked or dead-lettered */
  partitions: ':pc',
  /** prefix of the per-partition backlog lists (messages waiting behind their partition's head) */
  backlogPrefix: ':p:',
  /** prefix of the deduplication keys */
  dedupPrefix: ':dd:',
  /** prefix of the processed marks of consumers with an idempotency guard: `<prefix><key>` -> message id, with its retention */
  processedPrefix: ':done:',
  /** settings shared by every process: paused, rate limit */
  meta: ':meta',
  /** rate-limit window counter */
  rateCounter: ':rl',
  /** counters: sent, delivered, acked, retried, deadLettered, reclaimed, replayed */
  stats: ':stats',
  /** wake-up tokens that idle consumers block on */
  wake: ':w',
  /** requests awaiting a reply (queue.request): message id scored by its deadline, ms by the Redis clock */
  requests: ':rq',
  /** prefix of the reply lists, one per requester (`<replyPrefix><requester id>`; entries `id|ok|text`) */
  replyPrefix: ':rp:',
  /**
   * running consumers: member `<id>|<ttl ms>|<JSON info>` (src/queue/presence.ts) scored by the time it counts
   * as gone (its last heartbeat plus its TTL, ms by the Redis clock); the key expires with its last member
   */
  consumers: ':consumers',
} as const;

export type QueueKeyName = keyof typeof QUEUE_KEY_SUFFIXES;

/**
 * The key layout of an event bus, under its base key `{<prefix>:bus/<name>}` (a whole hash tag, so one bus
 * is one Redis Cluster slot; `/` cannot occur in a queue name, so a bus never shares a queue's keys).
 * Injected into every script as BUS_KEY_SUFFIXES, like QUEUE_KEY_SUFFIXES.
 */
export const BUS_KEY_SUFFIXES = {
  /** hash: subscriber id -> subscription JSON {patterns, filter, maxRetries} */
  subscriptions: ':subs',
  /** set of paused subscriber ids (publish skips them) */
  paused: ':paused',
  /** prefix of the exact-type index: one set of subscriber ids per event type named by a wildcard-free pattern */
  exactPrefix: ':x:',
  /** set of subscriber ids with at least one wildcard pattern: the only ones a publish scans */
  wildcard: ':wild',
  /** prefix of the per-type history streams */
  historyPrefix: ':h:',
  /** prefix of the keys that remember published event ids for the deduplication window */
  dedupPrefix: ':dd:',
  /** counter numbering deliveries, so that every copy of an event has a message id unique in its queue */
  sequence: ':seq',
  /** counters: published, delivered, duplicates, replayed */
  stats: ':stats',
  /** prefix of subscriber queues: `<bus base><subscriberPrefix><subscriber id>` is a queue base key */
  subscriberPrefix: ':s:',
} as const;

export type BusKeyName = keyof typeof BUS_KEY_SUFFIXES;

/**
 * The reply memory of a request (lua/includes/request.lua): `<KEYS[1] of the script><suffix><request id>`.
 * KEYS[1] carries the hash tag, so the key shares the script's slot; `|` occurs in no name, so the key is
 * disjoint from every key built from names.
 */
export const REQUEST_KEY_SUFFIX = '|rq|';

/**
 * How long a request's reply is remembered when its caller does not confirm having read it (the reply was
 * lost, or it was the caller's last call): a re-send or retry of the same request within this window has
 * the effect of one call. Confirmed requests are forgotten by a later call of the caller (see CONFIRM_BATCH in
 * scripts.ts).
 */
export const REQUEST_TTL_MS = 5 * 60_000;

/** Names and prefixes: letters, digits and `_ - . :`; anything else could break the key layout. */
const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
export const MAX_NAME_LENGTH = 100;

export function validateName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(field, `${field} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw new ValidationError(field, `${field} must be at most ${MAX_NAME_LENGTH} characters, got ${value.length}`);
  }
  if (!NAME_PATTERN.test(value)) {
    throw new ValidationError(
      field,
      `${field} may contain only letters, digits and _ - . : (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

/**
 * A prefix is a name without `:`, so that `{prefix:name}` reads one way only: with `:` allowed in both,
 * queue `b:orders` under prefix `t` and queue `orders` under prefix `t:b` would share their keys.
 */
export function validatePrefix(value: unknown): string {
  validateName('prefix', value);
  if ((value as string).includes(':')) {
    throw new ValidationError(
      'prefix',
      `prefix may not contain ':' (got ${JSON.stringify(value)}); use - or . instead`,
    );
  }
  return value as string;
}

/** The hash-tagged base key of a queue: `{prefix:name}`. */
export function queueBaseKey(prefix: string, name: string): string {
  return `{${validatePrefix(prefix)}:${validateName('queue name', name)}}`;
}

/** The hash-tagged base key of an event bus: `{prefix:bus/name}`. */
export function busBaseKey(prefix: string, name: string): string {
  return `{${validatePrefix(prefix)}:bus/${validateName('bus name', name)}}`;
}

/** A key of an event bus, for the few places TypeScript reads one directly (history, listing). */
export function busKey(base: string, key: BusKeyName): string {
  return base + BUS_KEY_SUFFIXES[key];
}

/**
 * Subscriber ids are names without `:`, so that `<bus>:s:<id>` plus a queue suffix can never equal a key of
 * another subscriber's queue.
 */
const SUBSCRIBER_ID_PATTERN = /^[A-Za-z0-9_.-]+$/;

export function validateSubscriberId(value: unknown): string {
  validateName('subscriberId', value);
  if (!SUBSCRIBER_ID_PATTERN.test(value as string)) {
    throw new ValidationError(
      'subscriberId',
      `subscriberId may contain only letters, digits and _ - . (got ${JSON.stringify(value)})`,
    );
  }
  return value as string;
}

/** The base key of a subscriber's queue, under its bus's hash tag. */
export function subscriberQueueBaseKey(busBase: string, subscriberId: string): string {
  return busBase + BUS_KEY_SUFFIXES.subscriberPrefix + validateSubscriberId(subscriberId);
}

/** A base key given by the caller must start with a hash tag, so that every derived key shares its slot. */
export function requireTaggedKey(baseKey: string): string {
  if (typeof baseKey !== 'string' || !/^\{[^{}]+\}[^{}]*$/.test(baseKey) || baseKey.includes('|')) {
    throw new ValidationError(
      'baseKey',
      `baseKey must start with a hash tag such as {app:bus}, got ${describe(baseKey)}`,
    );
  }
  return baseKey;
}

/** A key of a queue, for the few places TypeScript touches a key directly (blocking on wake-ups, tests). */
export function queueKey(base: string, key: QueueKeyName): string {
  return base + QUEUE_KEY_SUFFIXES[key];
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

/**
 * A lock lives under its own hash tag, `{prefix:lock/<name>}`: that key holds the current holder's token
 * (with the lock's TTL) and `<that key>:fence` the lock's record, a hash that never expires: `n`, the
 * fencing counter, and `released`, the token of the last release (so that a repeated release is
 * recognised). Both are passed to the lock scripts as KEYS, so Lua never builds a key. As with a bus, the
 * `/` keeps locks and the scheduler apart from every queue: it cannot occur in a queue name.
 */
export function lockKeys(prefix: string, name: string): { holder: string; fence: string } {
  const holder = `{${validatePrefix(prefix)}:lock/${validateName('lock name', name)}}`;
  return { holder, fence: `${holder}:fence` };
}

/**
 * Every key of the scheduler shares the tag `{prefix:scheduler/}`, so one script can compare-and-set a
 * job's next run and take its run lock atomically, on Redis Cluster too.
 */
export function schedulerKeys(prefix: string): {
  jobs: string;
  status(job: string): string;
  runLock(job: string): string;
} {
  const base = `{${validatePrefix(prefix)}:scheduler/}`;
  return {
    /** set of the names of every job some process has registered */
    jobs: `${base}:jobs`,
    /** hash: a job's schedule, next run, pause flag and last run (see src/scheduler/status.ts) */
    status: (job) => `${base}:job:${validateName('job name', job)}`,
    /** string: the token of the run in progress, with the run lock's TTL */
    runLock: (job) => `${base}:run:${validateName('job name', job)}`,
  };
}

/**
 * A rate limiter key lives under its own hash tag, `{prefix:limit/<name>:<key>}`: a sorted set, the log of the
 * units taken in the window (lua/lock/rateTake.lua). The limiter's name may not contain `:`, so the key reads
 * one way only (name `a:b` with key `c` would otherwise share `a` with key `b:c`); the key itself is a name.
 */
export function limiterKey(prefix: string, name: string, key: string): string {
  validateName('limiter name', name);
  if (name.includes(':')) {
    throw new ValidationError(
      'limiter name',
      `limiter name may not contain ':' (got ${JSON.stringify(name)}); use - or . instead`,
    );
  }
  return `{${validatePrefix(prefix)}:limit/${name}:${validateName('key', key)}}`;
}

/** The kinds of object the registry lists (src/registry.ts), each one sorted set. */
export type RegistryKind = 'queues' | 'buses' | 'locks';

/**
 * The registry of a prefix: what discovery lists without KEYS. Every key shares the tag `{prefix:registry/}`,
 * its own slot, written only by lua/registry/register.lua; as with the scheduler, the `/` keeps it apart from
 * every queue (it cannot occur in a queue name) and `registry/` from buses, locks, limiters and the scheduler.
 * Each kind is a sorted set: name scored by when a process last registered it (ms, Redis's clock). Scheduler
 * jobs need no entry here: their own set `schedulerKeys(prefix).jobs` already lists them.
 */
export function registryKey(prefix: string, kind: RegistryKind): string {
  return `{${validatePrefix(prefix)}:registry/}:${kind}`;
}
