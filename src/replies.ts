/**
 * The numeric codes that scripts answer with, defined here once. Scripts write `REPLY.<NAME>`, which the loader
 * replaces by the value given here (scripts.ts), so that TypeScript and Lua can never disagree on what a number means.
 * What each code becomes for a user (a result, or which error class) is decided in the domain wrappers;
 * `staleError` and friends in errors.ts build the errors.
 */
export const REPLY = {
  /** the call did what it asked: acked, extended, released, recorded, removed, done */
  OK: 1,
  /** a receipt or lock token no longer current (reclaimed, expired, taken by another): nothing changed */
  STALE: 0,
  /** the subscriber or job named does not exist: nothing changed */
  UNKNOWN: 0,
  /** nack outcomes, one per message; STALE for a receipt no longer in flight */
  RETRIED: 1,
  DEAD_LETTERED: 2,
  RELEASED: 3,
  /** publish: the event id was published within the deduplication window; nothing written for it */
  DUPLICATE: -1,
  /** history replay: no such subscriber */
  NO_SUBSCRIBER: -1,
  /** subscribe: a new subscriber (OK) or one whose subscription was replaced */
  REPLACED: 0,
  /** lock acquire: taken (with its fence) or held by another (with its ms left) */
  ACQUIRED: 1,
  HELD: 0,
  /** rate limiter take: the units were taken, or the window has no room for them (nothing taken) */
  ALLOWED: 1,
  LIMITED: 0,
  /** scheduler claim: claimed, not claimable now, or the job is not registered */
  CLAIMED: 1,
  NOT_CLAIMED: 0,
  NOT_REGISTERED: -1,
  /** scheduler forget: the job was kept (OK: forgotten) */
  KEPT: 0,
  /** dequeue: the first receipt when nothing was delivered, and the wait when none is known (paused, empty) */
  NO_DELIVERY: 0,
  WAIT_UNKNOWN: -1,
  /** send with a maxLength: in place of a message's id, the message was refused and not written */
  QUEUE_FULL: -2,
  /** skipProcessed: the delivery's key is not marked processed, so its handler runs (OK: skipped, acked) */
  UNPROCESSED: -1,
} as const;

/** The reply of each script, as ioredis hands it over (integers as numbers, bulk strings as strings). */
export interface ScriptReplies {
  /** the count when every message was written under its own id, else one id per message (with a maxLength,
   * QUEUE_FULL in place of the id of a message refused) */
  'queue/send': number | (string | number)[];
  /** [waitMs, firstReceipt, ...records]; a repeated call answers '' for a delivery no longer in flight */
  'queue/dequeue': [number, number, ...string[]];
  /** OK or STALE per delivery */
  'queue/ack': number[];
  /** OK or STALE per delivery; every key is marked processed either way */
  'queue/ackProcessed': number[];
  /** OK (marked, acked), STALE (marked, not in flight) or UNPROCESSED per delivery */
  'queue/skipProcessed': number[];
  /** STALE, RETRIED, DEAD_LETTERED or RELEASED per delivery */
  'queue/nack': number[];
  /** OK or STALE per delivery */
  'queue/extend': number[];
  /** OK (written) or QUEUE_FULL (refused, nothing written) */
  'queue/request': number;
  /** OK or STALE per delivery, as queue/ack */
  'queue/reply': number[];
  /** OK: withdrawn before delivery; STALE: already delivered or handled (its reply, if any, is dropped) */
  'queue/requestCancel': number;
  'queue/reclaim': number;
  'queue/promote': number;
  /** ids replayed */
  'queue/replay': string[];
  'queue/purge': number;
  'queue/pause': number;
  'queue/rateLimit': number;
  'queue/wake': number;
  /**
   * counts per state, paused, oldest ready age, rate limit max and window, consumers present, then counter
   * name/value pairs (see
   * lua/queue/stats.lua)
   */
  'queue/stats': (number | string)[];
  /** consumers present after the heartbeat or removal */
  'queue/presence': number;
  /** 2 per consumer present: member, deadline ms (see lua/queue/presence.lua) */
  'queue/consumers': string[];
  /** [] or [state, record, lastError | null, at | null] */
  'queue/inspect': (string | null)[];
  /** 4 per entry: id, record | null, last error | null, due time or deadline | null */
  'queue/peek': (string | number | null)[];
  /** next cursor (-1: the end), entries examined, then 4 per match as queue/peek */
  'queue/search': (string | number | null)[];
  /** 4 per entry: id, failedAt, record | null, reason | null */
  'queue/deadLetterList': (string | null)[];
  /** subscribers reached per event, or DUPLICATE */
  'bus/publish': number[];
  /** OK (new) or REPLACED */
  'bus/subscribe': number;
  /** OK or UNKNOWN */
  'bus/unsubscribe': number;
  /** OK or UNKNOWN */
  'bus/subscriptionActive': number;
  /** events replayed, or NO_SUBSCRIBER */
  'bus/historyReplay': number;
  /** counters, '', then 3 per subscriber (see lua/bus/stats.lua) */
  'bus/stats': (string | number)[];
  /** [ACQUIRED, fence] or [HELD, ms left] */
  'lock/acquire': [number, number];
  /** OK or STALE */
  'lock/extend': number;
  /** OK or STALE */
  'lock/release': number;
  /** [ALLOWED, remaining, 0] or [LIMITED, remaining, retry ms] */
  'lock/rateTake': [number, number, number];
  /** the job's next tick as stored */
  'scheduler/register': number;
  /** [CLAIMED, fence, now], [NOT_CLAIMED, next tick, now, paused, lock ms left] or [NOT_REGISTERED] */
  'scheduler/claim': number[];
  /** OK or STALE */
  'scheduler/finish': number;
  /** OK or UNKNOWN */
  'scheduler/control': number;
  /** 1 forgotten, 0 kept */
  'scheduler/forget': number;
  /** 1 a name new to the registry, 0 one it knew */
  'registry/register': number;
}

export type ScriptName = keyof ScriptReplies;
